#include "common/gguf.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "common/file_io.h"

namespace foundry {

namespace {

constexpr uint64_t kMaxDims = 4;  // ggml's GGML_MAX_DIMS

// At most 80 bytes of an untrusted string for an error message.
std::string excerpt(const std::string& s) {
  if (s.size() <= 80) return s;
  return s.substr(0, 80) + "...(" + std::to_string(s.size()) + " bytes)";
}

std::string value_type_name(GgufValueType t) {
  static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  uint32_t k = static_cast<uint32_t>(t);
  return k < 13 ? names[k] : "type " + std::to_string(k);
}

// Fixed-size scalar types and their sizes in bytes; 0 for string and array.
uint64_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      return 2;
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return 4;
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
      return 8;
    default:
      return 0;
  }
}

// A cursor over the file's bytes that refuses to read past the end.
class Reader {
 public:
  Reader(const std::string& bytes, const std::string& where) : b_(bytes), where_(where) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return b_.size() - pos_; }

  [[noreturn]] void fail(const std::string& what) const { throw std::invalid_argument(where_ + ": " + what); }
  void need(uint64_t n, const std::string& what) const {
    if (n > left())
      fail("truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
           ", but the file has " + std::to_string(left()) + " left");
  }
  template <typename T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& what) {
    uint64_t n = get<uint64_t>(what + " length");
    need(n, what + " (" + std::to_string(n) + " bytes)");
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  const std::string& b_;
  const std::string& where_;
  uint64_t pos_ = 0;
};

GgufValue read_scalar(Reader& r, GgufValueType t, const std::string& what) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufValueType::kU8:
      v.i = r.get<uint8_t>(what);
      break;
    case GgufValueType::kI8:
      // GGUF's I8 is a signed byte: sign-extending it is the point.
      v.i = r.get<int8_t>(what);  // NOLINT(bugprone-signed-char-misuse)
      break;
    case GgufValueType::kU16:
      v.i = r.get<uint16_t>(what);
      break;
    case GgufValueType::kI16:
      v.i = r.get<int16_t>(what);
      break;
    case GgufValueType::kU32:
      v.i = r.get<uint32_t>(what);
      break;
    case GgufValueType::kI32:
      v.i = r.get<int32_t>(what);
      break;
    case GgufValueType::kF32:
      v.f = r.get<float>(what);
      break;
    case GgufValueType::kBool: {
      uint8_t b = r.get<uint8_t>(what);
      if (b > 1) r.fail(what + ": a bool must be 0 or 1, got " + std::to_string(b));
      v.i = b;
      break;
    }
    case GgufValueType::kU64: {
      uint64_t u = r.get<uint64_t>(what);
      if (u > static_cast<uint64_t>(INT64_MAX)) r.fail(what + ": u64 value " + std::to_string(u) + " is too large");
      v.i = static_cast<int64_t>(u);
      break;
    }
    case GgufValueType::kI64:
      v.i = r.get<int64_t>(what);
      break;
    case GgufValueType::kF64:
      v.f = r.get<double>(what);
      break;
    case GgufValueType::kString:
      v.s = r.string(what);
      break;
    default:
      r.fail(what + ": unknown value type " + std::to_string(static_cast<uint32_t>(t)));
  }
  return v;
}

GgufValueType read_value_type(Reader& r, const std::string& what) {
  uint32_t t = r.get<uint32_t>(what + " type");
  if (t > 12) r.fail(what + ": unknown value type " + std::to_string(t) + " (GGUF knows 0..12)");
  return static_cast<GgufValueType>(t);
}

