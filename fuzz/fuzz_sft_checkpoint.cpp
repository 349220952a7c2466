// A fine-tuning checkpoint's own files: sft_state.json, optimizer.safetensors and metrics.jsonl,
// as `foundry sft --resume` reads them (its model files are the model_dir harness's).
#include "fuzz/fuzz_util.h"
#include "train/sft_checkpoint.h"

using namespace foundry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 3);
  fuzz::write_file("sft_state.json", parts[0]);
  fuzz::write_file("optimizer.safetensors", parts[1]);
  fuzz::write_file("metrics.jsonl", parts[2]);
  try {
    // The run's settings as the state file gives them, then the state itself against a run of
    // three training examples, no trainable tensors and the seed corpus's data fingerprint.
    const SftOptions o = sft_resume_options(fuzz::scratch_dir());
    AdamW optimizer;
    const SftProgress p = load_sft_checkpoint(fuzz::scratch_dir(), o, "fnv1a64:0000000000000000", 3, {}, optimizer);
    if (p.order.size() != 3 || p.cursor > 3 || p.step > o.max_steps) fuzz::fail("a state past its checks");
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
