// The training loop on a tiny model and synthetic data: resume bit for bit, checkpoints,
// corruption, NaN stop, Ctrl-C, early stopping, --init-from, the metrics log.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "engine/parallel.h"
#include "model/model_io.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/token_file.h"
#include "train/trainer.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  fs::path dir = fs::path(FOUNDRY_BINARY_DIR) / "test_train_tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

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
  TrainingConfig& t = c.training;
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
        c.training.sampling = sampling;
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

TEST_CASE("a NaN loss stops training, names the step and keeps the last good checkpoint", "[train][nan]") {
  set_num_threads(1);
  const std::string data = make_data("nan_data");
  const std::string out = temp_dir("nan_run");
  TrainConfig c = tiny_config();
  c.training.checkpoint_interval = 5;
  TrainOptions o = quiet_options(data, out);
  o.before_step = [](long step, Model& model) {
    if (step == 7) (*model.weights.tok_embeddings)[3] = NAN;  // poison one weight
  };
  CHECK_THROWS_WITH(train(c, o), Catch::Contains("step 7: the loss is nan") &&
                                     Catch::Contains("ckpt-00000005") && Catch::Contains("before updating"));
  std::vector<std::string> ckpts = list_checkpoints(out);
  REQUIRE(ckpts.size() == 1);
  Checkpoint ck = load_checkpoint(ckpts[0]);
  CHECK(ck.state.step == 5);
  for (NamedTensor& p : ck.model.parameters()) {
    for (real x : p.value->data) REQUIRE(std::isfinite(x));
  }
  // The metrics log records the failed step with a null loss.
  MetricsSeries m = read_metrics(out + "/metrics.jsonl");
  REQUIRE(m.train.size() == 7);
  CHECK(std::isnan(m.train.back().loss));
}

TEST_CASE("Ctrl-C saves a checkpoint and stops cleanly; the run resumes from it", "[train][sigint]") {
  set_num_threads(1);
  const std::string data = make_data("sigint_data");
  const std::string out = temp_dir("sigint_run");
  TrainConfig c = tiny_config();
  TrainOptions o = quiet_options(data, out);
  o.before_step = [](long step, Model&) {
    if (step == 4) std::raise(SIGINT);  // as if the user pressed Ctrl-C during step 4
  };
  TrainResult r = train(c, o);
  CHECK(r.stop_reason == "interrupted");
  CHECK(r.step == 4);  // the step in progress finished
  CHECK(fs::path(r.last_checkpoint).filename() == "ckpt-00000004");
  CHECK(load_checkpoint(r.last_checkpoint).state.step == 4);

  TrainOptions again = quiet_options(data, out);
  again.resume = out;
  TrainResult rest = train(resume_config(out, {}), again);
  CHECK(rest.step == 12);
  TrainResult straight = train(c, quiet_options(data, temp_dir("sigint_straight")));
  Checkpoint a = load_checkpoint(rest.last_checkpoint), b = load_checkpoint(straight.last_checkpoint);
  CHECK(a.model.weights.layers[1].w2->data == b.model.weights.layers[1].w2->data);
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
  CHECK_THROWS_WITH(train(wrong, o), Catch::Contains("differs from the config"));
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
