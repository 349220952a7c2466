// Fine-tuning checkpoints (train/sft_checkpoint.h): a run stopped and resumed ends on the bits of
// an uninterrupted one, and a checkpoint that does not fit the run is refused with the reason.
// The run report (train/report.h, foundry report) over a pretraining and a fine-tuning run.
#include <sys/wait.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "engine/parallel.h"
#include "model/config_fields.h"
#include "tests/chat/tiny_chat_base.h"
#include "tests/common/foundry_child.h"
#include "tests/common/test_helpers.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/report.h"
#include "train/sft.h"
#include "train/sft_checkpoint.h"
#include "train/train_config.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

const test::TinyChatBase& base() {
  static const test::TinyChatBase b = test::make_tiny_chat_base("test_scratch/sft_resume_base");
  return b;
}

SftOptions short_run(const std::string& out) {
  SftOptions o;
  o.base_dir = base().dir;
  o.data_path = base().data;
  o.out_dir = out;
  o.batch_size = 4;
  o.max_steps = 12;  // about one epoch of the 40 examples and then some: a reshuffle after the resume
  o.warmup_steps = 2;
  o.lr = 3e-3;
  o.log_interval = 1;
  o.eval_interval = 5;
  o.eval_examples = 4;
  o.checkpoint_interval = 5;
  o.keep_checkpoints = 2;
  o.quiet = true;
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string run_cmd(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return out + "\n[exit " + std::to_string(WEXITSTATUS(status)) + "]";
}

const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/foundry";

}  // namespace

TEST_CASE("run_sft: stopped and resumed, a run ends on the bits of an uninterrupted one", "[sft][checkpoint]") {
  set_num_threads(1);
  const std::string root = test::fresh_dir("test_scratch/sft_resume");
  SftResult whole = run_sft(short_run(root + "/whole"));
  REQUIRE(whole.steps == 12);
  CHECK(whole.stop_reason == "max_steps");
  // Checkpoints every 5 steps; none at the end of a finished run (its model/ is the result).
  CHECK(list_checkpoints(root + "/whole") ==
        std::vector<std::string>{checkpoint_path(root + "/whole", 5), checkpoint_path(root + "/whole", 10)});
  const std::string whole_bits = test::read_all(root + "/whole/model/model.safetensors");
  const std::string whole_log = test::read_all(root + "/whole/metrics.jsonl");
  CHECK(read_metrics(root + "/whole/metrics.jsonl").train.size() == 12);  // `foundry plot` reads the log

  SftOptions part = short_run(root + "/split");
  part.stop_at = 7;
  SftResult first = run_sft(part);
  CHECK(first.stop_reason == "stop_at");
  CHECK(first.steps == 7);
  CHECK(first.last_checkpoint == checkpoint_path(root + "/split", 7));
  CHECK(test::read_all(root + "/split/model/model.safetensors") != whole_bits);

  // From the run directory: its newest checkpoint, with the run's own settings.
  SftOptions again = sft_resume_options(root + "/split");
  CHECK(again.resume == checkpoint_path(root + "/split", 7));
  CHECK(fs::equivalent(again.out_dir, root + "/split"));
  CHECK(again.lr == part.lr);
  CHECK(again.max_steps == 12);
  again.quiet = true;
  SftResult second = run_sft(again);
  CHECK(second.steps == 12);
  CHECK(second.stop_reason == "max_steps");
  CHECK(second.first_loss == whole.first_loss);
  CHECK(second.last_loss == whole.last_loss);
  CHECK(second.val_loss == whole.val_loss);
  CHECK(test::read_all(root + "/split/model/model.safetensors") == whole_bits);
  CHECK(test::read_all(root + "/split/metrics.jsonl") == whole_log);

  // From an older checkpoint, in the middle of the first epoch: the same end again.
  SftOptions older = sft_resume_options(checkpoint_path(root + "/whole", 5));
  older.quiet = true;
  run_sft(older);
  CHECK(test::read_all(root + "/whole/model/model.safetensors") == whole_bits);
  CHECK(test::read_all(root + "/whole/metrics.jsonl") == whole_log);
  // A checkpoint is a chat model directory in its own right.
  CHECK(fs::exists(checkpoint_path(root + "/whole", 10) + "/tokenizer_config.json"));
}

