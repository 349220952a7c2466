// llama2.c's legacy .bin checkpoint, as `foundry import llama2c` reads it.
#include "fuzz/fuzz_util.h"
#include "model/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = foundry::fuzz::write_file("model.bin", {reinterpret_cast<const char*>(data), size});
  try {
    foundry::Model m = foundry::load_llama2c_checkpoint(path);
    if (m.num_parameters() * 4 > size) foundry::fuzz::fail("more parameters than the file holds");
  } catch (const std::exception&) {
  }
  return 0;
}
