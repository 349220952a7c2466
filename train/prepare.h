// Data preparation: a text corpus and a tokenizer in, two token files out.
//
//   <out>/train.bin      the training split (token file, see token_file.h)
//   <out>/val.bin        the validation split
//   <out>/tokenizer.json the tokenizer used (so training can store it with the model)
//   <out>/prepare.json   what was done: inputs, separator, fraction, counts
//
// The validation split is held out: the model never trains on it, so its loss measures how
// well the model does on text it has not memorized. How it is cut:
//   with a separator (e.g. "<|endoftext|>") that occurs in the text: the text is cut into
//     documents, each ending with its separator; the LAST round(val_fraction · documents)
//     documents (at least one, and at least one left for training) form the validation split.
//     Whole documents on each side: no story is half in training and half in validation.
//   otherwise: the whole text is tokenized and the last val_fraction of the tokens is validation.
// Either way train then val, decoded and concatenated, give back the original text.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace foundry {

struct PreparedData {
  std::vector<int> train;  // token ids of the training split
  std::vector<int> val;    // token ids of the validation split
  long documents = 0;      // documents found (1 when there is no separator)
  long val_documents = 0;  // of which in the validation split (0 when split by tokens)
};

PreparedData split_and_tokenize(const std::string& text, const Tokenizer& tokenizer, const std::string& separator,
                                double val_fraction);

// Reads the input files (concatenated in order), splits, writes the four files above.
PreparedData prepare_data(const std::vector<std::string>& inputs, const Tokenizer& tokenizer,
                          const std::string& separator, double val_fraction, const std::string& out_dir);

}  // namespace foundry
