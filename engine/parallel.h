// Threads. The project uses OpenMP on the outermost loop whose writes do not collide; this
// header hides whether OpenMP is there at all, so a build without it runs the same code on one
// thread and gets the same numbers.
#pragma once

#include <string>

namespace foundry {

bool have_openmp();           // was the project built with OpenMP?
int num_threads();            // threads a parallel loop will use
void set_num_threads(int n);  // n <= 0 means "all cores"
int thread_index();           // 0 outside a parallel region
bool in_parallel();           // are we inside a parallel region with more than one thread?

// Sets this thread's count of threads for parallel loops until the end of a scope, then puts
// back the count it found.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : before_(num_threads()) { set_num_threads(n); }
  ~ScopedThreads() { set_num_threads(before_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;
  int before() const { return before_; }

 private:
  int before_;
};

// How long an idle OpenMP thread spins before it sleeps. At the end of every parallel loop the
// threads wait for each other, and between loops the helper threads wait for the next one.
// libgomp's default is to spin (test a flag, then PAUSE) 300,000 times before sleeping in the
// kernel: tens of milliseconds on CPUs whose PAUSE takes 100 ns or more. On a machine where
// another program wants a core, a spinning thread burns the time slice its partner needs, and
// every barrier then waits for the scheduler: 2-thread training fell ten times below 1-thread.
// Sleeping at once (OMP_WAIT_POLICY=passive) pays a kernel wake-up at each loop instead.
// So the programs spin for about kSpinMicroseconds, enough to cover the short gaps between the
// loops of a step on an idle machine, and then sleep.
//
// libgomp reads its settings once, when it is loaded, before main() runs; they cannot be
// changed afterwards. choose_wait_policy() therefore sets GOMP_SPINCOUNT (spins of about
// kSpinMicroseconds on this CPU, measured) and re-executes the program once, with the same
// arguments. It does nothing when the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (their
// choice wins; GOMP_SPINCOUNT=300000 restores libgomp's default), when FOUNDRY_KEEP_WAIT_POLICY
// is set, on a one-CPU machine, or without OpenMP. Call it first in main(), before any thread
// exists. The threads' numbers do not depend on how they wait: the bits stay the same.
constexpr double kSpinMicroseconds = 100;
void choose_wait_policy(char** argv);
// The spin count of kSpinMicroseconds on this CPU (what choose_wait_policy sets).
long spin_count_for(double microseconds);
// One line saying how this process's threads wait and who chose it (for --help).
std::string wait_policy_description();

// How a product hands its blocks to the threads (engine/matmul.cpp's split_product). "dynamic",
// the default: a few blocks per thread, each taken by whichever thread is free, so a thread that
// shares its core with another program does less of the work. "static": one fixed block per
// thread, as the products did before (kept for comparison: bench/under_load.sh measures both).
// Chosen once per process from FOUNDRY_SPLIT (unset means dynamic; any other value is an error).
// Both give the same numbers from run to run; they may differ from each other in the last bits.
bool split_dynamically();

// How many blocks a loop over `len` rows cuts its work into for `threads` threads: with the
// dynamic split a few per thread (at most 4, at least min_block rows each), always a multiple
// of the thread count so that on an idle machine every thread gets the same share; one per
// thread with FOUNDRY_SPLIT=static; 1 for one thread.
int blocks_for(long len, int threads, long min_block);

// Keeps each helper thread of a parallel loop on a core of its own (the team's first thread,
// the one that runs the program, stays free to move). Why: when another program keeps one core
// busy, the scheduler tends to wake our helper thread on the core where our first thread runs
// (the core that just woke it), and the two then share that core while the other core is
// shared with nobody of ours: two threads get one core's worth, whatever the split. Pinned,
// the helper shares the neighbour's core and still adds about half a core, which the products'
// on-demand blocks (split_product) turn into speed. Call it first thing inside a parallel loop;
// it costs one thread_local test after the first call. It does nothing when the user chose a
// binding (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY), with FOUNDRY_PIN_THREADS=0, when the
// process may use fewer CPUs than the loop has threads, or without OpenMP. Numbers never depend
// on it.
void pin_worker_thread();

// Reads FOUNDRY_SPLIT and FOUNDRY_PIN_THREADS and throws std::invalid_argument naming a bad
// value. Call it once on the main thread before any parallel loop: inside a loop a bad value
// could only end the program (pin_worker_thread then treats it as unset).
void check_parallel_settings();

// ANCHOR: worth_threads
// Is a loop worth threads? Waking the other threads of a parallel loop costs a few
// microseconds, about what one core needs to add some 30 thousand numbers; a smaller loop
// (a gradient check, one token of generation) runs faster on the thread it is on. Each kind of
// loop counts its work in its own unit, so each has its own threshold, all of them here:
enum class Work {
  elementwise,       // numbers read and written by an elementwise or row-wise loop
  zeroing,           // numbers set to zero (a store only, so twice as many as elementwise)
  product,           // multiply-adds of a matrix product (rows · cols · depth)
  attention,         // multiply-adds of causal attention in training, B·NH·T²·HS
  matvec,            // multiply-adds of a matrix-vector product in decoding, N·K
  decode_attention,  // multiply-adds of one decoding step's attention, NH·T·HS
};

constexpr double work_threshold(Work kind) {
  switch (kind) {
    case Work::elementwise:
      return 1 << 15;
    case Work::zeroing:
      return 1 << 16;
    case Work::product:
      return 100000;  // where Eigen itself would start threading a product
    case Work::attention:
      return 1 << 18;
    case Work::matvec:
      return 1 << 18;
    case Work::decode_attention:
      return 1 << 16;
  }
  return 0;
}

// `amount` is the loop's work in the unit of `kind`. Use it in `#pragma omp parallel for if (...)`.
constexpr bool worth_threads(Work kind, double amount) { return amount >= work_threshold(kind); }
// ANCHOR_END: worth_threads

}  // namespace foundry
