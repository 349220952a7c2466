// GGUF, the single-file model format of llama.cpp (and so of Ollama, LM Studio and friends):
// reading and writing the container. What goes into it for a LLaMA model is infer/gguf_convert.h.
//
// A GGUF file (version 3), all little-endian, strings as (uint64 byte length, bytes, no NUL):
//
//   "GGUF"                 4 bytes of magic
//   version                uint32, 3
//   tensor_count           uint64
//   kv_count               uint64
//   kv_count × metadata    key (string), value type (uint32), value
//                          value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool,
//                          8 string, 9 array (element type uint32, count uint64, elements),
//                          10 u64, 11 i64, 12 f64
//   tensor_count × info    name (string), n_dims (uint32), ne[n_dims] (uint64 each),
//                          ggml type (uint32), offset (uint64, into the data section)
//   padding                zeros up to a multiple of the alignment
//   data section           each tensor's bytes at its offset, every offset a multiple of the
//                          alignment (metadata key general.alignment, 32 when absent)
//
// Dimensions are listed fastest first: ne[0] is the length of a row. A PyTorch-style matrix of
// shape (out, in), stored row-major, is ne = {in, out} in GGUF. The block-quantized types store
// ne[0] / 32 blocks per row (see engine/quant.h for what a block holds).
//
// Reading trusts nothing: the header, each string and array length, each tensor's shape, type,
// size and offset are checked against the file's real size before anything is allocated, so a
// truncated or hostile file gets a clear error naming the field, never a crash or a huge
// allocation.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace foundry {

enum class GgufValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// One metadata value. Integers of every width live in `i` (u64 values above INT64_MAX are
// refused when read), floats in `f`, strings in `s`; an array keeps its element type and its
// elements (arrays of arrays are refused, as llama.cpp does).
struct GgufValue {
  GgufValueType type = GgufValueType::kU32;
  int64_t i = 0;
  double f = 0;
  std::string s;
  GgufValueType element_type = GgufValueType::kU8;  // arrays only
  std::vector<GgufValue> array;

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue f32s(const std::vector<float>& v);
  static GgufValue i32s(const std::vector<int32_t>& v);
  bool is_integer() const;
};

// The ggml tensor types this project reads and writes. Any other type number is refused.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8 };

// "F32", "F16", "Q4_0", "Q8_0"; for another number, ggml's name when it is one llama.cpp knows
// (so an error can say "Q4_K is not supported") or "type N".
std::string ggml_type_name(uint32_t type);
// Elements per block (1 for F32/F16, 32 for the quantized types) and bytes per block.
int64_t ggml_block_elements(GgmlType type);
int64_t ggml_block_bytes(GgmlType type);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // fastest dimension first, 1 to 4 of them
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;   // what the shape and type need
  uint64_t elements() const;
};

struct GgufFile {
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                      // in file order
  std::string bytes;                                        // the whole file
  uint64_t data_offset = 0;                                 // where the data section starts

  // nullptr when the key is absent.
  const GgufValue* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // The first byte of a tensor's data (its `bytes` bytes follow).
  const char* data(const GgufTensorInfo& t) const { return bytes.data() + data_offset + t.offset; }
};

// Parses a whole file held in memory. Throws std::invalid_argument starting with `where` and
// naming the field (offset, key or tensor) on a wrong magic or version, a truncated file, an
// unknown value or tensor type, a string or array longer than the file, a duplicate key or
// tensor name, a shape whose size overflows, a misaligned, overlapping or out-of-file tensor, or a
// bad general.alignment.
GgufFile parse_gguf(std::string bytes, const std::string& where);
// Reads and parses a file (std::runtime_error when it cannot be read).
GgufFile read_gguf(const std::string& path);

// A tensor to write: its shape fastest first, its type and exactly the bytes they need.
struct GgufTensorOut {
  std::string name;
  std::vector<uint64_t> ne;
  GgmlType type = GgmlType::kF32;
  std::string data;
};

// The file's bytes: header, metadata in the order given, tensor infos, then each tensor's data
// at the next multiple of `alignment` (written as general.alignment when it is not 32). Throws
// std::invalid_argument on a duplicate key or tensor name or data of the wrong size.
std::string serialize_gguf(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                           const std::vector<GgufTensorOut>& tensors, uint64_t alignment = 32);
// serialize_gguf written atomically (common/file_io.h).
void write_gguf(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorOut>& tensors, uint64_t alignment = 32);

// A value for display: numbers and strings as themselves, arrays as "[N × type] first, ...".
std::string gguf_value_summary(const GgufValue& v, size_t max_items = 4);

}  // namespace foundry
