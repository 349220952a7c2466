// Our one-thread GEMM under different compiler tunings and Eigen blocking sizes, on the product
// that dominates a medium training step: x (2048, 512) times w (1376, 512) transposed, and the
// two backward products of the same size. Built and run by scripts/tune_check.sh, once per set of
// compiler flags, beside OpenBLAS through numpy (bench/ also builds it with the project's flags).
//
//   g++ -O3 -DNDEBUG FLAGS -I/usr/include/eigen3 bench/gemm_tune.cpp -o gemm_tune
//   ./gemm_tune [--l2-scale S]      S scales the L2 size Eigen's blocking is computed from
//
// Why standalone: at one thread engine/matmul.cpp's split_product is exactly one Eigen product
// of row-major maps (`out.noalias() = x * w.transpose()` and its backward forms), so this file
// measures what the engine runs, and recompiling it with other flags takes seconds, where the
// engine takes minutes. Prints one line of GFLOP/s: forward, dx, dw, and their median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <Eigen/Core>

namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename F>
double best_gflops(double flops, int repeats, F&& product) {
  product();  // warm-up: packing buffers allocated, caches filled
  std::vector<double> rates;
  for (int i = 0; i < repeats; i++) {
    const auto t0 = std::chrono::steady_clock::now();
    product();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(flops / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];  // the median: one interrupted run does not move it
}

}  // namespace

int main(int argc, char** argv) {
  double l2_scale = 1.0;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--l2-scale") && i + 1 < argc) {
      l2_scale = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: gemm_tune [--l2-scale S]\n");
      return 2;
    }
  }
  if (!(l2_scale > 0.05 && l2_scale < 20)) {
    std::fprintf(stderr, "gemm_tune: --l2-scale %g: expected a factor between 0.05 and 20\n", l2_scale);
    return 2;
  }
  Eigen::setNbThreads(1);
  if (l2_scale != 1.0) {
    // Eigen sizes its blocks from the cache sizes it read from the CPU; scaling the L2 figure
    // moves the blocking the way EIGEN_* blocking macros would, without recompiling.
    const std::ptrdiff_t l1 = Eigen::l1CacheSize(), l2 = Eigen::l2CacheSize(), l3 = Eigen::l3CacheSize();
    Eigen::setCpuCacheSizes(l1, static_cast<std::ptrdiff_t>(double(l2) * l2_scale), l3);
  }
  const long M = 2048, K = 512, N = 1376;  // (B·T, C) · (4C-ish hidden, C)ᵀ
  const RowMajor x = RowMajor::Random(M, K), w = RowMajor::Random(N, K), dout = RowMajor::Random(M, N);
  RowMajor out(M, N), dx(M, K), dw(N, K);
  const double flops = 2.0 * M * K * N;
  const int repeats = 15;
  const double fwd = best_gflops(flops, repeats, [&] { out.noalias() = x * w.transpose(); });
  const double gx = best_gflops(flops, repeats, [&] { dx.noalias() = dout * w; });
  const double gw = best_gflops(flops, repeats, [&] { dw.noalias() = dout.transpose() * x; });
  double v[3] = {fwd, gx, gw};
  std::sort(v, v + 3);
  std::printf("forward %.1f  dx %.1f  dw %.1f  median %.1f GFLOP/s  (L1 %td KiB, L2 %td KiB, L3 %td KiB)\n", fwd,
              gx, gw, v[1], Eigen::l1CacheSize() / 1024, Eigen::l2CacheSize() / 1024, Eigen::l3CacheSize() / 1024);
  return 0;
}
