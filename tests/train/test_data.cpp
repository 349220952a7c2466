// foundry prepare's split, and the end-to-end check: a short run of the tiny config on the
// TinyStories sample gets well below the unigram baseline.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "engine/parallel.h"
#include "tests/common/test_helpers.h"
#include "tokenizer/bpe_train.h"
#include "train/baselines.h"
#include "train/metrics.h"
#include "train/prepare.h"
#include "train/token_file.h"
#include "train/trainer.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) { return test::fresh_dir("test_train_tmp/" + name); }

BpeTokenizer small_tokenizer(const std::string& text, int vocab) {
  BpeTrainOptions opt;
  opt.vocab_size = vocab;
  opt.special_tokens = {"<|endoftext|>"};
  return train_bpe(text, opt);
}

}  // namespace

TEST_CASE("prepare splits by whole documents at the separator", "[train][prepare]") {
  const std::string text =
      "one fish.<|endoftext|>two fish.<|endoftext|>red fish.<|endoftext|>blue fish"
      "<|endoftext|>and a tail";
  BpeTokenizer tok = small_tokenizer(text, 280);
  PreparedData d = split_and_tokenize(text, tok, "<|endoftext|>", 0.4);
  CHECK(d.documents == 5);      // four separated documents and the tail
  CHECK(d.val_documents == 2);  // round(0.4 · 5)
  CHECK(tok.decode(d.train) == "one fish.<|endoftext|>two fish.<|endoftext|>red fish.<|endoftext|>");
  CHECK(tok.decode(d.val) == "blue fish<|endoftext|>and a tail");
  // The separator is kept as its special token at the end of each training document.
  const int eot = tok.special_id("<|endoftext|>");
  CHECK(d.train.back() == eot);

  // At least one document on each side, whatever the fraction.
  PreparedData tiny = split_and_tokenize(text, tok, "<|endoftext|>", 0.01);
  CHECK(tiny.val_documents == 1);
  PreparedData most = split_and_tokenize(text, tok, "<|endoftext|>", 0.99);
  CHECK(most.val_documents == 4);
  CHECK_FALSE(most.train.empty());
}

TEST_CASE("prepare splits by token fraction without a separator and writes valid files", "[train][prepare]") {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "The cat sat on the mat number " + std::to_string(i) + ". ";
  BpeTokenizer tok = small_tokenizer(text, 300);
  PreparedData d = split_and_tokenize(text, tok, "", 0.25);
  const size_t n = tok.encode(text).size();
  CHECK(d.documents == 1);
  CHECK(d.train.size() == static_cast<size_t>(std::floor(n * 0.75)));
  CHECK(d.train.size() + d.val.size() == n);
  CHECK(tok.decode(d.train) + tok.decode(d.val) == text);
  // A separator that never occurs also falls back to the token split.
  CHECK(split_and_tokenize(text, tok, "<|endoftext|>", 0.25).train == d.train);
  CHECK_THROWS_WITH(split_and_tokenize(text, tok, "", 1.0), Catch::Contains("val_fraction"));

  const std::string dir = temp_dir("prepare_files");
  std::ofstream(dir + "/corpus.txt") << text;
  prepare_data({dir + "/corpus.txt"}, tok, "", 0.25, dir + "/data");
  CHECK(load_tokens(dir + "/data/train.bin") == d.train);
  CHECK(load_tokens(dir + "/data/val.bin") == d.val);
  CHECK(fs::exists(dir + "/data/tokenizer.json"));
  CHECK(fs::exists(dir + "/data/prepare.json"));
  std::ofstream(dir + "/empty.txt").flush();
  CHECK_THROWS_WITH(prepare_data({dir + "/empty.txt"}, tok, "", 0.1, dir + "/x"), Catch::Contains("empty"));
}

// [long]: the sanitizer build of scripts/test.sh leaves it out (tests/CMakeLists.txt): it is the
// trainer of the smaller cases here at the size its loss needs, over two minutes under the sanitizers.
TEST_CASE("a short run of the tiny config on TinyStories beats the unigram baseline by far",
          "[train][tinystories][long]") {
  const std::string text = test::load_corpus("tinystories.txt");
  // A 1024-token vocabulary keeps the output layer cheap; the model is configs/tiny.json.
  BpeTokenizer tok = small_tokenizer(text, 1024);
  const std::string dir = temp_dir("tinystories");
  std::ofstream(dir + "/corpus.txt", std::ios::binary) << text;
  PreparedData d = prepare_data({dir + "/corpus.txt"}, tok, "<|endoftext|>", 0.1, dir + "/data");
  const double unigram = unigram_loss(d.train, d.val, tok.vocab_size());

  TrainConfig c = load_train_config(std::string(FOUNDRY_SOURCE_DIR) + "/configs/tiny.json",
                                    {"model.vocab_size=1024", "training.max_steps=150", "training.warmup_steps=15",
                                     "training.eval_interval=75", "training.eval_batches=8"});
  set_num_threads(1);  // reproducible numbers whatever OMP_NUM_THREADS says
  TrainOptions o;
  o.data_dir = dir + "/data";
  o.out_dir = dir + "/run";
  o.quiet = true;
  TrainResult r = train(c, o);
  MetricsSeries m = read_metrics(o.out_dir + "/metrics.jsonl");
  REQUIRE(m.eval.size() == 3);
  INFO("unigram " << unigram << ", val losses " << m.eval[0].val_loss << " " << m.eval[1].val_loss << " "
                  << m.eval[2].val_loss);
  CHECK(m.eval[0].val_loss > unigram);     // untrained: worse than counting tokens
  CHECK(r.last_val_loss < unigram - 1.0);  // trained: well below it
  CHECK(m.eval[2].val_loss < m.eval[1].val_loss);
}
