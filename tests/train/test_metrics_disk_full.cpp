// The metrics log on a full disk: /dev/full accepts the open and fails every write with ENOSPC,
// which is what a full disk does to the log in the middle of a run.
#include <catch2/catch.hpp>

#include <unistd.h>

#include "train/metrics.h"

using namespace foundry;

TEST_CASE("a metrics write that fails stops the run with the file named", "[metrics]") {
  if (access("/dev/full", W_OK) != 0) {
    WARN("skipped: /dev/full is not writable here");
    return;
  }
  MetricsWriter writer("/dev/full");
  // stdio buffers the line; the flush after it is where ENOSPC must surface.
  REQUIRE_THROWS_WITH(writer.train(1, 5.0, 1e-3, 0.5, 128, 1000.0, 0.1),
                      Catch::Contains("/dev/full") && Catch::Contains("No space left"));
}
