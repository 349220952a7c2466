// foundry prepare --input FILE... --tokenizer PATH --out DIR [--separator S] [--val-fraction F]
#include <cstdio>
#include <cxxopts.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "tokenizer/tokenizer.h"
#include "train/prepare.h"

namespace foundry::cli {

int cmd_prepare(int argc, char** argv) {
  cxxopts::Options options(
      "foundry prepare",
      "Tokenize a text corpus into train.bin and val.bin token files for `foundry train`.\n"
      "With --separator, the corpus is cut into documents at each separator and the last\n"
      "documents go to validation; without one, the last fraction of the tokens does.\n"
      "A separator that never occurs in the input is reported and the split falls back to tokens.\n"
      "prepare.json records which tokenizer made the tokens; train and eval check it.");
  options.add_options()("input", "text file(s) to tokenize, concatenated in order (repeat or comma-separate)",
                        cxxopts::value<std::vector<std::string>>())(
      "tokenizer", "tokenizer.json (or a model directory holding one, or a llama2.c tokenizer.bin)",
      cxxopts::value<std::string>())("out", "output directory (created if needed)", cxxopts::value<std::string>())(
      "separator", "document separator, e.g. '<|endoftext|>' (default: none, split by tokens)",
      cxxopts::value<std::string>())("val-fraction", "share of documents (or tokens) held out for validation",
                                     cxxopts::value<double>()->default_value("0.1"))("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("input") || !args.count("tokenizer") || !args.count("out")) {
    std::fprintf(stderr, "foundry prepare: --input, --tokenizer and --out are required\n\n%s\n",
                 options.help().c_str());
    return 2;
  }
  const double val_fraction = args["val-fraction"].as<double>();
  if (!(val_fraction > 0 && val_fraction < 1))
    throw UsageError("--val-fraction " + std::to_string(val_fraction) + ": expected a share strictly between 0 and 1");
  const std::string tokenizer_path = args["tokenizer"].as<std::string>();
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(tokenizer_path);
  const std::string out = args["out"].as<std::string>();
  const std::string separator = args.count("separator") ? args["separator"].as<std::string>() : std::string();
  PreparedData data = prepare_data(args["input"].as<std::vector<std::string>>(), *tokenizer, separator,
                                   args["val-fraction"].as<double>(), out, tokenizer_path);
  if (!separator.empty() && data.val_documents == 0) {
    // Not an error: a corpus of one document is legitimate. But a misspelt separator would
    // otherwise go unnoticed, with stories cut in half between the splits.
    std::fprintf(stderr,
                 "foundry prepare: warning: the separator '%s' %s in the input; the split is by tokens instead "
                 "(the last %g of them are validation)\n",
                 separator.c_str(), data.separators == 0 ? "never occurs" : "occurs only once, ending the text,",
                 args["val-fraction"].as<double>());
  }
  std::printf("%s: %zu train tokens, %zu validation tokens", out.c_str(), data.train.size(), data.val.size());
  if (data.val_documents > 0) {
    std::printf(" (%ld documents, %ld held out)", data.documents, data.val_documents);
  }
  std::printf("; vocabulary %d (%s)\nwrote train.bin, val.bin, tokenizer and prepare.json\n", tokenizer->vocab_size(),
              tokenizer->kind().c_str());
  return 0;
}

}  // namespace foundry::cli
