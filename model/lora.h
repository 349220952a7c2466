// LoRA: fine-tuning a model through low-rank adapters while its own weights stay frozen.
//
// Each chosen linear weight w (N, K) of each layer gets an adapter, a (R, K) and b (N, R), and
// the layer computes y = x · wᵀ + s · (x · aᵀ) · bᵀ with s = alpha / R (engine/lora.h: the op,
// its backward and the derivation). Only a and b train: the base weights are tape inputs, so no
// gradient is computed for them, their gradient buffers are released (freeze_base) and AdamW keeps
// moments for the adapters alone. Trainable numbers: R · (K + N) per adapted weight instead of K · N.
//
// Start: a from the seeded RNG, uniform in ±1/sqrt(K) (the bound PEFT's default gives), and b = 0,
// so the adapted model starts equal to the base, bit for bit.
//
// Merging folds an adapter into its weight, w' = w + s · b · a, and gives a plain model of the
// base's shape that computes what the adapted model computes, with no adapter at inference time.
//
// The adapter file (safetensors, model/safetensors.h): for each adapted weight, say
// "layers.3.attention.wq.weight", the tensors "layers.3.attention.wq.lora_a" (R, K) and
// "layers.3.attention.wq.lora_b" (N, R); its "__metadata__" holds
//   format            "foundry-lora"
//   rank, alpha       R and alpha, as decimal text
//   targets           the target names, comma-separated ("wq,wk,wv,wo")
//   base              the base model directory the adapters were trained on (informational)
//   base_fingerprint  a 64-bit FNV-1a hash of the base's weights (as float32, in file order), so an
//                     adapter is never applied to another model by mistake
// The base is the model fine-tuning starts from, after the chat tokens were added (train/sft.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tape.h"
#include "engine/tensor.h"
#include "model/model.h"

namespace foundry {

struct LoraConfig {
  int rank = 8;                                                 // R
  double alpha = 16;                                            // s = alpha / R
  std::vector<std::string> targets = {"wq", "wk", "wv", "wo"};  // in every layer
  double scale() const { return alpha / rank; }
};

// "LoRA rank 8, alpha 16 on wq,wk,wv,wo": for progress lines.
std::string lora_summary(const LoraConfig& config);

// The weights an adapter may sit on: wq wk wv wo w1 w3 w2 (model/model.h, LayerOf).
const std::vector<std::string>& lora_target_names();
// "wq,wk,wv" -> {"wq", "wk", "wv"}. Throws std::invalid_argument naming an unknown or repeated
// target, or an empty list.
std::vector<std::string> parse_lora_targets(const std::string& csv);
// Throws std::invalid_argument when rank < 1, rank > min(K, N) of a target weight (the adapter
// would have more numbers than the product it stands for and no lower rank), alpha is not a
// positive finite number, or a target is unknown or repeated.
void validate_lora(const LoraConfig& config, const ModelConfig& model);

// The adapters' numbers for a model of this config, without making them: R · (K + N) per target
// weight (K inputs, N outputs), in every layer.
size_t lora_parameter_count(const LoraConfig& config, const ModelConfig& model);

// One adapter: the base weight it belongs to, its two matrices and their gradients.
struct LoraAdapter {
  std::string weight;  // the base weight's file name: "layers.3.attention.wq.weight"
  int layer = 0;
  std::string target;  // "wq"
  Tensor a, b;         // a (R, K), b (N, R)
  Tensor grad_a, grad_b;
};

struct LoraModel {
  LoraConfig config;
  std::vector<LoraAdapter> adapters;  // layer by layer, targets in lora_target_names() order
  std::string base_dir;
  std::string base_fingerprint;

  LoraModel() = default;
  // parameters() points into the adapters, so a LoraModel moves but is never copied.
  LoraModel(LoraModel&&) = default;
  LoraModel& operator=(LoraModel&&) = default;
  LoraModel(const LoraModel&) = delete;
  LoraModel& operator=(const LoraModel&) = delete;

  // The trainable tensors: "layers.0.attention.wq.lora_a", "...lora_b", ... (the file's names).
  std::vector<NamedTensor> parameters();
  void zero_grad();
  size_t num_parameters() const;
};

// Adapters for `base` (validate_lora first): a from `rng`, b = 0.
LoraModel make_lora(const Model& base, const LoraConfig& config, Rng& rng);

// The base's weights hashed (FNV-1a 64 over each value as float32, in file order), as 16 hex digits.
std::string model_fingerprint(const Model& model);

// Releases the gradient buffers of every base weight: LoRA never fills them.
void freeze_base(Model& model);

// The adapters as tape leaves, one LayerLora per layer (model_logits' `lora` argument).
std::vector<LayerLora> lora_leaves(Tape& tape, LoraModel& lora);
// Logits (B, T, V) of the adapted model. The base weights are tape inputs: no gradient reaches them.
Var lora_logits(Tape& tape, const Model& base, LoraModel& lora, const std::vector<int>& ids, int B, int T);

// w += s · b · a for every adapter: afterwards `model` alone computes what base + adapters did.
// check_lora_base first.
void merge_lora(Model& model, const LoraModel& lora);

// Throws std::runtime_error when the adapters do not fit `base`: a different layer count or
// weight shape, or (check_fingerprint) weights other than those they were trained on.
void check_lora_base(const LoraModel& lora, const Model& base, const std::string& adapter_path,
                     const std::string& base_dir, bool check_fingerprint = true);

// Writes the adapter file atomically (see above).
void save_lora(const LoraModel& lora, const std::string& path);
// Reads and checks an adapter file: the metadata (format, rank, alpha, targets), and exactly one
// a and one b of the right shapes for every target of layers 0..L−1, all finite. Throws
// std::invalid_argument whose message starts with `path` and names the problem.
LoraModel load_lora(const std::string& path);

}  // namespace foundry
