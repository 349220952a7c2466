// safetensors reading and writing. The format is described in safetensors.h; this file adds the
// checks. A model file may come from anywhere, so the reader treats every number in the header
// as a claim to verify against the file before it uses it to index memory.
#include "model/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "common/file_io.h"

namespace foundry {

namespace {

using ordered_json = nlohmann::ordered_json;

// A header larger than this is refused before it is read: a corrupt length field must not make
// us allocate gigabytes. Real headers are a few hundred bytes per tensor.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

// The data section starts at a multiple of this, which lets a reader map the file and use the
// floats in place. We pad the header with spaces to get there, as the format allows.
constexpr uint64_t kDataAlignment = 8;

// Little-endian byte order written out explicitly, so the file is the same on any host. On x86
// the compiler turns each of these into a plain load or store.
void put_u64_le(char* dst, uint64_t v) {
  for (int i = 0; i < 8; i++) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_u64_le(const char* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(static_cast<unsigned char>(src[i])) << (8 * i);
  return v;
}
void put_f32_le(char* dst, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  for (int i = 0; i < 4; i++) dst[i] = static_cast<char>((u >> (8 * i)) & 0xff);
}
float get_f32_le(const char* src) {
  uint32_t u = 0;
  for (int i = 0; i < 4; i++) u |= static_cast<uint32_t>(static_cast<unsigned char>(src[i])) << (8 * i);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// One header entry after its own checks, before the checks that compare entries.
struct Entry {
  std::string name;
  Shape shape;
  bool is_u8 = false;  // U8 raw bytes, else F32
  uint64_t begin = 0;  // byte offsets into the data section, [begin, end)
  uint64_t end = 0;
};

// A short, bounded rendering of an untrusted JSON value for an error message. dump() would
// recurse once per nesting level (a 200 KB "[[[[...]]]]" overflows the stack) and echo megabytes;
// this looks at most one level down and cuts the text at max_chars.
std::string json_excerpt(const nlohmann::json& j, size_t max_chars = 60) {
  std::string out;
  if (j.is_array() || j.is_object()) {
    out += j.is_array() ? "[" : "{";
    bool first = true;
    for (auto it = j.begin(); it != j.end() && out.size() < max_chars; ++it) {
      if (!first) out += ",";
      first = false;
      if (j.is_object()) out += nlohmann::json(it.key()).dump() + ":";
      out += it->is_array()    ? (it->empty() ? "[]" : "[...]")
             : it->is_object() ? (it->empty() ? "{}" : "{...}")
                               : it->dump();
    }
    out += j.is_array() ? "]" : "}";
  } else {
    out = j.dump();
  }
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j) {
  const std::string where = path + ": tensor '" + name + "'";
  if (!j.is_object())
    throw std::invalid_argument(where + ": header entry must be a JSON object, got " + json_excerpt(j));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets") {
      throw std::invalid_argument(where + ": unknown field '" + it.key() + "' (expected dtype, shape, data_offsets)");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(key)) throw std::invalid_argument(where + ": missing field '" + key + "'");
  }

  const nlohmann::json& dtype = j.at("dtype");
  if (!dtype.is_string() || (dtype.get<std::string>() != "F32" && dtype.get<std::string>() != "U8")) {
    throw std::invalid_argument(
        where + ": dtype " + json_excerpt(dtype) +
        " is not supported; LLM Foundry reads and writes \"F32\" (and \"U8\" for quantized blocks)");
  }

  Entry e;
  e.name = name;
  e.is_u8 = dtype.get<std::string>() == "U8";
  const uint64_t element_bytes = e.is_u8 ? 1 : 4;
  const nlohmann::json& shape = j.at("shape");
  if (!shape.is_array()) throw std::invalid_argument(where + ": shape must be an array, got " + json_excerpt(shape));
  // The element count is built with an overflow check: a forged shape like [2^40, 2^40] must be
  // rejected here, not wrap around and pass the byte-count comparison below.
  uint64_t numel = 1;
  for (const nlohmann::json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      throw std::invalid_argument(where + ": shape " + json_excerpt(shape) +
                                  " must hold non-negative integers below 2^31");
    }
    uint64_t n = d.get<uint64_t>();
    if (n != 0 && numel > std::numeric_limits<uint64_t>::max() / 4 / n) {
      throw std::invalid_argument(where + ": shape " + json_excerpt(shape) + " is too large");
    }
    numel *= n;
    e.shape.push_back(static_cast<int>(n));
  }

