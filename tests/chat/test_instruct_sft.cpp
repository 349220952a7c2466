// Instruction data (train/instruct.h), its reader, the SFT batches and a short fine-tuning run
// (train/sft.h), and `foundry chat` through a pseudo-terminal.
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/file_io.h"
#include "engine/rng.h"
#include "model/model_io.h"
#include "tests/chat/tiny_chat_base.h"
#include "tests/common/test_helpers.h"
#include "tokenizer/bpe_train.h"
#include "train/checkpoint.h"
#include "train/instruct.h"
#include "train/sft.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

const std::vector<InstructExample>& corpus_examples() {
  static const std::vector<InstructExample> ex = make_instruct(test::load_corpus("tinystories.txt"));
  return ex;
}

long story_index(const InstructExample& e) { return std::stol(e.id.substr(e.id.find('-') + 1)); }

std::string run(const std::string& cmd) {
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

TEST_CASE("make_instruct: deterministic, every kind in both splits, test = prepare's held-out stories", "[instruct]") {
  const auto& ex = corpus_examples();
  CHECK(instruct_to_jsonl(ex) == instruct_to_jsonl(make_instruct(test::load_corpus("tinystories.txt"))));
  std::map<std::string, std::map<std::string, int>> counts;
  for (const auto& e : ex) counts[e.split][e.kind]++;
  for (const char* split : {"train", "test"})
    for (const std::string& kind : instruct_kinds()) CHECK(counts[split][kind] > 10);
  // 2,316 finished stories and an unfinished tail: 2,317 documents, the last round(231.7) = 232 are
  // prepare's validation split, so test stories are 2085.. and train stories ..2084.
  for (const auto& e : ex) {
    if (e.split == "test") REQUIRE(story_index(e) >= 2085);
    if (e.split == "train") REQUIRE(story_index(e) < 2085);
  }
  const std::string held = held_out_stories(test::load_corpus("tinystories.txt"));
  CHECK(std::count(held.begin(), held.end(), '|') == 2 * 231);  // 231 finished test stories, each "<|...|>"
  // The first story's words example, worked out by hand from the recipe.
  CHECK(ex[0].id == "train-0-words");
  CHECK(ex[0].messages[0].content.rfind("Write a story that uses the words ", 0) == 0);
  CHECK(ex[0].messages[1].content.rfind("One day, a little girl named Lily found a needle", 0) == 0);
  CHECK(ex[1].id == "train-0-name");
  CHECK(ex[1].messages[0].content == "Write a story about a girl named Lily.");
}

TEST_CASE("every reference answer satisfies its own instruction; other answers mostly do not", "[instruct]") {
  int other_ok = 0, n = 0;
  const auto& ex = corpus_examples();
  for (size_t k = 0; k < ex.size(); ++k) {
    INFO(ex[k].id);
    REQUIRE(satisfies(ex[k], ex[k].messages.back().content));
    if (ex[k].kind == "words" && k + 7 < ex.size()) {
      other_ok += satisfies(ex[k], ex[k + 7].messages.back().content);
      ++n;
    }
  }
  CHECK(other_ok < n / 10);  // three specific words rarely appear by chance
}

TEST_CASE("satisfies: the checks on worked examples", "[instruct]") {
  InstructExample w;
  w.kind = "words";
  w.words = {"ball", "happy", "park"};
  CHECK(satisfies(w, "Tom was HAPPY. He took his ball to the park."));
  CHECK_FALSE(satisfies(w, "Tom was happy. He took his balloon to the park."));  // whole words only
  CHECK_FALSE(satisfies(w, ""));
  InstructExample nm;
  nm.kind = "name";
  nm.name = "Mia";
  CHECK(satisfies(nm, "Once there was a girl. Mia liked cats."));
  CHECK_FALSE(satisfies(nm, "Once there was a girl named Amia."));
  InstructExample c;
  c.kind = "continue";
  c.prompt = "Lily found a shiny needle in her room.";
  CHECK(satisfies(c, "She showed the needle to her mom."));
  CHECK(satisfies(c, "Then Lily ran outside."));
  CHECK_FALSE(satisfies(c, "Lily found a shiny needle in her room. The end."));  // a repeat
  CHECK_FALSE(satisfies(c, "The sky was blue."));                                // off the story
}

TEST_CASE("read_instruct_jsonl: a round trip, and bad lines named with the reason", "[instruct]") {
  std::vector<InstructExample> head(corpus_examples().begin(), corpus_examples().begin() + 20);
  const std::string text = instruct_to_jsonl(head);
  CHECK(instruct_to_jsonl(read_instruct_jsonl(text, "x.jsonl")) == text);
  const std::string ok = R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]})";
  CHECK(read_instruct_jsonl(ok + "\n\n" + ok.substr(0, 1) + R"("id":"b",)" + ok.substr(1), "x").size() == 2);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "no examples"},
      {"{nope", "line 1: not valid JSON"},
      {"[1]", "expected a JSON object"},
      {R"({"messages":[]})", "\"messages\" is missing, not an array or empty"},
      {R"({"messages":[{"role":"bot","content":"x"}]})", "role \"bot\" is not one of"},
      {R"({"messages":[{"role":"user","content":3}]})", "\"content\" is missing or not a string"},
      {R"({"messages":[{"role":"user","content":"x"}]})", "ends with the assistant's answer"},
      {R"({"split":"dev","messages":[{"role":"assistant","content":"x"}]})", "split \"dev\" is not train or test"},
      {R"({"kind":"words","messages":[{"role":"assistant","content":"x"}]})", "needs its check"},
      {R"({"kind":"words","check":{"words":[1]},"messages":[{"role":"assistant","content":"x"}]})",
       "check.words holds something other than a non-empty string"},
  };
  for (const auto& [input, message] : bad) {
    INFO(input);
    CHECK_THROWS_WITH(read_instruct_jsonl(input, "bad.jsonl"), Catch::Contains(message));
  }
  CHECK_THROWS_WITH(read_instruct_jsonl(ok + "\n" + ok.substr(0, 1) + R"("id":"line-1",)" + ok.substr(1), "d"),
                    Catch::Contains("appears twice"));
}

