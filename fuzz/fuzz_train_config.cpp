// A training config file (configs/*.json), parsed and validated as `foundry train` does.
#include "fuzz/fuzz_util.h"
#include "train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = foundry::fuzz::write_file("config.json", {reinterpret_cast<const char*>(data), size});
  try {
    foundry::TrainConfig c = foundry::load_train_config(path);
    foundry::validate(c, path);
    // What loads must survive its own round trip.
    foundry::TrainConfig again = foundry::train_config_from_json(foundry::to_json(c), "round trip");
    if (foundry::to_json(again) != foundry::to_json(c)) foundry::fuzz::fail("config changed in a JSON round trip");
  } catch (const std::exception&) {
  }
  return 0;
}
