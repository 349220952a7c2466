// foundry tokenizer train | encode | decode | info
//
//   foundry tokenizer train --input a.txt b.txt --vocab-size 8192 --special "<|endoftext|>"
//                           --out tokenizer.json [--vocab-listing vocab.txt]
//   foundry tokenizer encode --tokenizer tokenizer.json --text "Once upon a time"
//   foundry tokenizer encode --tokenizer tokenizer.json --file story.txt        (streamed)
//   foundry tokenizer decode --tokenizer tokenizer.json --ids "7454 2402 257 640"
//   foundry tokenizer info   --tokenizer tokenizer.json
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/file_io.h"
#include "tokenizer/bpe.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/tokenizer.h"

namespace foundry::cli {

namespace {

// cxxopts takes one value per option occurrence; "--input a b c" (several values after one
// flag) is rewritten to "--input a --input b --input c" for the options that allow it.
std::vector<std::string> expand_multi(int argc, char** argv, const std::vector<std::string>& multi) {
  std::vector<std::string> out;
  std::string current;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0 || (a.size() == 2 && a[0] == '-')) {
      current.clear();
      for (const std::string& m : multi)
        if (a == m) current = m;
      out.push_back(a);
      continue;
    }
    // subtle: the first value right after the flag is the flag's own value.
    if (!current.empty() && i > 0 && std::string(argv[i - 1]) != current) out.push_back(current);
    out.push_back(a);
  }
  return out;
}

cxxopts::ParseResult parse(cxxopts::Options& options, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  try {
    return options.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const cxxopts::exceptions::parsing&) {
    throw;  // main() names the option and the value, with exit status 2
  } catch (const cxxopts::exceptions::exception& e) {
    throw std::invalid_argument(std::string(e.what()) + " (see --help)");
  }
}

std::vector<std::string> args_of(int argc, char** argv) { return std::vector<std::string>(argv, argv + argc); }

int train(int argc, char** argv) {
  cxxopts::Options options(
      "foundry tokenizer train",
      "Train a byte-level BPE tokenizer (GPT-2 style) and save it as a Hugging Face tokenizer.json.\n"
      "Ids: 0-255 are the bytes, then the merges in the order they were made, then the special tokens.");
  options.add_options()("input", "training text file(s): --input a.txt b.txt",
                        cxxopts::value<std::vector<std::string>>())(
      "vocab-size", "vocabulary size, counting the 256 bytes, the merges and the special tokens",
      cxxopts::value<int>())("special", "special token(s), kept whole and never merged: --special \"<|endoftext|>\"",
                             cxxopts::value<std::vector<std::string>>())(
      "out", "output tokenizer.json, or a directory to write tokenizer.json into (created if missing)",
      cxxopts::value<std::string>()->default_value("tokenizer.json"))(
      "vocab-listing", "also write a human-readable vocabulary listing to this file", cxxopts::value<std::string>())(
      "quiet", "no progress line")("h,help", "show this help");
  auto args = parse(options, expand_multi(argc, argv, {"--input", "--special"}));
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("input") || !args.count("vocab-size")) {
    std::fprintf(stderr, "%s\nfoundry tokenizer train: --input and --vocab-size are required\n",
                 options.help().c_str());
    return 2;
  }
  BpeTrainOptions train_options;
  train_options.vocab_size = args["vocab-size"].as<int>();
  if (train_options.vocab_size < 256)
    throw UsageError("--vocab-size " + std::to_string(train_options.vocab_size) +
                     ": must be at least 256 (the 256 bytes), plus one per special token");
  if (args.count("special")) train_options.special_tokens = args["special"].as<std::vector<std::string>>();
  train_options.progress = !args.count("quiet");
  const std::vector<std::string> inputs = args["input"].as<std::vector<std::string>>();
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (std::filesystem::is_directory(input, ec))
      throw std::invalid_argument(input + ": is a directory; --input expects text files");
  }
  const auto start = std::chrono::steady_clock::now();
  BpeTokenizer tok = train_bpe_files(inputs, train_options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::string out = args["out"].as<std::string>();
  std::error_code ec;
  // A name ending in .json is the file to write; anything else is a directory to write
  // tokenizer.json into. Missing parent folders are created, as a user would expect.
  const std::filesystem::path out_path(out);
  if (out_path.extension() != ".json" || std::filesystem::is_directory(out_path, ec)) {
    tok.save_to_dir(out);
    out = (out_path / "tokenizer.json").string();
  } else {
    if (out_path.has_parent_path()) std::filesystem::create_directories(out_path.parent_path(), ec);
    tok.save_json(out);
  }
  std::fprintf(stderr, "trained %d tokens (%zu merges, %zu special) in %.2f s; wrote %s\n", tok.vocab_size(),
               tok.merges().size(), tok.special_ids().size(), seconds, out.c_str());
  const int wanted = train_options.vocab_size;
  if (tok.vocab_size() < wanted)
    std::fprintf(stderr, "note: the corpus ran out of pairs to merge; the vocabulary has %d tokens, not %d\n",
                 tok.vocab_size(), wanted);
  if (args.count("vocab-listing")) {
    const std::string path = args["vocab-listing"].as<std::string>();
    write_file_atomic(path, tok.vocab_listing());
    std::fprintf(stderr, "wrote %s\n", path.c_str());
  }
  return 0;
}

