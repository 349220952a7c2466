// Byte-level BPE (GPT-2 style): the tokenizer `foundry tokenizer train` makes.
//
// A vocabulary is a list of byte strings. In a tokenizer we trained, ids 0..255 are the 256
// single bytes, then come the merges in the order training made them (id 256 + k is merge k),
// then the special tokens. A merge (left, right) -> result says "the two adjacent tokens left
// and right may be replaced by result, whose bytes are their concatenation"; its rank is its
// position in the merge list, and lower ranks are applied first.
//
// Encoding (GPT-2 semantics): cut out special tokens, pre-tokenize the rest (pretokenize.h),
// spell each pre-token as single-byte tokens, then repeatedly merge the adjacent pair of lowest
// rank until no pair has a merge. Because every byte has a token, any byte string encodes:
// there is no "unknown" token. Decoding concatenates the tokens' bytes.
//
// Files: Hugging Face's tokenizer.json (our native format, bpe_io.cpp) and GPT-2's
// vocab.json + merges.txt. A loaded vocabulary need not put the bytes at ids 0..255 (GPT-2 does
// not), so the class keeps an explicit byte -> id table.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace foundry {

struct BpeMerge {
  int left, right;  // the two parent ids, in order
  int result;       // the id of their concatenation
};

class BpeTokenizer : public Tokenizer {
 public:
  // vocab[id] = the bytes of token id. merges in rank order. special_ids: the ids whose vocab
  // entry is a special token's text (matched whole in encode, never merged). Every single byte
  // must have an id. Throws std::invalid_argument on an inconsistent vocabulary.
  BpeTokenizer(std::vector<std::string> vocab, std::vector<BpeMerge> merges, std::vector<int> special_ids);

  // Safe to call from several threads at once: the pre-token cache belongs to the call.
  std::vector<int> encode(const std::string& text) const override;
  // The same with no special tokens matched: "<|endoftext|>" in the text is 13 bytes of ordinary
  // text. For text that did not come from us (a chat message), where a token's name must not
  // become the control token.
  std::vector<int> encode_ordinary(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const override;
  int vocab_size() const override { return static_cast<int>(vocab_.size()); }
  int eos_id() const override { return eos_id_; }
  std::string kind() const override { return "bpe"; }
  // Writes dir/tokenizer.json (Hugging Face format), atomically; creates dir if needed.
  void save_to_dir(const std::string& dir) const override;

  // Decoded bytes as text, with U+FFFD where the bytes are not valid UTF-8 (an id sequence
  // may end in the middle of a character). Never throws for valid ids.
  std::string decode_text(const std::vector<int>& ids) const;
  // Encodes a stream of any size in bounded memory, handing the ids to `sink` in order, in
  // batches. The ids are exactly encode(whole stream). Returns the number of bytes read.
  size_t encode_stream(std::istream& in, const std::function<void(const std::vector<int>&)>& sink,
                       size_t block_bytes = size_t(1) << 20) const;

  const std::vector<std::string>& vocab() const { return vocab_; }
  const std::vector<BpeMerge>& merges() const { return merges_; }
  const std::vector<int>& special_ids() const { return special_ids_; }
  const std::string& token_bytes(int id) const;  // throws on an unknown id
  // The id of a special token's text, or -1.
  int special_id(const std::string& text) const;
  int byte_id(uint8_t b) const { return byte_to_id_[b]; }

  // The ids of one pre-token. kRounds is the textbook loop (rescan after every merge, O(n^2)),
  // kHeap the O(n log n) twin encode() uses for pieces longer than kLongPieceBytes; both give the
  // same ids, which the tests check on GPT-2's merges.
  enum class MergeMethod { kRounds, kHeap };
  std::vector<int> merge_piece(std::string_view piece, MergeMethod method) const;
  static constexpr size_t kLongPieceBytes = 64;

  // Hugging Face tokenizer.json (see bpe_io.cpp).
  std::string to_hf_json() const;
  void save_json(const std::string& path) const;  // atomic
  static BpeTokenizer from_hf_json(const std::string& json_text, const std::string& origin);
  static BpeTokenizer load_json(const std::string& path);
  // OpenAI's GPT-2 files; "<|endoftext|>" becomes the special token.
  static BpeTokenizer load_gpt2(const std::string& vocab_json_path, const std::string& merges_txt_path);
  // For learners: one line per token with its bytes escaped and, for merges, its two parents.
  std::string vocab_listing() const;

 private:
  struct EncodeCache;  // pre-token -> ids, for one encode call
  void encode_piece(std::string_view piece, std::vector<int>& out, EncodeCache& cache) const;
  void encode_piece_uncached(std::string_view piece, std::vector<int>& out) const;
  std::vector<int> encode_piece_heap(std::string_view piece) const;

  std::vector<std::string> vocab_;  // (V) id -> bytes
  std::vector<BpeMerge> merges_;    // in rank order
  std::vector<int> special_ids_;
  int byte_to_id_[256];
  // (left << 32 | right) -> (rank << 32 | result): one lookup per adjacent pair while encoding.
  std::unordered_map<uint64_t, uint64_t> merge_rank_;
  SpecialMatcher specials_;  // over the special tokens' texts, in special_ids_ order
  int eos_id_ = -1;
};

// GPT-2's byte-level spelling, the form tokens take in tokenizer.json and in GGUF's "gpt2"
// vocabularies: every byte becomes one printable character (a space is 'Ġ', a newline 'Ċ').
// hf_to_bytes is the inverse and throws std::runtime_error, naming `what`, on a character that no
// byte is spelled as.
std::string bytes_to_hf(std::string_view bytes);
std::string hf_to_bytes(const std::string& text, const std::string& what);

// Escapes bytes for display: printable ASCII as is, \n \t \r \\ \" and \xNN for other control
// and invalid bytes; valid non-ASCII UTF-8 characters are shown as themselves.
std::string escape_bytes(std::string_view bytes);

}  // namespace foundry
