// Pre-tokenization: cutting text into the pieces that BPE merges never cross.
//
// GPT-2 cuts text with this regular expression (alternatives tried left to right):
//
//   's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
//
// so "Hello world's  2024!!\n" becomes "Hello" " world" "'s" " " " 2024" "!!" "\n".
// A space stays with the word after it, digits never join letters, punctuation runs stay
// together, and in a run of spaces the last one is left for the next word. Without this cut,
// BPE would spend vocabulary on tokens like "dog." "dog!" "dog?" that glue a word to whatever
// happens to follow it.
//
// std::regex cannot say \p{L} (Unicode letters), so the pattern is written out by hand below,
// with generated Unicode tables (tokenizer/unicode_tables.cpp).
//
// Special tokens (like "<|endoftext|>") are cut out of the text BEFORE pre-tokenization, so
// that they are never split and never merged with their neighbours.
#pragma once

#include <cstddef>
#include <functional>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace foundry {

// Appends the pre-tokens of `text` (which holds no special tokens) to `pieces`. The pieces are
// views into `text` and cover it exactly, in order.
void pretokenize(std::string_view text, std::vector<std::string_view>& pieces);

// Finds special tokens in text: leftmost first, and the longest one when several start at the
// same place (so "<|end|>" never hides "<|end|><|pad|>"-style longer tokens).
class SpecialMatcher {
 public:
  SpecialMatcher() = default;
  explicit SpecialMatcher(std::vector<std::string> tokens);
  bool empty() const { return tokens_.empty(); }
  const std::vector<std::string>& tokens() const { return tokens_; }  // in the order given
  size_t max_length() const { return max_length_; }
  // The first special token at or after `from`: its position (npos if none) and its index in
  // tokens(), through `which`.
  size_t find(std::string_view text, size_t from, int* which) const;
  // The start of the shortest suffix of `text` that is a proper prefix of some special token
  // (text.size() if none). A stream reader must not cut there: more bytes may complete it.
  size_t unfinished_suffix(std::string_view text) const;

 private:
  std::vector<std::string> tokens_;
  std::vector<int> by_length_;  // indices into tokens_, longest first
  bool starts_[256] = {};       // which bytes begin some special token
  size_t max_length_ = 0;
};

// One piece handed out by the splitters below: a pre-token (special == -1) or a special token
// (special = its index in the matcher's tokens()).
using PieceSink = std::function<void(std::string_view piece, int special)>;

// Splits text on special tokens and pre-tokenizes what lies between them.
void split_and_pretokenize(std::string_view text, const SpecialMatcher& specials, const PieceSink& sink);

// The same for a stream of any length, reading `block_bytes` at a time, so a large file is cut
// in bounded memory. The pieces are exactly those of split_and_pretokenize on the whole stream.
// Returns the number of bytes read.
size_t split_and_pretokenize_stream(std::istream& in, const SpecialMatcher& specials, const PieceSink& sink,
                                    size_t block_bytes = size_t(1) << 20);

}  // namespace foundry