int encode(int argc, char** argv) {
  cxxopts::Options options("foundry tokenizer encode", "Encode text to token ids (printed separated by spaces).");
  options.add_options()("tokenizer", "tokenizer.json, tokenizer.bin or a model directory",
                        cxxopts::value<std::string>())("text", "the text to encode", cxxopts::value<std::string>())(
      "file", "encode this file instead (streamed in bounded memory; - for stdin)", cxxopts::value<std::string>())(
      "tokens", "print one token per line: id and its bytes, escaped")("h,help", "show this help");
  auto args = parse(options, args_of(argc, argv));
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("tokenizer") || args.count("text") + args.count("file") != 1) {
    std::fprintf(stderr, "%s\nfoundry tokenizer encode: give --tokenizer and exactly one of --text or --file\n",
                 options.help().c_str());
    return 2;
  }
  std::unique_ptr<Tokenizer> tok = load_tokenizer(args["tokenizer"].as<std::string>());
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(tok.get());
  const bool show_tokens = args.count("tokens") > 0;
  size_t count = 0;
  auto print = [&](const std::vector<int>& ids) {
    for (int id : ids) {
      if (show_tokens) {
        std::printf("%d\t\"%s\"\n", id, escape_bytes(tok->decode({id})).c_str());
      } else {
        std::printf(count ? " %d" : "%d", id);
      }
      ++count;
    }
  };
  size_t bytes = 0;
  if (args.count("text")) {
    const std::string text = args["text"].as<std::string>();
    print(tok->encode(text));
    bytes = text.size();
  } else {
    const std::string path = args["file"].as<std::string>();
    std::ifstream file;
    std::istream* in = &std::cin;
    if (path != "-") {
      file.open(path, std::ios::binary);
      if (!file) throw std::runtime_error(path + ": cannot open (missing or unreadable)");
      in = &file;
    }
    if (bpe) {
      bytes = bpe->encode_stream(*in, print);
    } else {
      std::ostringstream ss;
      ss << in->rdbuf();
      print(tok->encode(ss.str()));
      bytes = ss.str().size();
    }
  }
  if (!show_tokens) std::printf("\n");
  std::fprintf(stderr, "%zu bytes -> %zu tokens (%.2f bytes/token)\n", bytes, count,
               count ? static_cast<double>(bytes) / count : 0.0);
  return 0;
}

