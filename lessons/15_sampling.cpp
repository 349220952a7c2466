// Lesson 15: sampling. Shows temperature, top-k and top-p on one small printed distribution,
// then what each setting does to a real model's stories (the llama2.c stories260K fixture):
// how repetitive they get and how surprising each chosen token was. Exits non-zero if a check
// fails.
//
//   build/lessons/lesson_15
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "infer/generate.h"
#include "infer/sampling.h"
#include "lessons/lesson_common.h"
#include "model/llama2c.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

// A made-up next-token distribution after "The cat sat on the": six candidates and their logits.
const std::vector<std::string> kWords = {"mat", "floor", "sofa", "roof", "moon", "banana"};
const std::vector<real> kLogits = {3.0f, 2.2f, 1.8f, 1.0f, -0.5f, -2.0f};

void print_candidates(const std::vector<TokenProb>& c) {
  for (const TokenProb& t : c) std::printf("  %-7s %.3f\n", kWords[t.id].c_str(), t.prob);
}

double total(const std::vector<TokenProb>& c) {
  double s = 0;
  for (const TokenProb& t : c) s += t.prob;
  return s;
}

// Fraction of the 3-grams of `ids` that already appeared earlier: 0 = never repeats itself.
double repeated_trigrams(const std::vector<int>& ids) {
  std::set<std::vector<int>> seen;
  int repeats = 0, n = 0;
  for (size_t i = 0; i + 3 <= ids.size(); i++, n++) {
    std::vector<int> tri(ids.begin() + i, ids.begin() + i + 3);
    if (!seen.insert(tri).second) repeats++;
  }
  return n ? double(repeats) / n : 0;
}

}  // namespace

int main() {
  std::printf("[temperature]\n");
  {
    std::printf("logits:");
    for (size_t i = 0; i < kWords.size(); i++) std::printf(" %s %.1f", kWords[i].c_str(), kLogits[i]);
    std::printf("\ngreedy (temperature 0) picks: %s\n", kWords[sample_greedy(kLogits.data(), 6)].c_str());
    std::vector<TokenProb> c;
    for (double T : {0.5, 1.0, 2.0}) {
      softmax_with_temperature(c, kLogits.data(), 6, T);
      std::printf("temperature %.1f:", T);
      for (const TokenProb& t : c) std::printf(" %.3f", t.prob);
      std::printf("\n");
      check(std::fabs(total(c) - 1) < 1e-12, "probabilities sum to 1");
    }
  }

  std::printf("[top_k]\n");
  {
    std::vector<TokenProb> c;
    softmax_with_temperature(c, kLogits.data(), 6, 1.0);
    keep_top_k(c, 3);
    double kept = total(c);
    std::printf("top-k 3 keeps %.3f of the probability:\n", kept);
    for (TokenProb& t : c) t.prob /= kept;  // what draw() does implicitly
    print_candidates(c);
    check(c.size() == 3 && kWords[c[2].id] == "sofa", "top-k 3 keeps mat, floor, sofa");
  }

  std::printf("[top_p]\n");
  {
    std::vector<TokenProb> c;
    softmax_with_temperature(c, kLogits.data(), 6, 1.0);
    for (double p : {0.5, 0.8, 0.95}) {
      std::vector<TokenProb> kept = c;
      keep_top_p(kept, p);
      std::printf("top-p %.2f keeps %zu tokens holding %.3f:", p, kept.size(), total(kept));
      for (const TokenProb& t : kept) std::printf(" %s", kWords[t.id].c_str());
      std::printf("\n");
      check(total(kept) >= p, "the kept set reaches p");
    }
  }

  std::printf("[stories]\n");
  {
    const std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c";
    Model model = load_llama2c_checkpoint(dir + "/stories260K.bin");
    auto tok = load_llama2c_tokenizer(dir + "/tok512.bin");
    std::vector<int> prompt = prompt_ids(*tok, "Once upon a time", model.config.max_seq_len);
    DecodeState state = make_decode_state(model.config);
    DecodeState scorer = make_decode_state(model.config);
    struct Setting {
      const char* name;
      SamplingSettings s;
    };
    std::vector<double> repetition, surprise;
    for (const Setting& st : {Setting{"greedy", {0.0, 0, 1.0}}, Setting{"T 0.8, top-p 0.9", {0.8, 0, 0.9}},
                              Setting{"T 1.0", {1.0, 0, 1.0}}, Setting{"T 1.5", {1.5, 0, 1.0}}}) {
      Sampler sampler(st.s, 42);
      GenerationResult r = generate(model, state, sampler, prompt, 200, {});
      // Surprise: the average −log p of each chosen token under the model's own T = 1
      // distribution, in nats. Low = the model expected it; high = an unlikely pick.
      reset(scorer);
      double nll = 0;
      const real* logits = nullptr;
      for (int id : prompt) logits = decode_step(scorer, model, id);
      std::vector<TokenProb> c;
      for (int id : r.tokens) {
        softmax_with_temperature(c, logits, model.config.vocab_size, 1.0);
        nll -= std::log(c[id].prob);
        logits = decode_step(scorer, model, id);
      }
      repetition.push_back(repeated_trigrams(r.tokens));
      surprise.push_back(nll / r.tokens.size());
      std::vector<int> shown(r.tokens.begin(), r.tokens.begin() + 40);
      std::string text = tok->decode(shown);
      for (char& ch : text) ch = ch == '\n' ? ' ' : ch;
      std::printf("%-17s repeated 3-grams %4.0f%%  surprise %.2f nats/token\n  Once upon a time%s ...\n", st.name,
                  100 * repetition.back(), surprise.back(), text.c_str());
    }
    check(repetition[0] > repetition[2], "greedy repeats itself more than sampling at T 1");
    check(surprise[0] < surprise[1] && surprise[1] < surprise[2] && surprise[2] < surprise[3],
          "surprise grows with the temperature");
  }
  return failures ? 1 : 0;
}
