#include "train/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "common/file_io.h"
#include "model/model_io.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace foundry {

namespace {

const char* kStateFile = "train_state.json";
const char* kOptimizerFile = "optimizer.safetensors";
const char* kStateFormat = "foundry-train-state";
const int kStateVersion = 1;

std::string hex_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// Parses a hex float written by hex_double ("inf" included); throws naming the field otherwise.
double parse_hex_double(const nlohmann::json& j, const std::string& where, const char* field) {
  if (!j.is_string()) throw std::invalid_argument(where + ": field '" + field + "' must be a hex-float string");
  const std::string s = j.get<std::string>();
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') {
    throw std::invalid_argument(where + ": field '" + field + "' = " + describe_json(s) + " is not a number");
  }
  return v;
}

uint64_t parse_u64(const nlohmann::json& j, const std::string& where, const std::string& field) {
  if (!j.is_string()) throw std::invalid_argument(where + ": field '" + field + "' must be a decimal string");
  const std::string s = j.get<std::string>();
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 20) {
    throw std::invalid_argument(where + ": field '" + field + "' = " + describe_json(s) +
                                " is not a 64-bit unsigned integer");
  }
  return std::strtoull(s.c_str(), nullptr, 10);
}

const nlohmann::json& require(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw std::invalid_argument(where + ": missing field '" + key + "'");
  return j.at(key);
}

long require_long(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = require(j, key, where);
  if (!v.is_number_integer() || v.get<long>() < 0) {
    throw std::invalid_argument(where + ": field '" + key + "' must be a non-negative integer, got " +
                                describe_json(v));
  }
  return v.get<long>();
}

nlohmann::json state_to_json(const TrainState& s) {
  nlohmann::json rng_words = nlohmann::json::array();
  for (uint64_t w : s.loader.rng.s) rng_words.push_back(std::to_string(w));
  return {
      {"format", kStateFormat},
      {"version", kStateVersion},
      {"step", s.step},
      {"adam_t", s.optimizer.t},
      {"tokens_seen", s.tokens_seen},
      {"data_dir", s.data_dir},
      {"data_rng",
       {{"s", rng_words}, {"has_spare", s.loader.rng.has_spare}, {"spare", hex_double(s.loader.rng.spare)}}},
      {"data_next_batch", std::to_string(s.loader.next_batch)},
      {"best_val_loss", hex_double(s.best_val_loss)},
      {"best_val_loss_readable", std::isfinite(s.best_val_loss) ? nlohmann::json(s.best_val_loss) : nlohmann::json()},
      {"evals_without_improvement", s.evals_without_improvement},
      {"config", to_json(s.config)}};
}

}  // namespace

void save_optimizer_state(const std::string& path, const std::vector<NamedTensor>& params, const AdamW& optimizer) {
  if (optimizer.m.size() != params.size() || optimizer.v.size() != params.size()) {
    throw std::invalid_argument(path + ": the optimizer state does not match the model's parameters");
  }
  std::vector<std::pair<std::string, const Tensor*>> moments;
  for (size_t k = 0; k < params.size(); ++k) moments.push_back({"m." + params[k].name, &optimizer.m[k]});
  for (size_t k = 0; k < params.size(); ++k) moments.push_back({"v." + params[k].name, &optimizer.v[k]});
  save_safetensors(path, moments, {{"format", "foundry-adamw"}, {"adam_t", std::to_string(optimizer.t)}});
}

