#include "tokenizer/sentencepiece.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>
#include <stdexcept>

#include "common/file_io.h"

namespace foundry {

namespace {

constexpr int kByteFallbackOffset = 3;  // <0x00> is id 3, <0xFF> is id 258

// "<0x41>" for byte 0x41: the spelling of a byte-fallback piece.
std::string byte_piece(int byte) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", byte);
  return buf;
}

// If `piece` is a byte-fallback piece "<0xXX>", its byte value; otherwise -1.
int parse_byte_piece(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; i++) {
    char c = piece[i];
    int digit = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

template <typename T>
void append_le(std::string& out, T value) {
  // The file is little-endian and so is every machine we build for (x86-64, arm64).
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));
  out.append(buf, sizeof(T));
}

}  // namespace

Llama2cTokenizer::Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                                   uint32_t max_token_length)
    : pieces_(std::move(pieces)), scores_(std::move(scores)), max_token_length_(max_token_length) {
  if (pieces_.size() != scores_.size()) {
    throw std::invalid_argument("llama2c tokenizer: " + std::to_string(pieces_.size()) + " pieces but " +
                                std::to_string(scores_.size()) + " scores");
  }
  // subtle: byte fallback computes ids as byte + 3, so those ids must really be the bytes.
  if (pieces_.size() < 256 + kByteFallbackOffset) {
    throw std::invalid_argument("llama2c tokenizer: " + std::to_string(pieces_.size()) +
                                " pieces, expected at least 259 (<unk>, <s>, </s> and the 256 byte pieces)");
  }
  for (int byte = 0; byte < 256; byte++) {
    const std::string& p = pieces_[byte + kByteFallbackOffset];
    if (parse_byte_piece(p) != byte) {
      throw std::invalid_argument("llama2c tokenizer: piece " + std::to_string(byte + kByteFallbackOffset) + " is '" +
                                  p + "', expected the byte-fallback piece " + byte_piece(byte));
    }
  }
  ids_.reserve(pieces_.size());
  for (int id = 0; id < static_cast<int>(pieces_.size()); id++) ids_.emplace(pieces_[id], id);  // keeps the first
}

int Llama2cTokenizer::lookup(const std::string& s) const {
  auto it = ids_.find(s);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& Llama2cTokenizer::piece(int id) const {
  if (id < 0 || id >= vocab_size()) {
    throw std::invalid_argument("llama2c tokenizer: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(vocab_size()) + ")");
  }
  return pieces_[id];
}

float Llama2cTokenizer::score(int id) const {
  piece(id);  // range check
  return scores_[id];
}

std::vector<int> Llama2cTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  if (text.empty()) return ids;
  // Step 1, the dummy prefix: a leading space, so a word at the start looks like a word
  // mid-sentence. subtle: it is a symbol of its own, never glued to a stray continuation byte
  // at the start of the text.
  int space = lookup(" ");
  ids.push_back(space >= 0 ? space : ' ' + kByteFallbackOffset);

  // Step 2: one id per UTF-8 character, or one byte-fallback id per byte of an unknown one.
  // A character is a lead byte plus the continuation bytes (10xxxxxx) after it, at most 4 bytes.
  for (size_t i = 0; i < text.size();) {
    size_t end = i + 1;
    while (end < text.size() && end - i < 4 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) end++;
    int id = lookup(text.substr(i, end - i));
    if (id >= 0) {
      ids.push_back(id);
    } else {
      for (size_t b = i; b < end; b++) ids.push_back(static_cast<unsigned char>(text[b]) + kByteFallbackOffset);
    }
    i = end;
  }

  // Step 3: merge the best-scoring adjacent pair until no pair forms a piece. Scanning all pairs
  // after every merge (run.c's loop) costs O(n²) for n characters; instead the symbols form a
  // linked list and candidate pairs wait in a max-heap ordered by (score, then leftmost). A
  // heap entry goes stale when either of its symbols has been merged since; we skip those.
  struct Symbol {
    int id;
    int prev, next;  // neighbours in the list, -1 at the ends
  };
  struct Candidate {
    float score;
    int left, right;        // symbol positions
    int left_id, right_id;  // the ids they held when the candidate was made
    int merged_id;
  };
  auto lower_priority = [](const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);  // ties: leftmost first
  };
  std::vector<Symbol> symbols(ids.size());
  for (int i = 0; i < static_cast<int>(ids.size()); i++) {
    symbols[i] = {ids[i], i - 1, i + 1 < static_cast<int>(ids.size()) ? i + 1 : -1};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(lower_priority)> heap(lower_priority);
  auto push_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    int merged = lookup(pieces_[symbols[left].id] + pieces_[symbols[right].id]);
    // run.c starts its search from a best score of −1e10, so worse pieces never merge.
    if (merged >= 0 && scores_[merged] > -1e10f) {
      heap.push({scores_[merged], left, right, symbols[left].id, symbols[right].id, merged});
    }
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); i++) push_pair(i, i + 1);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    // subtle: a merged-away symbol gets id -1, and a surviving one a new id, so comparing both
    // ids and the link catches every stale candidate.
    if (left.id != c.left_id || right.id != c.right_id || left.next != c.right) continue;
    left.id = c.merged_id;  // the left symbol becomes the merged piece
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.id = -1;
    push_pair(left.prev, c.left);
    push_pair(c.left, left.next);
  }

  std::vector<int> out;
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  return out;
}

