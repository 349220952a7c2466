// LoRA adapters: making, freezing the base, the adapted forward, merging and the adapter file
// (see lora.h).
#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/matmul.h"
#include "model/safetensors.h"

namespace foundry {

namespace {

// Where each target lives in a layer: its module ("attention.wq") and its shape (N, K) in terms of
// the config, as the parameter table has it (model/params.h).
struct TargetInfo {
  const char* name;
  const char* module;
  Dim out, in;
};
const std::vector<TargetInfo>& target_table() {
  static const std::vector<TargetInfo> table = {
      {"wq", "attention.wq", Dim::Q, Dim::C},    {"wk", "attention.wk", Dim::KV, Dim::C},
      {"wv", "attention.wv", Dim::KV, Dim::C},   {"wo", "attention.wo", Dim::C, Dim::Q},
      {"w1", "feed_forward.w1", Dim::F, Dim::C}, {"w3", "feed_forward.w3", Dim::F, Dim::C},
      {"w2", "feed_forward.w2", Dim::C, Dim::F},
  };
  return table;
}

const TargetInfo* find_target(const std::string& name) {
  for (const TargetInfo& t : target_table())
    if (name == t.name) return &t;
  return nullptr;
}

std::string known_targets() {
  std::string s;
  for (const TargetInfo& t : target_table()) s += std::string(s.empty() ? "" : ", ") + t.name;
  return s;
}

// The adapter's leaves go into the LayerLora field of its target.
LoraVars& field(LayerLora& layer, const std::string& target) {
  if (target == "wq") return layer.wq;
  if (target == "wk") return layer.wk;
  if (target == "wv") return layer.wv;
  if (target == "wo") return layer.wo;
  if (target == "w1") return layer.w1;
  if (target == "w3") return layer.w3;
  if (target == "w2") return layer.w2;
  throw std::invalid_argument("lora: unknown target '" + target + "' (known: " + known_targets() + ")");
}

std::string weight_name(int layer, const TargetInfo& t) {
  return "layers." + std::to_string(layer) + "." + t.module + ".weight";
}
// "layers.3.attention.wq.weight" -> "layers.3.attention.wq.lora_a"
std::string tensor_name(const std::string& weight, const char* which) {
  return weight.substr(0, weight.size() - std::string(".weight").size()) + "." + which;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// The targets in table order, so the adapters (and the file) list them the same way every time.
std::vector<std::string> in_table_order(const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const TargetInfo& t : target_table())
    if (std::find(targets.begin(), targets.end(), t.name) != targets.end()) out.push_back(t.name);
  return out;
}

void check_targets(const std::vector<std::string>& targets, const std::string& where) {
  if (targets.empty()) throw std::invalid_argument(where + "no target (expected some of: " + known_targets() + ")");
  std::set<std::string> seen;
  for (const std::string& t : targets) {
    if (!find_target(t))
      throw std::invalid_argument(where + "unknown target '" + t + "' (expected some of: " + known_targets() + ")");
    if (!seen.insert(t).second) throw std::invalid_argument(where + "target '" + t + "' is listed twice");
  }
}

}  // namespace

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const TargetInfo& t : target_table()) v.push_back(t.name);
    return v;
  }();
  return names;
}

std::string lora_summary(const LoraConfig& config) {
  char alpha[32];
  std::snprintf(alpha, sizeof alpha, "%g", config.alpha);
  return "LoRA rank " + std::to_string(config.rank) + ", alpha " + alpha + " on " + join(config.targets);
}

std::vector<std::string> parse_lora_targets(const std::string& csv) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= csv.size()) {
    const size_t comma = std::min(csv.find(',', start), csv.size());
    out.push_back(csv.substr(start, comma - start));
    start = comma + 1;
  }
  if (csv.empty()) out.clear();
  check_targets(out, "lora targets '" + csv + "': ");
  return out;
}

