// Fine-tuning checkpoints: see sft_checkpoint.h for what they hold.
#include "train/sft_checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>

#include "common/file_io.h"
#include "model/config_fields.h"
#include "model/model_io.h"
#include "tokenizer/chat_template.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace foundry {

namespace {

const char* kStateFile = "sft_state.json";
const char* kOptimizerFile = "optimizer.safetensors";
const char* kMetricsFile = "metrics.jsonl";
const char* kStateFormat = "foundry-sft-state";
const int kStateVersion = 1;

const nlohmann::json& field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw std::invalid_argument(where + ": missing field '" + key + "'");
  return j.at(key);
}

long field_long(const nlohmann::json& j, const char* key, const std::string& where, long lowest) {
  const nlohmann::json& v = field(j, key, where);
  if (!v.is_number_integer() || v.get<long>() < lowest)
    throw std::invalid_argument(where + ": field '" + key + "' must be an integer >= " + std::to_string(lowest) +
                                ", got " + describe_json(v));
  return v.get<long>();
}

double field_double(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = field(j, key, where);
  if (!v.is_number())
    throw std::invalid_argument(where + ": field '" + key + "' must be a number, got " + describe_json(v));
  return v.get<double>();
}

bool field_bool(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = field(j, key, where);
  if (!v.is_boolean())
    throw std::invalid_argument(where + ": field '" + key + "' must be true or false, got " + describe_json(v));
  return v.get<bool>();
}

std::string field_string(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = field(j, key, where);
  if (!v.is_string())
    throw std::invalid_argument(where + ": field '" + key + "' must be a string, got " + describe_json(v));
  return v.get<std::string>();
}

}  // namespace

nlohmann::ordered_json sft_settings_json(const SftOptions& o) {
  // Doubles are written with enough digits to read back the same bits (nlohmann::json's dump).
  nlohmann::ordered_json j;
  j["base"] = o.base_dir;
  j["data"] = o.data_path;
  j["batch_size"] = o.batch_size;
  j["seq_len"] = o.seq_len;
  j["max_steps"] = o.max_steps;
  j["lr"] = o.lr;
  j["min_lr"] = o.min_lr;
  j["warmup_steps"] = o.warmup_steps;
  j["weight_decay"] = o.weight_decay;
  j["grad_clip"] = o.grad_clip;
  j["log_interval"] = o.log_interval;
  j["eval_interval"] = o.eval_interval;
  j["eval_examples"] = o.eval_examples;
  j["seed"] = std::to_string(o.seed);  // a 64-bit seed does not fit every JSON reader's numbers
  j["checkpoint_interval"] = o.checkpoint_interval;
  j["keep_checkpoints"] = o.keep_checkpoints;
  if (o.word_weight != 1.0) j["word_weight"] = o.word_weight;  // absent: 1, as before the option existed
  if (o.group_by_length) j["group_by_length"] = true;          // absent: false, likewise
  return j;
}

void save_sft_checkpoint(const std::string& dir, const Model& model, const BpeTokenizer& tokenizer,
                         const std::vector<NamedTensor>& params, const AdamW& optimizer, const SftOptions& options,
                         const std::string& data_fingerprint, const SftProgress& p) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  save_model_with_tokenizer(model, tmp, &tokenizer);
  save_chat_config(tmp);
  save_optimizer_state((fs::path(tmp) / kOptimizerFile).string(), params, optimizer);
  nlohmann::ordered_json j;
  j["format"] = kStateFormat;
  j["version"] = kStateVersion;
  j["step"] = p.step;
  j["adam_t"] = optimizer.t;
  j["rng"] = p.rng;
  j["cursor"] = p.cursor;
  j["order"] = p.order;
  j["first_loss"] = std::isfinite(p.first_loss) ? nlohmann::ordered_json(p.first_loss) : nlohmann::ordered_json();
  j["seconds"] = p.seconds;
  j["chat_tokens_added"] = p.chat_tokens_added;
  j["data_fingerprint"] = data_fingerprint;
  j["settings"] = sft_settings_json(options);
  write_file_atomic((fs::path(tmp) / kStateFile).string(), j.dump(1) + "\n");
  write_file_atomic((fs::path(tmp) / kMetricsFile).string(), p.metrics);
  publish_directory(tmp, dir);  // one rename: the checkpoint appears whole or not at all
}

