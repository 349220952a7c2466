// A cost model of data-parallel training: the step time of N ranks from one rank's measured
// compute time, the gradient bytes, the buckets and a network's bandwidth and latency.
//
// Each rank computes its own micro-batches (forward, backward, optimizer) as fast as one rank
// alone; the gradients cross the network meanwhile. Our reducer (dist/mpi_reducer.h) moves, per
// bucket, (N − 1)/N of the bucket's bytes in the exchange after every micro-batch round and the
// same again in the gather after the last one; a ring all-reduce moves 2·(N − 1)/N, the same as
// one round. With latency a per message step:
//
//   exchange  c_x = (N − 1)/N · G / bandwidth + (N − 1) · latency · b
//   gather    c_g = the same
//
// for G gradient bytes in b buckets. The buckets leave during backward: bucket k of b is final
// at k/b of the backward time, and the link carries them one after another. The last one is
// done at
//
//   done(c) = max(t_bwd / b + c,  t_bwd + c / b)
//
// after the start of backward (a pipeline: either the link is the bottleneck from the first
// bucket on, or backward is and only the last bucket's transfer shows). A step of r rounds:
//
//   t_step = r · t_fwd + (r − 1) · done(c_x) + done(c_x + c_g) + t_opt
#pragma once

#include <algorithm>

namespace foundry {

struct DpCost {
  double forward_s = 0;    // one rank's forward of one micro-batch
  double backward_s = 0;   // ... and its backward
  double optimizer_s = 0;  // clip + AdamW, once per step
  double gradient_bytes = 0;
  int buckets = 1;
  int rounds = 1;  // micro-batches per rank per step
};

struct DpPrediction {
  double comm_s = 0;     // the exchanges and the gather of one step, end to end
  double exposed_s = 0;  // the part of it that backward does not hide
  double step_s = 0;     // the whole step
};

// ANCHOR: dp_predict
inline DpPrediction predict_step(const DpCost& c, int ranks, double bandwidth_bytes_per_s, double latency_s) {
  DpPrediction p;
  const double compute = c.rounds * (c.forward_s + c.backward_s) + c.optimizer_s;
  if (ranks <= 1) {
    p.step_s = compute;
    return p;
  }
  const double n = ranks, b = c.buckets;
  const double one_way = (n - 1) / n * c.gradient_bytes / bandwidth_bytes_per_s + (n - 1) * latency_s * b;
  const auto done = [&](double comm) { return std::max(c.backward_s / b + comm, c.backward_s + comm / b); };
  p.comm_s = (c.rounds + 1) * one_way;
  p.exposed_s = (c.rounds - 1) * (done(one_way) - c.backward_s) + done(2 * one_way) - c.backward_s;
  p.step_s = compute + p.exposed_s;
  return p;
}
// ANCHOR_END: dp_predict

}  // namespace foundry