void validate_lora(const LoraConfig& config, const ModelConfig& model) {
  check_targets(config.targets, "lora: ");
  if (!(std::isfinite(config.alpha) && config.alpha > 0))
    throw std::invalid_argument("lora: alpha " + std::to_string(config.alpha) + ": expected a positive number");
  if (config.rank < 1)
    throw std::invalid_argument("lora: rank " + std::to_string(config.rank) + ": expected at least 1");
  for (const std::string& name : config.targets) {
    const TargetInfo& t = *find_target(name);
    const int N = dim_size(t.out, model), K = dim_size(t.in, model);
    if (config.rank > std::min(N, K))
      throw std::invalid_argument("lora: rank " + std::to_string(config.rank) + " exceeds min(in, out) = " +
                                  std::to_string(std::min(N, K)) + " of " + name + " (" + std::to_string(N) + ", " +
                                  std::to_string(K) + "): such an adapter would not be low-rank");
  }
}

size_t lora_parameter_count(const LoraConfig& config, const ModelConfig& model) {
  size_t n = 0;
  for (const std::string& name : config.targets) {
    const TargetInfo* t = find_target(name);
    if (!t) throw std::invalid_argument("lora: unknown target '" + name + "' (known: " + known_targets() + ")");
    n += static_cast<size_t>(config.rank) * (dim_size(t->out, model) + dim_size(t->in, model));
  }
  return n * model.n_layers;
}

std::vector<NamedTensor> LoraModel::parameters() {
  std::vector<NamedTensor> list;
  for (LoraAdapter& ad : adapters) {
    list.push_back({tensor_name(ad.weight, "lora_a"), &ad.a, &ad.grad_a, true});
    list.push_back({tensor_name(ad.weight, "lora_b"), &ad.b, &ad.grad_b, true});
  }
  return list;
}

void LoraModel::zero_grad() {
  for (LoraAdapter& ad : adapters) {
    ad.grad_a.fill(0);
    ad.grad_b.fill(0);
  }
}

size_t LoraModel::num_parameters() const {
  size_t n = 0;
  for (const LoraAdapter& ad : adapters) n += ad.a.size() + ad.b.size();
  return n;
}

// ANCHOR: make_lora
LoraModel make_lora(const Model& base, const LoraConfig& config, Rng& rng) {
  validate_lora(config, base.config);
  LoraModel lora;
  lora.config = config;
  lora.config.targets = in_table_order(config.targets);
  lora.base_fingerprint = model_fingerprint(base);
  const int R = config.rank;
  for (int layer = 0; layer < base.config.n_layers; layer++) {
    for (const std::string& name : lora.config.targets) {
      const TargetInfo& t = *find_target(name);
      LoraAdapter ad;
      ad.weight = weight_name(layer, t);
      ad.layer = layer;
      ad.target = name;
      const Tensor& w = base.values[base.index_of(ad.weight)];  // (N, K)
      const int N = w.dim(0), K = w.dim(1);
      // a: uniform in ±1/sqrt(K), so x · aᵀ has about the variance of x; b: zero, so the
      // adapter adds nothing until b has learned something.
      ad.a = Tensor({R, K});
      const double bound = 1.0 / std::sqrt(static_cast<double>(K));
      for (real& v : ad.a.data) v = static_cast<real>(bound * (2 * rng.uniform() - 1));
      ad.b = Tensor({N, R});
      ad.grad_a = Tensor({R, K});
      ad.grad_b = Tensor({N, R});
      lora.adapters.push_back(std::move(ad));
    }
  }
  return lora;
}
// ANCHOR_END: make_lora

