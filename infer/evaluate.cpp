#include "infer/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

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

// ANCHOR: evaluate
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
  Tape tape;  // reused: every window records the same ops with the same shapes
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
// ANCHOR_END: evaluate

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
      j["model"] == to_json(config) && (ctx.seq_len = positive_int(j["training"].value("seq_len", nlohmann::json()))) > 0) {
    ctx.source = (dir / ".." / "config.json").lexically_normal().string();
    return ctx;
  }
  return {};
}

uint64_t logits_file_bytes(int N, int T, int V) {
  return npy_header_float32({(size_t)N, (size_t)T, (size_t)V}).size() + (uint64_t)N * T * V * sizeof(float);
}

// ANCHOR: npy_header
std::string npy_header_float32(const std::vector<size_t>& shape) {
  // The shape as a Python tuple: (N, T, V); a 1-tuple needs its comma, (n,).
  std::string dims;
  for (size_t i = 0; i < shape.size(); i++) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n' must be a multiple of 64, so
  // the array data starts aligned.
  size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string header = "\x93NUMPY";
  header += '\x01';
  header += '\x00';
  uint16_t len = static_cast<uint16_t>(dict.size());
  header += static_cast<char>(len & 0xFF);
  header += static_cast<char>(len >> 8);
  return header + dict;
}
// ANCHOR_END: npy_header

void write_float32(std::ostream& out, const real* values, size_t n) {
  // Converted in small blocks so a double build writes float32 too without a big buffer.
  float block[1024];
  for (size_t i = 0; i < n; i += 1024) {
    size_t m = std::min<size_t>(1024, n - i);
    for (size_t j = 0; j < m; j++) block[j] = static_cast<float>(values[i + j]);
    out.write(reinterpret_cast<const char*>(block), static_cast<std::streamsize>(m * sizeof(float)));
  }
}

}  // namespace foundry
