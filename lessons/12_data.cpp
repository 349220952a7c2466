// Lesson 12: data and the causal language-modelling objective. Prints how a batch is cut from
// a token stream (inputs and targets shifted by one), how sequential batches wrap, how prepare
// splits a corpus into training and validation documents, and the two baseline losses a model
// must beat on the TinyStories sample. Exits non-zero if any check fails.
//
//   build/lessons/lesson_12
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/parallel.h"
#include "lessons/lesson_common.h"
#include "model/model.h"
#include "tokenizer/bpe_train.h"
#include "train/baselines.h"
#include "train/data_loader.h"
#include "train/prepare.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

void print_rows(const char* label, const std::vector<int>& ids, int B, int T) {
  for (int b = 0; b < B; ++b) {
    std::printf("  %s row %d:", label, b);
    for (int t = 0; t < T; ++t) std::printf(" %2d", ids[b * T + t]);
    std::printf("\n");
  }
}

}  // namespace

int main() {
  set_num_threads(1);

  std::printf("[batch]\n");
  // A "corpus" of 20 tokens whose ids are their positions, so every offset is visible.
  std::vector<int> tokens(20);
  for (int i = 0; i < 20; ++i) tokens[i] = i;
  const int B = 2, T = 4;
  Batch batch;
  bool shifted = true;
  for (uint64_t k = 0; k < 2; ++k) {
    sequential_batch(tokens, k, B, T, batch);
    std::printf("batch k=%llu\n", static_cast<unsigned long long>(k));
    print_rows("inputs ", batch.inputs, B, T);
    print_rows("targets", batch.targets, B, T);
    for (int i = 0; i < B * T; ++i) shifted = shifted && batch.targets[i] == batch.inputs[i] + 1;
  }
  check(shifted, "every target is the token after its input");

  std::printf("[wrap]\n");
  // Batch 2 starts at o = (2·2 + 0)·4 = 16 and 20: the second row wraps to the start.
  sequential_batch(tokens, 2, B, T, batch);
  print_rows("inputs ", batch.inputs, B, T);
  print_rows("targets", batch.targets, B, T);
  check(batch.inputs[4] == 0 && batch.targets[3] == 0, "row 1 of batch 2 starts at (2*2+1)*4 mod 20 = 0");

  std::printf("[split]\n");
  const std::string corpus =
      "Tom had a red ball.<|endoftext|>Sue saw a big dog.<|endoftext|>"
      "The cat sat.<|endoftext|>Ben ate a pie.<|endoftext|>Mia ran home.<|endoftext|>";
  BpeTrainOptions bpe_options;
  bpe_options.vocab_size = 300;
  bpe_options.special_tokens = {"<|endoftext|>"};
  BpeTokenizer small = train_bpe(corpus, bpe_options);
  PreparedData split = split_and_tokenize(corpus, small, "<|endoftext|>", 0.2);
  std::printf("documents %ld, validation documents %ld\n", split.documents, split.val_documents);
  std::printf("train tokens %zu: \"%s\"\n", split.train.size(), small.decode(split.train).c_str());
  std::printf("val tokens %zu: \"%s\"\n", split.val.size(), small.decode(split.val).c_str());
  check(small.decode(split.train) + small.decode(split.val) == corpus, "train + val decode to the corpus");

  std::printf("[baselines]\n");
  std::string path = std::string(FOUNDRY_SOURCE_DIR) + "/data/tinystories.txt";
  if (!std::filesystem::exists(path)) path = std::string(FOUNDRY_SOURCE_DIR) + "/../shared/data/tinystories.txt";
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bpe_options.vocab_size = 1024;
  BpeTokenizer tok = train_bpe(text, bpe_options);
  PreparedData data = split_and_tokenize(text, tok, "<|endoftext|>", 0.1);
  const double uniform = uniform_loss(tok.vocab_size());
  const double unigram = unigram_loss(data.train, data.val, tok.vocab_size());
  std::printf("TinyStories sample: %ld stories, %zu train tokens, %zu val tokens, vocabulary %d\n", data.documents,
              data.train.size(), data.val.size(), tok.vocab_size());
  std::printf("uniform loss ln V      %.4f\n", uniform);
  std::printf("unigram loss           %.4f\n", unigram);
  // An untrained model: its loss on a validation batch should sit near ln V.
  ModelConfig config;
  config.vocab_size = tok.vocab_size();
  Model model = make_model(config);
  Rng rng(1337);
  init_weights(model, rng);
  Tape tape;
  sequential_batch(data.val, 0, 4, 64, batch);
  Var loss = model_loss(tape, model, batch.inputs, batch.targets, 4, 64);
  const double untrained = tape.value(loss)[0];
  std::printf("untrained tiny model   %.4f\n", untrained);
  check(unigram < uniform - 1.0, "the unigram baseline is far below uniform");
  check(std::fabs(untrained - uniform) < 0.1, "an untrained model scores about ln V");
  return failures == 0 ? 0 : 1;
}