GgufValue read_value(Reader& r, const std::string& what) {
  GgufValueType t = read_value_type(r, what);
  if (t != GgufValueType::kArray) return read_scalar(r, t, what);
  GgufValue v;
  v.type = t;
  v.element_type = read_value_type(r, what + " element");
  if (v.element_type == GgufValueType::kArray) r.fail(what + ": arrays of arrays are not supported");
  uint64_t n = r.get<uint64_t>(what + " count");
  // Every element takes at least its scalar size (a string at least its 8-byte length), so a count
  // the rest of the file cannot hold is refused before anything is reserved.
  uint64_t min_size = v.element_type == GgufValueType::kString ? 8 : scalar_size(v.element_type);
  if (n > r.left() / min_size)
    r.fail("truncated: " + what + " claims " + std::to_string(n) + " elements of " + value_type_name(v.element_type) +
           ", more than the " + std::to_string(r.left()) + " bytes left can hold (at least " +
           std::to_string(min_size) + " bytes each)");
  v.array.reserve(n);
  for (uint64_t k = 0; k < n; k++) v.array.push_back(read_scalar(r, v.element_type, what));
  return v;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

void put_bytes(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void put(std::string& out, T v) {
  put_bytes(out, &v, sizeof v);
}
void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_scalar(std::string& out, const GgufValue& v, GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8:
    case GgufValueType::kBool:
      put<uint8_t>(out, static_cast<uint8_t>(v.i));
      break;
    case GgufValueType::kI8:
      put<int8_t>(out, static_cast<int8_t>(v.i));
      break;
    case GgufValueType::kU16:
      put<uint16_t>(out, static_cast<uint16_t>(v.i));
      break;
    case GgufValueType::kI16:
      put<int16_t>(out, static_cast<int16_t>(v.i));
      break;
    case GgufValueType::kU32:
      put<uint32_t>(out, static_cast<uint32_t>(v.i));
      break;
    case GgufValueType::kI32:
      put<int32_t>(out, static_cast<int32_t>(v.i));
      break;
    case GgufValueType::kF32:
      put<float>(out, static_cast<float>(v.f));
      break;
    case GgufValueType::kU64:
      put<uint64_t>(out, static_cast<uint64_t>(v.i));
      break;
    case GgufValueType::kI64:
      put<int64_t>(out, v.i);
      break;
    case GgufValueType::kF64:
      put<double>(out, v.f);
      break;
    case GgufValueType::kString:
      put_string(out, v.s);
      break;
    default:
      throw std::invalid_argument("gguf: cannot write a value of " + value_type_name(t));
  }
}

}  // namespace

GgufValue GgufValue::u32(uint32_t v) {
  GgufValue r;
  r.type = GgufValueType::kU32;
  r.i = v;
  return r;
}
GgufValue GgufValue::i32(int32_t v) {
  GgufValue r;
  r.type = GgufValueType::kI32;
  r.i = v;
  return r;
}
GgufValue GgufValue::f32(float v) {
  GgufValue r;
  r.type = GgufValueType::kF32;
  r.f = v;
  return r;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue r;
  r.type = GgufValueType::kBool;
  r.i = v;
  return r;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue r;
  r.type = GgufValueType::kString;
  r.s = std::move(v);
  return r;
}
GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  GgufValue r;
  r.type = GgufValueType::kArray;
  r.element_type = GgufValueType::kString;
  for (const std::string& s : v) r.array.push_back(string(s));
  return r;
}
GgufValue GgufValue::f32s(const std::vector<float>& v) {
  GgufValue r;
  r.type = GgufValueType::kArray;
  r.element_type = GgufValueType::kF32;
  for (float x : v) r.array.push_back(f32(x));
  return r;
}
GgufValue GgufValue::i32s(const std::vector<int32_t>& v) {
  GgufValue r;
  r.type = GgufValueType::kArray;
  r.element_type = GgufValueType::kI32;
  for (int32_t x : v) r.array.push_back(i32(x));
  return r;
}
bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kU16:
    case GgufValueType::kI16:
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kU64:
    case GgufValueType::kI64:
      return true;
    default:
      return false;
  }
}

std::string ggml_type_name(uint32_t type) {
  switch (type) {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 6:
      return "Q5_0";
    case 7:
      return "Q5_1";
    case 8:
      return "Q8_0";
    case 9:
      return "Q8_1";
    case 10:
      return "Q2_K";
    case 11:
      return "Q3_K";
    case 12:
      return "Q4_K";
    case 13:
      return "Q5_K";
    case 14:
      return "Q6_K";
    case 15:
      return "Q8_K";
    case 24:
      return "I8";
    case 25:
      return "I16";
    case 26:
      return "I32";
    case 27:
      return "I64";
    case 28:
      return "F64";
    case 30:
      return "BF16";
    default:
      return "type " + std::to_string(type);
  }
}

int64_t ggml_block_elements(GgmlType type) { return type == GgmlType::kQ4_0 || type == GgmlType::kQ8_0 ? 32 : 1; }

int64_t ggml_block_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 4;
    case GgmlType::kF16:
      return 2;
    case GgmlType::kQ4_0:
      return 2 + 16;  // fp16 scale, 32 four-bit values
    case GgmlType::kQ8_0:
      return 2 + 32;  // fp16 scale, 32 int8 values
  }
  return 0;
}

uint64_t GgufTensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const GgufTensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

