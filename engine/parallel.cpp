#include "engine/parallel.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace foundry {

#ifdef _OPENMP
bool have_openmp() { return true; }
int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }
int thread_index() { return omp_get_thread_num(); }
bool in_parallel() { return omp_in_parallel() != 0; }
#else
bool have_openmp() { return false; }
int num_threads() { return 1; }
void set_num_threads(int) {}
int thread_index() { return 0; }
bool in_parallel() { return false; }
#endif

// libgomp's waiting loop tests a flag and executes one PAUSE per spin, and PAUSE is what
// costs: from about 10 cycles on older Intel cores to over 100 ns on recent ones (and inside
// some virtual machines). Time a few short runs of it and keep the fastest (a run that was
// interrupted by the scheduler only looks slower).
long spin_count_for(double microseconds) {
#if defined(__x86_64__) || defined(__i386__)
  constexpr int kPauses = 200;
  double best_ns = 1e9;
  for (int run = 0; run < 8; run++) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kPauses; i++) _mm_pause();
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    best_ns = std::min(best_ns, ns / kPauses);
  }
  const double per_spin_ns = std::max(best_ns, 1.0);
#else
  const double per_spin_ns = 10.0;  // no PAUSE to time: a guess of a few cycles per spin
#endif
  const double spins = microseconds * 1000.0 / per_spin_ns;
  return static_cast<long>(std::clamp(spins, 100.0, 300000.0));  // never above libgomp's own default
}

// ANCHOR: choose_wait_policy
void choose_wait_policy(char** argv) {
#ifdef _OPENMP
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") || std::getenv("FOUNDRY_KEEP_WAIT_POLICY")) {
    return;  // the user's choice, or this process is already the re-executed one
  }
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;  // one core: one thread, nobody waits
  const std::string count = std::to_string(spin_count_for(kSpinMicroseconds));
  if (setenv("GOMP_SPINCOUNT", count.c_str(), 1) != 0) return;
  setenv("FOUNDRY_WAIT_POLICY_CHOSEN", "1", 1);  // for wait_policy_description()
  execv("/proc/self/exe", argv);
  // Only reached when the re-execution failed (no /proc, say): carry on with libgomp's default.
  unsetenv("GOMP_SPINCOUNT");
  unsetenv("FOUNDRY_WAIT_POLICY_CHOSEN");
#else
  (void)argv;
#endif
}
// ANCHOR_END: choose_wait_policy

std::string wait_policy_description() {
  if (!have_openmp()) return "no threads to wait (built without OpenMP)";
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spins = std::getenv("GOMP_SPINCOUNT");
  if (spins && std::getenv("FOUNDRY_WAIT_POLICY_CHOSEN") && !policy) {
    return std::string("spin GOMP_SPINCOUNT=") + spins + " times (about " +
           std::to_string(static_cast<int>(kSpinMicroseconds)) + " us on this CPU), then sleep: chosen at start-up";
  }
  if (policy || spins) {
    std::string s = "as the environment says:";
    if (policy) s += std::string(" OMP_WAIT_POLICY=") + policy;
    if (spins) s += std::string(" GOMP_SPINCOUNT=") + spins;
    return s;
  }
  return "OpenMP's default (spin up to 300000 times, then sleep)";
}

bool split_dynamically() {
  // Read once: every product of the process splits the same way.
  static const bool dynamic = [] {
    const char* v = std::getenv("FOUNDRY_SPLIT");
    if (!v || std::string(v).empty() || std::string(v) == "dynamic") return true;
    if (std::string(v) == "static") return false;
    throw std::invalid_argument(std::string("FOUNDRY_SPLIT=\"") + v + "\": expected \"dynamic\" or \"static\"");
  }();
  return dynamic;
}

int blocks_for(long len, int threads, long min_block) {
  if (threads <= 1) return 1;
  if (!split_dynamically()) return threads;
  constexpr long kBlocksPerThread = 4;
  const long per_thread = std::clamp(len / (std::max(min_block, 1L) * threads), 1L, kBlocksPerThread);
  return static_cast<int>(per_thread * threads);
}

namespace {
// FOUNDRY_PIN_THREADS: 0 or 1 as set, -1 when unset or empty, -2 for anything else.
int pin_setting() {
  const char* v = std::getenv("FOUNDRY_PIN_THREADS");
  if (!v || !*v) return -1;
  if (std::string(v) == "0") return 0;
  if (std::string(v) == "1") return 1;
  return -2;
}
}  // namespace

void check_parallel_settings() {
  split_dynamically();  // throws on a bad FOUNDRY_SPLIT
  if (pin_setting() == -2) {
    throw std::invalid_argument(std::string("FOUNDRY_PIN_THREADS=\"") + std::getenv("FOUNDRY_PIN_THREADS") +
                                "\": expected 0 (leave threads unpinned) or 1 (pin helper threads)");
  }
}

#if defined(_OPENMP) && defined(__linux__)
namespace {
// The CPUs this process may run on, read once, before any thread of ours was pinned.
const std::vector<int>& allowed_cpus() {
  static const std::vector<int> cpus = [] {
    std::vector<int> list;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
      for (int c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &set)) list.push_back(c);
      }
    }
    return list;
  }();
  return cpus;
}

bool pinning_enabled() {
  // Never throws: it runs inside parallel loops, where an exception would end the program.
  // check_parallel_settings() reports a bad FOUNDRY_PIN_THREADS on the main thread first.
  static const bool enabled = [] {
    const int choice = pin_setting();
    if (choice >= 0) return choice == 1;
    // A binding the user asked OpenMP for wins over ours.
    return !std::getenv("OMP_PROC_BIND") && !std::getenv("OMP_PLACES") && !std::getenv("GOMP_CPU_AFFINITY");
  }();
  return enabled;
}
}  // namespace
#endif

void pin_worker_thread() {
#if defined(_OPENMP) && defined(__linux__)
  const int k = omp_get_thread_num(), n = omp_get_num_threads();
  if (k == 0 || n < 2 || !pinning_enabled()) return;
  // Pinned once per (position in the team, team size): libgomp keeps its helper threads from
  // one loop to the next, so this is a single test from the second loop on.
  thread_local int pinned_for = -1;
  const int key = k * 4096 + n;
  if (pinned_for == key) return;
  pinned_for = key;
  const std::vector<int>& cpus = allowed_cpus();
  const int count = static_cast<int>(cpus.size());
  if (n > count) return;  // more threads than CPUs: leave the placing to the scheduler
  // Helper k of n gets CPU k·count/n of the allowed ones: spread out, never CPU 0's slot,
  // which the first thread, left free, usually takes.
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[static_cast<size_t>(k) * count / n], &set);
  sched_setaffinity(0, sizeof set, &set);  // a refusal (a container's policy, say) only costs speed
#endif
}

}  // namespace foundry
