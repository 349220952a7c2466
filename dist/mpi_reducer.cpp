#include "dist/mpi_reducer.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "common/file_io.h"

namespace foundry {

static_assert(sizeof(real) == sizeof(float), "the MPI path sends float gradients (real = float)");

// ---- the session ----

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  // FUNNELED: OpenMP threads compute, only the main thread calls MPI.
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::abort(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this is for an implementation that would
}

bool MpiSession::launched_by_mpi() {
  // Open MPI's mpirun, MPICH's Hydra (PMI), and PMIx-based launchers (srun, prterun).
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

// ---- the reducer ----

MpiReducer::MpiReducer(const MpiReducerOptions& options) : opt_(options) {
  // Three communicators, because non-blocking collectives must start in the same order on every
  // rank within a communicator: the exchanges start in bucket order during backward, the gathers
  // in bucket order as exchanges complete, and the two sequences interleave differently per rank.
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_x_);
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_g_);
  for (MPI_Comm c : {comm_, comm_x_, comm_g_}) MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  if (opt_.bucket_mb <= 0) throw std::invalid_argument("--bucket-mb must be positive");
  MPI_Barrier(comm_);
  t0_ = MPI_Wtime();
}

MpiReducer::~MpiReducer() {
  for (MPI_Comm* c : {&comm_, &comm_x_, &comm_g_}) {
    if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
  }
}

double MpiReducer::now() const { return MPI_Wtime() - t0_; }

void MpiReducer::event(const std::string& name, double start, double end, int lane) {
  if (!opt_.timeline.empty() && events_.size() < 200000) events_.push_back({name, start, end, lane});
}

void MpiReducer::check(int code, const char* what) const {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error("rank " + std::to_string(rank_) + ": MPI failed in " + what + ": " +
                           std::string(text, static_cast<size_t>(length)) +
                           " (another rank has probably died); stopping the job");
}

void MpiReducer::timed_out(const char* what) const {
  throw std::runtime_error("rank " + std::to_string(rank_) + ": no answer from the other ranks for " +
                           std::to_string(static_cast<long>(opt_.timeout_s)) + " s while waiting for " + what +
                           ": a rank has died or hangs; stopping the job (--mpi-timeout sets the limit)");
}

