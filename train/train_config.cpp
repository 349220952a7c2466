#include "train/train_config.h"

#include <cmath>
#include <stdexcept>

namespace foundry {

namespace {

const FieldNaming kNaming{"training.", ""};

std::string unknown_training_field(const std::string& key) {
  return "unknown field 'training." + bounded_text(key) + "' (configs/README.md lists every field)";
}

[[noreturn]] void fail(const std::string& where, const std::string& field, const std::string& value,
                       const std::string& why) {
  throw std::invalid_argument(where + ": " + field + " = " + value + ": " + why);
}

}  // namespace

const std::vector<ConfigField<TrainingSection>>& training_config_fields() {
  using F = ConfigField<TrainingSection>;
  using T = TrainingSection;
  const double inf = INFINITY, steps = 1e12;  // a million million steps: far beyond any run
  static const std::vector<F> fields = {
      {"batch_size", &T::batch_size, {1, 65536}, "", "B, rows per micro-batch"},
      {"seq_len",
       &T::seq_len,
       {1, 131072},
       "at most `model.max_seq_len`",
       "T, tokens per row (the context trained on)"},
      {"grad_accum",
       &T::grad_accum,
       {1, 65536},
       "",
       "micro-batches per optimizer step; their gradients are averaged, so one step sees B · T · grad_accum tokens"},
      {"max_steps", &T::max_steps, {1, steps}, "", "optimizer steps; the schedule ends here"},
      {"lr", &T::lr, {0, inf, true}, "", "peak learning rate, reached at the end of warmup"},
      {"min_lr", &T::min_lr, {0, inf}, "at most `lr`", "the learning rate the cosine decays to"},
      {"warmup_steps", &T::warmup_steps, {0, steps}, "at most `max_steps`", "length of the linear warmup"},
      {"weight_decay",
       &T::weight_decay,
       {0, inf},
       "",
       "AdamW's decoupled weight decay p ← p − lr·wd·p, on the tensors the parameter table marks (the matrices, "
       "never the RMSNorm gains)"},
      {"beta1", &T::beta1, {0, 1, false, true}, "", "AdamW first-moment decay"},
      {"beta2", &T::beta2, {0, 1, false, true}, "", "AdamW second-moment decay"},
      {"eps", &T::eps, {0, inf, true}, "", "AdamW epsilon, added after the square root"},
      {"grad_clip",
       &T::grad_clip,
       {0, inf},
       "",
       "maximum global L2 norm of the gradient; above it every gradient is scaled by grad_clip / (norm + 1e-6); 0 "
       "turns clipping off"},
      {"eval_interval",
       &T::eval_interval,
       {1, steps},
       "",
       "evaluate on the validation split every this many steps (and at step 0 and at the end)"},
      {"eval_batches",
       &T::eval_batches,
       {1, 1000000},
       "",
       "batches per evaluation: sequential batches 0, 1, ... of the validation split, the same ones every time; "
       "capped at what the split holds"},
      {"patience",
       &T::patience,
       {0, 1000000},
       "",
       "early stopping: stop after this many evaluations in a row without a new best validation loss; 0 never "
       "stops early"},
      {"checkpoint_interval",
       &T::checkpoint_interval,
       {1, steps},
       "",
       "save a checkpoint every this many steps; one is also saved when the run ends or is interrupted"},
      {"keep_checkpoints",
       &T::keep_checkpoints,
       {1, 1000000},
       "",
       "keep only the newest N checkpoints of the run directory"},
      {"log_interval",
       &T::log_interval,
       {1, steps},
       "",
       "print a progress line every this many steps (the metrics log gets every step)"},
      {"seed",
       &T::seed,
       {0, inf},
       "",
       "the weights are initialized from Rng(seed), training batches drawn from Rng(seed + 1)"},
      {"sampling", &T::batch_order, {}, "", "how training batches are cut; see below", {"random", "sequential"}},
      {"precision",
       &T::precision,
       {},
       "",
       "the matrix products of forward and backward: `fp32`, or `bf16` inputs with fp32 accumulation on the CPU's "
       "bf16 units (AVX512-BF16; emulated, and no faster, without them); weights, gradients, AdamW, the norms, "
       "softmax and the loss stay fp32 (lesson 21)",
       {"fp32", "bf16"}},
      {"recompute",
       &T::recompute,
       {},
       "",
       "activation recomputation: each transformer block keeps only its output and runs its forward again during "
       "backward, so one block's activations are alive at a time instead of all of them (the same gradients, bit "
       "for bit; about a third more arithmetic per step)"},
      {"target_loss",
       &T::target_loss,
       {0, inf},
       "",
       "stop at the first evaluation whose validation loss is at most this (a time-to-loss run); 0 never stops "
       "early"},
  };
  return fields;
}

nlohmann::json to_json(const TrainingSection& t) { return fields_to_json(t, training_config_fields()); }

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j;
  if (!c.description.empty()) j["description"] = c.description;
  j["model"] = to_json(c.model);
  j["training"] = to_json(c.training);
  return j;
}

