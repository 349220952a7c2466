#include "train/train_config.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <stdexcept>

#include "train/data_loader.h"

namespace foundry {

nlohmann::json to_json(const TrainingConfig& t) {
  return {{"batch_size", t.batch_size},
          {"seq_len", t.seq_len},
          {"grad_accum", t.grad_accum},
          {"max_steps", t.max_steps},
          {"lr", t.lr},
          {"min_lr", t.min_lr},
          {"warmup_steps", t.warmup_steps},
          {"weight_decay", t.weight_decay},
          {"beta1", t.beta1},
          {"beta2", t.beta2},
          {"eps", t.eps},
          {"grad_clip", t.grad_clip},
          {"eval_interval", t.eval_interval},
          {"eval_batches", t.eval_batches},
          {"patience", t.patience},
          {"checkpoint_interval", t.checkpoint_interval},
          {"keep_checkpoints", t.keep_checkpoints},
          {"log_interval", t.log_interval},
          {"seed", t.seed},
          {"sampling", t.sampling}};
}

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j;
  if (!c.description.empty()) j["description"] = c.description;
  j["model"] = to_json(c.model);
  j["training"] = to_json(c.training);
  return j;
}

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& field, const std::string& value,
                       const std::string& why) {
  throw std::invalid_argument(where + ": " + field + " = " + value + ": " + why);
}

std::string num_str(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Reads an integer field of the training section into `out`, checking the type and range.
template <typename Int>
void read_int(const nlohmann::json& j, const char* key, Int& out, const std::string& where) {
  if (!j.contains(key)) return;  // missing: keep the default
  const nlohmann::json& v = j.at(key);
  const std::string field = std::string("training.") + key;
  if (!v.is_number_integer()) fail(where, field, v.dump(), "must be an integer");
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<Int>::max())) fail(where, field, v.dump(), "is too large");
    out = static_cast<Int>(u);
  } else {
    const int64_t s = v.get<int64_t>();
    if (std::numeric_limits<Int>::is_signed ? (s < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
                                               s > static_cast<int64_t>(std::numeric_limits<Int>::max()))
                                            : s < 0) {
      fail(where, field, v.dump(), std::numeric_limits<Int>::is_signed ? "is out of range" : "must not be negative");
    }
    out = static_cast<Int>(s);
  }
}

void read_double(const nlohmann::json& j, const char* key, double& out, const std::string& where) {
  if (!j.contains(key)) return;
  const nlohmann::json& v = j.at(key);
  if (!v.is_number()) fail(where, std::string("training.") + key, v.dump(), "must be a number");
  out = v.get<double>();
}

const char* const kTrainingKeys[] = {"batch_size",    "seq_len",      "grad_accum", "max_steps",     "lr",
                                     "min_lr",        "warmup_steps", "weight_decay", "beta1",       "beta2",
                                     "eps",           "grad_clip",    "eval_interval", "eval_batches", "patience",
                                     "checkpoint_interval", "keep_checkpoints", "log_interval", "seed", "sampling"};

TrainingConfig training_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": the \"training\" section must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : kTrainingKeys) known = known || it.key() == k;
    if (!known) {
      throw std::invalid_argument(where + ": unknown field 'training." + it.key() +
                                  "' (configs/README.md lists every field)");
    }
  }
  TrainingConfig t;
  read_int(j, "batch_size", t.batch_size, where);
  read_int(j, "seq_len", t.seq_len, where);
  read_int(j, "grad_accum", t.grad_accum, where);
  read_int(j, "max_steps", t.max_steps, where);
  read_double(j, "lr", t.lr, where);
  read_double(j, "min_lr", t.min_lr, where);
  read_int(j, "warmup_steps", t.warmup_steps, where);
  read_double(j, "weight_decay", t.weight_decay, where);
  read_double(j, "beta1", t.beta1, where);
  read_double(j, "beta2", t.beta2, where);
  read_double(j, "eps", t.eps, where);
  read_double(j, "grad_clip", t.grad_clip, where);
  read_int(j, "eval_interval", t.eval_interval, where);
  read_int(j, "eval_batches", t.eval_batches, where);
  read_int(j, "patience", t.patience, where);
  read_int(j, "checkpoint_interval", t.checkpoint_interval, where);
  read_int(j, "keep_checkpoints", t.keep_checkpoints, where);
  read_int(j, "log_interval", t.log_interval, where);
  read_int(j, "seed", t.seed, where);
  if (j.contains("sampling")) {
    if (!j.at("sampling").is_string()) fail(where, "training.sampling", j.at("sampling").dump(), "must be a string");
    t.sampling = j.at("sampling").get<std::string>();
  }
  return t;
}

}  // namespace