  const nlohmann::json& offsets = j.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    throw std::invalid_argument(where + ": data_offsets must be two non-negative integers [begin, end], got " +
                                json_excerpt(offsets));
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin) {
    throw std::invalid_argument(where + ": data_offsets " + json_excerpt(offsets) + " end before they begin");
  }
  if (e.end - e.begin != numel * element_bytes) {
    throw std::invalid_argument(where + ": data_offsets " + json_excerpt(offsets) + " cover " +
                                std::to_string(e.end - e.begin) + " bytes, but shape " + shape_str(e.shape) + " of " +
                                (e.is_u8 ? "U8" : "F32") + " needs " + std::to_string(numel * element_bytes));
  }
  return e;
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata,
                      const std::vector<std::pair<std::string, const ByteTensor*>>& bytes) {
  // The header: metadata first, then the tensors in the order given, packed back to back.
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__") {
      throw std::invalid_argument(path + ": cannot save a tensor named '" + name + "'");
    }
    if (!seen.insert(name).second) throw std::invalid_argument(path + ": tensor '" + name + "' given twice");
    if (t->data.size() != shape_numel(t->shape)) {
      throw std::invalid_argument(path + ": tensor '" + name + "' has " + std::to_string(t->data.size()) +
                                  " values but shape " + shape_str(t->shape));
    }
    const uint64_t size = 4 * static_cast<uint64_t>(t->data.size());
    header[name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  for (const auto& [name, t] : bytes) {
    if (name.empty() || name == "__metadata__") {
      throw std::invalid_argument(path + ": cannot save a tensor named '" + name + "'");
    }
    if (!seen.insert(name).second) throw std::invalid_argument(path + ": tensor '" + name + "' given twice");
    if (t->data.size() != shape_numel(t->shape)) {
      throw std::invalid_argument(path + ": U8 tensor '" + name + "' has " + std::to_string(t->data.size()) +
                                  " bytes but shape " + shape_str(t->shape));
    }
    header[name] = {{"dtype", "U8"}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data section starts on an 8-byte boundary (8 + N ≡ 0 mod 8).
  header_text.append((kDataAlignment - header_text.size() % kDataAlignment) % kDataAlignment, ' ');

  write_file_atomic(path, [&](std::ostream& out) {
    char length[8];
    put_u64_le(length, header_text.size());
    out.write(length, 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    // Convert in chunks: a whole-model float copy would double the memory a save needs.
    std::vector<char> chunk;
    for (const auto& pair : tensors) {
      const Tensor& t = *pair.second;
      const size_t kChunk = 1 << 16;  // elements per write
      for (size_t start = 0; start < t.data.size(); start += kChunk) {
        size_t n = std::min(kChunk, t.data.size() - start);
        chunk.resize(4 * n);
        for (size_t i = 0; i < n; i++) put_f32_le(&chunk[4 * i], static_cast<float>(t.data[start + i]));
        out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      }
    }
    for (const auto& pair : bytes) {
      out.write(reinterpret_cast<const char*>(pair.second->data.data()),
                static_cast<std::streamsize>(pair.second->data.size()));
    }
  });
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open the safetensors file");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);

  // 1. The header length, checked against the file before anything is allocated for it.
  if (file_size < 8) {
    throw std::invalid_argument(path + ": the file has " + std::to_string(file_size) +
                                " bytes, too short for the 8-byte header length (truncated?)");
  }
  char length_bytes[8];
  in.read(length_bytes, 8);
  const uint64_t header_size = get_u64_le(length_bytes);
  if (header_size > file_size - 8) {
    throw std::invalid_argument(path + ": header length " + std::to_string(header_size) +
                                " runs past the end of the file (" + std::to_string(file_size) +
                                " bytes): truncated, or not a safetensors file");
  }
  if (header_size > kMaxHeaderBytes) {
    throw std::invalid_argument(path + ": header length " + std::to_string(header_size) + " exceeds the limit of " +
                                std::to_string(kMaxHeaderBytes) + " bytes");
  }

  // 2. The header must be a JSON object (the format requires its first byte to be '{').
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  if (!in) throw std::runtime_error(path + ": read error in the header");
  nlohmann::json header;
  if (header_text.empty() || header_text[0] != '{') {
    throw std::invalid_argument(path + ": the header is not JSON (it must start with '{')");
  }
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": the header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw std::invalid_argument(path + ": the header must be a JSON object");

  // 3. Each entry on its own.
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) throw std::invalid_argument(path + ": __metadata__ must be a JSON object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) {
          throw std::invalid_argument(path + ": __metadata__ value of '" + m.key() + "' must be a string, got " +
                                      json_excerpt(m.value()));
        }
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), it.value()));
  }

  // 4. The entries together must tile the data section exactly: inside it, no overlap, no gap,
  // nothing left over. A truncated file shows up as a range past the end.
  const uint64_t data_size = file_size - 8 - header_size;
  for (const Entry& e : entries) {
    if (e.end > data_size) {
      throw std::invalid_argument(path + ": tensor '" + e.name + "': data_offsets " + range_str(e.begin, e.end) +
                                  " run past the end of the data section (" + std::to_string(data_size) +
                                  " bytes): the file is truncated or the offsets are wrong");
    }
  }
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;  // every byte before this belongs to exactly one tensor
  const Entry* previous = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < covered) {
      throw std::invalid_argument(path + ": tensors '" + previous->name + "' " +
                                  range_str(previous->begin, previous->end) + " and '" + e->name + "' " +
                                  range_str(e->begin, e->end) + " overlap in the data section");
    }
    if (e->begin > covered) {
      throw std::invalid_argument(path + ": bytes " + range_str(covered, e->begin) +
                                  " of the data section belong to no tensor (before tensor '" + e->name + "')");
    }
    covered = e->end;
    if (e->end > e->begin) previous = e;  // an empty tensor cannot overlap anything
  }
  if (covered != data_size) {
    throw std::invalid_argument(path + ": the data section has " + std::to_string(data_size) +
                                " bytes but the tensors cover only " + std::to_string(covered) +
                                " (trailing bytes, or a missing header entry)");
  }

  // 5. Only now read the data, and convert float32 to `real`.
  std::vector<char> data(data_size);
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  if (!in) throw std::runtime_error(path + ": read error in the data section");
  for (const Entry& e : entries) {
    if (e.is_u8) {
      const char* src = data.data() + e.begin;
      file.bytes.emplace(e.name, ByteTensor{e.shape, std::vector<uint8_t>(src, src + (e.end - e.begin))});
      continue;
    }
    Tensor t(e.shape);
    const char* src = data.data() + e.begin;
    for (size_t i = 0; i < t.size(); i++) t.data[i] = static_cast<real>(get_f32_le(src + 4 * i));
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

}  // namespace foundry