std::string model_fingerprint(const Model& model) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64: offset basis; not cryptographic, only a cheap check
  for (const Tensor& t : model.values) {
    for (real v : t.data) {
      const float f = static_cast<float>(v);
      unsigned char bytes[sizeof f];
      std::memcpy(bytes, &f, sizeof f);
      for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ULL;  // FNV prime
      }
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

void freeze_base(Model& model) {
  for (Tensor& g : model.gradients) g = Tensor();  // the model's named gradient pointers stay valid, empty
}

std::vector<LayerLora> lora_leaves(Tape& tape, LoraModel& lora) {
  int layers = 0;
  for (const LoraAdapter& ad : lora.adapters) layers = std::max(layers, ad.layer + 1);
  std::vector<LayerLora> out(layers);
  const real s = static_cast<real>(lora.config.scale());
  for (LoraAdapter& ad : lora.adapters) {
    LoraVars& v = field(out[ad.layer], ad.target);
    v.a = tape.param(ad.a, ad.grad_a, tensor_name(ad.weight, "lora_a"));
    v.b = tape.param(ad.b, ad.grad_b, tensor_name(ad.weight, "lora_b"));
    v.scale = s;
  }
  return out;
}

// ANCHOR: lora_logits
Var lora_logits(Tape& tape, const Model& base, LoraModel& lora, const std::vector<int>& ids, int B, int T) {
  // The base weights enter as inputs: the tape computes no gradient for them, and none of their
  // gradient buffers is touched (freeze_base has released them).
  std::vector<Var> leaves;
  for (size_t k = 0; k < base.values.size(); k++) leaves.push_back(tape.input(base.values[k], base.entries[k].name));
  return model_logits(tape, base, leaves, ids, B, T, lora_leaves(tape, lora));
}
// ANCHOR_END: lora_logits

// ANCHOR: merge_lora
void merge_lora(Model& model, const LoraModel& lora) {
  const real s = static_cast<real>(lora.config.scale());
  for (const LoraAdapter& ad : lora.adapters) {
    Tensor& w = model.values[model.index_of(ad.weight)];  // (N, K)
    const int N = w.dim(0), K = w.dim(1), R = ad.a.dim(0);
    Tensor ba({N, K});
    matmul_forward(ba.ptr(), ad.b.ptr(), ad.a.ptr(), N, R, K);  // b · a   (N, R)(R, K) -> (N, K)
    for (size_t i = 0; i < w.size(); i++) w[i] += s * ba[i];    // w' = w + s · b · a
  }
}
// ANCHOR_END: merge_lora

void check_lora_base(const LoraModel& lora, const Model& base, const std::string& adapter_path,
                     const std::string& base_dir, bool check_fingerprint) {
  const std::string where = adapter_path + ": ";
  for (const LoraAdapter& ad : lora.adapters) {
    if (ad.layer >= base.config.n_layers)
      throw std::runtime_error(where + "has adapters for layer " + std::to_string(ad.layer) + " but " + base_dir +
                               " has " + std::to_string(base.config.n_layers) + " layers");
    const Tensor& w = base.values[base.index_of(ad.weight)];
    if (ad.a.dim(1) != w.dim(1) || ad.b.dim(0) != w.dim(0))
      throw std::runtime_error(where + ad.weight + ": the adapter is for a (" + std::to_string(ad.b.dim(0)) + ", " +
                               std::to_string(ad.a.dim(1)) + ") weight but " + base_dir + " has " + shape_str(w.shape));
  }
  const int layers = lora.adapters.empty() ? 0 : lora.adapters.back().layer + 1;
  if (layers != base.config.n_layers)
    throw std::runtime_error(where + "has adapters for " + std::to_string(layers) + " layers but " + base_dir +
                             " has " + std::to_string(base.config.n_layers));
  if (check_fingerprint) {
    const std::string fp = model_fingerprint(base);
    if (fp != lora.base_fingerprint)
      throw std::runtime_error(where + "was trained on a base with fingerprint " + lora.base_fingerprint +
                               (lora.base_dir.empty() ? "" : " (" + lora.base_dir + ")") + " but " + base_dir +
                               " has " + fp + ": not the same weights");
  }
}

void save_lora(const LoraModel& lora, const std::string& path) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const LoraAdapter& ad : lora.adapters) {
    tensors.emplace_back(tensor_name(ad.weight, "lora_a"), &ad.a);
    tensors.emplace_back(tensor_name(ad.weight, "lora_b"), &ad.b);
  }
  char alpha[32];
  std::snprintf(alpha, sizeof alpha, "%.17g", lora.config.alpha);
  save_safetensors(path, tensors,
                   {{"format", "foundry-lora"},
                    {"rank", std::to_string(lora.config.rank)},
                    {"alpha", alpha},
                    {"targets", join(lora.config.targets)},
                    {"base", lora.base_dir},
                    {"base_fingerprint", lora.base_fingerprint}});
}

namespace {

// A decimal integer in [lo, hi], digits only.
int parse_int(const std::string& s, int lo, int hi, const std::string& what) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument(what + " '" + s + "': expected a whole number");
  const long v = std::stol(s);
  if (v < lo || v > hi)
    throw std::invalid_argument(what + " " + s + ": expected " + std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<int>(v);
}

}  // namespace

