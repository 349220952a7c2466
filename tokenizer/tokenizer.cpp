// load_tokenizer: picks the tokenizer family from the file (or model directory) it is given.
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tokenizer/bpe.h"

// The llama2.c family (tokenizer.bin) lives in tokenizer/sentencepiece.{h,cpp}; until that file
// exists, .bin files get a clear error instead of a link error.
#if __has_include("tokenizer/sentencepiece.h")
#include "tokenizer/sentencepiece.h"
#define FOUNDRY_HAVE_LLAMA2C_TOKENIZER 1
#endif

namespace foundry {

namespace {

std::unique_ptr<Tokenizer> load_bin(const std::string& path) {
#ifdef FOUNDRY_HAVE_LLAMA2C_TOKENIZER
  return load_llama2c_tokenizer(path);
#else
  throw std::runtime_error(path + ": llama2.c tokenizer support not built (tokenizer/sentencepiece.h is missing)");
#endif
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error(path + ": no such file or directory (expected a tokenizer)");
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) return load_tokenizer((dir / "tokenizer.json").string());
    if (fs::exists(dir / "tokenizer.bin", ec)) return load_tokenizer((dir / "tokenizer.bin").string());
    if (fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec))
      return std::make_unique<BpeTokenizer>(
          BpeTokenizer::load_gpt2((dir / "vocab.json").string(), (dir / "merges.txt").string()));
    throw std::runtime_error(path + ": directory holds no tokenizer.json, tokenizer.bin or vocab.json + merges.txt");
  }
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".bin") return load_bin(path);
  if (ext == ".json") return std::make_unique<BpeTokenizer>(BpeTokenizer::load_json(path));
  // Unknown extension: a JSON file starts with '{' (after blanks).
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (unreadable)");
  char c = 0;
  while (in.get(c) && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
  }
  if (c == '{') return std::make_unique<BpeTokenizer>(BpeTokenizer::load_json(path));
  return load_bin(path);
}

}  // namespace foundry