TEST_CASE("fill_sft_batch: position t is trained when token t+1 is an answer's", "[sft]") {
  std::vector<SftExample> ex = {{{10, 11, 12, 13, 14}, {0, 0, 1, 1, 0}}, {{20, 21, 22}, {0, 1, 1}}};
  std::vector<int> ids, targets;
  std::vector<uint8_t> mask;
  int T = 0;
  fill_sft_batch(ex, {0, 1}, 16, ids, targets, mask, T);
  CHECK(T == 4);
  CHECK(ids == std::vector<int>{10, 11, 12, 13, 20, 21, 0, 0});
  CHECK(targets == std::vector<int>{11, 12, 13, 14, 21, 22, -1, -1});
  CHECK(mask == std::vector<uint8_t>{0, 1, 1, 0, 1, 1, 0, 0});
  fill_sft_batch(ex, {0}, 2, ids, targets, mask, T);  // cut at T_max
  CHECK(T == 2);
  CHECK(mask == std::vector<uint8_t>{0, 1});
}

TEST_CASE("group_by_length: the same rows, batches of about one length, from the seed", "[sft]") {
  // 1,000 examples whose lengths 1..1000 are scrambled over the indices, in a shuffled order.
  std::vector<SftExample> ex(1000);
  for (size_t i = 0; i < ex.size(); ++i) ex[i].ids.assign(1 + (i * 7919) % 1000, 0);
  std::vector<size_t> order(ex.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 shuffle_rng(5);
  std::shuffle(order.begin(), order.end(), shuffle_rng);
  const int B = 4;
  std::vector<size_t> grouped = order;
  std::mt19937_64 rng(7);
  group_by_length(grouped, ex, B, rng);

  // Each run of kGroupBatches * B rows keeps its own rows (so does the whole epoch).
  const size_t chunk = static_cast<size_t>(B) * kGroupBatches;
  for (size_t first = 0; first < order.size(); first += chunk) {
    const size_t last = std::min(order.size(), first + chunk);
    std::vector<size_t> a(order.begin() + first, order.begin() + last),
        b(grouped.begin() + first, grouped.begin() + last);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    CHECK(a == b);
  }
  // A batch's cost is B times its longest row; the spread inside a batch is small.
  auto cost = [&](const std::vector<size_t>& o, size_t& widest) {
    size_t c = 0;
    widest = 0;
    for (size_t s = 0; s < o.size(); s += B) {
      size_t lo = SIZE_MAX, hi = 0;
      for (size_t k = s; k < std::min(o.size(), s + B); ++k) {
        lo = std::min(lo, ex[o[k]].ids.size());
        hi = std::max(hi, ex[o[k]].ids.size());
      }
      c += B * hi;
      widest = std::max(widest, hi - lo);
    }
    return c;
  };
  size_t widest_plain = 0, widest_grouped = 0;
  const size_t plain = cost(order, widest_plain), less = cost(grouped, widest_grouped);
  CHECK(less < plain * 0.7);    // about 0.63 here: the mean of a row against the mean of 4 rows' longest
  CHECK(widest_grouped < 100);  // neighbours in a sorted run of 256 lengths spread over 1..1000
  CHECK(widest_plain > 500);
  // The batches are not in length order (they are shuffled), and the same seed gives the same order.
  CHECK_FALSE(std::is_sorted(grouped.begin(), grouped.begin() + chunk,
                             [&](size_t a, size_t b) { return ex[a].ids.size() < ex[b].ids.size(); }));
  std::vector<size_t> again = order;
  std::mt19937_64 rng_again(7);
  group_by_length(again, ex, B, rng_again);
  CHECK(again == grouped);
}

namespace {

// The tiny base model directory and instruction file of tiny_chat_base.h, built once for this
// binary: what the SFT and chat tests run on.
using TinyBase = test::TinyChatBase;
const TinyBase& tiny_base() {
  static const TinyBase b = test::make_tiny_chat_base("test_scratch/sft_base");
  return b;
}

}  // namespace

TEST_CASE("run_sft: a short run lowers the answer loss and writes a chat model", "[sft]") {
  const TinyBase& b = tiny_base();
  SftOptions o;
  o.base_dir = b.dir;
  o.data_path = b.data;
  o.out_dir = test::fresh_dir("test_scratch/sft_run") + "/out";
  o.batch_size = 4;
  o.max_steps = 40;
  o.warmup_steps = 2;
  o.lr = 3e-3;
  o.eval_interval = 20;
  o.eval_examples = 8;
  o.quiet = true;
  SftResult r = run_sft(o);
  CHECK(r.steps == 40);
  CHECK(r.last_loss < r.first_loss - 0.5);
  CHECK(std::isfinite(r.val_loss));
  Model m = load_model(r.model_dir);
  BpeTokenizer tok = BpeTokenizer::load_json(r.model_dir + "/tokenizer.json");
  CHECK(has_chat_tokens(tok));
  CHECK(m.config.vocab_size == 402);
  CHECK(read_file(r.model_dir + "/tokenizer_config.json").find("<|im_start|>") != std::string::npos);
  CHECK(fs::exists(o.out_dir + "/metrics.jsonl"));
  CHECK(fs::exists(o.out_dir + "/sft.json"));
  // Same seed, same bits (at the thread count the test runs with).
  SftOptions again = o;
  again.out_dir = o.out_dir + "-again";
  std::error_code ec;
  fs::remove_all(again.out_dir, ec);
  SftResult r2 = run_sft(again);
  CHECK(r2.last_loss == r.last_loss);
  CHECK_THROWS_WITH(run_sft(o), Catch::Contains("exists and is not empty"));
}

TEST_CASE("render_sft_examples: the tokens that spell a requested word are marked; word_weight trains", "[sft]") {
  const TinyBase& b = tiny_base();
  ChatModel cm = load_chat_base(b.dir);
  const std::vector<InstructExample> data = load_instruct(b.data);
  const std::vector<SftExample> rendered = render_sft_examples(data, cm.tokenizer, "train", 100000);
  std::vector<InstructExample> train;
  for (const InstructExample& e : data)
    if (e.split == "train") train.push_back(e);
  REQUIRE(rendered.size() == train.size());
  int with_words = 0;
  for (size_t k = 0; k < train.size(); ++k) {
    INFO(train[k].id);
    const SftExample& e = rendered[k];
    std::vector<std::string> marked;  // the marked tokens' letters, lower-cased
    for (size_t i = 0; i < e.ids.size(); ++i)
      if (e.target[i] == kWordTarget) {
        std::string letters;
        for (const std::string& w : words_of(cm.tokenizer.decode({e.ids[i]}))) letters += w;
        marked.push_back(letters);
      }
    if (train[k].words.empty()) {
      CHECK(marked.empty());
      continue;
    }
    ++with_words;
    // Every marked token is a piece of a requested word, and together they spell every word.
    std::string all;
    for (const std::string& m : marked) {
      all += m;
      bool inside = false;
      for (const std::string& w : train[k].words) inside = inside || (!m.empty() && w.find(m) != std::string::npos);
      CHECK(inside);
    }
    for (const std::string& w : train[k].words) CHECK(all.find(w) != std::string::npos);
  }
  CHECK(with_words > 5);

  // A short run with the words weighing 4: it trains, and sft.json records the weight.
  SftOptions o;
  o.base_dir = b.dir;
  o.data_path = b.data;
  o.out_dir = test::fresh_dir("test_scratch/sft_word_weight") + "/out";
  o.batch_size = 4;
  o.max_steps = 20;
  o.warmup_steps = 2;
  o.lr = 3e-3;
  o.eval_interval = 20;
  o.eval_examples = 8;
  o.quiet = true;
  o.word_weight = 4;
  SftResult r = run_sft(o);
  CHECK(r.last_loss < r.first_loss);
  CHECK(read_file(o.out_dir + "/sft.json").find("\"word_weight\": 4") != std::string::npos);
}

TEST_CASE("foundry chat: --message, and the interactive path through a pseudo-terminal", "[chat][cli]") {
  const TinyBase& b = tiny_base();
  const std::string out = test::fresh_dir("test_scratch/sft_chat") + "/sft";
  std::string log = run(kFoundry + " sft --base " + b.dir + " --data " + b.data + " --out " + out +
                        " --max-steps 3 --batch-size 2 --warmup-steps 1");
  REQUIRE(log.find("[exit 0]") != std::string::npos);
  const std::string model = out + "/model";
  log = run(kFoundry + " chat --model " + model +
            " --message 'Write a story about a girl named Mia.' --temperature 0"
            " --max-new-tokens 8");
  CHECK(log.find("[exit 0]") != std::string::npos);
  // A base model is refused with the way forward.
  log = run(kFoundry + " chat --model " + b.dir + " --message hi");
  CHECK(log.find("not a chat model") != std::string::npos);
  CHECK(log.find("[exit 1]") != std::string::npos);

  // The interactive path: a pty, so the program sees a terminal (banner, prompts, Ctrl-D).
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl(kFoundry.c_str(), kFoundry.c_str(), "chat", "--model", model.c_str(), "--max-new-tokens", "40", "--threads",
          "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string screen;
  auto read_until = [&](const std::string& what, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (screen.find(what) == std::string::npos && std::chrono::steady_clock::now() < end) {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(master, &set);
      timeval tv{0, 100000};
      if (select(master + 1, &set, nullptr, nullptr, &tv) > 0) {
        char buf[4096];
        ssize_t n = read(master, buf, sizeof buf);
        if (n <= 0) break;
        screen.append(buf, n);
      }
    }
    return screen.find(what) != std::string::npos;
  };
  auto type = [&](const std::string& s) { REQUIRE(write(master, s.data(), s.size()) == (ssize_t)s.size()); };
  CHECK(read_until("Ctrl-D quits", 60));
  CHECK(read_until("> ", 10));
  type("/temperature 0\n");
  CHECK(read_until("[temperature 0]", 10));
  type("/temperature x\n");
  CHECK(read_until("needs a number", 10));
  // Long messages fill the 96-position context: the oldest are dropped, with a note.
  for (int k = 0; k < 4; ++k) type("Write a story that uses the words ball, happy, park and tree and dog.\n");
  CHECK(read_until("[context full", 120));
  type("/reset\n");
  CHECK(read_until("[conversation reset]", 60));
  type("\x04");  // Ctrl-D: end of input
  int status = 0;
  pid_t done = 0;
  for (int k = 0; k < 600 && (done = waitpid(pid, &status, WNOHANG)) == 0; ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (done == 0) kill(pid, SIGKILL);  // the test fails below; no process is left behind
  close(master);
  INFO(screen);
  REQUIRE(done == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