TEST_CASE("run_sft --group-by-length: resumed, the same bits; the setting is kept with the run", "[sft][checkpoint]") {
  set_num_threads(1);
  const std::string root = test::fresh_dir("test_scratch/sft_resume_grouped");
  SftOptions o = short_run(root + "/whole");
  o.group_by_length = true;
  SftResult whole = run_sft(o);
  REQUIRE(whole.steps == 12);
  const std::string whole_bits = test::read_all(root + "/whole/model/model.safetensors");
  // Not the plain order's result: the batches differ.
  SftResult plain = run_sft(short_run(root + "/plain"));
  CHECK(plain.last_loss != whole.last_loss);

  SftOptions part = o;
  part.out_dir = root + "/split";
  part.stop_at = 7;
  run_sft(part);
  SftOptions again = sft_resume_options(root + "/split");
  CHECK(again.group_by_length);  // from the checkpoint's settings
  again.quiet = true;
  SftResult second = run_sft(again);
  CHECK(second.last_loss == whole.last_loss);
  CHECK(test::read_all(root + "/split/model/model.safetensors") == whole_bits);

  // A resume that says otherwise is refused, naming the setting.
  SftOptions other = short_run(root + "/plain");
  other.resume = checkpoint_path(root + "/whole", 10);
  other.group_by_length = false;
  const std::string why = error_of([&] { run_sft(other); });
  CHECK(why.find("group_by_length") != std::string::npos);
}

TEST_CASE("run_sft --resume refuses a checkpoint that does not fit, naming why", "[sft][checkpoint]") {
  set_num_threads(1);
  const std::string root = test::fresh_dir("test_scratch/sft_resume_bad");
  const std::string data = root + "/instruct.jsonl";
  write_file_atomic(data, test::read_all(base().data));
  SftOptions o = short_run(root + "/run");
  o.data_path = data;
  o.stop_at = 3;
  run_sft(o);
  const std::string ckpt = checkpoint_path(root + "/run", 3);

  auto resume = [&] {
    SftOptions r = sft_resume_options(root + "/run");
    r.quiet = true;
    return r;
  };
  SftOptions changed = resume();
  changed.lr = 0.5;
  CHECK_THAT(error_of([&] { run_sft(changed); }),
             Catch::Contains("started with lr = ") && Catch::Contains("keeps its settings"));

  // The data file changed under the run.
  const std::string text = test::read_all(data);
  write_file_atomic(data, text.substr(0, text.rfind('\n', text.size() - 2) + 1));  // one example fewer
  CHECK_THAT(error_of([&] { run_sft(resume()); }), Catch::Contains("fingerprint"));
  write_file_atomic(data, text);

  // A damaged state file: the batch order is no permutation.
  const std::string state_path = ckpt + "/sft_state.json";
  const std::string state = test::read_all(state_path);
  nlohmann::json j = nlohmann::json::parse(state);
  j["order"][0] = j["order"][1];
  write_file_atomic(state_path, j.dump());
  CHECK_THAT(error_of([&] { run_sft(resume()); }),
             Catch::Contains("sft_state.json") && Catch::Contains("not a permutation"));
  j = nlohmann::json::parse(state);
  j["settings"]["batch_size"] = "four";
  write_file_atomic(state_path, j.dump());
  CHECK_THAT(error_of([&] { sft_resume_options(root + "/run"); }), Catch::Contains("'batch_size'"));
  // The two true-or-false fields: a setting, and the state's own.
  j = nlohmann::json::parse(state);
  j["settings"]["group_by_length"] = 1;
  write_file_atomic(state_path, j.dump());
  CHECK_THAT(error_of([&] { sft_resume_options(root + "/run"); }),
             Catch::Contains("'group_by_length' must be true or false, got 1"));
  j = nlohmann::json::parse(state);
  j["chat_tokens_added"] = "yes";
  write_file_atomic(state_path, j.dump());
  CHECK_THAT(error_of([&] { run_sft(resume()); }),
             Catch::Contains("sft_state.json") && Catch::Contains("'chat_tokens_added' must be true or false"));
  write_file_atomic(state_path, state);
  CHECK(run_sft(resume()).steps == 12);  // restored: it resumes

  // Not a fine-tuning run at all.
  fs::create_directories(root + "/empty");
  CHECK_THAT(error_of([&] { sft_resume_options(root + "/empty"); }),
             Catch::Contains("neither a fine-tuning checkpoint"));
  CHECK_THAT(error_of([&] { sft_resume_options(root + "/missing"); }),
             Catch::Contains("neither a fine-tuning checkpoint"));
}

