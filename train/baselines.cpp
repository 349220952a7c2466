#include "train/baselines.h"

#include <cmath>
#include <stdexcept>

namespace foundry {

double uniform_loss(int vocab_size) { return std::log(static_cast<double>(vocab_size)); }

// ANCHOR: unigram_loss
double unigram_loss(const std::vector<int>& train, const std::vector<int>& val, int vocab_size) {
  if (val.empty()) throw std::invalid_argument("unigram_loss: the validation split is empty");
  std::vector<double> count(vocab_size, 1.0);  // add-one smoothing
  for (int id : train) count.at(id) += 1.0;
  const double total = static_cast<double>(train.size()) + vocab_size;
  double nll = 0.0;
  for (int id : val) nll -= std::log(count.at(id) / total);
  return nll / static_cast<double>(val.size());
}
// ANCHOR_END: unigram_loss

}  // namespace foundry