// Polls instead of blocking, so that a rank which never answers ends in an error, not a hang.
void MpiReducer::wait(MPI_Request* requests, int count, const char* what) {
  const double start = MPI_Wtime();
  for (long spin = 0;; ++spin) {
    int done = 0;
    check(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE), what);
    if (done) return;
    if (MPI_Wtime() - start > opt_.timeout_s) {
      timed_out(what);
    }
    // Spin briefly (a chunk is usually microseconds away), then sleep a little: a waiting rank
    // must not steal the core of the rank it waits for.
    if (spin > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// ANCHOR: layout
void MpiReducer::set_up(const std::vector<size_t>& sizes) {
  if (!buckets_.empty()) {
    if (sizes != sizes_) throw std::invalid_argument("MpiReducer: the model changed between steps");
    return;
  }
  sizes_ = sizes;
  const int P = static_cast<int>(sizes.size());
  const size_t bucket_numbers = static_cast<size_t>(opt_.bucket_mb * 1024 * 1024 / sizeof(real));
  flat_offset_.assign(P, 0);
  size_t flat = 0, own = 0;
  Bucket current;
  current.begin = 0;
  // The reverse of the parameter order: the last layers' gradients are final first.
  for (int k = P - 1; k >= 0; --k) {
    current.params.push_back(k);
    flat_offset_[k] = flat;
    flat += sizes[k];
    if (flat - current.begin >= bucket_numbers || k == 0) {
      current.end = flat;
      const size_t len = current.end - current.begin;
      for (int j = 0; j <= size_; ++j) current.lo.push_back(current.begin + len * j / size_);
      current.own = own;
      own += current.lo[rank_ + 1] - current.lo[rank_];
      buckets_.push_back(std::move(current));
      current = Bucket();
      current.begin = flat;
    }
  }
  for (Bucket& b : buckets_) {
    const size_t n = chunk(b);
    b.recv.resize(n * size_);
    for (int j = 0; j < size_; ++j) {
      b.counts.push_back(static_cast<int>(b.lo[j + 1] - b.lo[j]));
      b.displs.push_back(static_cast<int>(b.lo[j] - b.begin));
      b.my_counts.push_back(static_cast<int>(n));
      b.my_displs.push_back(static_cast<int>(n * j));
    }
  }
  flat_.assign(flat, 0);
  own_sum_.assign(own, 0);
}
// ANCHOR_END: layout

// Which tape node finishes each bucket: a parameter's gradient is final after the backward of
// the lowest-id node that reads it. The ops are the same every micro-batch, so once is enough.
void MpiReducer::find_ready_points(const Model& model, const Tape& tape) {
  std::unordered_map<const Tensor*, int> param_of_grad;
  const std::vector<NamedTensor> params = const_cast<Model&>(model).parameters();
  for (size_t k = 0; k < params.size(); ++k) param_of_grad[params[k].grad] = static_cast<int>(k);
  std::vector<int> first_reader(params.size(), INT_MAX);  // INT_MAX: never read, final at once
  for (int id = 0; id < tape.size(); ++id) {
    for (int input : tape.node(id).inputs) {
      const auto it = param_of_grad.find(tape.node(input).grad);
      if (it != param_of_grad.end()) first_reader[it->second] = std::min(first_reader[it->second], id);
    }
  }
  for (Bucket& b : buckets_) {
    b.ready_at = INT_MAX;
    for (int k : b.params) b.ready_at = std::min(b.ready_at, first_reader[k]);
  }
  ready_points_found_ = true;
}

// ANCHOR: backward
void MpiReducer::backward(Model& model, Tape& tape, Var loss, int round, int rounds) {
  std::vector<size_t> sizes;
  for (const NamedTensor& p : model.parameters()) sizes.push_back(p.value->size());
  set_up(sizes);
  if (!ready_points_found_) find_ready_points(model, tape);
  round_ = round;
  rounds_ = rounds;
  next_launch_ = 0;
  const bool last = round == rounds - 1;
  const double start = now();
  // After node i's backward: start the exchange of every bucket that is now final (in bucket
  // order, the same on every rank), and let MPI move the ones in flight.
  tape.set_backward_hook([&](int i) {
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready_at >= i)
      launch(model, buckets_[next_launch_++]);
    progress(last);
  });
  tape.backward(loss);
  tape.set_backward_hook(nullptr);
  event("backward", start, now(), 0);
  while (next_launch_ < buckets_.size()) launch(model, buckets_[next_launch_++]);
  progress(last);
}
// ANCHOR_END: backward

void MpiReducer::launch(Model& model, Bucket& b) {
  std::vector<NamedTensor> params = model.parameters();
  for (int k : b.params) {
    const Tensor& g = *params[k].grad;
    std::memcpy(flat_.data() + flat_offset_[k], g.ptr(), g.size() * sizeof(real));
  }
  b.summed = false;
  b.t_launch = now();
  check(MPI_Ialltoallv(flat_.data() + b.begin, b.counts.data(), b.displs.data(), MPI_FLOAT, b.recv.data(),
                       b.my_counts.data(), b.my_displs.data(), MPI_FLOAT, comm_x_, &b.exchange),
        "the gradient exchange");
}

// ANCHOR: sum
// Step 2: the owner's running sum of its chunk, one addition per arriving chunk, in rank order.
// Rank j's chunk in round r is micro-batch r·N + j of the step, so this is the fold of one
// process: the first chunk of the step is copied, every later one added.
void MpiReducer::sum(Bucket& b) {
  const size_t n = chunk(b);
  real* acc = own_sum_.data() + b.own;
  for (int j = 0; j < size_; ++j) {
    const real* g = b.recv.data() + n * j;
    if (round_ == 0 && j == 0) {
      std::memcpy(acc, g, n * sizeof(real));
    } else {
      for (size_t i = 0; i < n; ++i) acc[i] = acc[i] + g[i];
    }
  }
  b.summed = true;
}
// ANCHOR_END: sum

void MpiReducer::progress(bool last_round) {
  // Buckets are summed, and their gathers started, strictly in bucket order (the gathers are
  // collectives: every rank must start them in the same order).
  for (size_t i = 0; i < next_launch_; ++i) {
    Bucket& b = buckets_[i];
    if (b.summed) {
      if (b.gather != MPI_REQUEST_NULL) {
        int done = 0;
        check(MPI_Test(&b.gather, &done, MPI_STATUS_IGNORE), "the gradient gather");
        if (done) event("gather " + std::to_string(i), b.t_gather, now(), lane(i));
      }
      continue;
    }
    int done = 0;
    check(MPI_Test(&b.exchange, &done, MPI_STATUS_IGNORE), "the gradient exchange");
    if (!done) break;
    const double arrived = now();
    exchange_s_ += arrived - b.t_launch;
    event("exchange " + std::to_string(i), b.t_launch, arrived, lane(i));
    sum(b);
    event("sum " + std::to_string(i), arrived, now(), lane(i));
    if (last_round) {
      b.t_gather = now();
      check(MPI_Iallgatherv(own_sum_.data() + b.own, static_cast<int>(chunk(b)), MPI_FLOAT, flat_.data() + b.begin,
                            b.counts.data(), b.displs.data(), MPI_FLOAT, comm_g_, &b.gather),
            "the gradient gather");
    }
  }
}

void MpiReducer::reduce(Model& model, int round, int rounds) {
  const bool last = round == rounds - 1;
  const double start = now();
  const double deadline = MPI_Wtime() + opt_.timeout_s;
  for (long spin = 0;; ++spin) {
    progress(last);
    bool done = true;
    for (const Bucket& b : buckets_) done = done && b.summed && b.gather == MPI_REQUEST_NULL;
    if (done) break;
    if (MPI_Wtime() > deadline) {
      timed_out("the other ranks' gradients");
    }
    if (spin > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  wait_s_ += now() - start;
  event("wait for gradients", start, now(), 0);
  if (!last) return;
  // Step 3 done: the flat buffer holds the whole sum; back into the model's gradients.
  std::vector<NamedTensor> params = model.parameters();
  for (size_t k = 0; k < params.size(); ++k) {
    std::memcpy(params[k].grad->ptr(), flat_.data() + flat_offset_[k], sizes_[k] * sizeof(real));
  }
}

std::vector<double> MpiReducer::all_gather(double mine) {
  std::vector<double> all(size_);
  MPI_Request r;
  check(MPI_Iallgather(&mine, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, comm_, &r), "gathering the losses");
  wait(&r, 1, "the other ranks' losses");
  return all;
}

bool MpiReducer::any(bool mine) {
  int in = mine ? 1 : 0, out = 0;
  MPI_Request r;
  check(MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_MAX, comm_, &r), "agreeing to stop");
  wait(&r, 1, "the other ranks (agreeing whether to stop)");
  return out != 0;
}

// ---- the sharded optimizer (ZeRO stage 1) ----

// ANCHOR: sharded_step
void MpiReducer::optimizer_step(AdamW& opt, const std::vector<NamedTensor>& params, double lr, const AdamWSettings& s) {
  const double start = now();
  steps_++;
  if (!opt_.shard_optimizer) {
    adamw_step(opt, params, lr, s);  // every rank updates every weight, identically
    optimizer_s_ += now() - start;
    event("AdamW", start, now(), 0);
    return;
  }
  opt.t++;
  // This rank's chunk of every bucket, tensor by tensor: the same per-element update as
  // adamw_step, on the same numbers.
  for (Bucket& b : buckets_) {
    for (int k : b.params) {
      const size_t first = std::max(b.lo[rank_], flat_offset_[k]);
      const size_t last = std::min(b.lo[rank_ + 1], flat_offset_[k] + sizes_[k]);
      if (first >= last) continue;
      const size_t at = first - flat_offset_[k], shard = b.own + (first - b.lo[rank_]);
      const double wd = params[k].decay ? s.weight_decay : 0.0;
      adamw_update(params[k].value->ptr() + at, m_.data() + shard, v_.data() + shard, params[k].grad->ptr() + at,
                   last - first, lr, s.beta1, s.beta2, s.eps, wd, opt.t);
      std::memcpy(own_sum_.data() + shard, params[k].value->ptr() + at, (last - first) * sizeof(real));
    }
  }
  const double updated = now();
  event("AdamW (own share)", start, updated, 0);
  // Every rank receives every updated weight.
  std::vector<MPI_Request> requests(buckets_.size());
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    check(MPI_Iallgatherv(own_sum_.data() + b.own, static_cast<int>(chunk(b)), MPI_FLOAT, flat_.data() + b.begin,
                          b.counts.data(), b.displs.data(), MPI_FLOAT, comm_g_, &requests[i]),
          "the weight gather");
  }
  wait(requests.data(), static_cast<int>(requests.size()), "the other ranks' updated weights");
  for (size_t k = 0; k < params.size(); ++k) {
    std::memcpy(params[k].value->ptr(), flat_.data() + flat_offset_[k], sizes_[k] * sizeof(real));
  }
  event("weight gather", updated, now(), lane(buckets_.size()));
  optimizer_s_ += now() - start;
}
// ANCHOR_END: sharded_step

void MpiReducer::keep_own_share(AdamW& opt) {
  if (!opt_.shard_optimizer) return;
  std::vector<size_t> sizes;
  if (shapes_.empty()) {
    for (const Tensor& m : opt.m) {
      shapes_.push_back(m.shape);
      sizes.push_back(m.size());
    }
    set_up(sizes);
    m_.assign(own_sum_.size(), 0);
    v_.assign(own_sum_.size(), 0);
  }
  if (opt.m.empty() || opt.m[0].size() == 0) return;  // already a share
  for (const Bucket& b : buckets_) {
    for (int k : b.params) {
      const size_t first = std::max(b.lo[rank_], flat_offset_[k]);
      const size_t last = std::min(b.lo[rank_ + 1], flat_offset_[k] + sizes_[k]);
      if (first >= last) continue;
      const size_t at = first - flat_offset_[k], shard = b.own + (first - b.lo[rank_]);
      std::memcpy(m_.data() + shard, opt.m[k].ptr() + at, (last - first) * sizeof(real));
      std::memcpy(v_.data() + shard, opt.v[k].ptr() + at, (last - first) * sizeof(real));
    }
  }
  for (size_t k = 0; k < opt.m.size(); ++k) opt.m[k] = opt.v[k] = Tensor();
}

void MpiReducer::gather_optimizer_state(AdamW& opt) {
  if (!opt_.shard_optimizer) return;
  // Rank j's share, bucket by bucket, is one contiguous buffer of own_total(j) numbers.
  std::vector<int> counts(size_, 0), displs(size_, 0);
  for (const Bucket& b : buckets_) {
    for (int j = 0; j < size_; ++j) counts[j] += b.counts[j];
  }
  for (int j = 1; j < size_; ++j) displs[j] = displs[j - 1] + counts[j - 1];
  const bool root = rank_ == 0;
  std::vector<real> all_m(root ? flat_.size() : 0), all_v(root ? flat_.size() : 0);
  MPI_Request r[2];
  check(MPI_Igatherv(m_.data(), static_cast<int>(m_.size()), MPI_FLOAT, all_m.data(), counts.data(), displs.data(),
                     MPI_FLOAT, 0, comm_, &r[0]),
        "gathering the optimizer state");
  check(MPI_Igatherv(v_.data(), static_cast<int>(v_.size()), MPI_FLOAT, all_v.data(), counts.data(), displs.data(),
                     MPI_FLOAT, 0, comm_, &r[1]),
        "gathering the optimizer state");
  wait(r, 2, "the other ranks' optimizer state");
  if (!root) return;
  // Unpack: rank j's chunk of bucket b sits at displs[j] + (its chunks of the earlier buckets).
  std::vector<size_t> cursor(displs.begin(), displs.end());
  for (const Bucket& b : buckets_) {
    for (int j = 0; j < size_; ++j) {
      std::memcpy(flat_.data() + b.lo[j], all_m.data() + cursor[j], b.counts[j] * sizeof(real));
      cursor[j] += b.counts[j];
    }
  }
  for (size_t k = 0; k < shapes_.size(); ++k) {
    opt.m[k] = Tensor(shapes_[k]);
    std::memcpy(opt.m[k].ptr(), flat_.data() + flat_offset_[k], sizes_[k] * sizeof(real));
  }
  std::copy(displs.begin(), displs.end(), cursor.begin());
  for (const Bucket& b : buckets_) {
    for (int j = 0; j < size_; ++j) {
      std::memcpy(flat_.data() + b.lo[j], all_v.data() + cursor[j], b.counts[j] * sizeof(real));
      cursor[j] += b.counts[j];
    }
  }
  for (size_t k = 0; k < shapes_.size(); ++k) {
    opt.v[k] = Tensor(shapes_[k]);
    std::memcpy(opt.v[k].ptr(), flat_.data() + flat_offset_[k], sizes_[k] * sizeof(real));
  }
}

size_t MpiReducer::optimizer_bytes(const AdamW& opt) const {
  if (!opt_.shard_optimizer) return GradientReducer::optimizer_bytes(opt);
  return (m_.size() + v_.size()) * sizeof(real);
}

// ---- reporting ----

std::string MpiReducer::summary() const {
  char buf[512];
  const double per_step = steps_ > 0 ? 1000.0 / static_cast<double>(steps_) : 0.0;
  std::snprintf(buf, sizeof buf,
                "data parallel: %d ranks, %zu buckets (%.1f MiB of gradients); per step: %.2f ms of exchanges in "
                "flight (summed over buckets), %.2f ms waiting for them after backward, %.2f ms in the optimizer%s\n",
                size_, buckets_.size(), static_cast<double>(flat_.size() * sizeof(real)) / (1024.0 * 1024.0),
                exchange_s_ * per_step, wait_s_ * per_step, optimizer_s_ * per_step,
                opt_.shard_optimizer ? " (own share + weight gather)" : "");
  return buf;
}

void MpiReducer::write_timeline() {
  if (opt_.timeline.empty()) return;
  nlohmann::json mine = nlohmann::json::array();
  for (const Event& e : events_) {
    mine.push_back({{"name", e.name},
                    {"ph", "X"},
                    {"pid", rank_},
                    {"tid", e.lane},
                    {"ts", e.start * 1e6},
                    {"dur", (e.end - e.start) * 1e6}});
  }
  const std::string text = mine.dump();
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(size_), displs(size_, 0);
  MPI_Request r;
  check(MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, comm_, &r), "gathering the timeline");
  wait(&r, 1, "the other ranks' timelines");
  for (int j = 1; j < size_; ++j) displs[j] = displs[j - 1] + lengths[j - 1];
  std::vector<char> all(rank_ == 0 ? static_cast<size_t>(displs[size_ - 1] + lengths[size_ - 1]) : 0);
  check(MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), displs.data(), MPI_CHAR, 0, comm_, &r),
        "gathering the timeline");
  wait(&r, 1, "the other ranks' timelines");
  if (rank_ != 0) return;
  nlohmann::json trace = {{"displayTimeUnit", "ms"}, {"traceEvents", nlohmann::json::array()}};
  for (int j = 0; j < size_; ++j) {
    trace["traceEvents"].push_back(
        {{"name", "process_name"}, {"ph", "M"}, {"pid", j}, {"args", {{"name", "rank " + std::to_string(j)}}}});
    for (size_t lane = 0; lane <= buckets_.size() + 1; ++lane) {
      const std::string name = lane == 0                 ? "compute"
                               : lane <= buckets_.size() ? "bucket " + std::to_string(lane - 1)
                                                         : "weights";
      trace["traceEvents"].push_back(
          {{"name", "thread_name"}, {"ph", "M"}, {"pid", j}, {"tid", lane}, {"args", {{"name", name}}}});
    }
    for (const auto& e : nlohmann::json::parse(all.begin() + displs[j], all.begin() + displs[j] + lengths[j])) {
      trace["traceEvents"].push_back(e);
    }
  }
  write_file_atomic(opt_.timeline, trace.dump() + "\n");
}

}  // namespace foundry
