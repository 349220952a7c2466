// The interface every tokenizer family offers to the rest of the project.
//
// Two families live in tokenizer/: byte-level BPE (GPT-2 style, what `foundry tokenizer train`
// makes, stored as Hugging Face's tokenizer.json) and the SentencePiece-style vocabulary of
// llama2.c models (merges chosen by score, byte-fallback tokens, stored as tokenizer.bin).
// Training and generation only need what is below.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace foundry {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text (any bytes) to ids. Adds no BOS/EOS; special tokens written in the text are matched.
  virtual std::vector<int> encode(const std::string& text) const = 0;
  // Ids to the exact bytes they stand for (may cut a UTF-8 character). Throws
  // std::invalid_argument naming the id when one is outside the vocabulary.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
  // Beginning-of-sequence and end-of-text ids, or -1 when the vocabulary has none.
  virtual int bos_id() const { return -1; }
  virtual int eos_id() const { return -1; }
  // "bpe" or "llama2c", for messages.
  virtual std::string kind() const = 0;
  // Writes the tokenizer into a model directory in its native file format (atomically).
  virtual void save_to_dir(const std::string& dir) const = 0;
};

// Loads a tokenizer from a file (tokenizer.json, or a llama2.c tokenizer.bin) or from a model
// directory holding one. Throws with a message naming the file and the problem.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace foundry
