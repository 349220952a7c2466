// foundry model-info --config FILE [--batch B] [--context T]
// foundry model-info --gguf FILE.gguf
//
// For the config.json of a quantized model directory (foundry quantize) it also loads the
// weights and says how they are stored.
//
// Prints the architecture, every parameter tensor with its shape and count, the total, and an
// estimate of the memory one training step needs (weights, gradients, AdamW state and the
// activations the autograd tape keeps at batch B and context T; see model/memory.h). Given a GGUF
// file, prints its header, every metadata key and every tensor (name, type, shape, offset, size).
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/gguf.h"
#include "engine/matmul.h"
#include "engine/matmul_bf16.h"
#include "infer/gguf_convert.h"
#include "model/config.h"
#include "model/memory.h"
#include "model/model.h"
#include "model/model_io.h"

namespace foundry::cli {

namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

// Reads an int field of the "training" section, naming the file and field on a wrong type.
bool training_int(const nlohmann::json& training, const char* key, const std::string& path, int& out) {
  if (!training.contains(key)) return false;
  const nlohmann::json& v = training.at(key);
  if (!v.is_number_integer() || v.get<long long>() <= 0) {
    throw std::invalid_argument(path + ": training." + key + " must be a positive integer, got " + v.dump());
  }
  out = v.get<int>();
  return true;
}

// The structure of a GGUF file, as a learner would lay it out by hand.
int gguf_info(const std::string& path, bool all_tensors) {
  GgufFile f = read_gguf(path);
  std::printf("[gguf] %s\n", path.c_str());
  std::printf("  version %u, %zu metadata keys, %zu tensors, alignment %llu, data section at byte %llu of %zu\n",
              f.version, f.metadata.size(), f.tensors.size(), (unsigned long long)f.alignment,
              (unsigned long long)f.data_offset, f.bytes.size());
  std::printf("\n[metadata]\n");
  for (const auto& [key, value] : f.metadata)
    std::printf("  %-42s %s\n", key.c_str(), gguf_value_summary(value).c_str());
  std::printf("\n[tensors] ne is fastest-first: a (rows, cols) matrix is listed as {cols, rows}\n");
  uint64_t total = 0;
  for (const GgufTensorInfo& t : f.tensors) total += t.elements();
  size_t shown = 0;
  for (const GgufTensorInfo& t : f.tensors) {
    const bool later_layer = t.name.rfind("blk.", 0) == 0 && t.name.rfind("blk.0.", 0) != 0;
    if (later_layer && !all_tensors) continue;
    std::string ne = "{";
    for (size_t d = 0; d < t.ne.size(); d++) ne += (d ? ", " : "") + std::to_string(t.ne[d]);
    ne += "}";
    std::printf("  %-28s %-5s %-14s offset %10llu  %10llu bytes\n", t.name.c_str(),
                ggml_type_name((uint32_t)t.type).c_str(), ne.c_str(), (unsigned long long)t.offset,
                (unsigned long long)t.bytes);
    shown++;
  }
  if (shown < f.tensors.size())
    std::printf("  (%zu more in blk.1 and up; --tensors lists them)\n", f.tensors.size() - shown);
  std::printf("  total %llu parameters\n", (unsigned long long)total);
  try {
    ModelConfig c = gguf_model_config(f, path);
    std::printf("\n[as a foundry model] dim %d, %d layers, %d heads (%d kv), hidden %d, vocab %d, context %d, %s\n",
                c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, c.max_seq_len,
                c.tie_embeddings ? "tied embeddings" : "untied embeddings");
  } catch (const std::invalid_argument& e) {
    std::printf("\n[as a foundry model] not importable: %s\n", e.what());
  }
  return 0;
}

}  // namespace

