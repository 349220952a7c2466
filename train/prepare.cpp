#include "train/prepare.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
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
    data.separators = static_cast<long>(docs.size());
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
                          const std::string& separator, double val_fraction, const std::string& out_dir,
                          const std::string& tokenizer_source) {
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
  // prepare.json goes last and vouches for the files before it: an old one must not survive a
  // preparation that stops halfway, or it would describe token files of another tokenizer.
  const std::string info_path = (fs::path(out_dir) / "prepare.json").string();
  std::error_code ec;
  fs::remove(info_path, ec);
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
                         {"val_tokens", data.val.size()},
                         {"tokenizer_source", tokenizer_source},
                         {"tokenizer_fingerprint", tokenizer_fingerprint(out_dir)}};
  write_file_atomic(info_path, info.dump(2) + "\n");
  return data;
}

std::optional<PrepareInfo> read_prepare_info(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string path = (fs::path(dir) / "prepare.json").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(path + ": cannot open");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object())
    throw std::invalid_argument(path + ": not a JSON object (expected the prepare.json of `foundry prepare`)");
  if (!j.contains("vocab_size") || !j["vocab_size"].is_number_integer() || j["vocab_size"].get<long>() <= 0) {
    throw std::invalid_argument(path + ": field 'vocab_size' is missing or not a positive integer");
  }
  auto text = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  PrepareInfo info;
  info.path = path;
  info.vocab_size = j["vocab_size"].get<int>();
  info.tokenizer_kind = text("tokenizer");
  info.tokenizer_source = text("tokenizer_source");
  info.fingerprint = text("tokenizer_fingerprint");
  info.separator = text("separator");
  return info;
}

std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  // FNV-1a: not a cryptographic hash, only a cheap way to tell two files apart.
  uint64_t h = 14695981039346656037ull;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ull;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + hex;
}

std::string tokenizer_fingerprint(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* name : {"tokenizer.json", "tokenizer.bin"}) {
    const fs::path path = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return file_fingerprint(path.string());
  }
  return "";
}

void check_model_tokenizer_vocab(int model_vocab, const std::string& model_where, int tokenizer_vocab,
                                 const std::string& tokenizer_where) {
  if (model_vocab == tokenizer_vocab) return;
  std::string why = model_vocab > tokenizer_vocab
                        ? "the extra " + std::to_string(model_vocab - tokenizer_vocab) +
                              " rows would never be trained and could be sampled as ids the tokenizer cannot decode"
                        : "the tokenizer's ids from " + std::to_string(model_vocab) + " up have no row in the model";
  throw std::invalid_argument(
      "vocabulary mismatch: " + model_where + " has vocab_size " + std::to_string(model_vocab) + " but the tokenizer " +
      tokenizer_where + " has " + std::to_string(tokenizer_vocab) + " tokens (" + why +
      "); make them equal, e.g. --set model.vocab_size=" + std::to_string(tokenizer_vocab) + " when training");
}

void check_token_data(const std::string& data_dir, const std::string& token_file, int model_vocab,
                      const std::string& model_where, const std::string& tokenizer_dir) {
  std::optional<PrepareInfo> info = read_prepare_info(data_dir);
  if (!info) return;
  const std::string made_by = token_file + " was made with a " + std::to_string(info->vocab_size) + "-token " +
                              (info->tokenizer_kind.empty() ? "" : info->tokenizer_kind + " ") + "tokenizer" +
                              (info->tokenizer_source.empty() ? "" : " (" + info->tokenizer_source + ")") + ", says " +
                              info->path;
  if (info->vocab_size != model_vocab) {
    throw std::invalid_argument("vocabulary mismatch: " + made_by + ", but " + model_where + " has vocab_size " +
                                std::to_string(model_vocab) +
                                "; use a model (or config) whose vocab_size matches, or prepare the data again "
                                "with the model's tokenizer");
  }
  if (tokenizer_dir.empty() || info->fingerprint.empty()) return;
  const std::string theirs = tokenizer_fingerprint(tokenizer_dir);
  if (!theirs.empty() && theirs != info->fingerprint) {
    throw std::invalid_argument("tokenizer mismatch: " + made_by + " (fingerprint " + info->fingerprint +
                                "), but the tokenizer in " + tokenizer_dir + " is a different one (fingerprint " +
                                theirs +
                                ") with the same vocabulary size; its ids mean other text. Prepare the "
                                "data again with --tokenizer " +
                                tokenizer_dir);
  }
}

}  // namespace foundry
