// The SentencePiece-style tokenizer of llama2.c models (Karpathy's tokenizer.bin format).
//
// A vocabulary of pieces, each a byte string with a merge score. Encoding works like
// llama2.c's run.c:
//
//   1. non-empty text gets a leading space (SentencePiece's "dummy prefix"), so "Once" and the
//      "Once" in "... Once" both start with the piece " Once";
//   2. the text is cut into UTF-8 characters; each character that is a piece becomes that id,
//      any other becomes its bytes as byte-fallback tokens <0xXX> (id = byte + 3);
//   3. repeatedly, of all adjacent pairs whose concatenated strings form a piece, merge the one
//      whose piece has the highest score (the leftmost such pair on a tie), until none is left.
//
//   worked example with pieces " a"(-1) "ab"(-5) " ab"(-2) and text "ab":
//     " " "a" "b"  →  " a" "b"  (" a" scores −1, best)  →  " ab"  (the only pair left)
//
// Decoding maps ids to their pieces, <0xXX> pieces to the raw byte, and drops the leading
// space of a piece that directly follows BOS (the dummy prefix added at encode time), as run.c
// does. So decode(encode(text)) is " " + text for non-empty text, and decode({BOS} + encode(text))
// is text. Ids: 0 <unk>, 1 BOS <s>, 2 EOS </s>, 3..258 the bytes <0x00>..<0xFF>.
//
// File layout (little-endian): uint32 max_token_length, then per piece a float32 score, an
// int32 byte length and the bytes. The vocabulary size is not stored: pieces run to the end.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace foundry {

class Llama2cTokenizer : public Tokenizer {
 public:
  // Throws std::invalid_argument when ids 3..258 are not the byte pieces <0x00>..<0xFF>.
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores, uint32_t max_token_length);

  std::vector<int> encode(const std::string& text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  int bos_id() const override { return 1; }
  int eos_id() const override { return 2; }
  std::string kind() const override { return "llama2c"; }
  // Writes dir/tokenizer.bin, byte for byte the layout it was read from.
  void save_to_dir(const std::string& dir) const override;

  const std::string& piece(int id) const;  // throws on an id outside the vocabulary
  float score(int id) const;
  // The tokenizer.bin bytes.
  std::string serialize() const;

 private:
  int lookup(const std::string& s) const;  // id of the piece spelled s, or -1
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  uint32_t max_token_length_;
  std::unordered_map<std::string, int> ids_;  // piece -> id (the lowest id if spelled twice)
};

// Parses tokenizer.bin bytes; `where` (the file name) starts every error message.
std::unique_ptr<Llama2cTokenizer> parse_llama2c_tokenizer(const std::string& bytes, const std::string& where);
// Reads a llama2.c tokenizer.bin. Throws naming the file and the problem (unreadable, truncated
// piece, negative length, missing byte-fallback pieces).
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path);

}  // namespace foundry