std::vector<int> parse_ids(const std::string& text, const std::string& origin) {
  std::vector<int> ids;
  std::string word;
  std::istringstream in(text);
  while (in >> word) {
    // Accept "1 2 3", "1,2,3" and "[1, 2, 3]".
    for (char& c : word)
      if (c == ',' || c == '[' || c == ']') c = ' ';
    std::istringstream parts(word);
    std::string part;
    while (parts >> part) {
      size_t used = 0;
      long value = 0;
      try {
        value = std::stol(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      // From the command line a bad id is a usage error (exit 2); from a file, bad data (exit 1).
      if (used != part.size() || value < 0 || value > INT32_MAX) {
        const std::string why = origin + ": \"" + part + "\" is not a token id (expected integers >= 0)";
        if (origin.rfind("--", 0) == 0) throw UsageError(why);
        throw std::invalid_argument(why);
      }
      ids.push_back(static_cast<int>(value));
    }
  }
  return ids;
}

int decode(int argc, char** argv) {
  cxxopts::Options options(
      "foundry tokenizer decode",
      "Decode token ids to text. Bytes that are not valid UTF-8 (a cut character) show as U+FFFD.");
  options.add_options()("tokenizer", "tokenizer.json, tokenizer.bin or a model directory",
                        cxxopts::value<std::string>())("ids", "the ids, separated by spaces or commas",
                                                       cxxopts::value<std::string>())(
      "file", "read the ids from this file instead (- for stdin)", cxxopts::value<std::string>())(
      "bytes", "write the exact bytes instead of text (no U+FFFD replacement)")("h,help", "show this help");
  auto args = parse(options, args_of(argc, argv));
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("tokenizer") || args.count("ids") + args.count("file") != 1) {
    std::fprintf(stderr, "%s\nfoundry tokenizer decode: give --tokenizer and exactly one of --ids or --file\n",
                 options.help().c_str());
    return 2;
  }
  std::unique_ptr<Tokenizer> tok = load_tokenizer(args["tokenizer"].as<std::string>());
  std::vector<int> ids;
  if (args.count("ids")) {
    ids = parse_ids(args["ids"].as<std::string>(), "--ids");
  } else {
    const std::string path = args["file"].as<std::string>();
    std::ostringstream ss;
    if (path == "-") {
      ss << std::cin.rdbuf();
    } else {
      std::ifstream f(path, std::ios::binary);
      if (!f) throw std::runtime_error(path + ": cannot open (missing or unreadable)");
      ss << f.rdbuf();
    }
    ids = parse_ids(ss.str(), path);
  }
  std::string bytes = tok->decode(ids);
  if (!args.count("bytes")) {
    const auto* bpe = dynamic_cast<const BpeTokenizer*>(tok.get());
    bytes = bpe ? bpe->decode_text(ids) : bytes;
  }
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  // The exact bytes go to a pipe or file; on a terminal a final newline keeps the prompt off the text.
  if (isatty(fileno(stdout)) && (bytes.empty() || bytes.back() != '\n')) std::fputc('\n', stdout);
  return 0;
}

int info(int argc, char** argv) {
  cxxopts::Options options("foundry tokenizer info",
                           "Summarize a tokenizer: family, sizes, special tokens, first merges.");
  options.add_options()("tokenizer", "tokenizer.json, tokenizer.bin or a model directory",
                        cxxopts::value<std::string>())("merges", "how many of the first merges to show",
                                                       cxxopts::value<int>()->default_value("10"))("h,help",
                                                                                                   "show this help");
  auto args = parse(options, args_of(argc, argv));
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("tokenizer")) {
    std::fprintf(stderr, "%s\nfoundry tokenizer info: --tokenizer is required\n", options.help().c_str());
    return 2;
  }
  const std::string path = args["tokenizer"].as<std::string>();
  std::unique_ptr<Tokenizer> tok = load_tokenizer(path);
  std::printf("tokenizer:  %s\nfamily:     %s\nvocab size: %d\nbos id:     %d\neos id:     %d\n", path.c_str(),
              tok->kind().c_str(), tok->vocab_size(), tok->bos_id(), tok->eos_id());
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(tok.get());
  if (!bpe) return 0;
  std::printf("merges:     %zu\nspecial:   ", bpe->merges().size());
  if (bpe->special_ids().empty()) std::printf(" (none)");
  for (int id : bpe->special_ids()) std::printf(" %d=\"%s\"", id, escape_bytes(bpe->vocab()[id]).c_str());
  size_t longest = 0;
  for (int id = 0; id < bpe->vocab_size(); ++id)
    if (bpe->vocab()[id].size() > bpe->vocab()[longest].size() && bpe->special_id(bpe->vocab()[id]) < 0) longest = id;
  std::printf("\nlongest:    %zu = \"%s\" (%zu bytes)\n", longest, escape_bytes(bpe->vocab()[longest]).c_str(),
              bpe->vocab()[longest].size());
  const int show = std::min<int>(args["merges"].as<int>(), static_cast<int>(bpe->merges().size()));
  if (show > 0) std::printf("first merges (rank: left + right -> result):\n");
  for (int r = 0; r < show; ++r) {
    const BpeMerge& m = bpe->merges()[r];
    std::printf("  %d: \"%s\" + \"%s\" -> %d \"%s\"\n", r, escape_bytes(bpe->vocab()[m.left]).c_str(),
                escape_bytes(bpe->vocab()[m.right]).c_str(), m.result, escape_bytes(bpe->vocab()[m.result]).c_str());
  }
  return 0;
}

void print_usage() {
  std::printf(
      "usage: foundry tokenizer <train|encode|decode|info> [options]   (each has --help)\n\n"
      "  train   train a byte-level BPE tokenizer on text files, save it as tokenizer.json\n"
      "  encode  text or a file -> token ids\n"
      "  decode  token ids -> text\n"
      "  info    summarize a tokenizer (tokenizer.json, tokenizer.bin, or GPT-2's vocab.json + merges.txt dir)\n");
}

}  // namespace

int cmd_tokenizer(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string sub = argv[1];
  if (sub == "train") return train(argc - 1, argv + 1);
  if (sub == "encode") return encode(argc - 1, argv + 1);
  if (sub == "decode") return decode(argc - 1, argv + 1);
  if (sub == "info") return info(argc - 1, argv + 1);
  std::fprintf(stderr, "foundry tokenizer: unknown subcommand '%s'\n", sub.c_str());
  print_usage();
  return 2;
}

}  // namespace foundry::cli
