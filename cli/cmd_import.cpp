// foundry import llama2c --checkpoint X.bin --tokenizer tokenizer.bin --out DIR
//
// Converts a legacy llama2.c checkpoint (see model/llama2c.h for the layout) and its
// SentencePiece-style tokenizer into our model directory: config.json, model.safetensors and
// tokenizer.bin (the tokenizer file byte for byte).
#include <cstdio>
#include <cxxopts.hpp>

#include "cli/commands.h"
#include "model/llama2c.h"
#include "model/model_io.h"
#include "tokenizer/sentencepiece.h"
#include "train/checkpoint.h"

namespace foundry::cli {

int cmd_import(int argc, char** argv) {
  cxxopts::Options options("foundry import",
                           "Convert a model from another project's format into a foundry model directory.\n\n"
                           "  foundry import llama2c --checkpoint stories260K.bin --tokenizer tok512.bin --out DIR\n\n"
                           "llama2c: Karpathy's llama2.c legacy checkpoint (header of 7 int32, then float32 weights;\n"
                           "a negative vocab_size means an untied classifier) and its tokenizer.bin.");
  options.add_options()("format", "the source format: llama2c", cxxopts::value<std::string>())(
      "checkpoint", "the llama2.c .bin checkpoint", cxxopts::value<std::string>())(
      "tokenizer", "the llama2.c tokenizer.bin matching it", cxxopts::value<std::string>())(
      "out", "model directory to write (created if needed)", cxxopts::value<std::string>())("h,help", "show this help");
  options.parse_positional({"format"});
  options.positional_help("llama2c");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("format") || args["format"].as<std::string>() != "llama2c") {
    std::fprintf(stderr, "foundry import: the only format is 'llama2c' (foundry import llama2c --help)\n");
    return 2;
  }
  for (const char* required : {"checkpoint", "tokenizer", "out"}) {
    if (!args.count(required)) {
      std::fprintf(stderr, "foundry import llama2c: --%s is required (see --help)\n", required);
      return 2;
    }
  }
  std::string checkpoint = args["checkpoint"].as<std::string>();
  std::string tokenizer_path = args["tokenizer"].as<std::string>();
  std::string out = args["out"].as<std::string>();

  Model model = load_llama2c_checkpoint(checkpoint);
  std::unique_ptr<Tokenizer> tokenizer = load_llama2c_tokenizer(tokenizer_path);
  if (tokenizer->vocab_size() != model.config.vocab_size) {
    throw std::invalid_argument(tokenizer_path + ": " + std::to_string(tokenizer->vocab_size()) + " pieces, but " +
                                checkpoint + " has vocab_size " + std::to_string(model.config.vocab_size));
  }
  save_model_with_tokenizer(model, out, tokenizer.get());
  const ModelConfig& c = model.config;
  std::printf(
      "imported %s: dim %d, %d layers, %d heads (%d kv heads), hidden %d, vocab %d, context %d, %s "
      "embeddings, %zu parameters\n-> %s (config.json, model.safetensors, tokenizer.bin)\n",
      checkpoint.c_str(), c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, c.max_seq_len,
      c.tie_embeddings ? "tied" : "untied", model.num_parameters(), out.c_str());
  return 0;
}

}  // namespace foundry::cli