LoraModel load_lora(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);  // the container is checked there
  const std::string where = path + ": ";
  auto meta = [&](const char* key) {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      throw std::invalid_argument(where + "no \"" + key + "\" in __metadata__ (not a LoRA adapter file?)");
    return it->second;
  };
  if (meta("format") != "foundry-lora")
    throw std::invalid_argument(where + "__metadata__ format is '" + meta("format") + "', expected 'foundry-lora'");
  if (!f.bytes.empty()) throw std::invalid_argument(where + "holds U8 tensors; an adapter file has F32 ones only");
  LoraModel lora;
  lora.config.rank = parse_int(meta("rank"), 1, 65536, where + "rank");
  const std::string alpha = meta("alpha");
  char* end = nullptr;
  lora.config.alpha = std::strtod(alpha.c_str(), &end);
  if (alpha.empty() || end != alpha.c_str() + alpha.size() || !std::isfinite(lora.config.alpha) ||
      !(lora.config.alpha > 0) || lora.config.alpha > 1e6)
    throw std::invalid_argument(where + "alpha '" + alpha + "': expected a positive number up to 1e6");
  const std::string targets = meta("targets");
  try {
    lora.config.targets = parse_lora_targets(targets);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + e.what());
  }
  if (lora.config.targets != in_table_order(lora.config.targets))
    throw std::invalid_argument(where + "targets '" + targets + "' are not in the order " + known_targets());
  lora.base_dir = meta("base");
  lora.base_fingerprint = meta("base_fingerprint");
  if (lora.base_fingerprint.size() != 16 ||
      !std::all_of(lora.base_fingerprint.begin(), lora.base_fingerprint.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    throw std::invalid_argument(where + "base_fingerprint '" + lora.base_fingerprint +
                                "': expected 16 lowercase hex digits");
  // Exactly a and b for every target of layers 0, 1, ..., L−1, and nothing else.
  const size_t per_layer = 2 * lora.config.targets.size();
  if (f.tensors.empty() || f.tensors.size() % per_layer != 0)
    throw std::invalid_argument(where + "holds " + std::to_string(f.tensors.size()) +
                                " tensors; expected lora_a and lora_b for each of the " +
                                std::to_string(lora.config.targets.size()) + " targets in every layer");
  const int layers = static_cast<int>(f.tensors.size() / per_layer);
  const int R = lora.config.rank;
  std::map<std::string, Shape> shape_of_target;  // the same shapes in every layer
  for (int layer = 0; layer < layers; layer++) {
    for (const std::string& name : lora.config.targets) {
      const TargetInfo& t = *find_target(name);
      LoraAdapter ad;
      ad.weight = weight_name(layer, t);
      ad.layer = layer;
      ad.target = name;
      auto take = [&](const char* which) {
        const std::string n = tensor_name(ad.weight, which);
        auto it = f.tensors.find(n);
        if (it == f.tensors.end()) throw std::invalid_argument(where + "no tensor '" + n + "'");
        for (real v : it->second.data)
          if (!std::isfinite(v)) throw std::invalid_argument(where + n + " holds a value that is not finite");
        return std::move(it->second);
      };
      ad.a = take("lora_a");
      ad.b = take("lora_b");
      if (ad.a.rank() != 2 || ad.b.rank() != 2 || ad.a.dim(0) != R || ad.b.dim(1) != R || ad.a.dim(1) < R ||
          ad.b.dim(0) < R)
        throw std::invalid_argument(where + ad.weight + ": lora_a " + shape_str(ad.a.shape) + " and lora_b " +
                                    shape_str(ad.b.shape) + " do not fit rank " + std::to_string(R) +
                                    " (need (R, K) and (N, R) with R <= min(K, N))");
      const Shape both = {ad.b.dim(0), ad.a.dim(1)};
      auto [it, fresh] = shape_of_target.emplace(name, both);
      if (!fresh && it->second != both)
        throw std::invalid_argument(where + ad.weight + ": adapts a " + shape_str(both) + " weight, but layer 0's " +
                                    name + " is " + shape_str(it->second));
      ad.grad_a = Tensor(ad.a.shape);
      ad.grad_b = Tensor(ad.b.shape);
      lora.adapters.push_back(std::move(ad));
    }
  }
  return lora;
}

}  // namespace foundry
