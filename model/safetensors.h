// Reading and writing the safetensors format, the tensor file of Hugging Face's ecosystem.
//
// A safetensors file is three parts, back to back:
//
//   [8 bytes]  N, the header length, an unsigned 64-bit little-endian integer
//   [N bytes]  the header: a UTF-8 JSON object, padded at the end with spaces
//                { "__metadata__": {"format": "pt"},                      (optional, string → string)
//                  "norm.weight": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]},
//                  ... }
//   [rest]     the data section: each tensor's elements, row-major, little-endian;
//              data_offsets = [begin, end) are byte offsets into this section
//
// No code runs when such a file is read (unlike Python's pickle), and a reader can find any tensor
// from the header alone. We store every tensor as F32 (float32) whatever `real` is: the double
// build converts on the way in and out, so both builds read and write the same files, and so do
// PyTorch and the Python `safetensors` package. The one other dtype is U8, raw bytes, which a
// quantized model uses to hold its blocks (model_io.h says how they are described).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace foundry {

// A tensor of raw bytes (dtype U8): shape as in the header, data row-major.
struct ByteTensor {
  Shape shape;
  std::vector<uint8_t> data;
};

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;        // the F32 tensors by name, each with its shape from the header
  std::map<std::string, ByteTensor> bytes;      // the U8 tensors by name
  std::map<std::string, std::string> metadata;  // the "__metadata__" object, or empty
};

// Writes the tensors, in the order given, atomically (path.tmp, then rename). Throws
// std::invalid_argument on a duplicate or empty name, a name "__metadata__", or a tensor whose
// data does not match its shape; std::runtime_error when the file cannot be written.
// The U8 tensors `bytes` follow the F32 ones in the file.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      const std::vector<std::pair<std::string, const ByteTensor*>>& bytes = {});

// Reads a whole file and checks everything before trusting any of it: the header length against
// the file size, the header is a JSON object, every entry has dtype "F32", a shape of
// non-negative integers and data_offsets that match the shape's byte count, lie inside the data
// section, do not overlap and leave no byte unaccounted for (so a truncated or padded file is
// caught). Throws std::invalid_argument whose message starts with `path` and names the tensor.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace foundry
