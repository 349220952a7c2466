// Matmul speed: GFLOP/s of every product a training step runs, at 1 and 2 threads, for
// transformer-shaped sizes, beside the naive three-loop definition.
//
//   build/bench/bench_matmul            all shapes, 1 and 2 threads
//   build/bench/bench_matmul --quick    fewer repetitions
//
// Each product of an (M, K) by a (K, N) matrix is 2·M·K·N floating-point operations. Shapes are
// written M×K×N. For every shape we time the forward products and the two backward products:
//   matmul_forward   out = a · b          a (M, K), b (K, N)
//   linear_forward   out = x · wᵀ         x (M, K), w (N, K)      (the model's layers)
//   linear dx        dx += dout · w       dout (M, N), w (N, K)   -> (M, K): an M×N×K product
//   linear dw        dw += doutᵀ · x      -> (N, K): an N×M×K product
//   matmul da / db   da += dout · bᵀ, db += aᵀ · dout
// so a backward figure counts the FLOPs of the product it performs. The figure printed is the
// median over the repetitions (the machine is shared; the median ignores the odd slow run).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/matmul.h"
#include "engine/parallel.h"
#include "engine/rng.h"

using namespace foundry;

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median GFLOP/s of `fn` over `reps` timed runs after one warm-up run.
double gflops(const std::function<void()>& fn, double flops, int reps) {
  fn();
  std::vector<double> rates;
  for (int r = 0; r < reps; r++) {
    double t0 = seconds_now();
    fn();
    rates.push_back(flops / (seconds_now() - t0) / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

std::vector<real> random_buffer(size_t n, Rng& rng) {
  std::vector<real> v(n);
  for (real& x : v) x = static_cast<real>(rng.normal());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  struct Shape3 {
    int M, K, N;
  };
  const std::vector<Shape3> shapes = {{4096, 512, 512}, {4096, 512, 2048}, {4096, 2048, 512}, {256, 256, 256}};
  const int max_threads = num_threads();
  std::printf("matmul GFLOP/s (median of repetitions), real = %s, OpenMP %s, up to %d threads\n", real_name(),
              have_openmp() ? "on" : "off", max_threads);
  std::printf("%-16s %-8s %9s %9s %9s %9s %9s %9s %9s\n", "M x K x N", "threads", "matmul", "linear", "lin dx",
              "lin dw", "mm da", "mm db", "naive");
  Rng rng(1);
  for (const Shape3& s : shapes) {
    const int M = s.M, K = s.K, N = s.N;
    std::vector<real> a = random_buffer((size_t)M * K, rng), b = random_buffer((size_t)K * N, rng);
    std::vector<real> w = random_buffer((size_t)N * K, rng), dout = random_buffer((size_t)M * N, rng);
    std::vector<real> out((size_t)M * N), da((size_t)M * K), db((size_t)K * N), dw((size_t)N * K);
    const double flops = 2.0 * M * K * N;
    // Enough repetitions for about a second per product on one core at ~150 GFLOP/s.
    int reps = std::max(3, std::min(50, int(150e9 / flops)));
    if (quick) reps = 3;
    for (int threads = 1; threads <= std::min(2, max_threads); threads++) {
      set_num_threads(threads);
      double mm = gflops([&] { matmul_forward(out.data(), a.data(), b.data(), M, K, N); }, flops, reps);
      double lin = gflops([&] { linear_forward(out.data(), a.data(), w.data(), M, K, N); }, flops, reps);
      double ldx =
          gflops([&] { linear_backward(da.data(), nullptr, dout.data(), a.data(), w.data(), M, K, N); }, flops, reps);
      double ldw =
          gflops([&] { linear_backward(nullptr, dw.data(), dout.data(), a.data(), w.data(), M, K, N); }, flops, reps);
      double mda =
          gflops([&] { matmul_backward(da.data(), nullptr, dout.data(), a.data(), b.data(), M, K, N); }, flops, reps);
      double mdb =
          gflops([&] { matmul_backward(nullptr, db.data(), dout.data(), a.data(), b.data(), M, K, N); }, flops, reps);
      // The naive loop is 20-50 times slower: one timed run (after a warm-up) is plenty.
      double naive = gflops([&] { matmul_naive(out.data(), a.data(), b.data(), M, K, N); }, flops, 1);
      char label[32];
      std::snprintf(label, sizeof label, "%dx%dx%d", M, K, N);
      std::printf("%-16s %-8d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", label, threads, mm, lin, ldx, ldw, mda, mdb,
                  naive);
      std::fflush(stdout);
    }
  }
  set_num_threads(max_threads);
  return 0;
}