GgufFile parse_gguf(std::string bytes, const std::string& where) {
  GgufFile f;
  f.bytes = std::move(bytes);
  Reader r(f.bytes, where);
  r.need(4, "the magic \"GGUF\"");
  if (f.bytes.compare(0, 4, "GGUF") != 0) {
    r.fail("not a GGUF file: the first 4 bytes are not \"GGUF\"" +
           std::string(f.bytes.compare(0, 4, "FUGG") == 0 ? " (this one is big-endian, which is not supported)" : ""));
  }
  r.get<uint32_t>("magic");
  f.version = r.get<uint32_t>("version");
  // Version 2 and 3 have the same little-endian layout (3 added big-endian files, marked by the
  // version read backwards); version 1 used 32-bit counts.
  if (f.version != 2 && f.version != 3)
    r.fail("GGUF version " + std::to_string(f.version) + " is not supported (expected 3, or 2)");
  uint64_t n_tensors = r.get<uint64_t>("tensor_count");
  uint64_t n_kv = r.get<uint64_t>("kv_count");
  // The smallest metadata entry is 13 bytes (empty key, type, one byte); the smallest tensor info
  // 8 + 4 + 8 + 4 + 8 = 32 bytes. Counts beyond what the file can hold are refused up front.
  if (n_kv > r.left() / 13)
    r.fail("truncated: kv_count " + std::to_string(n_kv) + " entries cannot fit in the " + std::to_string(r.left()) +
           " bytes left");
  std::set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; k++) {
    std::string what = "metadata entry " + std::to_string(k);
    std::string key = r.string(what + " key");
    if (key.empty()) r.fail(what + ": the key is empty");
    if (!keys.insert(key).second) r.fail("duplicate metadata key \"" + excerpt(key) + "\"");
    GgufValue v = read_value(r, "metadata \"" + excerpt(key) + "\"");
    f.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = f.find("general.alignment")) {
    if (a->type != GgufValueType::kU32) r.fail("general.alignment must be a u32, got " + value_type_name(a->type));
    if (a->i == 0 || (a->i & (a->i - 1)) != 0)
      r.fail("general.alignment = " + std::to_string(a->i) + ", expected a power of two");
    f.alignment = static_cast<uint64_t>(a->i);
  }
  if (n_tensors > r.left() / 32)
    r.fail("truncated: tensor_count " + std::to_string(n_tensors) + " tensor infos cannot fit in the " +
           std::to_string(r.left()) + " bytes left");
  std::set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; k++) {
    GgufTensorInfo t;
    t.name = r.string("tensor " + std::to_string(k) + " name");
    const std::string what = "tensor \"" + excerpt(t.name) + "\"";
    if (!names.insert(t.name).second) r.fail("duplicate " + what);
    uint32_t n_dims = r.get<uint32_t>(what + " n_dims");
    if (n_dims < 1 || n_dims > kMaxDims)
      r.fail(what + ": n_dims = " + std::to_string(n_dims) + ", expected 1.." + std::to_string(kMaxDims));
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
      uint64_t n = r.get<uint64_t>(what + " ne[" + std::to_string(d) + "]");
      // ggml keeps sizes in int64: the element count must fit there.
      if (n > static_cast<uint64_t>(INT64_MAX) || (n != 0 && elements > static_cast<uint64_t>(INT64_MAX) / n))
        r.fail(what + ": the shape overflows (ne[" + std::to_string(d) + "] = " + std::to_string(n) + ")");
      elements *= n;
      t.ne.push_back(n);
    }
    uint32_t type = r.get<uint32_t>(what + " type");
    if (type != 0 && type != 1 && type != 2 && type != 8)
      r.fail(what + ": tensor type " + ggml_type_name(type) + " (" + std::to_string(type) +
             ") is not supported (expected F32, F16, Q4_0 or Q8_0)");
    t.type = static_cast<GgmlType>(type);
    const int64_t block = ggml_block_elements(t.type);
    if (t.ne[0] % block != 0)
      r.fail(what + ": a " + ggml_type_name(type) + " row has " + std::to_string(t.ne[0]) +
             " elements, not a multiple of the block size " + std::to_string(block));
    // elements ≤ INT64_MAX and block bytes ≤ 34 ≤ block elements · 4: no overflow in uint64.
    t.bytes = elements / block * ggml_block_bytes(t.type);
    t.offset = r.get<uint64_t>(what + " offset");
    if (t.offset % f.alignment != 0)
      r.fail(what + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(f.alignment));
    f.tensors.push_back(std::move(t));
  }
  f.data_offset = align_up(r.pos(), f.alignment);
  const uint64_t data_size = f.bytes.size() >= f.data_offset ? f.bytes.size() - f.data_offset : 0;
  if (!f.tensors.empty() && f.data_offset > f.bytes.size())
    r.fail("truncated: the data section should start at offset " + std::to_string(f.data_offset) +
           ", past the end of the file (" + std::to_string(f.bytes.size()) + " bytes)");
  // Each tensor inside the data section, and no two sharing a byte: sort by offset and compare
  // neighbours.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : f.tensors) {
    if (t.offset > data_size || t.bytes > data_size - t.offset)
      r.fail("truncated: tensor \"" + excerpt(t.name) + "\" (" + std::to_string(t.bytes) + " bytes at data offset " +
             std::to_string(t.offset) + ") runs past the end of the file (data section of " +
             std::to_string(data_size) + " bytes)");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); k++) {
    const GgufTensorInfo& a = *by_offset[k - 1];
    const GgufTensorInfo& b = *by_offset[k];
    if (b.offset < a.offset + a.bytes)
      r.fail("tensors \"" + excerpt(a.name) + "\" (bytes " + std::to_string(a.offset) + ".." +
             std::to_string(a.offset + a.bytes) + ") and \"" + excerpt(b.name) + "\" (from " +
             std::to_string(b.offset) + ") overlap");
  }
  return f;
}

