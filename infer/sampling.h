// Sampling: turning the logits of the next position into one token id.
//
//   temperature 0:  greedy, the argmax (the lowest id on a tie)
//   otherwise:      p = softmax(logits / temperature)
//                   top-k: keep the k most probable tokens (k = 0: keep all)
//                   top-p: of those, keep the smallest set, taken in descending probability,
//                          whose probability reaches p of what is left (the token that crosses
//                          p is kept; p = 1: keep all)
//                   renormalize what is kept and draw one id with the seeded Rng
//
// Worked example, logits (2, 1, 0, −1), temperature 1: p = (0.644, 0.237, 0.087, 0.032).
//   top-k 2 keeps {0, 1} → (0.731, 0.269) after renormalizing.
//   top-p 0.7 keeps {0, 1}: 0.644 < 0.7, then 0.644 + 0.237 = 0.881 ≥ 0.7 (token 1 crosses).
//
// Both filters measure probabilities after the filters before them, as Hugging Face's
// transformers does: top-p after top-k looks at the renormalized top-k distribution.
// Ties in probability are ordered by the lower id first, so the kept set never depends on
// the sort algorithm.
#pragma once

#include <vector>

#include "engine/real.h"
#include "engine/rng.h"

namespace foundry {

// ANCHOR: token_prob
struct TokenProb {
  double prob;  // probability, or any non-negative weight (draw() renormalizes)
  int id;       // token id
};
// ANCHOR_END: token_prob

// Index of the largest logit; the lowest such index on a tie.
int sample_greedy(const real* logits, int V);

// candidates = every id 0..V−1 with p = softmax(logits / temperature) (temperature > 0), in id
// order. Computed in double, after subtracting the largest logit so exp never overflows.
void softmax_with_temperature(std::vector<TokenProb>& candidates, const real* logits, int V, double temperature);

// Keeps the k most probable candidates, sorted by descending probability (ties: lower id
// first). k <= 0 or k >= size keeps all of them (still sorted).
void keep_top_k(std::vector<TokenProb>& candidates, int k);

// Sorts by descending probability and keeps the smallest prefix whose probability sum reaches
// p · (sum of all candidates). p >= 1 keeps all. p must be in (0, 1].
void keep_top_p(std::vector<TokenProb>& candidates, double p);

// Draws one candidate's id with probability prob / Σ prob, using one rng.uniform().
int draw(const std::vector<TokenProb>& candidates, Rng& rng);

// ANCHOR: sampler
struct SamplingSettings {
  double temperature = 1.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 1.0;        // 1: off
};

// The settings, the seeded generator and a reusable candidate buffer (no allocation per token).
struct Sampler {
  SamplingSettings settings;
  Rng rng;
  std::vector<TokenProb> candidates;  // (V) scratch

  explicit Sampler(SamplingSettings settings_ = {}, uint64_t seed = 1337);
  int sample(const real* logits, int V);
};
// ANCHOR_END: sampler

// Throws std::invalid_argument naming the setting when temperature < 0, top_k < 0 or top_p is
// outside (0, 1].
void validate(const SamplingSettings& settings);

}  // namespace foundry