std::string Llama2cTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); i++) {
    const std::string& p = piece(ids[i]);
    int byte = parse_byte_piece(p);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));  // <0xXX> stands for the raw byte
    } else if (i > 0 && ids[i - 1] == bos_id() && !p.empty() && p[0] == ' ') {
      out.append(p, 1, std::string::npos);  // the dummy prefix added at encode time
    } else {
      out += p;
    }
  }
  return out;
}

std::string Llama2cTokenizer::serialize() const {
  std::string out;
  append_le<uint32_t>(out, max_token_length_);
  for (size_t i = 0; i < pieces_.size(); i++) {
    append_le<float>(out, scores_[i]);
    append_le<int32_t>(out, static_cast<int32_t>(pieces_[i].size()));
    out += pieces_[i];
  }
  return out;
}

void Llama2cTokenizer::save_to_dir(const std::string& dir) const {
  // Atomic: write tokenizer.bin.tmp, fsync, then rename over tokenizer.bin.
  std::string path = dir + "/tokenizer.bin";
  write_file_atomic(path, serialize());
}

std::unique_ptr<Llama2cTokenizer> parse_llama2c_tokenizer(const std::string& bytes, const std::string& where) {
  size_t offset = 0;
  auto read = [&](void* dst, size_t n, const std::string& what) {
    if (bytes.size() - offset < n) {
      throw std::invalid_argument(where + ": truncated llama2.c tokenizer: " + what + " at byte " +
                                  std::to_string(offset) + " needs " + std::to_string(n) + " bytes, only " +
                                  std::to_string(bytes.size() - offset) + " left");
    }
    std::memcpy(dst, bytes.data() + offset, n);
    offset += n;
  };
  uint32_t max_token_length = 0;
  read(&max_token_length, 4, "max_token_length");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (offset < bytes.size()) {
    std::string what = "piece " + std::to_string(pieces.size());
    float score;
    int32_t length;
    read(&score, 4, what + " score");
    read(&length, 4, what + " length");
    if (length < 0) {
      throw std::invalid_argument(where + ": " + what + " has length " + std::to_string(length) + ", expected >= 0");
    }
    // subtle: the length is a claim until the bytes are there; checked before it sizes anything,
    // so a 15-byte file that promises a 2 GB piece is refused without allocating it.
    if (static_cast<size_t>(length) > bytes.size() - offset) {
      throw std::invalid_argument(where + ": truncated llama2.c tokenizer: " + what + " has length " +
                                  std::to_string(length) + " but only " + std::to_string(bytes.size() - offset) +
                                  " bytes are left");
    }
    std::string piece(static_cast<size_t>(length), '\0');
    read(&piece[0], static_cast<size_t>(length), what + " bytes");
    pieces.push_back(std::move(piece));
    scores.push_back(score);
  }
  try {
    return std::make_unique<Llama2cTokenizer>(std::move(pieces), std::move(scores), max_token_length);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path) {
  return parse_llama2c_tokenizer(read_file(path, "llama2.c tokenizer file"), path);
}

}  // namespace foundry
