// Data preparation: a text corpus and a tokenizer in, two token files out.
//
//   <out>/train.bin      the training split (token file, see token_file.h)
//   <out>/val.bin        the validation split
//   <out>/tokenizer.json the tokenizer used (so training can store it with the model)
//   <out>/prepare.json   what was done: inputs, separator, fraction, counts, and which
//                        tokenizer made the tokens (its source path, vocabulary size and a
//                        fingerprint of its file), so train and eval can refuse a model or a
//                        tokenizer that reads these ids differently (PrepareInfo below)
//
// The validation split is held out: the model never trains on it, so its loss measures how
// well the model does on text it has not memorized. How it is cut:
//   with a separator (e.g. "<|endoftext|>") that occurs in the text: the text is cut into
//     documents, each ending with its separator; the LAST round(val_fraction · documents)
//     documents (at least one, and at least one left for training) form the validation split.
//     Whole documents on each side: no story is half in training and half in validation.
//   otherwise: the whole text is tokenized and the last val_fraction of the tokens is validation.
//     A separator that never occurs is reported (PreparedData::separator_found = false; the
//     `foundry prepare` command warns) and this rule applies.
// Either way train then val, decoded and concatenated, give back the original text.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace foundry {

struct PreparedData {
  std::vector<int> train;  // token ids of the training split
  std::vector<int> val;    // token ids of the validation split
  long documents = 0;      // documents found (1 when there is no separator)
  long val_documents = 0;  // of which in the validation split (0 when split by tokens)
  long separators = 0;     // occurrences of the separator in the text (0 without one)
};

PreparedData split_and_tokenize(const std::string& text, const Tokenizer& tokenizer, const std::string& separator,
                                double val_fraction);

// Reads the input files (concatenated in order), splits, writes the four files above.
// `tokenizer_source` (the path the tokenizer was loaded from) is recorded in prepare.json.
PreparedData prepare_data(const std::vector<std::string>& inputs, const Tokenizer& tokenizer,
                          const std::string& separator, double val_fraction, const std::string& out_dir,
                          const std::string& tokenizer_source = "");

// ---- which tokenizer made a token file ----------------------------------------------------------
//
// A token file holds bare ids: nothing in it says which tokenizer they belong to, and a model
// trained on ids of one tokenizer reads another's as nonsense without any error. prepare.json
// (beside train.bin and val.bin) records it, and these checks compare it at start-up.

struct PrepareInfo {
  std::string path;              // the prepare.json read
  std::string tokenizer_source;  // the --tokenizer path given to `foundry prepare` ("" if unknown)
  std::string tokenizer_kind;    // Tokenizer::kind()
  int vocab_size = 0;            // the tokenizer's vocabulary: every id is below it
  std::string fingerprint;       // tokenizer_fingerprint() of the tokenizer ("" in older files)
  std::string separator;
};

// The prepare.json in `dir` (the directory holding the token files), or nothing when there is
// none (token files made some other way). Throws std::invalid_argument naming the file when it
// exists but is not a valid prepare.json.
std::optional<PrepareInfo> read_prepare_info(const std::string& dir);

// A short fingerprint of a file: "fnv1a64:" and 16 hex digits of the file's bytes. Throws
// std::runtime_error naming the path when it cannot be read.
std::string file_fingerprint(const std::string& path);

// The fingerprint of the tokenizer file a directory holds (tokenizer.json or
// tokenizer.bin, as Tokenizer::save_to_dir writes it): "fnv1a64:" and 16 hex digits of the file's
// bytes. Two tokenizers with the same vocabulary size but different merges or pieces get
// different fingerprints. "" when the directory holds neither file.
std::string tokenizer_fingerprint(const std::string& dir);

// The start-up checks, each throwing std::invalid_argument that names both numbers (or both
// fingerprints) and the files involved:
//
// The model's vocabulary must equal its tokenizer's: a larger model never trains the extra
// rows and can sample ids the tokenizer cannot decode; a smaller one cannot read every id.
// `model_where` names the model's side ("runs/x/best/config.json", "the config's model.vocab_size"),
// `tokenizer_where` the tokenizer's file.
void check_model_tokenizer_vocab(int model_vocab, const std::string& model_where, int tokenizer_vocab,
                                 const std::string& tokenizer_where);

// The token files in `data_dir` (when its prepare.json says which tokenizer made them) against a
// model's vocabulary, and, when `tokenizer_dir` is given and holds a tokenizer, against that
// tokenizer (vocabulary size and fingerprint). `token_file` is the file being used (for the
// message); without a prepare.json there is nothing to compare and nothing is checked.
void check_token_data(const std::string& data_dir, const std::string& token_file, int model_vocab,
                      const std::string& model_where, const std::string& tokenizer_dir = "");

}  // namespace foundry
