// Byte-level BPE: encoding by merge rank, decoding, the vocabulary listing. Training is in
// bpe_train.cpp, the file formats in bpe_io.cpp.
#include "tokenizer/bpe.h"

#include <climits>
#include <functional>
#include <queue>
#include <stdexcept>

#include "tokenizer/unicode.h"

namespace foundry {

namespace {

inline uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

struct BpeTokenizer::EncodeCache {
  std::unordered_map<std::string, std::vector<int>> ids;  // pre-token bytes -> its ids
  std::string key;                                        // reused lookup buffer
};

BpeTokenizer::BpeTokenizer(std::vector<std::string> vocab, std::vector<BpeMerge> merges, std::vector<int> special_ids)
    : vocab_(std::move(vocab)), merges_(std::move(merges)), special_ids_(std::move(special_ids)) {
  const int V = static_cast<int>(vocab_.size());
  std::vector<bool> is_special(V, false);
  std::vector<std::string> special_texts;
  for (int id : special_ids_) {
    if (id < 0 || id >= V)
      throw std::invalid_argument("BPE vocabulary: special token id " + std::to_string(id) + " is outside 0.." +
                                  std::to_string(V - 1));
    if (vocab_[id].empty())
      throw std::invalid_argument("BPE vocabulary: special token " + std::to_string(id) + " is empty");
    is_special[id] = true;
    special_texts.push_back(vocab_[id]);
    if (vocab_[id] == "<|endoftext|>") eos_id_ = id;
  }
  specials_ = SpecialMatcher(special_texts);
  for (int& b : byte_to_id_) b = -1;
  for (int id = 0; id < V; ++id) {
    if (vocab_[id].size() == 1 && !is_special[id]) {
      const uint8_t b = static_cast<uint8_t>(vocab_[id][0]);
      if (byte_to_id_[b] < 0) byte_to_id_[b] = id;
    }
  }
  for (int b = 0; b < 256; ++b) {
    if (byte_to_id_[b] < 0)
      throw std::invalid_argument("BPE vocabulary: byte 0x" + std::string(1, "0123456789abcdef"[b >> 4]) +
                                  "0123456789abcdef"[b & 15] + " has no token (a byte-level vocabulary needs all 256)");
  }
  merge_rank_.reserve(merges_.size() * 2);
  for (size_t rank = 0; rank < merges_.size(); ++rank) {
    const BpeMerge& m = merges_[rank];
    if (m.left < 0 || m.left >= V || m.right < 0 || m.right >= V || m.result < 0 || m.result >= V)
      throw std::invalid_argument("BPE merge " + std::to_string(rank) + ": an id is outside the vocabulary");
    if (vocab_[m.left] + vocab_[m.right] != vocab_[m.result])
      throw std::invalid_argument("BPE merge " + std::to_string(rank) + ": token " + std::to_string(m.result) +
                                  " is not the concatenation of " + std::to_string(m.left) + " and " +
                                  std::to_string(m.right));
    // subtle: if a pair appeared twice, the first (lowest) rank is the one GPT-2 applies.
    merge_rank_.emplace(pair_key(m.left, m.right),
                        (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(m.result));
  }
}

const std::string& BpeTokenizer::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                std::to_string(vocab_size() - 1) + ")");
  return vocab_[id];
}

int BpeTokenizer::special_id(const std::string& text) const {
  for (int id : special_ids_)
    if (vocab_[id] == text) return id;
  return -1;
}

// ANCHOR: encode_piece
void BpeTokenizer::encode_piece_uncached(std::string_view piece, std::vector<int>& out) const {
  // Start from single bytes, e.g. " the" -> [" ", "t", "h", "e"].
  std::vector<int> symbols(piece.size());
  for (size_t k = 0; k < piece.size(); ++k) symbols[k] = byte_to_id_[static_cast<uint8_t>(piece[k])];
  while (symbols.size() >= 2) {
    // The adjacent pair whose merge was learned first (lowest rank) goes first.
    uint64_t best = UINT64_MAX;
    for (size_t k = 0; k + 1 < symbols.size(); ++k) {
      auto it = merge_rank_.find(pair_key(symbols[k], symbols[k + 1]));
      if (it != merge_rank_.end() && it->second < best) best = it->second;
    }
    if (best == UINT64_MAX) break;  // no pair left that has a merge
    const BpeMerge& m = merges_[best >> 32];
    // Replace every occurrence, left to right ("a a a" with merge a+a -> "aa a").
    size_t w = 0;
    for (size_t k = 0; k < symbols.size(); ++k) {
      if (k + 1 < symbols.size() && symbols[k] == m.left && symbols[k + 1] == m.right) {
        symbols[w++] = m.result;
        ++k;
      } else {
        symbols[w++] = symbols[k];
      }
    }
    symbols.resize(w);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
}
// ANCHOR_END: encode_piece

// The loop above rescans the whole piece after every merge: O(n^2) for a piece of n bytes, which
// is nothing for a word but minutes for a megabyte without a space (one pre-token). Long pieces
// take this route instead, which gives the same ids in O(n log n): the symbols form a linked
// list, and every adjacent pair that has a merge waits in a min-heap ordered by (rank, position).
// A round takes all waiting pairs of the lowest rank (always the same merge) and applies them
// left to right, skipping those an earlier one in the round used up ("a a a" -> "aa a"), exactly
// as the loop's rewrite does; the pairs a round creates wait for later rounds, as in the loop.
std::vector<int> BpeTokenizer::encode_piece_heap(std::string_view piece) const {
  struct Symbol {
    int id;          // -1 once merged into its left neighbour
    int prev, next;  // neighbours in the list, -1 at the ends
  };
  struct Pair {
    uint64_t rank_result;   // merge_rank_'s value: rank << 32 | result
    int left, right;        // symbol positions
    int left_id, right_id;  // what they held when the pair was made: a changed one makes it stale
    bool operator>(const Pair& o) const {
      return rank_result != o.rank_result ? rank_result > o.rank_result : left > o.left;
    }
  };
  const int n = static_cast<int>(piece.size());
  std::vector<Symbol> symbols(n);
  for (int k = 0; k < n; ++k) symbols[k] = {byte_to_id_[static_cast<uint8_t>(piece[k])], k - 1, k + 1 < n ? k + 1 : -1};
  std::priority_queue<Pair, std::vector<Pair>, std::greater<Pair>> heap;
  auto push = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    auto it = merge_rank_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it != merge_rank_.end()) heap.push({it->second, left, right, symbols[left].id, symbols[right].id});
  };
  for (int k = 0; k + 1 < n; ++k) push(k, k + 1);
  std::vector<Pair> round;
  while (!heap.empty()) {
    const uint64_t rank = heap.top().rank_result;
    round.clear();
    while (!heap.empty() && heap.top().rank_result == rank) {
      round.push_back(heap.top());
      heap.pop();
    }
    for (const Pair& p : round) {  // ascending position: left to right
      Symbol& left = symbols[p.left];
      Symbol& right = symbols[p.right];
      if (left.id != p.left_id || right.id != p.right_id || left.next != p.right) continue;  // used up
      left.id = static_cast<int>(static_cast<uint32_t>(rank));
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = p.left;
      right.id = -1;
      push(left.prev, p.left);
      push(p.left, left.next);
    }
  }
  std::vector<int> out;
  for (int k = n > 0 ? 0 : -1; k >= 0; k = symbols[k].next) out.push_back(symbols[k].id);
  return out;
}

