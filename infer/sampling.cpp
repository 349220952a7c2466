#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace foundry {

namespace {
// Descending probability, then ascending id: a total order, so every sort gives one answer.
bool more_probable(const TokenProb& a, const TokenProb& b) {
  return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
}
}  // namespace

// ANCHOR: sample_greedy
int sample_greedy(const real* logits, int V) {
  int best = 0;
  for (int i = 1; i < V; i++) {
    if (logits[i] > logits[best]) best = i;  // strict: the first maximum wins a tie
  }
  return best;
}
// ANCHOR_END: sample_greedy

// ANCHOR: softmax_with_temperature
void softmax_with_temperature(std::vector<TokenProb>& candidates, const real* logits, int V, double temperature) {
  if (!(temperature > 0)) throw std::invalid_argument("softmax_with_temperature: temperature must be > 0");
  real max_logit = *std::max_element(logits, logits + V);
  candidates.resize(V);
  double total = 0;
  for (int i = 0; i < V; i++) {
    // Dividing by the temperature before the exp: T < 1 stretches the gaps between logits
    // (sharper), T > 1 shrinks them (flatter).
    double e = std::exp((double(logits[i]) - max_logit) / temperature);
    candidates[i] = {e, i};
    total += e;
  }
  for (TokenProb& c : candidates) c.prob /= total;
}
// ANCHOR_END: softmax_with_temperature

// ANCHOR: keep_top_k
void keep_top_k(std::vector<TokenProb>& candidates, int k) {
  if (k <= 0 || k >= static_cast<int>(candidates.size())) {
    std::sort(candidates.begin(), candidates.end(), more_probable);
    return;
  }
  // Only the k best need to be in order: partial_sort costs about V·log k, not V·log V.
  std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(), more_probable);
  candidates.resize(k);
}
// ANCHOR_END: keep_top_k

// ANCHOR: keep_top_p
void keep_top_p(std::vector<TokenProb>& candidates, double p) {
  if (!(p > 0 && p <= 1)) throw std::invalid_argument("keep_top_p: p = " + std::to_string(p) + ", expected 0 < p <= 1");
  if (p >= 1) return;
  std::sort(candidates.begin(), candidates.end(), more_probable);
  double total = 0;
  for (const TokenProb& c : candidates) total += c.prob;
  // Walk down the sorted list until the kept mass reaches p of the total; the token that
  // crosses the line is kept, so at least one token always survives.
  double kept = 0;
  size_t n = 0;
  while (n < candidates.size()) {
    kept += candidates[n].prob;
    n++;
    if (kept >= p * total) break;
  }
  candidates.resize(n);
}
// ANCHOR_END: keep_top_p

// ANCHOR: draw
int draw(const std::vector<TokenProb>& candidates, Rng& rng) {
  if (candidates.empty()) throw std::invalid_argument("draw: no candidates to draw from");
  double total = 0;
  for (const TokenProb& c : candidates) total += c.prob;
  // One uniform number u in [0, total): the candidate whose slice of the cumulative sum holds u.
  double u = rng.uniform() * total;
  double cumulative = 0;
  for (const TokenProb& c : candidates) {
    cumulative += c.prob;
    if (u < cumulative) return c.id;
  }
  return candidates.back().id;  // u landed on the rounding error at the very end
}
// ANCHOR_END: draw

void validate(const SamplingSettings& s) {
  if (!(s.temperature >= 0) || !std::isfinite(s.temperature)) {
    throw std::invalid_argument("sampling: temperature = " + std::to_string(s.temperature) +
                                ", expected >= 0 (0 is greedy)");
  }
  if (s.top_k < 0)
    throw std::invalid_argument("sampling: top_k = " + std::to_string(s.top_k) + ", expected >= 0 (0 is off)");
  if (!(s.top_p > 0 && s.top_p <= 1)) {
    throw std::invalid_argument("sampling: top_p = " + std::to_string(s.top_p) +
                                ", expected 0 < top_p <= 1 (1 is off)");
  }
}

Sampler::Sampler(SamplingSettings settings_, uint64_t seed) : settings(settings_), rng(seed) { validate(settings); }

// ANCHOR: sampler_sample
int Sampler::sample(const real* logits, int V) {
  if (settings.temperature == 0) return sample_greedy(logits, V);
  softmax_with_temperature(candidates, logits, V, settings.temperature);
  if (settings.top_k > 0) keep_top_k(candidates, settings.top_k);
  if (settings.top_p < 1) keep_top_p(candidates, settings.top_p);
  return draw(candidates, rng);  // draw renormalizes: it divides by what is left
}
// ANCHOR_END: sampler_sample

}  // namespace foundry