AdamW load_optimizer_state(const std::string& path, const std::vector<NamedTensor>& params, long adam_t,
                           const std::string& state_path) {
  SafetensorsFile opt = load_safetensors(path);
  std::set<std::string> expected;
  for (const NamedTensor& p : params) {
    expected.insert("m." + p.name);
    expected.insert("v." + p.name);
  }
  for (const auto& [name, tensor] : opt.tensors) {
    if (!expected.count(name)) {
      throw std::invalid_argument(path + ": holds tensor '" + name +
                                  "' that this model has no parameter for (optimizer state for another model?)");
    }
  }
  AdamW optimizer = make_adamw(params);
  optimizer.t = adam_t;
  for (size_t k = 0; k < params.size(); ++k) {
    for (int which = 0; which < 2; ++which) {
      const std::string name = (which == 0 ? "m." : "v.") + params[k].name;
      auto it = opt.tensors.find(name);
      if (it == opt.tensors.end()) {
        throw std::invalid_argument(path + ": missing tensor '" + name + "' (optimizer state for another model?)");
      }
      if (it->second.shape != params[k].value->shape) {
        throw std::invalid_argument(path + ": tensor '" + name + "' has shape " + shape_str(it->second.shape) +
                                    " but the parameter has shape " + shape_str(params[k].value->shape) +
                                    " (optimizer state for another model?)");
      }
      (which == 0 ? optimizer.m[k] : optimizer.v[k]) = std::move(it->second);
    }
  }
  auto meta = opt.metadata.find("adam_t");
  if (meta == opt.metadata.end() || meta->second != std::to_string(adam_t)) {
    throw std::invalid_argument(path + ": its update count does not match " + state_path +
                                " (files from different checkpoints?)");
  }
  return optimizer;
}

std::string checkpoint_path(const std::string& run_dir, long step) {
  char name[32];
  std::snprintf(name, sizeof name, "ckpt-%08ld", step);
  return (fs::path(run_dir) / name).string();
}

void save_model_with_tokenizer(const Model& model, const std::string& dir, const Tokenizer* tokenizer) {
  save_model(model, dir);
  if (tokenizer) tokenizer->save_to_dir(dir);
}

// ANCHOR: save_checkpoint
void save_checkpoint(const std::string& dir, Model& model, const TrainState& state, const Tokenizer* tokenizer) {
  const std::vector<NamedTensor> params = model.parameters();
  if (state.optimizer.m.size() != params.size() || state.optimizer.v.size() != params.size()) {
    throw std::invalid_argument(dir + ": the optimizer state does not match the model's parameters");
  }
  // Everything goes into a temporary directory first; the rename at the end publishes it.
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  save_model_with_tokenizer(model, tmp, tokenizer);
  save_optimizer_state((fs::path(tmp) / kOptimizerFile).string(), params, state.optimizer);
  write_file_atomic((fs::path(tmp) / kStateFile).string(), state_to_json(state).dump(2) + "\n");
  publish_directory(tmp, dir);  // one rename: the checkpoint appears whole or not at all
}
// ANCHOR_END: save_checkpoint