namespace {

// `foundry sft ARGS`, its output in `log`; with a signal, sent once the log shows the progress line
// of step `after_step`.
test::ChildRun run_foundry_sft(std::vector<std::string> args, const std::string& log, int signal = 0,
                               long after_step = 0) {
  args.insert(args.begin(), "sft");
  return test::run_foundry(args, log, signal, test::log_shows(log, "step " + std::to_string(after_step) + "/"));
}

}  // namespace

TEST_CASE(
    "foundry sft: SIGINT saves a checkpoint and --resume ends on the bits of an uninterrupted run; "
    "a LoRA run stopped by SIGTERM keeps its adapters",
    "[sft][checkpoint][signal][cli]") {
  const std::string root = test::fresh_dir("test_scratch/sft_signal");
  // Long enough that the signal arrives mid-run on a busy machine, still seconds in all.
  auto args = [&](const std::string& out) {
    std::vector<std::string> a{"--base", base().dir, "--data", base().data, "--out", out};
    std::istringstream settings(
        "--max-steps 200 --batch-size 4 --warmup-steps 5 --lr 0.003 --log-interval 1 --eval-interval 50 "
        "--checkpoint-interval 0 --threads 1");
    for (std::string word; settings >> word;) a.push_back(word);
    return a;
  };
  const std::string straight = root + "/straight", stopped = root + "/stopped";
  test::ChildRun run = run_foundry_sft(args(straight), root + "/straight.txt");
  INFO(run.output);
  REQUIRE(WIFEXITED(run.status));
  REQUIRE(WEXITSTATUS(run.status) == 0);

  run = run_foundry_sft(args(stopped), root + "/stopped.txt", SIGINT, 3);
  const std::string said = run.output;
  INFO(said);
  REQUIRE(WIFEXITED(run.status));  // it saved and exited instead of dying of the signal
  CHECK(WEXITSTATUS(run.status) == 0);
  CHECK_THAT(said, Catch::Contains("sft: interrupted at step") && Catch::Contains("saving a checkpoint") &&
                       Catch::Contains("(interrupted,") && Catch::Contains("foundry sft --resume " + stopped));
  const std::vector<std::string> ckpts = list_checkpoints(stopped);
  REQUIRE(ckpts.size() == 1);  // --checkpoint-interval 0: only the one written at the stop
  const nlohmann::json info = read_json_file(stopped + "/sft.json");
  CHECK(info["stop_reason"] == "interrupted");
  const long step = info["steps"].get<long>();
  CHECK(step >= 3);
  CHECK(step < 200);
  CHECK(ckpts[0] == checkpoint_path(stopped, step));

  run = run_foundry_sft({"--resume", stopped, "--threads", "1"}, root + "/resumed.txt");
  INFO(run.output);
  REQUIRE(WIFEXITED(run.status));
  REQUIRE(WEXITSTATUS(run.status) == 0);
  CHECK(read_json_file(stopped + "/sft.json")["stop_reason"] == "max_steps");
  test::check_same_bytes(stopped, straight, {"model/model.safetensors", "metrics.jsonl"});

  // LoRA: no checkpoint to write, so the run stops cleanly with the adapters it has and says so.
  const std::string lora = root + "/lora";
  std::vector<std::string> lora_args = args(lora);
  lora_args.push_back("--lora");
  run = run_foundry_sft(lora_args, root + "/lora.txt", SIGTERM, 3);
  const std::string lora_said = run.output;
  INFO(lora_said);
  REQUIRE(WIFEXITED(run.status));
  CHECK(WEXITSTATUS(run.status) == 0);
  CHECK_THAT(lora_said, Catch::Contains("a LoRA run writes no checkpoints") && Catch::Contains("run it again"));
  CHECK_THAT(lora_said, !Catch::Contains("--resume"));
  CHECK(list_checkpoints(lora).empty());
  CHECK(fs::exists(lora + "/adapter.safetensors"));
  const nlohmann::json lora_info = read_json_file(lora + "/sft.json");
  CHECK(lora_info["stop_reason"] == "interrupted");
  CHECK(lora_info["steps"].get<long>() < 200);
}