int cmd_model_info(int argc, char** argv) {
  cxxopts::Options options(
      "foundry model-info",
      "Print a model's architecture, the parameter count of every tensor and in total, and an estimate of the\n"
      "memory one training step needs (weights, gradients, AdamW moments, and the activations the autograd\n"
      "tape keeps at the given batch and context).\n\n"
      "  foundry model-info --config configs/tiny.json\n"
      "  foundry model-info --config runs/x/model/config.json --batch 8 --context 256\n"
      "  foundry model-info --gguf model.gguf      (a GGUF file's metadata and tensors)\n");
  options.add_options()("config", "a model config.json, or a training config with a \"model\" section",
                        cxxopts::value<std::string>())("gguf", "a GGUF file: show its metadata and tensors",
                                                       cxxopts::value<std::string>())(
      "batch", "batch size B for the activation estimate (default: the training section's batch_size, else 1)",
      cxxopts::value<int>())(
      "context", "context length T (default: the training section's seq_len, else the model's max_seq_len)",
      cxxopts::value<int>())("tensors", "list every tensor (default: one layer, the others are identical)")(
      "recompute", "estimate with activation recomputation (default: the training section's recompute, else off)")(
      "h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (args.count("gguf")) return gguf_info(args["gguf"].as<std::string>(), args.count("tensors") > 0);
  if (args.count("config")) {
    const std::string c = args["config"].as<std::string>();
    if (c.size() > 5 && c.compare(c.size() - 5, 5, ".gguf") == 0) return gguf_info(c, args.count("tensors") > 0);
  }
  if (!args.count("config")) {
    std::fprintf(stderr, "foundry model-info: --config FILE or --gguf FILE is required\n\n%s\n",
                 options.help().c_str());
    return 2;
  }
  const std::string path = args["config"].as<std::string>();

  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the config file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": not valid JSON: " + e.what());
  }
  // A training config holds the model in "model" and batch sizes in "training".
  bool is_training_config = j.is_object() && j.contains("model");
  ModelConfig c = is_training_config ? model_config_from_json(j.at("model"), path + " (\"model\" section)")
                                     : model_config_from_json(j, path);
  int B = 1, T = c.max_seq_len;
  std::string b_from = "default", t_from = "max_seq_len";
  if (is_training_config && j.contains("training") && j.at("training").is_object()) {
    if (training_int(j.at("training"), "batch_size", path, B)) b_from = "training.batch_size";
    if (training_int(j.at("training"), "seq_len", path, T)) t_from = "training.seq_len";
  }
  bool recompute = false;
  if (is_training_config && j.contains("training") && j.at("training").is_object() &&
      j.at("training").contains("recompute")) {
    const nlohmann::json& v = j.at("training").at("recompute");
    if (!v.is_boolean())
      throw std::invalid_argument(path + ": training.recompute must be true or false, got " + v.dump());
    recompute = v.get<bool>();
  }
  if (args.count("recompute")) recompute = true;
  if (args.count("batch")) B = args["batch"].as<int>(), b_from = "--batch";
  if (args.count("context")) T = args["context"].as<int>(), t_from = "--context";
  if (B <= 0) throw UsageError("--batch " + std::to_string(B) + ": must be a positive integer");
  if (T <= 0 || T > c.max_seq_len) {
    throw std::invalid_argument("context " + std::to_string(T) + " (from " + t_from +
                                "): must be in [1, max_seq_len = " + std::to_string(c.max_seq_len) + "]");
  }

  std::printf("[architecture]\n");
  std::printf("  dim (C)            %d\n", c.dim);
  std::printf("  n_layers (L)       %d\n", c.n_layers);
  std::printf("  n_heads (NH)       %d   head size HS = %d\n", c.n_heads, c.head_size());
  std::printf(
      "  n_kv_heads (NKV)   %d   %s\n", c.n_kv_heads,
      c.n_kv_heads == c.n_heads
          ? "(multi-head attention)"
          : ("(grouped-query: " + std::to_string(c.n_heads / c.n_kv_heads) + " query heads per kv head)").c_str());
  std::printf("  hidden_dim (F)     %d   (SwiGLU)\n", c.hidden_dim);
  std::printf("  vocab_size (V)     %d\n", c.vocab_size);
  std::printf("  max_seq_len        %d\n", c.max_seq_len);
  std::printf("  norm_eps           %g\n", c.norm_eps);
  std::printf("  rope_theta         %g\n", c.rope_theta);
  std::printf("  tie_embeddings     %s\n", c.tie_embeddings ? "true (output projection = tok_embeddings)" : "false");

  // The shapes come from the real model (allocated, not initialized), not from a second formula.
  Model model = make_model(c);
  std::printf("\n[parameters]\n");
  size_t total = model.num_parameters();
  bool all = args.count("tensors") > 0;
  for (const NamedTensor& p : model.parameters()) {
    bool later_layer = p.name.rfind("layers.", 0) == 0 && p.name.rfind("layers.0.", 0) != 0;
    if (later_layer && !all) continue;
    std::printf("  %-36s %-14s %12zu  %5.1f%%\n", p.name.c_str(), shape_str(p.value->shape).c_str(), p.value->size(),
                100.0 * p.value->size() / total);
  }
  if (!all && c.n_layers > 1)
    std::printf("  (layers 1..%d: the same as layer 0; --tensors lists them)\n", c.n_layers - 1);
  std::printf("  total                                               %12zu\n", total);

  TrainingMemory m = estimate_training_memory(c, B, T, recompute);
  std::printf("\n[training memory] batch B = %d (%s), context T = %d (%s), %s numbers\n", B, b_from.c_str(), T,
              t_from.c_str(), real_name());
  std::printf("  weights                 %12s\n", human_bytes(m.weight_bytes).c_str());
  std::printf("  gradients               %12s\n", human_bytes(m.gradient_bytes).c_str());
  std::printf("  AdamW moments (2x)      %12s\n", human_bytes(m.optimizer_bytes).c_str());
  std::printf("  activations             %12s   (outputs and saved tensors of the tape, below)\n",
              human_bytes(m.value_bytes).c_str());
  std::printf("  activation gradients    %12s   (pooled: only those alive at once during backward)\n",
              human_bytes(m.pooled_gradient_bytes).c_str());
  std::printf("  total                   %12s\n", human_bytes(m.training_bytes()).c_str());
  std::printf("  (the loss computes %d rows of logits at a time%s; activation recomputation %s)\n", m.loss_block_rows,
              m.loss_block_rows < B * T ? ", never all B·T" : ": all of them", recompute ? "on" : "off");
  std::printf("  (a tape that keeps every op's gradient, as the lessons' tapes do, needs %s in total)\n",
              human_bytes(m.total_bytes()).c_str());
  std::printf(
      "\n[activations] every op node keeps its output and, on a default tape, its gradient; plus what its\n"
      "backward saves\n");
  for (const ActivationItem& item : m.activations) {
    std::printf("  %-58s %12s\n", item.what.c_str(), human_bytes(double(item.numbers) * m.bytes_per_number).c_str());
  }
  std::printf("  (counted from the ops the model records on the tape; tests check the counts against real tapes)\n");

  // The precision of the matrix products, and which kernel this CPU would run them with.
  std::string precision = "fp32", p_from = "default";
  if (is_training_config && j.contains("training") && j.at("training").is_object() &&
      j.at("training").contains("precision")) {
    const nlohmann::json& v = j.at("training").at("precision");
    if (!v.is_string()) throw std::invalid_argument(path + ": training.precision must be \"fp32\" or \"bf16\"");
    precision = v.get<std::string>(), p_from = "training.precision";
    try {
      parse_matmul_precision(precision);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(path + ": training." + e.what());
    }
  }
  std::printf("\n[precision] %s (%s)\n", precision.c_str(), p_from.c_str());
  std::printf("  CPU bf16 units          avx512_bf16 %s, amx_bf16 %s\n", cpu_has_avx512_bf16() ? "yes" : "no",
              cpu_has_amx_bf16() ? "yes" : "no");
  if (precision == "bf16") {
    std::printf("  matrix products         bf16 inputs, fp32 sums; kernel %s\n",
                bf16_kernel_description(bf16_kernel_default()).c_str());
    std::printf(
        "  kept in fp32            master weights, gradients, AdamW moments, activations, norms, softmax, loss\n");
  } else {
    std::printf("  matrix products         fp32 (bf16 would use: %s)\n",
                bf16_kernel_description(bf16_kernel_default()).c_str());
  }
  // A quantized model directory (foundry quantize): how its weights are stored.
  const std::filesystem::path weights = std::filesystem::path(path).parent_path() / "model.safetensors";
  std::error_code ec;
  if (!is_training_config && std::filesystem::is_regular_file(weights, ec)) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    Model loaded = load_model(dir);
    if (!loaded.quantized.empty()) {
      size_t blocks = 0, floats = 0, n_quantized = 0;
      std::string type;
      for (size_t k = 0; k < loaded.values.size(); ++k) {
        if (const QuantMatrix* q = loaded.quantized_of(&loaded.values[k])) {
          blocks += q->blocks.size(), n_quantized++, type = quant_type_name(q->type);
        } else {
          floats += 4 * loaded.values[k].data.size();
        }
      }
      std::printf("\n[quantized weights] %s (model.safetensors, U8 blocks; decoding uses the %s kernel)\n", dir.c_str(),
                  quant_kernel_name(quant_kernel()));
      std::printf("  %s blocks            %12s   %zu tensors\n", type.c_str(), human_bytes(double(blocks)).c_str(),
                  n_quantized);
      std::printf("  float32              %12s   %zu tensors (gains; matrices whose rows are not whole blocks)\n",
                  human_bytes(double(floats)).c_str(), loaded.values.size() - n_quantized);
    }
  }
  return 0;
}

}  // namespace foundry::cli