Checkpoint load_checkpoint(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::invalid_argument(dir + ": not a checkpoint directory");
  // 1. The model: load_model checks the config and every tensor.
  Checkpoint ck{load_model(dir), TrainState{}};
  TrainState& s = ck.state;

  // 2. The state file.
  const std::string state_path = (fs::path(dir) / kStateFile).string();
  nlohmann::json j = read_json_file(state_path);
  if (!j.is_object() || j.value("format", "") != kStateFormat) {
    throw std::invalid_argument(state_path + ": not a training state file (format is not \"" + kStateFormat + "\")");
  }
  if (j.value("version", -1) != kStateVersion) {
    throw std::invalid_argument(state_path + ": version " + describe_json(require(j, "version", state_path)) +
                                ", expected " + std::to_string(kStateVersion));
  }
  s.config = train_config_from_json(require(j, "config", state_path), state_path + ": config");
  if (to_json(s.config.model) != to_json(ck.model.config)) {
    throw std::invalid_argument(state_path + ": its config describes another model than " + dir +
                                "/config.json (the checkpoint is mixed up from two runs)");
  }
  s.step = require_long(j, "step", state_path);
  s.tokens_seen = require_long(j, "tokens_seen", state_path);
  const nlohmann::json& data_dir = require(j, "data_dir", state_path);
  if (!data_dir.is_string()) throw std::invalid_argument(state_path + ": field 'data_dir' must be a string");
  s.data_dir = data_dir.get<std::string>();
  const nlohmann::json& rng = require(j, "data_rng", state_path);
  const nlohmann::json& words = require(rng, "s", state_path + ": data_rng");
  if (!words.is_array() || words.size() != 4) {
    throw std::invalid_argument(state_path + ": data_rng.s must hold the generator's 4 state words");
  }
  for (int i = 0; i < 4; ++i) s.loader.rng.s[i] = parse_u64(words[i], state_path, "data_rng.s");
  if ((s.loader.rng.s[0] | s.loader.rng.s[1] | s.loader.rng.s[2] | s.loader.rng.s[3]) == 0) {
    throw std::invalid_argument(state_path + ": data_rng.s is all zero, which is not a valid generator state");
  }
  const nlohmann::json& has_spare = require(rng, "has_spare", state_path + ": data_rng");
  if (!has_spare.is_boolean()) throw std::invalid_argument(state_path + ": data_rng.has_spare must be true or false");
  s.loader.rng.has_spare = has_spare.get<bool>();
  s.loader.rng.spare = parse_hex_double(require(rng, "spare", state_path), state_path, "data_rng.spare");
  s.loader.next_batch = parse_u64(require(j, "data_next_batch", state_path), state_path, "data_next_batch");
  s.best_val_loss = parse_hex_double(require(j, "best_val_loss", state_path), state_path, "best_val_loss");
  const long evals = require_long(j, "evals_without_improvement", state_path);
  if (evals > std::numeric_limits<int>::max()) {  // range-checked, never cast into something else
    throw std::invalid_argument(state_path + ": field 'evals_without_improvement' = " + std::to_string(evals) +
                                " is out of range");
  }
  s.evals_without_improvement = static_cast<int>(evals);
  const long adam_t = require_long(j, "adam_t", state_path);

  // 3. The moments: exactly one m and one v per parameter, each shaped like it.
  s.optimizer =
      load_optimizer_state((fs::path(dir) / kOptimizerFile).string(), ck.model.parameters(), adam_t, state_path);
  return ck;
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<long, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return {};
  for (const fs::directory_entry& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    // "ckpt-" then exactly 8 digits: skips ckpt-*.tmp and ckpt-*.old left by a crash.
    if (!e.is_directory() || name.size() != 13 || name.compare(0, 5, "ckpt-") != 0 ||
        name.find_first_not_of("0123456789", 5) != std::string::npos) {
      continue;
    }
    found.push_back({std::stol(name.substr(5)), e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (const auto& f : found) paths.push_back(f.second);
  return paths;
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / kStateFile)) return path;
  std::vector<std::string> all = list_checkpoints(path);
  if (all.empty()) {
    throw std::invalid_argument(path + ": neither a checkpoint (no " + kStateFile +
                                ") nor a run directory holding ckpt-* checkpoints");
  }
  return all.back();
}

void prune_checkpoints(const std::string& run_dir, int keep) {
  std::vector<std::string> all = list_checkpoints(run_dir);
  for (size_t i = 0; i + keep < all.size(); ++i) remove_directory(all[i]);
}

namespace {

// After a rename the directory that holds the names must reach the disk too, or a power cut
// could bring back the old names.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void publish_directory(const std::string& tmp, const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::rename(tmp, dir);
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp, ec);  // now holds the previous contents of `dir`
  } else {
    // A file system without RENAME_EXCHANGE: move the old one aside first. A kill between the
    // two renames leaves it as "<dir>.old", which remove_leftovers cleans up.
    const std::string old = dir + ".old";
    fs::remove_all(old, ec);
    fs::rename(dir, old);
    fs::rename(tmp, dir);
    fs::remove_all(old, ec);
  }
  sync_directory(fs::path(dir).parent_path());
}

void remove_directory(const std::string& dir) {
  const std::string old = dir + ".old";
  std::error_code ec;
  fs::remove_all(old, ec);
  fs::rename(dir, old);
  sync_directory(fs::path(dir).parent_path());
  fs::remove_all(old, ec);
}

void remove_leftovers(const std::string& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_directory(ec) && (ext == ".tmp" || ext == ".old")) stale.push_back(entry.path());
  }
  for (const fs::path& p : stale) fs::remove_all(p, ec);
}

}  // namespace foundry