std::string resolve_sft_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / kStateFile)) return path;
  if (fs::exists(fs::path(path) / "train_state.json"))
    throw std::invalid_argument(path +
                                ": a pretraining checkpoint (train_state.json); resume it with foundry train --resume");
  const std::vector<std::string> all = list_checkpoints(path);
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (fs::exists(fs::path(*it) / kStateFile)) return *it;
  if (!all.empty() && fs::exists(fs::path(all.back()) / "train_state.json"))
    throw std::invalid_argument(
        path + ": a pretraining run (its checkpoints hold train_state.json); resume it with foundry train --resume");
  throw std::invalid_argument(path + ": neither a fine-tuning checkpoint (no " + kStateFile +
                              ") nor a foundry sft output directory holding ckpt-* checkpoints");
}

namespace {

nlohmann::json read_state(const std::string& dir, std::string& state_path) {
  state_path = (fs::path(dir) / kStateFile).string();
  nlohmann::json j = read_json_file(state_path);
  if (!j.is_object() || !j.contains("format") || j["format"] != kStateFormat)
    throw std::invalid_argument(state_path + ": not a fine-tuning state file (format is not \"" + kStateFormat + "\")");
  if (!j.contains("version") || j["version"] != kStateVersion)
    throw std::invalid_argument(state_path + ": version " + describe_json(field(j, "version", state_path)) +
                                ", expected " + std::to_string(kStateVersion));
  return j;
}

}  // namespace

