// foundry export gguf --model DIR --out FILE.gguf [--type f32|f16|q8_0|q4_0] [--name NAME]
//
// Writes a model directory (weights and tokenizer) as one GGUF file that llama.cpp, and the
// tools built on it, load as a `llama` model (infer/gguf_convert.h says what goes where).
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/gguf.h"
#include "infer/gguf_convert.h"
#include "model/model_io.h"
#include "tokenizer/tokenizer.h"

namespace foundry::cli {

int cmd_export(int argc, char** argv) {
  cxxopts::Options options(
      "foundry export",
      "Write a model directory in another project's format.\n\n"
      "  foundry export gguf --model runs/quickstart/train/model --out tiny.gguf\n"
      "  foundry export gguf --model DIR --out model-q8.gguf --type q8_0\n\n"
      "gguf: one GGUF v3 file for llama.cpp's llama architecture: the hyperparameters, every weight, and the\n"
      "tokenizer (byte-level BPE as llama.cpp's gpt2 tokenizer, a llama2.c vocabulary as its llama tokenizer).\n"
      "--type picks the matrices' type; norm gains stay f32. The file is written atomically.");
  options.add_options()("format", "the target format: gguf", cxxopts::value<std::string>())(
      "model", "model directory (config.json, model.safetensors, tokenizer)", cxxopts::value<std::string>())(
      "out", "the .gguf file to write", cxxopts::value<std::string>())(
      "type", "weight type: f32, f16, q8_0 or q4_0", cxxopts::value<std::string>()->default_value("f32"))(
      "name", "general.name in the file (default: the model directory's name)", cxxopts::value<std::string>())(
      "h,help", "show this help");
  options.parse_positional({"format"});
  options.positional_help("gguf");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("format") || args["format"].as<std::string>() != "gguf")
    throw UsageError("the only export format is 'gguf' (foundry export gguf --help)");
  for (const char* required : {"model", "out"})
    if (!args.count(required)) throw UsageError(std::string("--") + required + " is required (see --help)");
  GgufWeightType type;
  try {
    type = parse_gguf_weight_type(args["type"].as<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--type: ") + e.what());
  }
  const std::string dir = args["model"].as<std::string>(), out = args["out"].as<std::string>();
  check_model_dir(dir);
  Model model = load_model(dir);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
  std::string name = args.count("name") ? args["name"].as<std::string>()
                                        : std::filesystem::path(dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = std::filesystem::absolute(dir).lexically_normal().filename().string();
  export_gguf(model, *tokenizer, name, type, out);
  GgufFile written = read_gguf(out);  // read back: what we wrote must be what a reader accepts
  std::printf("exported %s (%s tokenizer, %zu parameters) -> %s: GGUF v%u, %zu metadata keys, %zu tensors, %zu bytes\n",
              dir.c_str(), tokenizer->kind().c_str(), model.num_parameters(), out.c_str(), written.version,
              written.metadata.size(), written.tensors.size(), written.bytes.size());
  return 0;
}

}  // namespace foundry::cli
