#include "train/token_file.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "common/file_io.h"

namespace foundry {

namespace {

// subtle: we write little-endian explicitly, byte by byte, so the file means the same thing on
// any machine; a raw memcpy of a uint32 would follow the host's byte order.
void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

}  // namespace

void save_tokens(const std::string& path, const std::vector<int>& ids, int vocab_size) {
  if (vocab_size <= 0) throw std::invalid_argument(path + ": vocab_size must be positive");
  const int token_bytes = vocab_size <= 65536 ? 2 : 4;
  std::string bytes(kTokenFileMagic, kTokenFileMagic + 8);
  put_le(bytes, kTokenFileVersion, 4);
  put_le(bytes, static_cast<uint32_t>(token_bytes), 4);
  put_le(bytes, ids.size(), 8);
  bytes.reserve(bytes.size() + ids.size() * token_bytes);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      throw std::invalid_argument(path + ": token " + std::to_string(i) + " has id " + std::to_string(ids[i]) +
                                  ", outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
    put_le(bytes, static_cast<uint32_t>(ids[i]), token_bytes);
  }
  write_file_atomic(path, bytes);
}

std::vector<int> load_tokens(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(path + ": cannot open the token file (run `foundry prepare` first?)");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < kTokenFileHeaderBytes) {
    throw std::invalid_argument(path + ": " + std::to_string(bytes.size()) +
                                " bytes is too short for a token file header (24 bytes)");
  }
  if (std::memcmp(p, kTokenFileMagic, 8) != 0) {
    throw std::invalid_argument(path + ": not a token file (the first 8 bytes are not \"FNDRYTOK\")");
  }
  const uint64_t version = get_le(p + 8, 4);
  if (version != kTokenFileVersion) {
    throw std::invalid_argument(path + ": token file version " + std::to_string(version) + ", expected " +
                                std::to_string(kTokenFileVersion));
  }
  const uint64_t token_bytes = get_le(p + 12, 4);
  if (token_bytes != 2 && token_bytes != 4) {
    throw std::invalid_argument(path + ": token width " + std::to_string(token_bytes) + " bytes, expected 2 or 4");
  }
  const uint64_t count = get_le(p + 16, 8);
  const uint64_t payload = bytes.size() - kTokenFileHeaderBytes;
  // subtle: compare by division, not count * token_bytes, which a corrupt count could overflow.
  if (payload % token_bytes != 0 || payload / token_bytes != count) {
    throw std::invalid_argument(path + ": the header says " + std::to_string(count) + " tokens of " +
                                std::to_string(token_bytes) + " bytes but the file holds " + std::to_string(payload) +
                                " bytes after the header (truncated or damaged)");
  }
  std::vector<int> ids(count);
  const unsigned char* q = p + kTokenFileHeaderBytes;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t id = get_le(q + i * token_bytes, static_cast<int>(token_bytes));
    if (id > 0x7fffffffULL) {
      throw std::invalid_argument(path + ": token " + std::to_string(i) + " has id " + std::to_string(id) +
                                  ", too large to be a token id");
    }
    ids[i] = static_cast<int>(id);
  }
  return ids;
}

}  // namespace foundry
