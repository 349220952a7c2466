// bf16 against fp32 products, side by side in one run: GFLOP/s of the model's products
// (linear forward out = x · wᵀ, and the backward's dx += dout · w and dw += doutᵀ · x) on
// transformer shapes, at 1 and 2 threads, each through linear_forward / linear_backward as
// training calls them, for
//   fp32      our float product (Eigen), what training runs with precision fp32
//   ours      our vdpbf16ps kernel (FOUNDRY_BF16_KERNEL=avx512_bf16), inputs rounded as it packs
//   onednn    the oneDNN kernel (FOUNDRY_BF16_KERNEL=onednn): float inputs rounded into bf16
//             copies, then oneDNN's matmul primitive; the default where it is built in
//   direct    oneDNN's matmul primitive called by hand on operands already in bf16, output fp32
//             (as PyTorch's bf16 matmul gets them): the forward product without our conversion
//   emulated  the fallback for CPUs without bf16 units (rounding, then the float product)
// A kernel this CPU or build lacks prints "-". The lines under the table name the instruction
// set oneDNN chose (its own report) and the implementation it picked.
//
//   build/bench/bench_bf16            all shapes, 1 and 2 threads
//   build/bench/bench_bf16 --quick    3 repetitions each
//
// bench/torch_bf16_matmul.py prints PyTorch's figures on the same shapes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

namespace {

// The three products of one linear layer, GFLOP/s, through the training code's entry points.
struct Rates {
  double fwd = 0, dx = 0, dw = 0;
  double mean() const { return (fwd + dx + dw) / 3; }
};

Rates linear_rates(std::vector<float>& out, std::vector<float>& dx, std::vector<float>& dw, const std::vector<float>& x,
                   const std::vector<float>& w, const std::vector<float>& dout, int M, int K, int N, int reps) {
  const double flops = 2.0 * double(M) * double(K) * double(N);
  Rates r;
  r.fwd = gflops([&] { linear_forward(out.data(), x.data(), w.data(), M, K, N); }, flops, reps);
  r.dx = gflops([&] { linear_backward(dx.data(), nullptr, dout.data(), x.data(), w.data(), M, K, N); }, flops, reps);
  r.dw = gflops([&] { linear_backward(nullptr, dw.data(), dout.data(), x.data(), w.data(), M, K, N); }, flops, reps);
  return r;
}

// The same in bf16 on kernel k, or nothing when this CPU or build cannot run it.
bool bf16_rates(Bf16Kernel k, Rates& r, std::vector<float>& out, std::vector<float>& dx, std::vector<float>& dw,
                const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dout, int M, int K,
                int N, int reps) {
  if (!bf16_kernel_available(k)) return false;
  setenv("FOUNDRY_BF16_KERNEL", bf16_kernel_name(k), 1);
  {
    MatmulPrecisionScope bf16_products(MatmulPrecision::bf16);
    r = linear_rates(out, dx, dw, x, w, dout, M, K, N, reps);
  }
  unsetenv("FOUNDRY_BF16_KERNEL");
  return true;
}

std::string cell(bool have, double v) {
  char buf[32];
  if (have) std::snprintf(buf, sizeof buf, "%8.1f", v);
  else std::snprintf(buf, sizeof buf, "%8s", "-");
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  struct Shape3 {
    long M, K, N;
  };
  // bench_matmul's shapes, plus the (2048 × 512) · (512 × 1376) product quoted for PyTorch.
  const std::vector<Shape3> shapes = {{4096, 512, 512}, {4096, 512, 2048}, {4096, 2048, 512}, {2048, 512, 1376}};
  const int max_threads = num_threads();
  std::printf("GFLOP/s, median of repetitions; up to %d threads; default bf16 kernel: %s\n", max_threads,
              bf16_kernel_description(bf16_kernel_default()).c_str());
  std::printf("CPU: avx512_bf16 %s, amx_bf16 %s\n", cpu_has_avx512_bf16() ? "yes" : "no",
              cpu_has_amx_bf16() ? "yes" : "no");
  std::printf("%-16s %-3s | %8s %8s %8s | %8s %8s %8s | %8s %8s %8s | %8s | %8s | %s\n", "M x K x N", "thr", "fp32",
              "fp32 dx", "fp32 dw", "ours", "ours dx", "ours dw", "onednn", "onednn dx", "onednn dw", "direct",
              "emulated", "ours/fp32 onednn/fp32 onednn/ours");
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
    floats_to_bf16(x.data(), xb.data(), long(x.size()));
    floats_to_bf16(w.data(), wb.data(), long(w.size()));
#endif
    for (int threads = 1; threads <= std::min(2, max_threads); threads++) {
      set_num_threads(threads);
      const Rates f = linear_rates(out, dx, dw, x, w, dout, m, k, n, reps);
      Rates ours, dnn;
      const bool have_ours = bf16_rates(Bf16Kernel::avx512_bf16, ours, out, dx, dw, x, w, dout, m, k, n, reps);
      const bool have_dnn = bf16_rates(Bf16Kernel::onednn, dnn, out, dx, dw, x, w, dout, m, k, n, reps);
      const StridedMatrix X{x.data(), K, 1}, Wt{w.data(), 1, K};
      const double e =
          gflops([&] { bf16_gemm(Bf16Kernel::emulated, out.data(), N, X, Wt, M, K, N, false); }, flops, reps);
      double d = 0;
#ifdef FOUNDRY_BENCH_DNNL
      {
        DnnlLinear lin(xb.data(), wb.data(), out.data(), M, K, N);
        d = gflops([&] { lin.run(); }, flops, reps);
      }
#endif
      char label[40];
      std::snprintf(label, sizeof label, "%ldx%ldx%ld", M, K, N);
      std::printf("%-16s %-3d | %8.1f %8.1f %8.1f | %s %s %s | %s %s %s | %s | %8.1f | %s %s %s\n", label, threads,
                  f.fwd, f.dx, f.dw, cell(have_ours, ours.fwd).c_str(), cell(have_ours, ours.dx).c_str(),
                  cell(have_ours, ours.dw).c_str(), cell(have_dnn, dnn.fwd).c_str(), cell(have_dnn, dnn.dx).c_str(),
                  cell(have_dnn, dnn.dw).c_str(), cell(d > 0, d).c_str(), e,
                  cell(have_ours, ours.mean() / f.mean()).c_str(), cell(have_dnn, dnn.mean() / f.mean()).c_str(),
                  cell(have_ours && have_dnn, dnn.mean() / std::max(ours.mean(), 1e-9)).c_str());
      std::fflush(stdout);
    }
  }
#ifdef FOUNDRY_BENCH_DNNL
  std::printf("oneDNN %d.%d: instruction set chosen: %s\n", dnnl_version()->major, dnnl_version()->minor,
              dnnl_isa_name());
  std::printf("onednn kernel: %s\n", bf16_kernel_description(Bf16Kernel::onednn).c_str());
#else
  std::printf("oneDNN: not built in (install libdnnl-dev and reconfigure with g++ and OpenMP to compare)\n");
#endif
  set_num_threads(max_threads);
  return 0;
}