std::vector<int> BpeTokenizer::merge_piece(std::string_view piece, MergeMethod method) const {
  if (method == MergeMethod::kHeap) return encode_piece_heap(piece);
  std::vector<int> out;
  encode_piece_uncached(piece, out);
  return out;
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int>& out, EncodeCache& cache) const {
  // Text repeats its words: " the" is encoded once per call, then looked up.
  cache.key.assign(piece.data(), piece.size());
  auto it = cache.ids.find(cache.key);
  if (it != cache.ids.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  const size_t before = out.size();
  if (piece.size() <= kLongPieceBytes) {
    encode_piece_uncached(piece, out);
  } else {
    const std::vector<int> ids = encode_piece_heap(piece);
    out.insert(out.end(), ids.begin(), ids.end());
  }
  // Bounded: a huge input of unique pieces must not grow the cache without limit.
  if (cache.ids.size() > (size_t(1) << 18)) cache.ids.clear();
  cache.ids.emplace(cache.key, std::vector<int>(out.begin() + before, out.end()));
}

std::vector<int> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int> out;
  out.reserve(text.size() / 3 + 1);
  EncodeCache cache;
  split_and_pretokenize(text, specials_, [&](std::string_view piece, int special) {
    if (special >= 0) {
      out.push_back(special_ids_[special]);
    } else {
      encode_piece(piece, out, cache);
    }
  });
  return out;
}

