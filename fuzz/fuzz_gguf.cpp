// gguf: any bytes as a .gguf file. parse_gguf must refuse or describe the file exactly (every
// tensor inside the data section, aligned, no two overlapping); a file that parses then goes
// through the model import (config, tokenizer, tensors), which must refuse or give a model whose
// tensors match its config.
#include <algorithm>

#include "common/gguf.h"
#include "fuzz/fuzz_util.h"
#include "infer/gguf_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace foundry;
  GgufFile f;
  try {
    f = parse_gguf(std::string(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
  } catch (const std::exception&) {
    return 0;
  }
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const GgufTensorInfo& t : f.tensors) {
    if (t.offset % f.alignment != 0) fuzz::fail("a misaligned tensor was accepted");
    if (f.data_offset + t.offset + t.bytes > f.bytes.size()) fuzz::fail("a tensor past the end was accepted");
    spans.emplace_back(t.offset, t.offset + t.bytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); k++)
    if (spans[k].first < spans[k - 1].second) fuzz::fail("overlapping tensors were accepted");
  try {
    // The RoPE tables (max_seq_len × HS) are the one allocation the tensors do not bound; keep the
    // harness inside libFuzzer's memory limit.
    ModelConfig c = gguf_model_config(f, "fuzz.gguf");
    if (static_cast<uint64_t>(c.max_seq_len) * c.dim > (1u << 22)) return 0;
    GgufImport m = import_gguf(f, "fuzz.gguf");
    if (m.tokenizer->vocab_size() != m.model.config.vocab_size) fuzz::fail("vocabulary and model disagree");
    for (size_t k = 0; k < m.model.entries.size(); k++)
      if (m.model.values[k].data.size() != shape_numel(m.model.values[k].shape)) fuzz::fail("tensor size");
  } catch (const std::exception&) {
    // A refusal with its message is the right outcome, whichever reader refused: the GGUF layer
    // throws std::invalid_argument, the tokenizer's own checks (a token that is not byte-level
    // text, a merge that does not fit) throw std::runtime_error.
  }
  return 0;
}
