#include "infer/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/npy.h"
#include "engine/softmax.h"
#include "model/config.h"

namespace foundry {

std::pair<int, int> eval_windows(const ModelConfig& config, size_t n_tokens, int window_len, int max_windows) {
  if (n_tokens < 2) {
    throw std::invalid_argument("evaluate: " + std::to_string(n_tokens) +
                                " tokens; at least 2 are needed (an input and its target)");
  }
  int T = window_len > 0 ? window_len : config.max_seq_len;
  if (T > config.max_seq_len) {
    throw std::invalid_argument("evaluate: window length " + std::to_string(T) + " exceeds the model's max_seq_len " +
                                std::to_string(config.max_seq_len));
  }
  size_t targets = n_tokens - 1;
  size_t full = targets / T;
  if (full == 0) return {1, static_cast<int>(targets)};  // one short window
  if (max_windows > 0) full = std::min(full, static_cast<size_t>(max_windows));
  return {static_cast<int>(full), T};
}

EvalResult evaluate(Model& model, const std::vector<int>& tokens, int window_len, int max_windows,
                    const std::function<void(const real* logits, int T, int V)>& on_logits) {
  const ModelConfig& c = model.config;
  auto [N, T] = eval_windows(c, tokens.size(), window_len, max_windows);
  int V = c.vocab_size;
  for (size_t i = 0; i < tokens.size(); i++) {
    if (tokens[i] < 0 || tokens[i] >= V) {
      throw std::invalid_argument("evaluate: token " + std::to_string(i) + " is id " + std::to_string(tokens[i]) +
                                  ", outside the model's vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  EvalResult result;
  result.windows = N;
  result.window_len = T;
  Tape tape;                               // reused: every window records the same ops with the same shapes
  std::vector<real> probs((size_t)T * V);  // (T, V) scratch for the loss
  std::vector<int> inputs(T), targets(T);
  double total_loss = 0;
  for (int k = 0; k < N; k++) {
    size_t o = (size_t)k * T;
    std::copy(tokens.begin() + o, tokens.begin() + o + T, inputs.begin());
    std::copy(tokens.begin() + o + 1, tokens.begin() + o + T + 1, targets.begin());  // shifted by one
    tape.clear();
    Var logits = model_logits(tape, model, inputs, 1, T);  // (1, T, V)
    const real* L = tape.value(logits).ptr();
    // The mean over this window's T targets, weighted back into a sum over all targets.
    total_loss += cross_entropy_forward(probs.data(), L, targets.data(), T, V) * T;
    if (on_logits) on_logits(L, T, V);
  }
  result.targets = (size_t)N * T;
  result.mean_loss = total_loss / result.targets;
  result.perplexity = std::exp(result.mean_loss);
  return result;
}

namespace {

// The JSON in `path`, or null when it is missing or unreadable (these files are hints: a damaged
// one means "not recorded", never a failed evaluation).
nlohmann::json read_json_or_null(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return nullptr;
  std::ifstream in(path, std::ios::binary);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json() : j;
}

int positive_int(const nlohmann::json& j) {
  return j.is_number_integer() && j.get<long>() > 0 && j.get<long>() <= (1L << 30) ? j.get<int>() : 0;
}

}  // namespace

TrainingContext training_context(const std::string& model_dir, const ModelConfig& config) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  TrainingContext ctx;
  nlohmann::json j = read_json_or_null(dir / "training.json");
  if (j.is_object() && (ctx.seq_len = positive_int(j.value("seq_len", nlohmann::json()))) > 0) {
    ctx.source = (dir / "training.json").string();
    return ctx;
  }
  j = read_json_or_null(dir / "train_state.json");
  if (j.is_object() && j.contains("config") && j["config"].is_object() && j["config"].contains("training") &&
      j["config"]["training"].is_object() &&
      (ctx.seq_len = positive_int(j["config"]["training"].value("seq_len", nlohmann::json()))) > 0) {
    ctx.source = (dir / "train_state.json").string();
    return ctx;
  }
  // A model directory inside its run directory: the run's config.json holds both sections.
  fs::path model_path = fs::absolute(dir).lexically_normal();
  if (!model_path.has_filename()) model_path = model_path.parent_path();  // "runs/x/best/"
  const fs::path run_config = model_path.parent_path() / "config.json";
  j = read_json_or_null(run_config);
  if (j.is_object() && j.contains("model") && j.contains("training") && j["training"].is_object() &&
      j["model"] == to_json(config) &&
      (ctx.seq_len = positive_int(j["training"].value("seq_len", nlohmann::json()))) > 0) {
    ctx.source = (dir / ".." / "config.json").lexically_normal().string();
    return ctx;
  }
  return {};
}

uint64_t logits_file_bytes(int N, int T, int V) {
  return npy_header_float32({(size_t)N, (size_t)T, (size_t)V}).size() + (uint64_t)N * T * V * sizeof(float);
}

}  // namespace foundry