SftOptions sft_resume_options(const std::string& path) {
  const std::string dir = resolve_sft_checkpoint(path);
  std::string state_path;
  const nlohmann::json j = read_state(dir, state_path);
  const nlohmann::json& s = field(j, "settings", state_path);
  const std::string where = state_path + ": settings";
  SftOptions o;
  o.base_dir = field_string(s, "base", where);
  o.data_path = field_string(s, "data", where);
  o.batch_size = static_cast<int>(std::min<long>(field_long(s, "batch_size", where, 1), 1L << 20));
  o.seq_len = static_cast<int>(std::min<long>(field_long(s, "seq_len", where, 0), 1L << 20));
  o.max_steps = field_long(s, "max_steps", where, 1);
  o.lr = field_double(s, "lr", where);
  o.min_lr = field_double(s, "min_lr", where);
  o.warmup_steps = field_long(s, "warmup_steps", where, 0);
  o.weight_decay = field_double(s, "weight_decay", where);
  o.grad_clip = field_double(s, "grad_clip", where);
  o.log_interval = field_long(s, "log_interval", where, 1);
  o.eval_interval = field_long(s, "eval_interval", where, 1);
  o.eval_examples = static_cast<int>(std::min<long>(field_long(s, "eval_examples", where, 0), 1L << 20));
  const std::string seed = field_string(s, "seed", where);
  if (seed.empty() || seed.size() > 20 || seed.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument(where + ": field 'seed' = " + describe_json(seed) +
                                " is not a 64-bit unsigned integer");
  errno = 0;
  o.seed = std::strtoull(seed.c_str(), nullptr, 10);
  if (errno == ERANGE)
    throw std::invalid_argument(where + ": field 'seed' = " + describe_json(seed) + " is out of range");
  if (!(o.lr > 0) || !(o.min_lr >= 0) || !(o.weight_decay >= 0) || !(o.grad_clip >= 0))
    throw std::invalid_argument(where + ": lr must be > 0, and min_lr, weight_decay and grad_clip >= 0");
  o.checkpoint_interval = field_long(s, "checkpoint_interval", where, 0);
  o.keep_checkpoints = static_cast<int>(std::min<long>(field_long(s, "keep_checkpoints", where, 1), 1L << 20));
  if (s.contains("word_weight")) {
    o.word_weight = field_double(s, "word_weight", where);
    if (!(o.word_weight >= 0) || !std::isfinite(o.word_weight))
      throw std::invalid_argument(where + ": word_weight must be a finite number >= 0");
  }
  if (s.contains("group_by_length")) o.group_by_length = field_bool(s, "group_by_length", where);
  o.resume = dir;
  o.out_dir = fs::path(dir).lexically_normal().parent_path().string();
  if (o.out_dir.empty()) o.out_dir = ".";
  return o;
}

SftProgress load_sft_checkpoint(const std::string& dir, const SftOptions& options, const std::string& data_fingerprint,
                                size_t n_train, const std::vector<NamedTensor>& params, AdamW& optimizer) {
  std::string state_path;
  const nlohmann::json j = read_state(dir, state_path);
  // The settings that decide the numbers must be the ones the run started with.
  const nlohmann::json& saved = field(j, "settings", state_path);
  const nlohmann::json now = nlohmann::json::parse(sft_settings_json(options).dump());  // as the file reads back
  for (const auto& [key, value] : now.items()) {
    if (!saved.contains(key) || saved.at(key) != value)
      throw std::invalid_argument(state_path + ": the run was started with " + key + " = " +
                                  (saved.contains(key) ? describe_json(saved.at(key)) : std::string("(missing)")) +
                                  ", this one says " + describe_json(value) + " (a resumed run keeps its settings)");
  }
  // A setting written only when it differs from its default (word_weight, group_by_length) is
  // absent from `now` when this run leaves it at the default: the run began otherwise.
  for (const auto& [key, value] : saved.items())
    if (!now.contains(key))
      throw std::invalid_argument(state_path + ": the run was started with " + key + " = " + describe_json(value) +
                                  ", this one leaves it at its default (a resumed run keeps its settings)");
  const std::string fp = field_string(j, "data_fingerprint", state_path);
  if (fp != data_fingerprint)
    throw std::invalid_argument(options.data_path + ": its fingerprint is " + data_fingerprint + ", but the run in " +
                                dir + " trained on data with " + fp +
                                " (the instruction file changed since; resuming would mix two data sets)");

  SftProgress p;
  p.step = field_long(j, "step", state_path, 0);
  if (p.step > options.max_steps)
    throw std::invalid_argument(state_path + ": step " + std::to_string(p.step) + " is past max_steps " +
                                std::to_string(options.max_steps));
  p.rng = field_string(j, "rng", state_path);
  std::mt19937_64 generator;
  std::istringstream rng_text(p.rng);
  rng_text >> generator;
  if (rng_text.fail())
    throw std::invalid_argument(state_path + ": field 'rng' is not the state of the batch order's generator");
  p.cursor = static_cast<size_t>(field_long(j, "cursor", state_path, 0));
  const nlohmann::json& order = field(j, "order", state_path);
  if (!order.is_array() || order.size() != n_train)
    throw std::invalid_argument(state_path + ": field 'order' must list the " + std::to_string(n_train) +
                                " training examples");
  std::vector<uint8_t> seen(n_train, 0);
  for (const nlohmann::json& v : order) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() >= n_train || seen[v.get<size_t>()]++)
      throw std::invalid_argument(state_path + ": field 'order' is not a permutation of 0.." +
                                  std::to_string(n_train - 1) + " (at " + describe_json(v) + ")");
    p.order.push_back(v.get<size_t>());
  }
  if (p.cursor > n_train)
    throw std::invalid_argument(state_path + ": field 'cursor' = " + std::to_string(p.cursor) + " is past the " +
                                std::to_string(n_train) + " training examples");
  const nlohmann::json& first = field(j, "first_loss", state_path);
  p.first_loss = first.is_number() ? first.get<double>() : NAN;
  p.seconds = field_double(j, "seconds", state_path);
  p.chat_tokens_added = field_bool(j, "chat_tokens_added", state_path);
  p.metrics = read_file((fs::path(dir) / kMetricsFile).string(), "metrics log");
  const long adam_t = field_long(j, "adam_t", state_path, 0);
  optimizer = load_optimizer_state((fs::path(dir) / kOptimizerFile).string(), params, adam_t, state_path);
  return p;
}

}  // namespace foundry