void validate(const TrainConfig& c, const std::string& where) {
  const TrainingConfig& t = c.training;
  auto positive = [&](const char* field, long v) {
    if (v <= 0) fail(where, std::string("training.") + field, std::to_string(v), "must be a positive integer");
  };
  auto non_negative = [&](const char* field, long v) {
    if (v < 0) fail(where, std::string("training.") + field, std::to_string(v), "must be >= 0");
  };
  positive("batch_size", t.batch_size);
  positive("seq_len", t.seq_len);
  if (t.seq_len > c.model.max_seq_len) {
    fail(where, "training.seq_len", std::to_string(t.seq_len),
         "must be <= model.max_seq_len = " + std::to_string(c.model.max_seq_len) + " (the RoPE tables end there)");
  }
  positive("grad_accum", t.grad_accum);
  positive("max_steps", t.max_steps);
  non_negative("warmup_steps", t.warmup_steps);
  if (t.warmup_steps > t.max_steps) {
    fail(where, "training.warmup_steps", std::to_string(t.warmup_steps),
         "must be <= training.max_steps = " + std::to_string(t.max_steps));
  }
  // subtle: written as !(x > 0) so that NaN fails too.
  if (!(t.lr > 0) || !std::isfinite(t.lr)) fail(where, "training.lr", num_str(t.lr), "must be a finite number > 0");
  if (!(t.min_lr >= 0) || t.min_lr > t.lr) {
    fail(where, "training.min_lr", num_str(t.min_lr), "must be in [0, training.lr = " + num_str(t.lr) + "]");
  }
  if (!(t.weight_decay >= 0) || !std::isfinite(t.weight_decay)) {
    fail(where, "training.weight_decay", num_str(t.weight_decay), "must be >= 0");
  }
  if (!(t.beta1 >= 0 && t.beta1 < 1)) fail(where, "training.beta1", num_str(t.beta1), "must be in [0, 1)");
  if (!(t.beta2 >= 0 && t.beta2 < 1)) fail(where, "training.beta2", num_str(t.beta2), "must be in [0, 1)");
  if (!(t.eps > 0)) fail(where, "training.eps", num_str(t.eps), "must be > 0");
  if (!(t.grad_clip >= 0) || !std::isfinite(t.grad_clip)) {
    fail(where, "training.grad_clip", num_str(t.grad_clip), "must be >= 0 (0 turns clipping off)");
  }
  positive("eval_interval", t.eval_interval);
  positive("eval_batches", t.eval_batches);
  non_negative("patience", t.patience);
  positive("checkpoint_interval", t.checkpoint_interval);
  positive("keep_checkpoints", t.keep_checkpoints);
  positive("log_interval", t.log_interval);
  try {
    batch_order_from_string(t.sampling, "training.sampling");
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": a training config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "model" && it.key() != "training" && it.key() != "description") {
      throw std::invalid_argument(where + ": unknown top-level field '" + it.key() +
                                  "' (expected \"model\", \"training\" and optionally \"description\")");
    }
  }
  if (!j.contains("model")) throw std::invalid_argument(where + ": missing the \"model\" section");
  if (!j.contains("training")) throw std::invalid_argument(where + ": missing the \"training\" section");
  TrainConfig c;
  if (j.contains("description")) {
    if (!j.at("description").is_string()) {
      throw std::invalid_argument(where + ": description = " + j.at("description").dump() + ": must be a string");
    }
    c.description = j.at("description").get<std::string>();
  }
  // The model section is a model config.json; require_all keeps every architecture choice explicit.
  c.model = model_config_from_json(j.at("model"), where + ": model", true);
  c.training = training_from_json(j.at("training"), where);
  validate(c, where);
  return c;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot open the file");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": not valid JSON: " + e.what());
  }
}

void apply_override(nlohmann::json& j, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) {
    throw std::invalid_argument("override '" + assignment + "': expected section.field=value, e.g. training.lr=3e-4");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const size_t dot = path.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == path.size() || path.find('.', dot + 1) != std::string::npos) {
    throw std::invalid_argument("override '" + assignment +
                                "': the name must be section.field, e.g. training.lr or model.dim");
  }
  const std::string section = path.substr(0, dot), field = path.substr(dot + 1);
  if (section != "model" && section != "training") {
    throw std::invalid_argument("override '" + assignment + "': unknown section '" + section +
                                "' (expected model or training)");
  }
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;  // not JSON: a bare word such as sequential
  // Unknown fields are not caught here but by the strict parser that runs next.
  j[section][field] = value;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(path);
  for (const std::string& o : overrides) apply_override(j, o);
  return train_config_from_json(j, path);
}

}  // namespace foundry
