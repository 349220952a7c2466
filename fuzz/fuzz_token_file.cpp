// Token files (train.bin / val.bin of `foundry prepare`). What loads must save back identically.
#include "fuzz/fuzz_util.h"
#include "train/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = foundry::fuzz::write_file("tokens.bin", {reinterpret_cast<const char*>(data), size});
  try {
    std::vector<int> ids = foundry::load_tokens(path);
    for (int id : ids)
      if (id < 0) foundry::fuzz::fail("a negative id was loaded");
  } catch (const std::exception&) {
  }
  return 0;
}
