// The training loop on a tiny model and synthetic data: the step called by hand, resume bit for
// bit, checkpoints, corruption, NaN stop, SIGINT and SIGTERM to the foundry program, early
// stopping, --init-from, the metrics log.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/parallel.h"
#include "model/model_io.h"
#include "model/safetensors.h"
#include "tests/common/foundry_child.h"
#include "tests/common/test_helpers.h"
#include "train/checkpoint.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/token_file.h"
#include "train/trainer.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) { return test::fresh_dir("test_train_tmp/" + name); }

// Synthetic text over 32 tokens with structure to learn: mostly "the next token is this one + 1",
// sometimes a random jump (seeded). `reverse` counts down instead, for a validation split that
// training makes worse.
std::vector<int> synthetic_tokens(size_t n, uint64_t seed, bool reverse = false) {
  Rng rng(seed);
  std::vector<int> ids(n);
  int cur = 0;
  for (size_t i = 0; i < n; ++i) {
    ids[i] = cur;
    cur = rng.uniform() < 0.1 ? static_cast<int>(rng.below(32)) : (cur + (reverse ? 31 : 1)) % 32;
  }
  return ids;
}

std::string make_data(const std::string& name, bool reversed_val = false) {
  const std::string dir = temp_dir(name);
  save_tokens(dir + "/train.bin", synthetic_tokens(4000, 1), 32);
  save_tokens(dir + "/val.bin", synthetic_tokens(800, 2, reversed_val), 32);
  return dir;
}

TrainConfig tiny_config() {
  TrainConfig c;
  c.model.dim = 16;
  c.model.n_layers = 2;
  c.model.n_heads = 2;
  c.model.n_kv_heads = 1;
  c.model.vocab_size = 32;
  c.model.hidden_dim = 32;
  c.model.max_seq_len = 8;
  TrainingSection& t = c.training;
  t.batch_size = 4;
  t.seq_len = 8;
  t.max_steps = 12;
  t.lr = 1e-2;
  t.min_lr = 1e-3;
  t.warmup_steps = 3;
  t.eval_interval = 4;
  t.eval_batches = 3;
  t.checkpoint_interval = 100;
  t.keep_checkpoints = 3;
  t.log_interval = 1;
  t.seed = 7;
  return c;
}

TrainOptions quiet_options(const std::string& data, const std::string& out) {
  TrainOptions o;
  o.data_dir = data;
  o.out_dir = out;
  o.quiet = true;
  return o;
}

