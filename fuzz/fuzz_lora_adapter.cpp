// lora_adapter: any bytes as an adapter file of `foundry sft --lora` (model/lora.h). An adapter
// that loads has one a (R, K) and one b (N, R) per target and layer with R <= min(K, N), finite
// values, and survives a save and load unchanged.
#include <cmath>

#include "fuzz/fuzz_util.h"
#include "model/lora.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      foundry::fuzz::write_file("adapter.safetensors", {reinterpret_cast<const char*>(data), size});
  try {
    foundry::LoraModel lora = foundry::load_lora(path);
    const int R = lora.config.rank;
    if (lora.adapters.empty() || lora.adapters.size() % lora.config.targets.size() != 0)
      foundry::fuzz::fail("not one adapter per target and layer");
    for (const foundry::LoraAdapter& ad : lora.adapters) {
      if (ad.a.rank() != 2 || ad.b.rank() != 2 || ad.a.dim(0) != R || ad.b.dim(1) != R)
        foundry::fuzz::fail("an adapter's shapes do not fit its rank");
      if (R > ad.a.dim(1) || R > ad.b.dim(0)) foundry::fuzz::fail("rank above min(in, out)");
      for (foundry::real v : ad.a.data)
        if (!std::isfinite(v)) foundry::fuzz::fail("a value that is not finite");
      for (foundry::real v : ad.b.data)
        if (!std::isfinite(v)) foundry::fuzz::fail("a value that is not finite");
    }
    // What we wrote ourselves must read back: a refusal here is a finding, not an error message.
    foundry::LoraModel back;
    try {
      const std::string again = foundry::fuzz::scratch_dir() + "/adapter2.safetensors";
      foundry::save_lora(lora, again);
      back = foundry::load_lora(again);
    } catch (const std::exception&) {
      foundry::fuzz::fail("an adapter that loaded cannot be saved and loaded again");
    }
    if (back.adapters.size() != lora.adapters.size() || back.config.alpha != lora.config.alpha ||
        back.config.targets != lora.config.targets || back.base_fingerprint != lora.base_fingerprint)
      foundry::fuzz::fail("the adapter does not survive a save and load");
    for (size_t k = 0; k < lora.adapters.size(); k++)
      if (back.adapters[k].a.data != lora.adapters[k].a.data || back.adapters[k].b.data != lora.adapters[k].b.data)
        foundry::fuzz::fail("an adapter's values change through a save and load");
  } catch (const std::exception&) {
  }
  return 0;
}
