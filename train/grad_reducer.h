// How a training step combines the gradients of its micro-batches: the one seam between the
// training loop and data parallelism.
//
// A step of grad_accum micro-batches is cut into rounds of `ranks()` micro-batches each: in
// round r, rank k (0 <= k < ranks) computes the gradient of micro-batch r·ranks + k of the step
// (the micro-batches are dealt out in the order the data loader draws them). A single process
// is one rank: grad_accum rounds of one micro-batch each.
//
// The step's gradient sum is the same left fold on any number of ranks, which is what makes
// N ranks give the same bits as one process:
//
//   sum = g_0;  sum = sum + g_1;  sum = sum + g_2;  ...  (one addition per element, in order)
//
// where every g_k is computed from zeroed gradients. A single process keeps `sum` in a buffer
// of its own (LocalReducer); N ranks split every gradient into N slices, send each slice to
// the rank that owns it, and the owner adds the N arriving slices in rank order, which is the
// order of the fold (dist/mpi_reducer.h). No rank ever sums in an order the network chooses.
#pragma once

#include <cstdio>
#include <vector>

#include "engine/tape.h"
#include "model/model.h"
#include "train/adamw.h"

namespace foundry {

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual int rank() const { return 0; }
  virtual int ranks() const { return 1; }

  // The backward pass of one micro-batch (of round `round` of `rounds`) into the model's zeroed
  // gradients. A distributed reducer starts sending gradients from inside it, as soon as they
  // are final.
  virtual void backward(Model& model, Tape& tape, Var loss, int round, int rounds) = 0;
  // After round `round` of `rounds`: folds the round's gradients into the step's sum. After the
  // last round the model's gradients hold the sum (on every rank).
  virtual void reduce(Model& model, int round, int rounds) = 0;
  // Every rank's `mine`, in rank order (the same vector on every rank).
  virtual std::vector<double> all_gather(double mine) { return {mine}; }
  // The AdamW update of every parameter (a sharded optimizer updates its share and gathers the
  // weights). Same signature and result as adamw_step.
  virtual void optimizer_step(AdamW& opt, const std::vector<NamedTensor>& params, double lr,
                              const AdamWSettings& settings) {
    adamw_step(opt, params, lr, settings);
  }
  // A sharded optimizer keeps only its share of the moments. keep_own_share drops the rest of
  // full moments (loaded from a checkpoint, or gathered); gather_optimizer_state, called by
  // every rank, gives rank 0 all of them again (for a checkpoint). No-ops when unsharded.
  virtual void keep_own_share(AdamW& opt) {}
  virtual void gather_optimizer_state(AdamW& opt) {}
  // Bytes of AdamW moments this rank holds.
  virtual size_t optimizer_bytes(const AdamW& opt) const;
  // True on every rank when `mine` is true on any (e.g. a stop request that reached one rank).
  virtual bool any(bool mine) { return mine; }
};

// The single process: one rank, the fold kept in a buffer of its own.
class LocalReducer : public GradientReducer {
 public:
  void backward(Model& model, Tape& tape, Var loss, int round, int rounds) override { tape.backward(loss); }
  void reduce(Model& model, int round, int rounds) override;

 private:
  std::vector<std::vector<real>> sum_;  // the fold so far, one vector per parameter (grad_accum > 1 only)
};

// The reducer of the overload of training_step without one: a single process.
LocalReducer& local_reducer();

// The rank's micro-batch of this round: draws ranks() batches from the loader and keeps the
// rank-th. Every rank draws all of them, so the ranks' loaders stay equal: one saved position
// is every rank's position, and a run can resume on another number of ranks.
struct DataLoader;
struct Batch;
void next_batch_of_rank(DataLoader& loader, Batch& batch, const GradientReducer& reducer);

}  // namespace foundry