namespace {

// A pretraining run directory as foundry train leaves it: config.json, metrics.jsonl, model/.
std::string fake_pretraining_run(const std::string& dir) {
  fs::create_directories(dir);
  TrainConfig c;
  c.model.dim = 32;
  c.model.n_layers = 1;
  c.model.n_heads = 2;
  c.model.n_kv_heads = 1;
  c.model.hidden_dim = 64;
  c.model.max_seq_len = 96;
  c.model.vocab_size = 400;
  c.training.seq_len = 64;
  c.training.max_steps = 30;
  c.training.warmup_steps = 5;
  write_file_atomic(dir + "/config.json", to_json(c).dump(2));
  {
    MetricsWriter m(dir + "/metrics.jsonl");
    for (long s = 1; s <= 30; ++s) m.train(s, 6.0 - 0.1 * s, 1e-3, 1.0, s * 100, 1000, s);
    m.eval(15, 4.8, 4.5, 4.8);
    m.eval(30, 3.6, 3.0, 3.6);
  }
  fs::copy(base().dir, dir + "/model");
  return dir;
}

}  // namespace

TEST_CASE("foundry report: one page for a pretraining and a fine-tuning run", "[report]") {
  set_num_threads(1);
  const std::string root = test::fresh_dir("test_scratch/report");
  const std::string pre = fake_pretraining_run(root + "/pre");
  SftOptions o = short_run(root + "/sft");
  o.max_steps = 6;
  run_sft(o);
  // The evaluation, through the real command: two held-out name instructions, short answers.
  const std::string log =
      run_cmd(kFoundry + " eval-instruct --model " + root + "/sft/model --data " + base().data + " --base " +
              base().dir + " --per-kind 2 --max-new-tokens 6 --threads 1 --json " + root + "/sft/eval.json");
  INFO(log);
  REQUIRE(log.find("[exit 0]") != std::string::npos);
  const nlohmann::json eval = read_json_file(root + "/sft/eval.json");

  const Report r = write_report({pre, root + "/sft"}, root + "/out/report.md");
  const std::string md = test::read_all(root + "/out/report.md");
  CHECK(md == r.markdown);
  for (const char* section :
       {"## Tokenizer", "## Pretraining: report/pre", "## Fine-tuning", "## Evaluation", "## Sample conversations"})
    CHECK(md.find(section) != std::string::npos);
  CHECK(md.find("| vocabulary | 400 tokens") != std::string::npos);
  CHECK(md.find("5.9000 (step 1) → 3.0000 (step 30)") != std::string::npos);
  CHECK(md.find("best 3.6000 (step 30), last 3.6000 (step 30)") != std::string::npos);
  // The evaluation table holds eval.json's numbers.
  char row[160];
  std::snprintf(row, sizeof row, "| name | 2 | %.1f%% | %.1f%% | %.1f%% |",
                100 * eval["kinds"]["name"]["t0"].get<double>(), 100 * eval["kinds"]["name"]["t08"].get<double>(),
                100 * eval["kinds"]["name"]["base_t0"].get<double>());
  CHECK(md.find(row) != std::string::npos);
  CHECK(md.find(eval["kinds"]["name"]["samples"][0]["instruction"].get<std::string>()) != std::string::npos);
  CHECK(md.find("The base model, given the instruction as plain text") != std::string::npos);
  // Every picture is linked from the page and written beside it; the same runs give the same bytes.
  REQUIRE(r.pictures.size() == 2);  // one pretraining and one fine-tuning curve
  for (const ReportFile& f : r.pictures) {
    CHECK(md.find("](" + f.name + ")") != std::string::npos);
    CHECK(test::read_all(root + "/out/" + f.name).rfind("<svg", 0) == 0);
  }
  CHECK(build_report({pre, root + "/sft"}, "report").markdown == md);
  // Two fine-tuning runs get a picture side by side as well.
  CHECK(build_report({pre, root + "/sft", root + "/sft"}, "x").pictures.size() == 4);

  // Bad run directories are named with the problem.
  fs::create_directories(root + "/empty");
  CHECK_THAT(error_of([&] { build_report({root + "/missing"}, "r"); }), Catch::Contains("no such run directory"));
  CHECK_THAT(error_of([&] { build_report({root + "/empty"}, "r"); }), Catch::Contains("not a run directory"));
  nlohmann::json bad = eval;
  bad["kinds"]["name"]["t0"] = 2;
  write_file_atomic(root + "/sft/eval.json", bad.dump());
  CHECK_THAT(error_of([&] { build_report({root + "/sft"}, "r"); }), Catch::Contains("eval.json: kinds.name.t0"));
  write_file_atomic(root + "/sft/eval.json", eval.dump());
  write_file_atomic(pre + "/metrics.jsonl", "{\"kind\":\"train\",\"step\":1,\"loss\":2}\nnot json\n{}\n");
  CHECK_THAT(error_of([&] { build_report({pre}, "r"); }), Catch::Contains("line 2"));

  // The command: usage errors exit 2, a bad run directory 1, both with the reason.
  std::string out = run_cmd(kFoundry + " report");
  CHECK(out.find("[exit 2]") != std::string::npos);
  out = run_cmd(kFoundry + " report " + root + "/sft");
  CHECK(out.find("--out") != std::string::npos);
  CHECK(out.find("[exit 2]") != std::string::npos);
  out = run_cmd(kFoundry + " report " + root + "/empty --out " + root + "/r.md");
  CHECK(out.find("not a run directory") != std::string::npos);
  CHECK(out.find("[exit 1]") != std::string::npos);
  CHECK_FALSE(fs::exists(root + "/r.md"));
  out = run_cmd(kFoundry + " report " + root + "/sft --out " + root + "/cli/r.md");
  CHECK(out.find("[exit 0]") != std::string::npos);
  CHECK(fs::exists(root + "/cli/r-sft-1.svg"));
}

