// Token files: the output of `foundry prepare` and the input of `foundry train`.
//
// A token file is a 24-byte header followed by the token ids, little-endian:
//
//   offset  size  field
//        0     8  magic        the bytes "FNDRYTOK"
//        8     4  version      uint32, currently 1
//       12     4  token_bytes  uint32, 2 (uint16 ids, vocabulary <= 65536) or 4 (uint32 ids)
//       16     8  count        uint64, number of tokens that follow
//       24     .  ids          count × token_bytes bytes, nothing after them
//
// The header lets the loader refuse a file that is not a token file, was written by a future
// version, or was cut short (the file size must be exactly 24 + count · token_bytes). A file of
// two-byte ids is half the size of one of four-byte ids, which matters for large corpora.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace foundry {

constexpr char kTokenFileMagic[8] = {'F', 'N', 'D', 'R', 'Y', 'T', 'O', 'K'};
constexpr uint32_t kTokenFileVersion = 1;
constexpr size_t kTokenFileHeaderBytes = 24;

// Writes `ids` atomically with the smallest token width that holds `vocab_size` ids. Throws
// std::invalid_argument when an id is negative or >= vocab_size.
void save_tokens(const std::string& path, const std::vector<int>& ids, int vocab_size);

// Reads and validates a token file. Throws std::invalid_argument whose message starts with
// `path` and says what is wrong: a bad magic, an unknown version or token width, or a size that
// disagrees with the header's count.
std::vector<int> load_tokens(const std::string& path);

}  // namespace foundry
