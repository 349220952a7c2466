// Two losses every trained model must beat, in nats per token.
//
//   uniform:  guess every token with probability 1/V            loss = ln V
//   unigram:  guess token i with its frequency p(i) in the training split, ignoring context:
//             loss = −(1/N) Σ over validation tokens x of ln p(x)
//
// The unigram loss is what a model reaches by learning only which tokens are common. A language
// model that uses its context must go well below it; that is the first sign it learned anything.
// Counts get add-one (Laplace) smoothing so a token that never occurs in training does not
// cost an infinite loss.
#pragma once

#include <vector>

namespace foundry {

double uniform_loss(int vocab_size);
double unigram_loss(const std::vector<int>& train, const std::vector<int>& val, int vocab_size);

}  // namespace foundry