TEST_CASE("make_instruct: more words practice, in answer order, on the train split only", "[instruct]") {
  const std::string corpus = test::load_corpus("tinystories.txt");
  const std::vector<InstructExample> plain = make_instruct(corpus);
  InstructOptions o;
  o.words_per_story = 3;
  o.words_in_order = true;
  const std::vector<InstructExample> more = make_instruct(corpus, o);
  auto split_of = [](const std::vector<InstructExample>& ex, const std::string& split) {
    std::vector<InstructExample> out;
    for (const InstructExample& e : ex)
      if (e.split == split) out.push_back(e);
    return out;
  };
  // The held-out instructions, what the evaluation asks, stay exactly as they were.
  CHECK(instruct_to_jsonl(split_of(more, "test")) == instruct_to_jsonl(split_of(plain, "test")));
  size_t plain_words = 0, more_words = 0;
  for (const InstructExample& e : split_of(plain, "train")) plain_words += e.kind == "words";
  std::set<std::string> ids;
  for (const InstructExample& e : split_of(more, "train")) {
    INFO(e.id);
    CHECK(ids.insert(e.id).second);
    CHECK(satisfies(e, e.messages.back().content));
    if (e.kind != "words" && e.kind != "two_turn") continue;
    more_words += e.kind == "words";
    // Listed in the order the answer first uses them.
    const std::vector<std::string> seq = words_of(e.messages.back().content);
    long last = -1;
    for (const std::string& w : e.words) {
      const long at = std::find(seq.begin(), seq.end(), w) - seq.begin();
      CHECK(at > last);
      last = at;
    }
  }
  CHECK(more_words == 3 * plain_words);
}

TEST_CASE("make_instruct: words from the story's opening, in order, in both splits", "[instruct]") {
  const std::string corpus = test::load_corpus("tinystories.txt");
  const std::vector<InstructExample> plain = make_instruct(corpus);
  InstructOptions o;
  o.words_opening = 2;
  const std::vector<InstructExample> opening = make_instruct(corpus, o);
  std::map<std::string, const InstructExample*> plain_by_id;
  for (const InstructExample& e : plain) plain_by_id[e.id] = &e;
  size_t n_words = 0, shorter = 0, n_test = 0;
  for (const InstructExample& e : opening) {
    INFO(e.id);
    CHECK(satisfies(e, e.messages.back().content));
    if (e.kind == "name" || e.kind == "continue") {  // the other kinds are as before
      REQUIRE(plain_by_id.count(e.id));
      CHECK(instruct_to_jsonl({e}) == instruct_to_jsonl({*plain_by_id[e.id]}));
      continue;
    }
    const std::string& answer = e.messages.back().content;
    const std::vector<std::string> seq = words_of(answer);
    long last = -1;
    for (const std::string& w : e.words) {
      const long at = std::find(seq.begin(), seq.end(), w) - seq.begin();
      CHECK(at > last);  // listed in the order the answer uses them
      last = at;
      for (const char* common : {"girl", "named", "loved", "play"}) CHECK(w != common);
    }
    if (e.kind != "words") continue;
    ++n_words;
    n_test += e.split == "test";
    CHECK(answer.size() <= kAnswerChars);
    // The opening of the story that the plain recipe answers with in full.
    REQUIRE(plain_by_id.count(e.id));
    const std::string& full = plain_by_id.at(e.id)->messages.back().content;
    CHECK(full.compare(0, answer.size(), answer) == 0);
    shorter += answer.size() < full.size();
  }
  CHECK(n_words > 2000);
  CHECK(n_test > 200);
  CHECK(shorter > n_words / 2);
}

