// bf16 against fp32 products, side by side in one run: GFLOP/s of the model's products
// (linear forward out = x · wᵀ, and the backward's dx += dout · w and dw += doutᵀ · x) on
// transformer shapes, at 1 and 2 threads, for
//   fp32      our float product (Eigen), what training runs with precision fp32
//   bf16      our vdpbf16ps kernel (engine/matmul_bf16.cpp), inputs rounded from float as it packs
//   emulated  the fallback for CPUs without bf16 units (rounding, then the float product)
//   oneDNN    Debian's oneDNN matmul primitive on the same product, when the bench was built with
//             it (libdnnl-dev): inputs already in bf16, output fp32, as PyTorch's bf16 matmul.
//             The line under the table names the instruction set oneDNN chose (its own report).
//
//   build/bench/bench_bf16            all shapes, 1 and 2 threads
//   build/bench/bench_bf16 --quick    3 repetitions each
//
// bench/torch_bf16_matmul.py prints PyTorch's figures on the same shapes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/bf16.h"
#include "engine/matmul.h"
#include "engine/matmul_bf16.h"
#include "engine/parallel.h"
#include "engine/rng.h"

#ifdef FOUNDRY_BENCH_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

using namespace foundry;

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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

#ifdef FOUNDRY_BENCH_DNNL
// out (M, N) = x (M, K) · wᵀ with x and w in bf16, w stored (N, K): oneDNN reads wᵀ through strides.
struct DnnlLinear {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::matmul prim;
  dnnl::memory x_mem, w_mem, out_mem;
  DnnlLinear(bf16* x, bf16* w, float* out, long M, long K, long N) {
    using dt = dnnl::memory::data_type;
    dnnl::memory::desc x_md({M, K}, dt::bf16, {K, 1});
    dnnl::memory::desc w_md({K, N}, dt::bf16, {1, K});  // (K, N) view of w (N, K)
    dnnl::memory::desc out_md({M, N}, dt::f32, {N, 1});
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(x_md, w_md, out_md), eng));
    x_mem = dnnl::memory(x_md, eng, x);
    w_mem = dnnl::memory(w_md, eng, w);
    out_mem = dnnl::memory(out_md, eng, out);
  }
  void run() {
    prim.execute(strm, {{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, out_mem}});
    strm.wait();
  }
};

const char* dnnl_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx (AMX tiles)";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16 (vdpbf16ps)";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni (no bf16 instructions: emulated)";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core (no bf16 instructions: emulated)";
    default:
      return "older than avx512_core";
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  struct Shape3 {
    long M, K, N;
  };
  // bench_matmul's shapes, plus the (2048 × 512) · (512 × 1376) product quoted for PyTorch.
  const std::vector<Shape3> shapes = {{4096, 512, 512}, {4096, 512, 2048}, {4096, 2048, 512}, {2048, 512, 1376}};
  const int max_threads = num_threads();
  const Bf16Kernel fast = bf16_kernel_default();
  std::printf("GFLOP/s, median of repetitions; bf16 kernel: %s; up to %d threads\n",
              bf16_kernel_description(fast).c_str(), max_threads);
  std::printf("CPU: avx512_bf16 %s, amx_bf16 %s\n", cpu_has_avx512_bf16() ? "yes" : "no",
              cpu_has_amx_bf16() ? "yes" : "no");
  std::printf("%-16s %-7s | %8s %8s %8s | %8s %8s %8s | %8s | %8s | %s\n", "M x K x N", "threads", "fp32", "fp32 dx",
              "fp32 dw", "bf16", "bf16 dx", "bf16 dw", "emulated", "oneDNN", "bf16/fp32");
  Rng rng(1);
  for (const Shape3& s : shapes) {
    const long M = s.M, K = s.K, N = s.N;
    std::vector<float> x(size_t(M * K)), w(size_t(N * K)), dout(size_t(M * N)), out(size_t(M * N));
    std::vector<float> dx(size_t(M * K)), dw(size_t(N * K));
    for (float& v : x) v = static_cast<float>(rng.normal());
    for (float& v : w) v = static_cast<float>(rng.normal());
    for (float& v : dout) v = static_cast<float>(rng.normal());
    const double flops = 2.0 * double(M) * double(K) * double(N);
    const int reps = quick ? 3 : std::max(3, std::min(30, int(200e9 / flops)));
    const int m = int(M), k = int(K), n = int(N);
#ifdef FOUNDRY_BENCH_DNNL
    std::vector<bf16> xb(x.size()), wb(w.size());
    for (size_t i = 0; i < x.size(); i++) xb[i] = float_to_bf16(x[i]);
    for (size_t i = 0; i < w.size(); i++) wb[i] = float_to_bf16(w[i]);
#endif
    for (int threads = 1; threads <= std::min(2, max_threads); threads++) {
      set_num_threads(threads);
      const StridedMatrix X{x.data(), K, 1}, Wt{w.data(), 1, K}, Dout{dout.data(), N, 1}, W{w.data(), K, 1};
      const StridedMatrix Doutt{dout.data(), 1, N};
      double f = gflops([&] { linear_forward(out.data(), x.data(), w.data(), m, k, n); }, flops, reps);
      double fdx =
          gflops([&] { linear_backward(dx.data(), nullptr, dout.data(), x.data(), w.data(), m, k, n); }, flops, reps);
      double fdw =
          gflops([&] { linear_backward(nullptr, dw.data(), dout.data(), x.data(), w.data(), m, k, n); }, flops, reps);
      double b = gflops([&] { bf16_gemm(fast, out.data(), N, X, Wt, M, K, N, false); }, flops, reps);
      double bdx = gflops([&] { bf16_gemm(fast, dx.data(), K, Dout, W, M, N, K, true); }, flops, reps);
      double bdw = gflops([&] { bf16_gemm(fast, dw.data(), K, Doutt, X, N, M, K, true); }, flops, reps);
      double e = gflops([&] { bf16_gemm(Bf16Kernel::emulated, out.data(), N, X, Wt, M, K, N, false); }, flops, reps);
      double d = 0;
#ifdef FOUNDRY_BENCH_DNNL
      {
        DnnlLinear lin(xb.data(), wb.data(), out.data(), M, K, N);
        d = gflops([&] { lin.run(); }, flops, reps);
      }
#endif
      char label[40];
      std::snprintf(label, sizeof label, "%ldx%ldx%ld", M, K, N);
      std::printf("%-16s %-7d | %8.1f %8.1f %8.1f | %8.1f %8.1f %8.1f | %8.1f | %8.1f | %.2f\n", label, threads, f, fdx,
                  fdw, b, bdx, bdw, e, d, (b + bdx + bdw) / (f + fdx + fdw));
      std::fflush(stdout);
    }
  }
#ifdef FOUNDRY_BENCH_DNNL
  std::printf("oneDNN %d.%d: instruction set chosen: %s\n", dnnl_version()->major, dnnl_version()->minor,
              dnnl_isa_name());
#else
  std::printf("oneDNN: not built in (install libdnnl-dev and reconfigure to compare)\n");
#endif
  set_num_threads(max_threads);
  return 0;
}
