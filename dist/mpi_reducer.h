// Data-parallel training over MPI: `mpirun -np N foundry train ...`.
//
// Every rank holds the whole model and computes the gradients of its own micro-batches; this
// reducer combines them so that every rank ends each step with the same gradient sum, and the
// same bits as one process (train/grad_reducer.h explains the order of the sum).
//
// The gradients are cut into buckets of whole tensors (about bucket_mb each), in the reverse of
// the parameter order, which is about the order backward finishes them (the output end of the
// model first, the embedding last). Each bucket is split into N contiguous chunks; rank k owns
// chunk k of every bucket. Per bucket and micro-batch round:
//
//   1. exchange (MPI_Ialltoallv): every rank sends chunk k of its gradient to rank k. It starts
//      from inside the backward pass, as soon as the last tensor of the bucket is final, so the
//      transfer runs while backward computes the rest.
//   2. sum: the owner adds the N arriving chunks into its running sum in rank order
//      (sum + g_0 + g_1 + ... + g_{N-1}), which is micro-batch order.
//   3. gather (MPI_Iallgatherv, after the step's last round): every rank receives every chunk
//      of the sum.
//
// 1 and 3 only move bytes; the one place where numbers are added is 2, on one rank, in an
// order this code fixes. (MPI_Allreduce would be the same traffic in one call, but MPI leaves
// its summation order to the implementation, so its bits may change with N or the library.)
// Each rank sends and receives 2·(N-1)/N of the gradient bytes per step, the same as a ring
// all-reduce.
//
// With shard_optimizer (ZeRO stage 1) rank k keeps AdamW moments only for the elements it owns,
// updates only those weights, and a third exchange (MPI_Iallgatherv) gives every rank every
// weight. The per-element update is the same function on the same numbers, so the bits do not
// change; the moments take 1/N of the memory.
//
// A rank that dies must not leave the others waiting forever: MPI errors are returned (not
// fatal inside the library), every wait polls with a deadline (timeout_s), and on either the
// caller gets an exception naming what was being waited for; the command then calls MPI_Abort,
// which ends every rank. Checkpoints are published atomically by rank 0, so the last one stays
// whole.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

#include "train/grad_reducer.h"

namespace foundry {

// MPI for the lifetime of the object: MPI_Init_thread on construction, MPI_Finalize on
// destruction.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Ends every rank of the job with exit code `code` (after printing `message` on stderr).
  [[noreturn]] void abort(const std::string& message, int code = 1);
  // Was this process started by an MPI launcher (mpirun, mpiexec)? Read from the launcher's
  // environment (Open MPI, MPICH's Hydra, PMIx), before MPI_Init.
  static bool launched_by_mpi();

 private:
  int rank_ = 0, size_ = 1;
};

struct MpiReducerOptions {
  bool shard_optimizer = false;  // ZeRO-1: AdamW moments for this rank's share only
  double bucket_mb = 4.0;        // bucket size in MiB (a tensor larger than that is a bucket alone)
  double timeout_s = 300.0;      // no progress for this long: stop with an error instead of hanging
  std::string timeline;          // a chrome://tracing / Perfetto JSON file rank 0 writes at the end
};

class MpiReducer : public GradientReducer {
 public:
  explicit MpiReducer(const MpiReducerOptions& options);
  ~MpiReducer() override;
  MpiReducer(const MpiReducer&) = delete;
  MpiReducer& operator=(const MpiReducer&) = delete;

  int rank() const override { return rank_; }
  int ranks() const override { return size_; }
  void backward(Model& model, Tape& tape, Var loss, int round, int rounds) override;
  void reduce(Model& model, int round, int rounds) override;
  std::vector<double> all_gather(double mine) override;
  void optimizer_step(AdamW& opt, const std::vector<NamedTensor>& params, double lr,
                      const AdamWSettings& settings) override;
  void keep_own_share(AdamW& opt) override;
  void gather_optimizer_state(AdamW& opt) override;
  size_t optimizer_bytes(const AdamW& opt) const override;
  bool any(bool mine) override;

  // What the exchanges cost, per optimizer step, and the bucket layout (rank 0 prints it).
  std::string summary() const;
  // Writes the timeline (every rank's events, gathered to rank 0) when options.timeline is set.
  // Collective: every rank calls it.
  void write_timeline();

 private:
  struct Bucket {
    std::vector<int> params;    // indices into the parameter list, all of each tensor
    size_t begin = 0, end = 0;  // the bucket's range of the flat gradient
    std::vector<size_t> lo;     // N + 1 chunk bounds: rank k owns [lo[k], lo[k + 1])
    size_t own = 0;             // where this rank's chunk sits in the owned buffers
    int ready_at = 0;           // tape id after whose backward every tensor here is final
    std::vector<real> recv;     // (N, chunk) the chunks of the exchange
    // MPI reads these until the request completes, so they live as long as the bucket.
    std::vector<int> counts, displs;        // chunk k's length and start within the bucket
    std::vector<int> my_counts, my_displs;  // this rank's chunk from each rank, side by side in recv
    MPI_Request exchange = MPI_REQUEST_NULL, gather = MPI_REQUEST_NULL;
    bool summed = false;
    double t_launch = 0, t_gather = 0;
  };
  struct Event {
    std::string name;
    double start, end;  // seconds since the start of the run
    int lane;           // 0 compute; 1 + k bucket k's communication; 1 + buckets the weight gather
  };

  void set_up(const std::vector<size_t>& sizes);  // the layout, from the tensors' sizes
  void find_ready_points(const Model& model, const Tape& tape);
  void launch(Model& model, Bucket& b);
  void progress(bool last_round);  // tests outstanding requests, sums what arrived
  void sum(Bucket& b);             // step 2 for one bucket
  void wait(MPI_Request* requests, int count, const char* what);
  void check(int code, const char* what) const;
  [[noreturn]] void timed_out(const char* what) const;
  size_t chunk(const Bucket& b) const { return b.lo[rank_ + 1] - b.lo[rank_]; }
  double now() const;
  static int lane(size_t bucket) { return static_cast<int>(bucket) + 1; }
  void event(const std::string& name, double start, double end, int lane);

  MpiReducerOptions opt_;
  MPI_Comm comm_ = MPI_COMM_NULL;    // losses, stop flags, optimizer state, timeline
  MPI_Comm comm_x_ = MPI_COMM_NULL;  // the gradient exchanges
  MPI_Comm comm_g_ = MPI_COMM_NULL;  // the gathers (gradient sums, weights)
  int rank_ = 0, size_ = 1;
  std::vector<size_t> sizes_;        // elements of each parameter
  std::vector<Shape> shapes_;        // and their shapes (a sharded optimizer's checkpoint needs them)
  std::vector<size_t> flat_offset_;  // where each parameter starts in the flat buffers
  std::vector<Bucket> buckets_;      // in launch order
  std::vector<real> flat_;           // every gradient (and, in the sharded update, every weight)
  std::vector<real> own_sum_;        // the running sum of this rank's chunks
  std::vector<real> m_, v_;          // sharded AdamW moments of this rank's chunks
  bool ready_points_found_ = false;
  size_t next_launch_ = 0;
  int round_ = 0, rounds_ = 1;
  double t0_ = 0;
  // statistics
  long steps_ = 0;
  double wait_s_ = 0, exchange_s_ = 0, optimizer_s_ = 0;
  std::vector<Event> events_;
};

}  // namespace foundry