GgufFile read_gguf(const std::string& path) { return parse_gguf(read_file(path, "GGUF file"), path); }

std::string serialize_gguf(const std::vector<std::pair<std::string, GgufValue>>& metadata,
                           const std::vector<GgufTensorOut>& tensors, uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw std::invalid_argument("gguf: alignment " + std::to_string(alignment) + " is not a power of two");
  std::vector<std::pair<std::string, GgufValue>> kv = metadata;
  bool has_alignment = false;
  std::set<std::string> keys;
  for (const auto& [k, v] : kv) {
    if (!keys.insert(k).second) throw std::invalid_argument("gguf: duplicate metadata key \"" + k + "\"");
    if (k == "general.alignment") {
      if (v.type != GgufValueType::kU32 || static_cast<uint64_t>(v.i) != alignment)
        throw std::invalid_argument("gguf: general.alignment disagrees with the alignment written");
      has_alignment = true;
    }
  }
  if (!has_alignment && alignment != 32) kv.emplace_back("general.alignment", GgufValue::u32(alignment));

  std::string out;
  out += "GGUF";
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors.size());
  put<uint64_t>(out, kv.size());
  for (const auto& [k, v] : kv) {
    put_string(out, k);
    put<uint32_t>(out, static_cast<uint32_t>(v.type));
    if (v.type == GgufValueType::kArray) {
      put<uint32_t>(out, static_cast<uint32_t>(v.element_type));
      put<uint64_t>(out, v.array.size());
      for (const GgufValue& e : v.array) put_scalar(out, e, v.element_type);
    } else {
      put_scalar(out, v, v.type);
    }
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const GgufTensorOut& t : tensors) {
    if (!names.insert(t.name).second) throw std::invalid_argument("gguf: duplicate tensor \"" + t.name + "\"");
    if (t.ne.empty() || t.ne.size() > kMaxDims)
      throw std::invalid_argument("gguf: tensor \"" + t.name + "\" has " + std::to_string(t.ne.size()) + " dims");
    uint64_t elements = 1;
    for (uint64_t d : t.ne) elements *= d;
    const uint64_t block = ggml_block_elements(t.type);
    if (t.ne[0] % block != 0 || elements / block * ggml_block_bytes(t.type) != t.data.size())
      throw std::invalid_argument("gguf: tensor \"" + t.name + "\" has " + std::to_string(t.data.size()) +
                                  " bytes, which its shape and type " + ggml_type_name((uint32_t)t.type) +
                                  " do not give");
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offsets.push_back(offset);
    offset = align_up(offset + t.data.size(), alignment);
  }
  out.resize(align_up(out.size(), alignment), '\0');
  const size_t data_start = out.size();
  for (size_t k = 0; k < tensors.size(); k++) {
    out.resize(data_start + offsets[k], '\0');
    out += tensors[k].data;
  }
  // The last tensor is padded too, as llama.cpp's writer does.
  out.resize(align_up(out.size(), alignment), '\0');
  return out;
}

void write_gguf(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorOut>& tensors, uint64_t alignment) {
  write_file_atomic(path, serialize_gguf(metadata, tensors, alignment));
}

std::string gguf_value_summary(const GgufValue& v, size_t max_items) {
  auto scalar = [](const GgufValue& x) -> std::string {
    if (x.type == GgufValueType::kString) return "\"" + excerpt(x.s) + "\"";
    if (x.type == GgufValueType::kBool) return x.i ? "true" : "false";
    if (x.type == GgufValueType::kF32 || x.type == GgufValueType::kF64) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", x.f);
      return buf;
    }
    return std::to_string(x.i);
  };
  if (v.type != GgufValueType::kArray) return scalar(v);
  std::string s = "[" + std::to_string(v.array.size()) + " x " + value_type_name(v.element_type) + "]";
  for (size_t k = 0; k < v.array.size() && k < max_items; k++) s += (k ? ", " : " ") + scalar(v.array[k]);
  if (v.array.size() > max_items) s += ", ...";
  return s;
}

}  // namespace foundry
