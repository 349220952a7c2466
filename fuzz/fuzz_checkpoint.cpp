// A training checkpoint directory: config.json, model.safetensors, optimizer.safetensors and
// train_state.json, as `foundry train --resume` loads them.
#include "fuzz/fuzz_util.h"
#include "train/checkpoint.h"

using namespace foundry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 4);
  fuzz::write_file("config.json", parts[0]);
  fuzz::write_file("model.safetensors", parts[1]);
  fuzz::write_file("optimizer.safetensors", parts[2]);
  fuzz::write_file("train_state.json", parts[3]);
  try {
    Checkpoint ck = load_checkpoint(fuzz::scratch_dir());
    if (ck.state.optimizer.m.size() != ck.model.parameters().size()) fuzz::fail("moments and parameters disagree");
  } catch (const std::exception&) {
  }
  return 0;
}