void corrupt_file(const std::string& path, const std::function<void(std::string&)>& edit) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  edit(bytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string load_error(const std::string& dir) {
  try {
    load_checkpoint(dir);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("training lowers the loss and writes the run directory", "[train][loop]") {
  set_num_threads(1);
  const std::string data = make_data("loop_data");
  const std::string out = temp_dir("loop_run");
  TrainConfig c = tiny_config();
  c.training.max_steps = 40;
  c.training.eval_interval = 10;
  c.training.checkpoint_interval = 10;
  c.training.keep_checkpoints = 2;
  TrainResult r = train(c, quiet_options(data, out));
  CHECK(r.stop_reason == "max_steps");
  CHECK(r.step == 40);
  MetricsSeries m = read_metrics(out + "/metrics.jsonl");
  REQUIRE(m.train.size() == 40);
  CHECK(m.train.front().step == 1);
  CHECK(m.train.back().step == 40);
  REQUIRE(m.eval.size() == 5);  // steps 0, 10, 20, 30, 40
  CHECK(m.eval.front().step == 0);
  CHECK(m.eval.front().val_loss == Approx(std::log(32.0)).margin(0.3));  // untrained: about uniform
  CHECK(m.eval.back().val_loss < m.eval.front().val_loss - 1.0);         // it learned the +1 rule
  CHECK(r.best_val_loss <= m.eval.back().val_loss);
  // keep_checkpoints = 2: only the newest two remain.
  std::vector<std::string> ckpts = list_checkpoints(out);
  REQUIRE(ckpts.size() == 2);
  CHECK(fs::path(ckpts[0]).filename() == "ckpt-00000030");
  CHECK(fs::path(ckpts[1]).filename() == "ckpt-00000040");
  CHECK(fs::exists(out + "/best/model.safetensors"));
  CHECK(fs::exists(out + "/model/model.safetensors"));
  CHECK(fs::exists(out + "/config.json"));
  CHECK_FALSE(fs::exists(out + "/ckpt-00000040.tmp"));
  // The plot of this run is a complete SVG document with both curves.
  const std::string svg = loss_curve_svg(m, "test run");
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(svg.find("validation loss") != std::string::npos);
  CHECK(svg.find("<polyline") != std::string::npos);
}

TEST_CASE("a run stopped halfway and resumed ends with the same weights, bit for bit", "[train][resume]") {
  set_num_threads(1);
  const std::string data = make_data("resume_data");
  for (const char* sampling : {"random", "sequential"}) {
    for (int accum : {1, 2}) {
      DYNAMIC_SECTION(sampling << " sampling, grad_accum " << accum) {
        TrainConfig c = tiny_config();
        c.training.batch_order = sampling;
        c.training.grad_accum = accum;
        c.training.patience = 10;
        const std::string straight = temp_dir("resume_straight");
        const std::string split = temp_dir("resume_split");
        TrainResult full = train(c, quiet_options(data, straight));
        REQUIRE(full.step == 12);

        TrainOptions first = quiet_options(data, split);
        first.stop_at = 6;
        TrainResult half = train(c, first);
        REQUIRE(half.stop_reason == "stop_at");
        REQUIRE(half.step == 6);
        TrainOptions second = quiet_options("", split);  // the data directory comes from the checkpoint
        second.resume = split;
        TrainResult rest = train(resume_config(split, {}), second);
        REQUIRE(rest.step == 12);

        Checkpoint a = load_checkpoint(full.last_checkpoint);
        Checkpoint b = load_checkpoint(rest.last_checkpoint);
        std::vector<NamedTensor> pa = a.model.parameters(), pb = b.model.parameters();
        REQUIRE(pa.size() == pb.size());
        for (size_t k = 0; k < pa.size(); ++k) {
          INFO(pa[k].name);
          REQUIRE(pa[k].value->data == pb[k].value->data);
          REQUIRE(a.state.optimizer.m[k].data == b.state.optimizer.m[k].data);
          REQUIRE(a.state.optimizer.v[k].data == b.state.optimizer.v[k].data);
        }
        CHECK(a.state.optimizer.t == b.state.optimizer.t);
        CHECK(a.state.best_val_loss == b.state.best_val_loss);
        // The metrics logs agree too: the resumed log continues the first half's.
        MetricsSeries ma = read_metrics(straight + "/metrics.jsonl"), mb = read_metrics(split + "/metrics.jsonl");
        REQUIRE(ma.train.size() == mb.train.size());
        for (size_t i = 0; i < ma.train.size(); ++i) REQUIRE(ma.train[i].loss == mb.train[i].loss);
        REQUIRE(ma.eval.size() == mb.eval.size());
      }
    }
  }
}

TEST_CASE("damaged or mismatched checkpoints are rejected with a clear message", "[train][checkpoint]") {
  set_num_threads(1);
  const std::string data = make_data("corrupt_data");
  const std::string out = temp_dir("corrupt_run");
  TrainConfig c = tiny_config();
  c.training.max_steps = 2;
  c.training.warmup_steps = 1;
  const std::string good = train(c, quiet_options(data, out)).last_checkpoint;
  REQUIRE(load_error(good).empty());

  // A checkpoint of another model (dim 24), for its optimizer file.
  TrainConfig other = c;
  other.model.dim = 24;
  other.model.hidden_dim = 48;
  const std::string other_ckpt = train(other, quiet_options(data, temp_dir("corrupt_other"))).last_checkpoint;

  auto fresh_copy = [&](const std::string& name) {
    const std::string dir = temp_dir("corrupt_" + name);
    fs::remove_all(dir);
    fs::copy(good, dir, fs::copy_options::recursive);
    return dir;
  };
  std::string dir = fresh_copy("trunc_model");
  corrupt_file(dir + "/model.safetensors", [](std::string& b) { b.resize(b.size() - 10); });
  CHECK_THAT(load_error(dir), Catch::Contains("model.safetensors"));

  dir = fresh_copy("trunc_opt");
  corrupt_file(dir + "/optimizer.safetensors", [](std::string& b) { b.resize(b.size() / 2); });
  CHECK_THAT(load_error(dir), Catch::Contains("optimizer.safetensors"));

  dir = fresh_copy("other_opt");
  fs::copy_file(other_ckpt + "/optimizer.safetensors", dir + "/optimizer.safetensors",
                fs::copy_options::overwrite_existing);
  CHECK_THAT(load_error(dir), Catch::Contains("optimizer state for another model"));

  dir = fresh_copy("missing_moment");
  {
    SafetensorsFile opt = load_safetensors(good + "/optimizer.safetensors");
    std::vector<std::pair<std::string, const Tensor*>> kept;
    for (const auto& [name, t] : opt.tensors) {
      if (name != "v.norm.weight") kept.push_back({name, &t});
    }
    save_safetensors(dir + "/optimizer.safetensors", kept, opt.metadata);
  }
  CHECK_THAT(load_error(dir), Catch::Contains("missing tensor 'v.norm.weight'"));

  dir = fresh_copy("wrong_shape");
  {
    SafetensorsFile opt = load_safetensors(good + "/optimizer.safetensors");
    opt.tensors["m.norm.weight"] = Tensor({17});
    std::vector<std::pair<std::string, const Tensor*>> all;
    for (const auto& [name, t] : opt.tensors) all.push_back({name, &t});
    save_safetensors(dir + "/optimizer.safetensors", all, opt.metadata);
  }
  CHECK_THAT(load_error(dir), Catch::Contains("'m.norm.weight' has shape (17)"));

  dir = fresh_copy("trunc_state");
  corrupt_file(dir + "/train_state.json", [](std::string& b) { b.resize(b.size() / 2); });
  CHECK_THAT(load_error(dir), Catch::Contains("train_state.json: not valid JSON"));

  dir = fresh_copy("state_field");
  corrupt_file(dir + "/train_state.json", [](std::string& b) {
    nlohmann::json j = nlohmann::json::parse(b);
    j.erase("data_rng");
    b = j.dump();
  });
  CHECK_THAT(load_error(dir), Catch::Contains("missing field 'data_rng'"));

  dir = fresh_copy("state_model");
  corrupt_file(dir + "/train_state.json", [](std::string& b) {
    nlohmann::json j = nlohmann::json::parse(b);
    j["config"]["model"]["n_layers"] = 3;
    b = j.dump();
  });
  CHECK_THAT(load_error(dir), Catch::Contains("another model"));

  dir = fresh_copy("adam_t");
  corrupt_file(dir + "/train_state.json", [](std::string& b) {
    nlohmann::json j = nlohmann::json::parse(b);
    j["adam_t"] = 99;
    b = j.dump();
  });
  CHECK_THAT(load_error(dir), Catch::Contains("does not match"));

  // Resuming from a damaged checkpoint fails before anything is written to the run directory.
  dir = fresh_copy("resume_bad");
  corrupt_file(dir + "/optimizer.safetensors", [](std::string& b) { b.resize(b.size() - 1); });
  TrainOptions o = quiet_options(data, temp_dir("corrupt_resume_out"));
  o.resume = dir;
  CHECK_THROWS_WITH(train(c, o), Catch::Contains("optimizer.safetensors"));
  CHECK_FALSE(fs::exists(o.out_dir + "/metrics.jsonl"));
  CHECK_THROWS_WITH(resume_config(dir, {"model.dim=32"}), Catch::Contains("cannot change when resuming"));
}

TEST_CASE("train() runs training_step in a loop: the same weights as the step called by hand", "[train][step]") {
  set_num_threads(1);
  const std::string data = make_data("step_data");
  TrainConfig c = tiny_config();
  c.training.grad_accum = 2;
  const TrainResult r = train(c, quiet_options(data, temp_dir("step_run")));
  REQUIRE(r.step == c.training.max_steps);

  // The same run without the loop: weights from Rng(seed), batches from Rng(seed + 1).
  const TrainingSection& tc = c.training;
  std::vector<int> tokens = load_tokens(data + "/train.bin");
  Model model = make_model(c.model);
  Rng init(tc.seed);
  init_weights(model, init);
  AdamW opt = make_adamw(model.parameters());
  DataLoader loader = make_data_loader(tokens, tc.batch_size, tc.seq_len, BatchOrder::random, tc.seed + 1, "train");
  Tape tape;
  Batch batch;
  double last_loss = NAN;
  for (long step = 0; step < tc.max_steps; ++step) {
    const StepResult s = training_step(model, opt, tape, loader, batch, tc, step);
    REQUIRE(s.updated);
    last_loss = s.loss;
  }
  CHECK(last_loss == r.last_loss);
  Checkpoint ck = load_checkpoint(r.last_checkpoint);
  std::vector<NamedTensor> pa = model.parameters(), pb = ck.model.parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t k = 0; k < pa.size(); ++k) {
    INFO(pa[k].name);
    REQUIRE(pa[k].value->data == pb[k].value->data);
    REQUIRE(opt.m[k].data == ck.state.optimizer.m[k].data);
  }
}

TEST_CASE("a non-finite loss leaves the weights and the optimizer untouched", "[train][step][nan]") {
  set_num_threads(1);
  TrainConfig c = tiny_config();
  const TrainingSection& tc = c.training;
  const std::vector<int> tokens = synthetic_tokens(2000, 3);
  Model model = make_model(c.model);
  Rng init(1);
  init_weights(model, init);
  AdamW opt = make_adamw(model.parameters());
  DataLoader loader = make_data_loader(tokens, tc.batch_size, tc.seq_len, BatchOrder::random, 2, "tokens");
  Tape tape;
  tape.set_reuse_grads(true);
  Batch batch;
  for (long step = 0; step < 2; ++step) REQUIRE(training_step(model, opt, tape, loader, batch, tc, step).updated);

  (*model.weights.tok_embeddings)[3] = NAN;  // poison one weight
  std::vector<std::vector<real>> weights_before;
  for (const NamedTensor& p : model.parameters()) weights_before.push_back(p.value->data);
  const AdamW opt_before = opt;
  const StepResult s = training_step(model, opt, tape, loader, batch, tc, 2);
  CHECK_FALSE(s.updated);
  CHECK(std::isnan(s.loss));
  CHECK(s.lr == learning_rate(LrSchedule{tc.lr, tc.min_lr, tc.warmup_steps, tc.max_steps}, 2));
  CHECK(opt.t == opt_before.t);
  std::vector<NamedTensor> params = model.parameters();
  for (size_t k = 0; k < params.size(); ++k) {
    INFO(params[k].name);
    // memcmp: the poisoned NaN must stay bit for bit too (NaN != NaN as a number).
    REQUIRE(std::memcmp(params[k].value->ptr(), weights_before[k].data(), weights_before[k].size() * sizeof(real)) ==
            0);
    REQUIRE(opt.m[k].data == opt_before.m[k].data);
    REQUIRE(opt.v[k].data == opt_before.v[k].data);
  }
}

TEST_CASE("a NaN loss stops training, names the step and keeps the last good checkpoint", "[train][nan]") {
  set_num_threads(1);
  const std::string data = make_data("nan_data");
  const std::string out = temp_dir("nan_run");
  TrainConfig c = tiny_config();
  c.training.checkpoint_interval = 5;
  TrainOptions first = quiet_options(data, out);
  first.stop_at = 5;
  REQUIRE(train(c, first).last_checkpoint == checkpoint_path(out, 5));
  // Poison one weight of the checkpoint: the resumed run's first step (step 6) meets a NaN loss.
  const std::string weights = checkpoint_path(out, 5) + "/model.safetensors";
  {
    SafetensorsFile f = load_safetensors(weights);
    f.tensors.at("tok_embeddings.weight")[3] = NAN;
    std::vector<std::pair<std::string, const Tensor*>> all;
    for (const auto& [name, t] : f.tensors) all.push_back({name, &t});
    save_safetensors(weights, all, f.metadata);
  }
  TrainOptions o = quiet_options(data, out);
  o.resume = out;
  CHECK_THROWS_WITH(train(resume_config(out, {}), o), Catch::Contains("step 6: the loss is nan") &&
                                                          Catch::Contains("ckpt-00000005") &&
                                                          Catch::Contains("before updating"));
  std::vector<std::string> ckpts = list_checkpoints(out);
  REQUIRE(ckpts.size() == 1);  // nothing newer was written
  CHECK(load_checkpoint(ckpts[0]).state.step == 5);
  // The metrics log records the failed step with a null loss.
  MetricsSeries m = read_metrics(out + "/metrics.jsonl");
  REQUIRE(m.train.size() == 6);
  CHECK(std::isnan(m.train.back().loss));
}

namespace {

// The number of training steps metrics.jsonl has logged so far: when `foundry train` is in its loop.
size_t logged_train_steps(const std::string& metrics_path) {
  std::ifstream in(metrics_path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find("\"kind\":\"train\"") != std::string::npos;
  return n;
}

const std::string kChildLog = std::string(FOUNDRY_BINARY_DIR) + "/test_train_tmp/child_output.txt";

}  // namespace

TEST_CASE("SIGINT and SIGTERM save a checkpoint; the resumed run ends with the same bits", "[train][signal]") {
  const std::string data = make_data("signal_data");
  // Long enough that the signal arrives mid-run even on a busy machine.
  TrainConfig c = tiny_config();
  c.model.dim = 32;
  c.model.hidden_dim = 64;
  c.model.max_seq_len = 16;
  c.training.seq_len = 16;
  c.training.max_steps = 1500;
  c.training.warmup_steps = 10;
  c.training.eval_interval = 500;
  c.training.checkpoint_interval = 1000;
  c.training.log_interval = 1000;
  const std::string config_path = temp_dir("signal_config") + "/config.json";
  std::ofstream(config_path) << to_json(c).dump(2);
  auto train_args = [&](const std::string& out) {
    return std::vector<std::string>{"train", "--config", config_path, "--data", data, "--out", out, "--threads", "1"};
  };
  const std::string straight = temp_dir("signal_straight");
  test::ChildRun full = test::run_foundry(train_args(straight), kChildLog);
  INFO(full.output);
  REQUIRE(WIFEXITED(full.status));
  REQUIRE(WEXITSTATUS(full.status) == 0);

  for (int sig : {SIGINT, SIGTERM}) {
    DYNAMIC_SECTION((sig == SIGINT ? "SIGINT" : "SIGTERM")) {
      const std::string out = temp_dir(sig == SIGINT ? "signal_int" : "signal_term");
      const std::string metrics = out + "/metrics.jsonl";
      test::ChildRun stopped =
          test::run_foundry(train_args(out), kChildLog, sig, [&] { return logged_train_steps(metrics) >= 20; });
      INFO(stopped.output);
      REQUIRE(WIFEXITED(stopped.status));  // it saved and exited instead of dying of the signal
      CHECK(WEXITSTATUS(stopped.status) == 0);
      CHECK_THAT(stopped.output, Catch::Contains("interrupted at step"));
      // The last lines name both models: the best evaluated one and the current weights.
      CHECK_THAT(stopped.output, Catch::Contains(out + "/best   the best evaluated model") &&
                                     Catch::Contains(out + "/model  the weights at step") &&
                                     Catch::Contains("not evaluated") &&
                                     Catch::Contains("foundry train --resume " + out));
      std::vector<std::string> ckpts = list_checkpoints(out);
      REQUIRE(ckpts.size() == 1);
      const long step = load_checkpoint(ckpts[0]).state.step;
      CHECK(step >= 20);
      CHECK(step < c.training.max_steps);
      CHECK(static_cast<long>(read_metrics(out + "/metrics.jsonl").train.size()) == step);

      test::ChildRun resumed = test::run_foundry({"train", "--resume", out, "--threads", "1"}, kChildLog);
      INFO(resumed.output);
      REQUIRE(WIFEXITED(resumed.status));
      REQUIRE(WEXITSTATUS(resumed.status) == 0);
      const std::string last = fs::path(checkpoint_path(out, c.training.max_steps)).filename().string();
      test::check_same_bytes(out, straight, {"model/model.safetensors", last + "/optimizer.safetensors"});
    }
  }
}

TEST_CASE("a new run refuses a directory that holds a run; --overwrite moves the old run aside", "[train][rundir]") {
  set_num_threads(1);
  const std::string data = make_data("rundir_data");
  const std::string out = temp_dir("rundir_run");
  TrainConfig c = tiny_config();
  c.training.max_steps = 4;
  const TrainResult first = train(c, quiet_options(data, out));
  const std::string metrics_before = read_whole(out + "/metrics.jsonl");

  // A second run into it is refused before anything is touched.
  CHECK_THROWS_WITH(train(c, quiet_options(data, out)), Catch::Contains(out + " already holds a training run") &&
                                                            Catch::Contains("--resume " + out) &&
                                                            Catch::Contains("--overwrite"));
  CHECK(read_whole(out + "/metrics.jsonl") == metrics_before);
  CHECK(list_checkpoints(out).size() == 1);

  // A directory with other files is refused too, without the offer to move it.
  const std::string other = temp_dir("rundir_other");
  std::ofstream(other + "/notes.txt") << "mine\n";
  CHECK_THROWS_WITH(train(c, quiet_options(data, other)), Catch::Contains("does not hold a training run"));
  TrainOptions other_overwrite = quiet_options(data, other);
  other_overwrite.overwrite = true;
  CHECK_THROWS(train(c, other_overwrite));
  CHECK(fs::exists(other + "/notes.txt"));

  // --overwrite: the old run is renamed, whole, and the new one starts in an empty directory.
  TrainOptions o = quiet_options(data, out);
  o.overwrite = true;
  c.training.max_steps = 2;
  c.training.warmup_steps = 1;
  const TrainResult second = train(c, o);
  CHECK(second.step == 2);
  std::vector<fs::path> aside;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path())) {
    if (e.path().filename().string().rfind("rundir_run.old-", 0) == 0) aside.push_back(e.path());
  }
  REQUIRE(aside.size() == 1);
  CHECK(read_whole((aside[0] / "metrics.jsonl").string()) == metrics_before);
  CHECK(fs::exists(aside[0] / "best/model.safetensors"));
  CHECK(fs::path(list_checkpoints(aside[0].string()).at(0)).filename() == fs::path(first.last_checkpoint).filename());
  CHECK(read_metrics(out + "/metrics.jsonl").train.size() == 2);
  CHECK(list_checkpoints(out).size() == 1);
  fs::remove_all(aside[0]);
}

TEST_CASE("--resume with a damaged newest checkpoint names the intact older one", "[train][checkpoint]") {
  set_num_threads(1);
  const std::string data = make_data("damaged_data");
  const std::string out = temp_dir("damaged_run");
  TrainConfig c = tiny_config();
  c.training.checkpoint_interval = 4;  // checkpoints at 4, 8 and 12
  train(c, quiet_options(data, out));
  REQUIRE(list_checkpoints(out).size() == 3);
  const std::string newest = checkpoint_path(out, 12), intact = checkpoint_path(out, 8);

  // Damaged weights or optimizer state: found when train() loads the checkpoint.
  corrupt_file(newest + "/optimizer.safetensors", [](std::string& b) { b.resize(b.size() / 2); });
  TrainOptions o = quiet_options("", out);
  o.resume = out;
  CHECK_THROWS_WITH(train(resume_config(out, {}), o),
                    Catch::Contains("optimizer.safetensors") && Catch::Contains(newest + " is damaged") &&
                        Catch::Contains("The older checkpoint " + intact + " is intact") &&
                        Catch::Contains("foundry train --resume " + intact));
  // A damaged state file: found already when the config is read from it.
  corrupt_file(newest + "/train_state.json", [](std::string& b) { b.resize(b.size() / 2); });
  CHECK_THROWS_WITH(resume_config(out, {}), Catch::Contains("train_state.json: not valid JSON") &&
                                                Catch::Contains("foundry train --resume " + intact));
  // What the message says works: the run continues from step 8 to its end.
  o.resume = intact;
  const TrainResult r = train(resume_config(intact, {}), o);
  CHECK(r.step == 12);
  CHECK(load_checkpoint(checkpoint_path(out, 12)).state.step == 12);  // the damaged one was replaced

  // With every older checkpoint damaged too, the message says so.
  corrupt_file(newest + "/model.safetensors", [](std::string& b) { b.resize(10); });
  corrupt_file(intact + "/model.safetensors", [](std::string& b) { b.resize(10); });
  corrupt_file(checkpoint_path(out, 4) + "/model.safetensors", [](std::string& b) { b.resize(10); });
  o.resume = out;
  CHECK_THROWS_WITH(train(c, o), Catch::Contains("no older checkpoint beside it is intact"));
}

TEST_CASE("early stopping ends the run when validation stops improving", "[train][early]") {
  set_num_threads(1);
  // Validation text counts down while training text counts up: learning hurts validation.
  const std::string data = make_data("early_data", /*reversed_val=*/true);
  TrainConfig c = tiny_config();
  c.training.max_steps = 200;
  c.training.eval_interval = 5;
  c.training.patience = 2;
  TrainResult r = train(c, quiet_options(data, temp_dir("early_run")));
  CHECK(r.stop_reason == "early_stopping");
  CHECK(r.step < 200);
  CHECK(r.last_val_loss > r.best_val_loss);
}

TEST_CASE("--init-from starts from a model's weights with a fresh optimizer", "[train][init]") {
  set_num_threads(1);
  const std::string data = make_data("init_data");
  TrainConfig c = tiny_config();
  c.training.max_steps = 20;
  const std::string first = temp_dir("init_first");
  const TrainResult before = train(c, quiet_options(data, first));

  c.training.max_steps = 3;
  TrainOptions o = quiet_options(data, temp_dir("init_second"));
  o.init_from = first + "/best";
  TrainResult r = train(c, o);
  Checkpoint ck = load_checkpoint(r.last_checkpoint);
  CHECK(ck.state.step == 3);
  CHECK(ck.state.optimizer.t == 3);  // fresh: three updates, not 23
  MetricsSeries m = read_metrics(o.out_dir + "/metrics.jsonl");
  REQUIRE_FALSE(m.eval.empty());
  // The step-0 evaluation is that of the loaded weights: exactly the first run's best.
  CHECK(m.eval.front().val_loss == before.best_val_loss);
  CHECK(before.best_val_loss < std::log(32.0) - 0.5);

  TrainConfig wrong = c;
  wrong.model.n_layers = 3;
  o.out_dir = temp_dir("init_wrong");
  CHECK_THROWS_WITH(train(wrong, o), Catch::Contains("another architecture") &&
                                         Catch::Contains("model.n_layers is 2 in " + first + "/best/config.json") &&
                                         Catch::Contains("but 3 in the training config"));
}

TEST_CASE("data whose ids exceed the model's vocabulary is refused", "[train][loop]") {
  const std::string data = temp_dir("vocab_data");
  save_tokens(data + "/train.bin", synthetic_tokens(500, 1), 32);
  save_tokens(data + "/val.bin", {1, 2, 3, 40, 5, 6, 7, 8, 9, 10}, 64);
  CHECK_THROWS_WITH(train(tiny_config(), quiet_options(data, temp_dir("vocab_run"))),
                    Catch::Contains("val.bin: token 3 has id 40 but model.vocab_size = 32"));
}

TEST_CASE("plot ticks fall on round numbers; the metrics reader tolerates only a cut last line", "[train][plot]") {
  CHECK(nice_ticks(0, 200, 8) == std::vector<double>{0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200});
  const std::vector<double> y = nice_ticks(3.9, 8.6, 7);
  REQUIRE(y.size() == 10);
  CHECK(y.front() == Approx(4.0));
  CHECK(y[1] - y[0] == Approx(0.5));
  CHECK(y.back() == Approx(8.5));
  CHECK(nice_ticks(0, 1000, 5) == std::vector<double>{0, 200, 400, 600, 800, 1000});

  const std::string dir = temp_dir("metrics");
  std::ofstream(dir + "/ok.jsonl") << "{\"kind\":\"train\",\"step\":1,\"loss\":5.0}\n"
                                      "{\"kind\":\"eval\",\"step\":1,\"val_loss\":4.5}\n"
                                      "{\"kind\":\"train\",\"step\":2,\"lo";  // a run killed mid-write
  MetricsSeries m = read_metrics(dir + "/ok.jsonl");
  CHECK(m.train.size() == 1);
  CHECK(m.eval.size() == 1);
  CHECK(m.eval[0].val_loss == 4.5);
  std::ofstream(dir + "/bad.jsonl") << "{\"kind\":\"train\",\"step\":1,\"loss\":5.0}\nnot json\n"
                                       "{\"kind\":\"train\",\"step\":2,\"loss\":4.0}\n";
  CHECK_THROWS_WITH(read_metrics(dir + "/bad.jsonl"), Catch::Contains("line 2"));
  CHECK_THROWS_WITH(loss_curve_svg(MetricsSeries{}, "empty"), Catch::Contains("no finite loss"));
  // Resuming at step 1 drops what the interrupted run logged after it.
  truncate_metrics(dir + "/ok.jsonl", 1);
  CHECK(read_metrics(dir + "/ok.jsonl").train.size() == 1);
  std::ofstream(dir + "/ok.jsonl", std::ios::app) << "{\"kind\":\"train\",\"step\":7,\"loss\":1.0}\n";
  truncate_metrics(dir + "/ok.jsonl", 1);
  CHECK(read_metrics(dir + "/ok.jsonl").train.size() == 1);
}
