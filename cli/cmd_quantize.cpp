// foundry quantize --model DIR --type q8_0|q4_0 --out DIR2
//
// Writes a quantized copy of a model directory: the matrices as llama.cpp's Q8_0 or Q4_0 blocks
// (engine/quant.h; which tensors, and why, in model/quantize.h), stored as U8 tensors of
// model.safetensors (model/model_io.h), next to the same config.json and tokenizer. Every command
// that loads a model (generate, eval, model-info, serve) loads it as it is.
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <memory>
#include <system_error>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/file_io.h"
#include "model/model_io.h"
#include "model/quantize.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"

namespace foundry::cli {

namespace fs = std::filesystem;

int cmd_quantize(int argc, char** argv) {
  cxxopts::Options options(
      "foundry quantize",
      "Quantize a model's weights into llama.cpp's block formats and write a new model directory.\n\n"
      "  foundry quantize --model runs/tiny/model --type q8_0 --out runs/tiny/model-q8_0\n\n"
      "q8_0: blocks of 32 weights with one fp16 scale and 32 int8 values (8.5 bits per weight).\n"
      "q4_0: blocks of 32 weights with one fp16 scale and 32 4-bit values (4.5 bits per weight).\n"
      "The matrices are quantized (the embedding table too); the RMSNorm gains, and any matrix whose\n"
      "rows are not a multiple of 32, stay float32. --out must not exist yet; it is written under a\n"
      "temporary name and renamed when complete.");
  options.add_options()("model", "the float model directory to read", cxxopts::value<std::string>())(
      "type", "q8_0 or q4_0", cxxopts::value<std::string>())("out", "the model directory to write (must not exist)",
                                                             cxxopts::value<std::string>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  for (const char* required : {"model", "type", "out"}) {
    if (!args.count(required)) throw UsageError(std::string("--") + required + " is required (see --help)");
  }
  const std::string dir = args["model"].as<std::string>();
  const std::string out = args["out"].as<std::string>();
  QuantType type;
  try {
    type = parse_quant_type(args["type"].as<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--type: ") + e.what());
  }
  std::error_code ec;
  if (fs::exists(out, ec)) throw UsageError("--out " + out + " already exists; remove it or choose another directory");
  check_model_dir(dir);

  Model model = load_model(dir);
  if (!model.quantized.empty()) {
    throw std::invalid_argument(dir + ": the model is already quantized; quantize its float original instead");
  }
  // The tokenizer goes along when there is one (a model directory may also be used without).
  std::unique_ptr<Tokenizer> tokenizer;
  if (fs::exists(fs::path(dir) / "tokenizer.json", ec) || fs::exists(fs::path(dir) / "tokenizer.bin", ec)) {
    tokenizer = load_tokenizer(dir);
  }
  const size_t float_bytes = weight_bytes(model);
  const std::vector<std::string> kept = quantize_model(model, type);

  // Written complete under a temporary name, then renamed: a crash leaves no half directory at --out.
  const fs::path final_path = fs::path(out);
  const fs::path tmp = final_path.parent_path() / (final_path.filename().string() + ".tmp-quantize");
  fs::remove_all(tmp, ec);
  save_model_with_tokenizer(model, tmp.string(), tokenizer.get());
  // training.json tells `foundry eval` the context the model was trained with.
  if (fs::exists(fs::path(dir) / "training.json", ec)) {
    write_file_atomic((tmp / "training.json").string(), read_file((fs::path(dir) / "training.json").string()));
  }
  fs::rename(tmp, final_path, ec);
  if (ec) throw std::runtime_error(out + ": cannot rename " + tmp.string() + " into place: " + ec.message());

  std::printf("quantized %s to %s: %zu of %zu tensors as %s blocks, %zu kept float32", dir.c_str(),
              quant_type_name(type), model.entries.size() - kept.size(), model.entries.size(), quant_type_name(type),
              kept.size());
  std::string kept_matrices;
  for (const std::string& name : kept) {
    if (model.entries[model.index_of(name)].shape.size() == 2)
      kept_matrices += (kept_matrices.empty() ? "" : ", ") + name;
  }
  if (!kept_matrices.empty()) std::printf(" (matrices with rows that are not whole blocks: %s)", kept_matrices.c_str());
  std::printf("\nweights %.2f MiB -> %.2f MiB (%.2fx smaller)\n-> %s\n", float_bytes / 1048576.0,
              weight_bytes(model) / 1048576.0, double(float_bytes) / double(weight_bytes(model)), out.c_str());
  return 0;
}

}  // namespace foundry::cli
