#include "train/grad_reducer.h"

#include "train/data_loader.h"

namespace foundry {

size_t GradientReducer::optimizer_bytes(const AdamW& opt) const {
  size_t n = 0;
  for (size_t k = 0; k < opt.m.size(); ++k) n += opt.m[k].size() + opt.v[k].size();
  return n * sizeof(real);
}

// ANCHOR: local_reduce
void LocalReducer::reduce(Model& model, int round, int rounds) {
  if (rounds == 1) return;  // one micro-batch: its gradient is the sum
  std::vector<NamedTensor> params = model.parameters();
  sum_.resize(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    std::vector<real>& g = params[k].grad->data;
    std::vector<real>& sum = sum_[k];
    if (round == 0) {
      sum = g;  // the fold starts with g_0 itself (copied, not added to zero)
    } else if (round < rounds - 1) {
      for (size_t i = 0; i < g.size(); ++i) sum[i] = sum[i] + g[i];
    } else {
      for (size_t i = 0; i < g.size(); ++i) g[i] = sum[i] + g[i];  // the last addition lands in the gradient
    }
  }
}
// ANCHOR_END: local_reduce

LocalReducer& local_reducer() {
  // One per thread: the fold's buffer is reused from step to step.
  static thread_local LocalReducer reducer;
  return reducer;
}

void next_batch_of_rank(DataLoader& loader, Batch& batch, const GradientReducer& reducer) {
  static thread_local Batch scratch;  // the other ranks' batches, drawn and dropped
  for (int k = 0; k < reducer.ranks(); ++k) next_batch(loader, k == reducer.rank() ? batch : scratch);
}

}  // namespace foundry
