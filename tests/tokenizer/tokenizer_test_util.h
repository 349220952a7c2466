// Helpers shared by the tokenizer tests: where the fixtures are. The corpora and file reading come
// from the helpers every test shares.
#pragma once

#include <string>

#include "tests/common/test_helpers.h"

namespace foundry::test {

inline std::string fixture(const std::string& relative) {
  return std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + relative;
}

}  // namespace foundry::test
