// Timing of the attention kernels (hidden: run with `test_model "[bench_attention]"`).
// Prints milliseconds of forward + backward, fast against naive, for the shapes of the tiny and
// small reference configurations. Nothing here is asserted but agreement: timings are noisy.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>

#include "engine/parallel.h"
#include "engine/rng.h"
#include "model/attention.h"

using namespace foundry;

namespace {

using AttentionFn = void (*)(real*, real*, const real*, const real*, const real*, int, int, int, int, int);
using AttentionBackwardFn = void (*)(real*, real*, real*, const real*, const real*, const real*, const real*,
                                     const real*, int, int, int, int, int);

// Best of `reps` runs of forward then backward, in milliseconds.
double time_ms(AttentionFn forward, AttentionBackwardFn backward, Tensor& out, Tensor& att, Tensor& dq, Tensor& dk,
               Tensor& dv, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, int reps) {
  const int B = q.dim(0), T = q.dim(1), NH = q.dim(2), HS = q.dim(3), NKV = k.dim(2);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    forward(out.ptr(), att.ptr(), q.ptr(), k.ptr(), v.ptr(), B, T, NH, NKV, HS);
    backward(dq.ptr(), dk.ptr(), dv.ptr(), dout.ptr(), att.ptr(), q.ptr(), k.ptr(), v.ptr(), B, T, NH, NKV, HS);
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

}  // namespace

TEST_CASE("attention kernel timings", "[.][bench_attention]") {
  struct Case {
    const char* name;
    int B, T, NH, NKV, HS;
  };
  for (const Case& c :
       {Case{"tiny", 12, 64, 4, 4, 32}, Case{"small", 16, 256, 8, 4, 32}, Case{"medium", 8, 256, 8, 4, 64}}) {
    Rng rng(1);
    Tensor q({c.B, c.T, c.NH, c.HS}), k({c.B, c.T, c.NKV, c.HS}), v(k.shape), dout(q.shape);
    for (Tensor* t : {&q, &k, &v, &dout})
      for (real& x : t->data) x = static_cast<real>(rng.normal());
    Tensor out(q.shape), att({c.B, c.NH, c.T, c.T}), dq(q.shape), dk(k.shape), dv(v.shape);
    Tensor out_naive(q.shape), att_naive(att.shape), dq_naive(q.shape), dk_naive(k.shape), dv_naive(v.shape);
    const double fast = time_ms(attention_forward, attention_backward, out, att, dq, dk, dv, q, k, v, dout, 10);
    const double naive = time_ms(attention_forward_naive, attention_backward_naive, out_naive, att_naive, dq_naive,
                                 dk_naive, dv_naive, q, k, v, dout, 2);
    std::printf("%-6s B=%d T=%d NH=%d NKV=%d HS=%d threads=%d: fast %.2f ms, naive %.2f ms (%.1fx)\n", c.name, c.B, c.T,
                c.NH, c.NKV, c.HS, num_threads(), fast, naive, naive / fast);
    CHECK(max_abs_diff(out, out_naive) < 1e-4);
  }
}
