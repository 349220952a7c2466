// The `foundry` program refuses mismatches before they cost time, run as a user would: model,
// tokenizer and token-file vocabularies (prepare.json), the evaluation window, the size of
// --logits-out, a run directory given as --model, a separator that never occurs, and the small
// things of the command line (--version, --help defaults, --threads 0, bad numbers).
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/parallel.h"
#include "train/token_file.h"

namespace fs = std::filesystem;

namespace {

const std::string kSrc = FOUNDRY_SOURCE_DIR;
const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/foundry";
const std::string kTmp = std::string(FOUNDRY_BINARY_DIR) + "/test_scratch/cli_checks";

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `foundry <args>` at one thread; returns the exit status, with stdout and stderr.
int run(const std::string& args, std::string* out = nullptr, std::string* err = nullptr) {
  const std::string o = kTmp + "/stdout.txt", e = kTmp + "/stderr.txt";
  const int status = std::system(("OMP_NUM_THREADS=1 " + kFoundry + " " + args + " > " + o + " 2> " + e).c_str());
  if (out) *out = read_all(o);
  if (err) *err = read_all(e);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs `<env> foundry <args>`, where env is a prefix such as "env -u X Y=1 ".
int run_env(const std::string& env, const std::string& args, std::string* out) {
  const std::string o = kTmp + "/stdout.txt", e = kTmp + "/stderr.txt";
  const int status = std::system((env + kFoundry + " " + args + " > " + o + " 2> " + e).c_str());
  *out = read_all(o);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// A training config: a model of vocabulary `vocab` with a 32-position context, trained at 16.
void write_config(const std::string& path, int vocab) {
  nlohmann::json j = nlohmann::json::parse(read_all(kSrc + "/configs/tiny.json"));
  j["model"]["dim"] = 32;
  j["model"]["n_layers"] = 1;
  j["model"]["n_heads"] = 2;
  j["model"]["n_kv_heads"] = 2;
  j["model"]["vocab_size"] = vocab;
  j["model"]["hidden_dim"] = 64;
  j["model"]["max_seq_len"] = 32;
  j["training"]["batch_size"] = 4;
  j["training"]["seq_len"] = 16;
  j["training"]["max_steps"] = 20;
  j["training"]["warmup_steps"] = 2;
  j["training"]["eval_interval"] = 10;
  j["training"]["eval_batches"] = 4;
  j["training"]["patience"] = 0;
  j["training"]["checkpoint_interval"] = 20;
  j["training"]["log_interval"] = 10;
  std::ofstream(path) << j.dump(2);
}

// Shared by the test cases: three tokenizers (A and B: 300 tokens with different merges; C: 280),
// the corpus prepared with each, and one short training run on A's data. Made once.
struct Setup {
  std::string corpus, data_a, data_b, data_c, run_dir;
  Setup() {
    REQUIRE(fs::exists(kFoundry));
    fs::remove_all(kTmp);
    fs::create_directories(kTmp);
    const std::string text = read_all(kSrc + "/data/tinyshakespeare.txt");
    REQUIRE(text.size() > 120000);
    corpus = kTmp + "/corpus.txt";
    std::ofstream(corpus, std::ios::binary) << text.substr(0, 40000);
    std::ofstream(kTmp + "/other.txt", std::ios::binary) << text.substr(60000, 40000);
    REQUIRE(run("tokenizer train --quiet --input " + corpus + " --vocab-size 300 --special '<|endoftext|>' --out " +
                kTmp + "/tok_a.json") == 0);
    REQUIRE(run("tokenizer train --quiet --input " + kTmp +
                "/other.txt --vocab-size 300 --special '<|endoftext|>' --out " + kTmp + "/tok_b.json") == 0);
    REQUIRE(run("tokenizer train --quiet --input " + corpus + " --vocab-size 280 --special '<|endoftext|>' --out " +
                kTmp + "/tok_c.json") == 0);
    data_a = kTmp + "/data_a";
    data_b = kTmp + "/data_b";
    data_c = kTmp + "/data_c";
    REQUIRE(run("prepare --input " + corpus + " --tokenizer " + kTmp + "/tok_a.json --out " + data_a) == 0);
    REQUIRE(run("prepare --input " + corpus + " --tokenizer " + kTmp + "/tok_b.json --out " + data_b) == 0);
    REQUIRE(run("prepare --input " + corpus + " --tokenizer " + kTmp + "/tok_c.json --out " + data_c) == 0);
    write_config(kTmp + "/v300.json", 300);
    run_dir = kTmp + "/run";
    std::string out, err;
    REQUIRE(run("train --quiet --config " + kTmp + "/v300.json --data " + data_a + " --out " + run_dir, &out, &err) ==
            0);
  }
};

const Setup& setup() {
  static Setup s;
  return s;
}

}  // namespace

TEST_CASE("prepare.json records the tokenizer; a separator that never occurs is reported", "[cli]") {
  const Setup& s = setup();
  nlohmann::json info = nlohmann::json::parse(read_all(s.data_a + "/prepare.json"));
  CHECK(info["vocab_size"] == 300);
  CHECK(info["tokenizer_source"] == kTmp + "/tok_a.json");
  const std::string fp = info["tokenizer_fingerprint"];
  CHECK(fp.rfind("fnv1a64:", 0) == 0);
  CHECK(fp.size() == 8 + 16);
  // Same size, other merges: another fingerprint.
  CHECK(nlohmann::json::parse(read_all(s.data_b + "/prepare.json"))["tokenizer_fingerprint"] != fp);

  std::string out, err;
  REQUIRE(run("prepare --input " + s.corpus + " --tokenizer " + kTmp + "/tok_a.json --separator '@@@' --out " + kTmp +
                  "/data_sep",
              &out, &err) == 0);
  CHECK(has(err, "the separator '@@@' never occurs in the input; the split is by tokens instead"));
  REQUIRE(run("prepare --input " + s.corpus + " --tokenizer " + kTmp +
                  "/tok_a.json --separator 'First Citizen:' --out " + kTmp + "/data_sep2",
              &out, &err) == 0);
  CHECK_FALSE(has(err, "warning"));  // a separator that occurs splits by documents, silently
  CHECK(has(out, "documents"));
}

TEST_CASE("train refuses data of another vocabulary or tokenizer before step 0", "[cli]") {
  const Setup& s = setup();
  std::string out, err;
  // configs like tiny.json (4096) on data of a smaller tokenizer: both numbers and the files.
  write_config(kTmp + "/v4096.json", 4096);
  CHECK(run("train --config " + kTmp + "/v4096.json --data " + s.data_a + " --out " + kTmp + "/run_4096", &out, &err) ==
        1);
  CHECK(has(err, "vocabulary mismatch"));
  CHECK(has(err, "4096"));
  CHECK(has(err, "300-token"));
  CHECK(has(err, s.data_a + "/prepare.json"));
  CHECK(has(err, s.data_a + "/train.bin"));
  CHECK_FALSE(has(out, "step "));
  CHECK_FALSE(fs::exists(kTmp + "/run_4096/metrics.jsonl"));
  // The config matches prepare.json but not the tokenizer file beside the tokens (replaced later).
  fs::create_directories(kTmp + "/data_swapped");
  for (const char* f : {"train.bin", "val.bin", "prepare.json"}) {
    fs::copy_file(s.data_a + "/" + f, kTmp + "/data_swapped/" + f);
  }
  fs::copy_file(kTmp + "/tok_b.json", kTmp + "/data_swapped/tokenizer.json");
  CHECK(run("train --config " + kTmp + "/v300.json --data " + kTmp + "/data_swapped --out " + kTmp + "/run_swapped",
            &out, &err) == 1);
  CHECK(has(err, "tokenizer mismatch"));
  // Without prepare.json the tokenizer file still has to agree with the model.
  fs::create_directories(kTmp + "/data_noinfo");
  for (const char* f : {"train.bin", "val.bin", "tokenizer.json"}) {
    fs::copy_file(s.data_c + "/" + f, kTmp + "/data_noinfo/" + f);
  }
  CHECK(run("train --config " + kTmp + "/v300.json --data " + kTmp + "/data_noinfo --out " + kTmp + "/run_noinfo", &out,
            &err) == 1);
  CHECK(has(err, "vocab_size 300"));
  CHECK(has(err, "280 tokens"));
  CHECK(has(err, kTmp + "/data_noinfo/tokenizer.json"));
}

TEST_CASE("eval windows default to the training context and match training's validation loss", "[cli]") {
  const Setup& s = setup();
  const std::string best = s.run_dir + "/best";
  REQUIRE(fs::exists(best + "/training.json"));
  CHECK(nlohmann::json::parse(read_all(best + "/training.json"))["seq_len"] == 16);
  CHECK(fs::exists(s.run_dir + "/model/training.json"));

  // Training evaluated eval_batches = 4 batches of 4 rows of 16 tokens from the start of val.bin:
  // the same 16 windows, so the same loss as the best evaluation in metrics.jsonl.
  double best_val = INFINITY;
  std::istringstream metrics(read_all(s.run_dir + "/metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j["kind"] == "eval") best_val = std::min(best_val, j["val_loss"].get<double>());
  }
  REQUIRE(std::isfinite(best_val));
  std::string out, err;
  REQUIRE(run("eval --model " + best + " --tokens " + s.data_a + "/val.bin --max-windows 16", &out, &err) == 0);
  CHECK(has(out, "window: 16 positions (the context the model was trained at, from " + best + "/training.json)"));
  CHECK(has(out, "16 windows of 16 positions, 256 targets scored"));
  const double loss = std::stod(out.substr(out.find("mean loss ") + 10));
  CHECK(loss == Approx(best_val).epsilon(1e-4));

  // --window wins; a longer window scores differently (the mismatch this default avoids).
  REQUIRE(run("eval --model " + best + " --tokens " + s.data_a + "/val.bin --max-windows 8 --window 32", &out) == 0);
  CHECK(has(out, "window: 32 positions (--window)"));
  CHECK(std::fabs(std::stod(out.substr(out.find("mean loss ") + 10)) - best_val) > 1e-4);

  // A run trained before training.json existed: the run directory's config.json says it.
  fs::copy(best, s.run_dir + "/old_best");
  fs::remove(s.run_dir + "/old_best/training.json");
  REQUIRE(run("eval --model " + s.run_dir + "/old_best --tokens " + s.data_a + "/val.bin --max-windows 2", &out) == 0);
  CHECK(has(out, "window: 16 positions (the context the model was trained at, from " + s.run_dir + "/config.json)"));
  // Copied out of its run with nothing recorded: the whole context, said so.
  fs::create_directories(kTmp + "/loose");
  fs::copy(s.run_dir + "/old_best", kTmp + "/loose/m");
  REQUIRE(run("eval --model " + kTmp + "/loose/m --tokens " + s.data_a + "/val.bin --max-windows 2", &out) == 0);
  CHECK(has(out, "window: 32 positions (max_seq_len; the model directory does not record its training context)"));
  // A checkpoint records it in train_state.json.
  REQUIRE(run("eval --model " + s.run_dir + "/ckpt-00000020 --tokens " + s.data_a + "/val.bin --max-windows 2", &out) ==
          0);
  CHECK(has(out, "window: 16 positions (the context the model was trained at, from " + s.run_dir +
                     "/ckpt-00000020/train_state.json)"));
}

TEST_CASE("eval and generate refuse a tokenizer or token file that disagrees with the model", "[cli]") {
  const Setup& s = setup();
  const std::string best = s.run_dir + "/best";
  std::string out, err;
  // Same vocabulary size, another tokenizer: the ids mean other text.
  CHECK(run("eval --model " + best + " --tokens " + s.data_b + "/val.bin", &out, &err) == 1);
  CHECK(has(err, "tokenizer mismatch"));
  CHECK(has(err, s.data_b + "/prepare.json"));
  CHECK(has(err, "fnv1a64:"));
  // Another vocabulary size.
  CHECK(run("eval --model " + best + " --tokens " + s.data_c + "/val.bin", &out, &err) == 1);
  CHECK(has(err, "vocabulary mismatch"));
  CHECK(has(err, "280-token"));
  CHECK(has(err, "vocab_size 300"));
  // The model's own data passes.
  CHECK(run("eval --model " + best + " --tokens " + s.data_a + "/val.bin --max-windows 1", &out, &err) == 0);

  // A model larger than its tokenizer: generate refuses before printing anything.
  fs::copy(best, kTmp + "/bigger");
  fs::copy_file(kTmp + "/tok_c.json", kTmp + "/bigger/tokenizer.json", fs::copy_options::overwrite_existing);
  CHECK(run("generate --model " + kTmp + "/bigger --prompt 'ROMEO:' --max-new-tokens 5", &out, &err) == 1);
  CHECK(out.empty());
  CHECK(has(err, kTmp + "/bigger/config.json has vocab_size 300"));
  CHECK(has(err, kTmp + "/bigger/tokenizer.json has 280 tokens"));
  CHECK(run("eval --model " + kTmp + "/bigger --text " + s.corpus, &out, &err) == 1);
  CHECK(has(err, "vocabulary mismatch"));
  // The model's own tokenizer generates, and says "1 thread".
  CHECK(run("generate --model " + best + " --prompt 'ROMEO:' --max-new-tokens 5 --threads 1", &out, &err) == 0);
  CHECK(has(out, "ROMEO:"));
  CHECK(has(err, "; 1 thread;"));
}

TEST_CASE("a run directory given as --model names the model directories inside it", "[cli]") {
  const Setup& s = setup();
  std::string out, err;
  CHECK(run("generate --model " + s.run_dir + " --prompt hi", &out, &err) == 2);
  CHECK(has(err, s.run_dir + " is a run directory of `foundry train`, not a model directory: use " + s.run_dir +
                     "/best (the best evaluated model) or " + s.run_dir + "/model (the weights as the run ended)"));
  CHECK(run("eval --model " + s.run_dir + " --tokens " + s.data_a + "/val.bin", &out, &err) == 2);
  CHECK(has(err, "is a run directory"));
}

TEST_CASE("eval --logits-out estimates the file size and refuses above 1 GiB without --max-windows", "[cli]") {
  const Setup& s = setup();
  // 1.2 million tokens at 16 positions and 300 logits a window: 1.44e9 bytes (1.34 GiB) of float32.
  fs::create_directories(kTmp + "/big");
  std::vector<int> ids(1200001);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i * 7 % 300);
  foundry::save_tokens(kTmp + "/big/tokens.bin", ids, 300);
  std::string out, err;
  CHECK(run("eval --model " + s.run_dir + "/best --tokens " + kTmp + "/big/tokens.bin --logits-out " + kTmp +
                "/big/logits.npy",
            &out, &err) == 2);
  CHECK(has(err, "--logits-out would write 1.34 GiB (75000 windows x 16 positions x 300 logits x 4 bytes)"));
  CHECK(has(err, "--max-windows"));
  CHECK_FALSE(fs::exists(kTmp + "/big/logits.npy"));
  CHECK_FALSE(fs::exists(kTmp + "/big/logits.npy.tmp"));
  // --max-windows limits it.
  REQUIRE(run("eval --model " + s.run_dir + "/best --tokens " + kTmp + "/big/tokens.bin --max-windows 3 --logits-out " +
                  kTmp + "/big/logits.npy",
              &out, &err) == 0);
  CHECK(fs::file_size(kTmp + "/big/logits.npy") == 128 + 3 * 16 * 300 * 4);
}

TEST_CASE("the command line: --version, defaults printed once, --threads 0, numbers that are not", "[cli]") {
  std::string out, err;
  REQUIRE(run("--version", &out) == 0);
  CHECK(out.rfind("foundry 0.", 0) == 0);

  // Every command's help prints each default once.
  for (const char* command : {"prepare", "train", "plot", "model-info", "generate", "eval", "import llama2c",
                              "tokenizer train", "tokenizer encode", "tokenizer decode", "tokenizer info"}) {
    INFO(command);
    REQUIRE(run(std::string(command) + " --help", &out) == 0);
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      INFO(line);
      const size_t first = line.find("default");
      CHECK((first == std::string::npos || line.find("default", first + 1) == std::string::npos));
      CHECK_FALSE(has(line, "(default: \"\")"));
    }
  }

  CHECK(run("generate --model x --threads 0", &out, &err) == 2);
  CHECK(has(err, "--threads 0: expected at least 1"));
  CHECK(run("train --config x --data y --threads=0", &out, &err) == 2);
  CHECK(has(err, "--threads 0: expected at least 1"));

  CHECK(run("generate --model x --temperature warm", &out, &err) == 2);
  CHECK(has(err, "foundry generate: --temperature 'warm' is not a number"));
  CHECK(run("generate --model x --top-k=2.5", &out, &err) == 2);
  CHECK(has(err, "--top-k '2.5' is not a whole number"));
  CHECK(run("eval --model x --tokens y --max-windows lots", &out, &err) == 2);
  CHECK(has(err, "--max-windows 'lots' is not a number"));
  CHECK(run("train --config x --data y --lr fast", &out, &err) == 2);
  CHECK(has(err, "--lr 'fast' is not a number"));
  CHECK(run("tokenizer train --input x --vocab-size many", &out, &err) == 2);
  CHECK(has(err, "--vocab-size 'many' is not a number"));
  CHECK(run("generate --model x --no-such-option", &out, &err) == 2);
  CHECK(has(err, "no-such-option"));
}

TEST_CASE("foundry chooses how its threads wait, and the environment overrides it", "[cli]") {
  if (!foundry::have_openmp()) {
    WARN("built without OpenMP: no threads wait, nothing to choose");
    return;
  }
  fs::create_directories(kTmp);
  std::string out;
  const std::string clean =
      "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u FOUNDRY_KEEP_WAIT_POLICY "
      "-u FOUNDRY_WAIT_POLICY_CHOSEN ";
  // Nothing set: the program re-executes itself with a spin count of its own.
  REQUIRE(run_env(clean, "--help", &out) == 0);
  CHECK(has(out, "waiting threads: spin GOMP_SPINCOUNT="));
  CHECK(has(out, "chosen at start-up"));
  // The user's settings win, untouched.
  REQUIRE(run_env(clean + "GOMP_SPINCOUNT=300000 ", "--help", &out) == 0);
  CHECK(has(out, "waiting threads: as the environment says: GOMP_SPINCOUNT=300000\n"));
  REQUIRE(run_env(clean + "OMP_WAIT_POLICY=passive ", "--help", &out) == 0);
  CHECK(has(out, "waiting threads: as the environment says: OMP_WAIT_POLICY=passive\n"));
  REQUIRE(run_env(clean + "FOUNDRY_KEEP_WAIT_POLICY=1 ", "--help", &out) == 0);
  CHECK(has(out, "waiting threads: OpenMP's default"));
}