std::vector<int> BpeTokenizer::encode_ordinary(const std::string& text) const {
  std::vector<int> out;
  out.reserve(text.size() / 3 + 1);
  EncodeCache cache;
  const SpecialMatcher none;  // nothing to cut out: every byte goes through pre-tokenization
  split_and_pretokenize(text, none, [&](std::string_view piece, int) { encode_piece(piece, out, cache); });
  return out;
}

size_t BpeTokenizer::encode_stream(std::istream& in, const std::function<void(const std::vector<int>&)>& sink,
                                   size_t block_bytes) const {
  std::vector<int> batch;
  EncodeCache cache;
  const size_t flush_at = size_t(1) << 16;
  size_t bytes = split_and_pretokenize_stream(
      in, specials_,
      [&](std::string_view piece, int special) {
        if (special >= 0) {
          batch.push_back(special_ids_[special]);
        } else {
          encode_piece(piece, batch, cache);
        }
        if (batch.size() >= flush_at) {
          sink(batch);
          batch.clear();
        }
      },
      block_bytes);
  if (!batch.empty()) sink(batch);
  return bytes;
}

std::string BpeTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int id = ids[k];
    if (id < 0 || id >= vocab_size())
      throw std::invalid_argument("decode: id " + std::to_string(id) + " at position " + std::to_string(k) +
                                  " is outside the vocabulary (0.." + std::to_string(vocab_size() - 1) + ")");
    out += vocab_[id];
  }
  return out;
}

std::string BpeTokenizer::decode_text(const std::vector<int>& ids) const { return utf8_replace_invalid(decode(ids)); }

std::string escape_bytes(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char b = static_cast<unsigned char>(bytes[i]);
    if (b >= 0x80) {
      Utf8Char c = decode_utf8(bytes.data() + i, bytes.size() - i);
      if (c.cp != kInvalidCodepoint) {
        out.append(bytes.data() + i, c.len);
      } else {
        for (int k = 0; k < c.len; ++k) {
          const unsigned char x = static_cast<unsigned char>(bytes[i + k]);
          out += "\\x";
          out += hex[x >> 4];
          out += hex[x & 15];
        }
      }
      i += c.len;
      continue;
    }
    if (b == '\n') out += "\\n";
    else if (b == '\t') out += "\\t";
    else if (b == '\r') out += "\\r";
    else if (b == '\\') out += "\\\\";
    else if (b == '"') out += "\\\"";
    else if (b < 0x20 || b == 0x7F) {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    } else {
      out += static_cast<char>(b);
    }
    ++i;
  }
  return out;
}

std::string BpeTokenizer::vocab_listing() const {
  std::vector<int> parent_left(vocab_.size(), -1), parent_right(vocab_.size(), -1);
  for (const BpeMerge& m : merges_) {
    if (parent_left[m.result] < 0) {
      parent_left[m.result] = m.left;
      parent_right[m.result] = m.right;
    }
  }
  std::vector<bool> is_special(vocab_.size(), false);
  for (int id : special_ids_) is_special[id] = true;
  std::string out;
  out += "# BPE vocabulary: " + std::to_string(vocab_.size()) + " tokens, " + std::to_string(merges_.size()) +
         " merges, " + std::to_string(special_ids_.size()) + " special.\n";
  out += "# id  \"bytes\" (escaped)  [= left + right, for a merge]\n";
  for (size_t id = 0; id < vocab_.size(); ++id) {
    out += std::to_string(id) + "\t\"" + escape_bytes(vocab_[id]) + "\"";
    if (is_special[id]) {
      out += "\tspecial";
    } else if (parent_left[id] >= 0) {
      out += "\t= " + std::to_string(parent_left[id]) + " \"" + escape_bytes(vocab_[parent_left[id]]) + "\" + " +
             std::to_string(parent_right[id]) + " \"" + escape_bytes(vocab_[parent_right[id]]) + "\"";
    }
    out += '\n';
  }
  return out;
}

}  // namespace foundry