std::vector<std::string> settings_lines(const TrainConfig& c, size_t width) {
  std::vector<std::string> lines;
  // Each section starts a new line; items fill a line up to `width`.
  auto lay_out = [&](const std::vector<std::string>& items) {
    std::string line = "  ";
    for (const std::string& item : items) {
      if (line.size() > 2 && line.size() + item.size() > width) {
        lines.push_back(line);
        line = "  ";
      }
      line += item + "  ";
    }
    if (line.size() > 2) lines.push_back(line);
  };
  lay_out(fields_settings(c.model, model_config_fields(), "model"));
  lay_out(fields_settings(c.training, training_config_fields(), "training"));
  return lines;
}

void validate(const TrainConfig& c, const std::string& where) {
  const TrainingSection& t = c.training;
  validate_fields(t, training_config_fields(), kNaming, where + ": ");
  // The rules that involve two fields.
  if (t.seq_len > c.model.max_seq_len) {
    fail(where, "training.seq_len", std::to_string(t.seq_len),
         "must be <= model.max_seq_len = " + std::to_string(c.model.max_seq_len) + " (the RoPE tables end there)");
  }
  if (t.warmup_steps > t.max_steps) {
    fail(where, "training.warmup_steps", std::to_string(t.warmup_steps),
         "must be <= training.max_steps = " + std::to_string(t.max_steps));
  }
  if (t.min_lr > t.lr) {
    fail(where, "training.min_lr", config_detail::number_text(t.min_lr),
         "must be in [0, training.lr = " + config_detail::number_text(t.lr) + "]");
  }
}

TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": a training config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "model" && it.key() != "training" && it.key() != "description") {
      throw std::invalid_argument(where + ": unknown top-level field '" + bounded_text(it.key()) +
                                  "' (expected \"model\", \"training\" and optionally \"description\")");
    }
  }
  if (!j.contains("model")) throw std::invalid_argument(where + ": missing the \"model\" section");
  if (!j.contains("training")) throw std::invalid_argument(where + ": missing the \"training\" section");
  TrainConfig c;
  if (j.contains("description")) {
    if (!j.at("description").is_string()) {
      throw std::invalid_argument(where + ": description = " + describe_json(j.at("description")) +
                                  ": must be a string");
    }
    c.description = j.at("description").get<std::string>();
  }
  // The model section is a model config.json; require_all keeps every architecture choice explicit.
  c.model = model_config_from_json(j.at("model"), where + ": model", true);
  const nlohmann::json& training = j.at("training");
  if (!training.is_object()) throw std::invalid_argument(where + ": the \"training\" section must be a JSON object");
  fields_from_json(c.training, training, training_config_fields(), kNaming, where + ": ", false,
                   unknown_training_field);
  validate(c, where);
  return c;
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
  // The declared type decides how the text is read: a string field takes it as it is (a bare
  // word such as sequential), any other field as JSON (3e-4, true). Unknown fields are caught
  // by the strict parser that runs next, which names the file.
  nlohmann::json value;
  const bool known = section == "model" ? field_override_value(model_config_fields(), field, text, value)
                                        : field_override_value(training_config_fields(), field, text, value);
  if (!known) value = override_json(text);
  if (!j.is_object() || (j.contains(section) && !j.at(section).is_object())) {
    throw std::invalid_argument("override '" + assignment + "': the config has no \"" + section +
                                "\" section to change (it must be a JSON object)");
  }
  j[section][field] = std::move(value);
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(path);
  for (const std::string& o : overrides) apply_override(j, o);
  return train_config_from_json(j, path);
}

}  // namespace foundry
