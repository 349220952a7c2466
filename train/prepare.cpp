#include "train/prepare.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/file_io.h"
#include "train/token_file.h"

namespace foundry {

// ANCHOR: split_and_tokenize
PreparedData split_and_tokenize(const std::string& text, const Tokenizer& tokenizer, const std::string& separator,
                                double val_fraction) {
  if (!(val_fraction > 0 && val_fraction < 1)) {
    throw std::invalid_argument("val_fraction = " + std::to_string(val_fraction) + ": must be in (0, 1)");
  }
  PreparedData data;
  // Documents: each runs up to and including its separator; a tail after the last one is a
  // document too (a corpus cut mid-story ends with one).
  std::vector<std::string> docs;
  if (!separator.empty()) {
    size_t begin = 0;
    for (size_t at = text.find(separator); at != std::string::npos; at = text.find(separator, begin)) {
      docs.push_back(text.substr(begin, at + separator.size() - begin));
      begin = at + separator.size();
    }
    if (begin < text.size() && !docs.empty()) docs.push_back(text.substr(begin));
  }
  if (docs.size() >= 2) {
    const long n = static_cast<long>(docs.size());
    const long n_val = std::min(n - 1, std::max(1L, std::lround(val_fraction * n)));
    for (long d = 0; d < n; ++d) {
      const std::vector<int> ids = tokenizer.encode(docs[d]);
      std::vector<int>& split = d < n - n_val ? data.train : data.val;
      split.insert(split.end(), ids.begin(), ids.end());
    }
    data.documents = n;
    data.val_documents = n_val;
  } else {
    // No documents to keep whole: cut the token stream itself.
    std::vector<int> ids = tokenizer.encode(text);
    const size_t n_train = static_cast<size_t>(std::floor(ids.size() * (1.0 - val_fraction)));
    data.train.assign(ids.begin(), ids.begin() + n_train);
    data.val.assign(ids.begin() + n_train, ids.end());
    data.documents = 1;
  }
  return data;
}
// ANCHOR_END: split_and_tokenize

PreparedData prepare_data(const std::vector<std::string>& inputs, const Tokenizer& tokenizer,
                          const std::string& separator, double val_fraction, const std::string& out_dir) {
  if (inputs.empty()) throw std::invalid_argument("prepare: no input files");
  std::string text;
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::invalid_argument(path + ": cannot open the input file");
    text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (text.empty()) throw std::invalid_argument("prepare: the input is empty");
  PreparedData data = split_and_tokenize(text, tokenizer, separator, val_fraction);
  if (data.train.empty() || data.val.empty()) {
    throw std::invalid_argument("prepare: the corpus is too small to give both a training and a validation split");
  }
  namespace fs = std::filesystem;
  fs::create_directories(out_dir);
  save_tokens((fs::path(out_dir) / "train.bin").string(), data.train, tokenizer.vocab_size());
  save_tokens((fs::path(out_dir) / "val.bin").string(), data.val, tokenizer.vocab_size());
  tokenizer.save_to_dir(out_dir);
  nlohmann::json info = {{"inputs", inputs},
                         {"bytes", text.size()},
                         {"separator", separator},
                         {"val_fraction", val_fraction},
                         {"tokenizer", tokenizer.kind()},
                         {"vocab_size", tokenizer.vocab_size()},
                         {"documents", data.documents},
                         {"val_documents", data.val_documents},
                         {"train_tokens", data.train.size()},
                         {"val_tokens", data.val.size()}};
  write_file_atomic((fs::path(out_dir) / "prepare.json").string(), info.dump(2) + "\n");
  return data;
}

}  // namespace foundry
