// safetensors: any bytes as model.safetensors. A file that loads must describe its tensors
// exactly (the reader promises every byte is accounted for).
#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = foundry::fuzz::write_file("model.safetensors", {reinterpret_cast<const char*>(data), size});
  try {
    foundry::SafetensorsFile f = foundry::load_safetensors(path);
    size_t bytes = 0;
    for (const auto& [name, t] : f.tensors) {
      if (t.size() != foundry::shape_numel(t.shape)) foundry::fuzz::fail("a tensor's data does not match its shape");
      bytes += 4 * t.size();
    }
    if (bytes > size) foundry::fuzz::fail("more tensor data than file bytes");
  } catch (const std::exception&) {
  }
  return 0;
}