TEST_CASE("make_instruct: every window of n sentences of a training story is a words answer", "[instruct]") {
  // Three stories; the last is held out. Story 0's sentences hold the usable words (found, shell),
  // (pink), (home), (baked, cake; "park" is a common opening word, never asked for), (none): of its
  // windows of two sentences, the first and the third hold exactly three usable words, so their
  // words are fixed; the other two hold two and are skipped. Story 1 repeats story 0's first window
  // (skipped as a repeat) and adds one of its own.
  const std::string corpus =
      "Tom found a shell. It was pink. He ran home. Mom baked a cake at the park. Tom ate it.<|endoftext|>"
      "Tom found a shell. It was pink. Sam hid behind a tree.<|endoftext|>"
      "Ann saw a green frog. The frog jumped high. Ann laughed loud.<|endoftext|>";
  InstructOptions o;
  o.words_windows = 2;
  const std::vector<InstructExample> ex = make_instruct(corpus, o);
  CHECK(instruct_to_jsonl(ex) == instruct_to_jsonl(make_instruct(corpus, o)));  // deterministic
  std::vector<const InstructExample*> windows;
  for (const InstructExample& e : ex)
    if (e.id.find("-window") != std::string::npos) windows.push_back(&e);
  REQUIRE(windows.size() == 3);
  auto expect = [](const InstructExample& e, const std::string& id, const std::string& answer,
                   const std::vector<std::string>& words) {
    INFO(e.id);
    CHECK(e.id == id);
    CHECK(e.kind == "words");
    CHECK(e.split == "train");
    CHECK(e.words == words);
    REQUIRE(e.messages.size() == 2);
    CHECK(e.messages[0].content ==
          "Write a story that uses the words " + words[0] + ", " + words[1] + " and " + words[2] + ".");
    CHECK(e.messages[1].content == answer);
    CHECK(satisfies(e, answer));
  };
  expect(*windows[0], "train-0-window1", "Tom found a shell. It was pink.", {"found", "shell", "pink"});
  expect(*windows[1], "train-0-window3", "He ran home. Mom baked a cake at the park.", {"home", "baked", "cake"});
  expect(*windows[2], "train-1-window2", "It was pink. Sam hid behind a tree.", {"pink", "behind", "tree"});

  // The held-out story gives no window, and every other example is what the recipe made without windows.
  std::vector<InstructExample> rest;
  for (const InstructExample& e : ex)
    if (e.id.find("-window") == std::string::npos) rest.push_back(e);
  CHECK(instruct_to_jsonl(rest) == instruct_to_jsonl(make_instruct(corpus)));

  // On the bundled sample: many more distinct answers than stories, all checkable; the test split as before.
  const std::string sample = test::load_corpus("tinystories.txt");
  InstructOptions op;
  op.words_opening = 2;
  InstructOptions ow = op;
  ow.words_windows = 2;
  const std::vector<InstructExample> opening = make_instruct(sample, op), windowed = make_instruct(sample, ow);
  auto test_split = [](const std::vector<InstructExample>& all) {
    std::vector<InstructExample> out;
    for (const InstructExample& e : all)
      if (e.split == "test") out.push_back(e);
    return out;
  };
  CHECK(instruct_to_jsonl(test_split(windowed)) == instruct_to_jsonl(test_split(opening)));
  std::set<std::string> answers, ids;
  size_t n_windows = 0, stories = 0;
  for (const InstructExample& e : opening) stories += e.split == "train" && e.kind == "words";
  for (const InstructExample& e : windowed) {
    CHECK(ids.insert(e.id).second);
    if (e.id.find("-window") == std::string::npos) continue;
    ++n_windows;
    CHECK(e.split == "train");
    CHECK(satisfies(e, e.messages.back().content));
    CHECK(answers.insert(e.messages.back().content).second);  // distinct
    for (const std::string& w : e.words) CHECK(w != "named");
  }
  CHECK(n_windows > 5 * stories);
}
