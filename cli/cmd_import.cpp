// foundry import llama2c --checkpoint X.bin --tokenizer tokenizer.bin --out DIR
// foundry import gguf FILE.gguf --out DIR
//
// Converts a legacy llama2.c checkpoint (see model/llama2c.h for the layout) and its
// SentencePiece-style tokenizer into our model directory: config.json, model.safetensors and
// tokenizer.bin (the tokenizer file byte for byte). Or reads a GGUF file of llama.cpp's `llama`
// architecture (infer/gguf_convert.h) into the same kind of directory.
#include <cstdio>
#include <cxxopts.hpp>

#include "cli/commands.h"
#include "common/gguf.h"
#include "infer/gguf_convert.h"
#include "model/llama2c.h"
#include "model/model_io.h"
#include "tokenizer/sentencepiece.h"
#include "train/checkpoint.h"

namespace foundry::cli {

namespace {

int import_gguf_command(const cxxopts::ParseResult& args) {
  if (!args.count("file") || !args.count("out")) {
    std::fprintf(stderr, "foundry import gguf: usage: foundry import gguf FILE.gguf --out DIR (see --help)\n");
    return 2;
  }
  const std::string path = args["file"].as<std::string>(), out = args["out"].as<std::string>();
  GgufImport imported = import_gguf(read_gguf(path), path);
  save_model_with_tokenizer(imported.model, out, imported.tokenizer.get());
  for (const std::string& note : imported.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  const ModelConfig& c = imported.model.config;
  std::printf(
      "imported %s: dim %d, %d layers, %d heads (%d kv heads), hidden %d, vocab %d, context %d, %s "
      "embeddings, %s tokenizer, %zu parameters\n-> %s\n",
      path.c_str(), c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, c.max_seq_len,
      c.tie_embeddings ? "tied" : "untied", imported.tokenizer->kind().c_str(), imported.model.num_parameters(),
      out.c_str());
  return 0;
}

}  // namespace

int cmd_import(int argc, char** argv) {
  cxxopts::Options options(
      "foundry import",
      "Convert a model from another project's format into a foundry model directory.\n\n"
      "  foundry import llama2c --checkpoint stories260K.bin --tokenizer tok512.bin --out DIR\n"
      "  foundry import gguf model.gguf --out DIR\n\n"
      "llama2c: Karpathy's llama2.c legacy checkpoint (header of 7 int32, then float32 weights;\n"
      "a negative vocab_size means an untied classifier) and its tokenizer.bin.\n"
      "gguf: a llama.cpp GGUF file of the llama architecture with F32, F16, Q8_0 or Q4_0 tensors (read as\n"
      "float32) and a gpt2 (byte-level BPE) or llama (SentencePiece) tokenizer; `foundry model-info --gguf\n"
      "FILE` shows what a file holds.");
  options.add_options()("format", "the source format: llama2c or gguf", cxxopts::value<std::string>())(
      "file", "gguf: the .gguf file to read", cxxopts::value<std::string>())(
      "checkpoint", "the llama2.c .bin checkpoint", cxxopts::value<std::string>())(
      "tokenizer", "the llama2.c tokenizer.bin matching it", cxxopts::value<std::string>())(
      "out", "model directory to write (created if needed)", cxxopts::value<std::string>())("h,help", "show this help");
  options.parse_positional({"format", "file"});
  options.positional_help("llama2c | gguf FILE");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  const std::string format = args.count("format") ? args["format"].as<std::string>() : "";
  if (format == "gguf") return import_gguf_command(args);
  if (format != "llama2c") {
    std::fprintf(stderr, "foundry import: the format is 'llama2c' or 'gguf' (foundry import --help)\n");
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
