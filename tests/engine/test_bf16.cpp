// bfloat16: the conversion against the IEEE definition of round-to-nearest-even, every bf16
// product kernel against the definition, and the bf16 products of engine/matmul.h against the
// float products on bf16-rounded inputs.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/bf16.h"
#include "engine/matmul.h"
#include "engine/matmul_bf16.h"
#include "engine/matmul_onednn.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "tests/common/test_helpers.h"

using namespace foundry;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// IEEE 754 round-to-nearest-even into bfloat16, from the definition rather than from bit tricks:
// of the two bf16 numbers around x (toward zero, and the next one away from zero), take the
// nearer, measured in double (exact for these values); on a tie, the one whose last mantissa bit
// is 0. Past the largest finite bf16 the next number "away from zero" is 2^128, as if the
// exponent were unbounded: IEEE's rule that overflow under round-to-nearest gives infinity
// exactly when the rounded value would be at least 2^128.
bf16 reference_round(float x) {
  const uint32_t u = bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint16_t down = static_cast<uint16_t>((u >> 16) & 0x7FFFu);  // magnitude truncated: toward zero
  const uint16_t up = static_cast<uint16_t>(down + 1);
  const double v = std::fabs(static_cast<double>(x));
  const double lo = static_cast<double>(bf16_to_float(down));
  const double hi = up == 0x7F80 ? std::ldexp(1.0, 128) : static_cast<double>(bf16_to_float(up));
  if (v == lo) return static_cast<bf16>(sign | down);
  const double below = v - lo, above = hi - v;
  uint16_t pick;
  if (below < above) pick = down;
  else if (above < below) pick = up;
  else pick = (down & 1) == 0 ? down : up;  // a tie: the even one
  return static_cast<bf16>(sign | pick);    // up == 0x7F80 is infinity
}

}  // namespace

TEST_CASE("bf16 rounding: named edge cases", "[bf16][convert]") {
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the tie goes to 1 (mantissa ...0).
  CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up.
  CHECK(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82);
  // Just above a tie rounds up, just below rounds down.
  CHECK(float_to_bf16(from_bits(0x3F808001u)) == 0x3F81);
  CHECK(float_to_bf16(from_bits(0x3F807FFFu)) == 0x3F80);
  // Negative numbers round their magnitude the same way.
  CHECK(float_to_bf16(-(1.0f + 3 * std::ldexp(1.0f, -8))) == 0xBF82);
  // A carry out of the mantissa steps the exponent: the largest float below 2 rounds to 2.
  CHECK(float_to_bf16(std::nextafter(2.0f, 0.0f)) == 0x4000);
  // Overflow: FLT_MAX is beyond the largest bf16 (0x7F7F, about 3.39e38) by more than half a step.
  CHECK(float_to_bf16(FLT_MAX) == 0x7F80);
  CHECK(float_to_bf16(-FLT_MAX) == 0xFF80);
  CHECK(float_to_bf16(from_bits(0x7F7F7FFFu)) == 0x7F7F);  // below the halfway point: stays finite
  CHECK(float_to_bf16(from_bits(0x7F7F8000u)) == 0x7F80);  // the tie from odd 0x7F7F: to infinity
  // Infinities stay, zeros keep their sign.
  CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(float_to_bf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(float_to_bf16(0.0f) == 0x0000);
  CHECK(float_to_bf16(-0.0f) == 0x8000);
  // Subnormals: the smallest float subnormal is far below half the smallest bf16 subnormal.
  CHECK(float_to_bf16(from_bits(0x00000001u)) == 0x0000);
  CHECK(float_to_bf16(from_bits(0x00008000u)) == 0x0000);  // tie from even 0: stays 0
  CHECK(float_to_bf16(from_bits(0x00018000u)) == 0x0002);  // tie from odd 1: up to 2
  CHECK(float_to_bf16(from_bits(0x007FFFFFu)) == 0x0080);  // largest subnormal: up to the smallest normal
  // NaN stays NaN, quiet, with its sign, even when the payload is only in the dropped bits.
  for (uint32_t nan_bits : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu}) {
    const bf16 h = float_to_bf16(from_bits(nan_bits));
    CHECK(std::isnan(bf16_to_float(h)));
    CHECK((h & 0x0040) != 0);
    CHECK((h & 0x8000) == ((nan_bits >> 16) & 0x8000));
  }
}

TEST_CASE("bf16 rounding matches the IEEE definition around every bf16 number", "[bf16][convert]") {
  // For each of the 32640 finite bf16 magnitudes, both signs: the number itself, one float step
  // above it, just below, at and just above the midpoint to the next one, and the float just
  // below that next one. Subnormals, ties from odd and even, and overflow are all in here.
  long checked = 0, mismatches = 0;
  for (uint32_t t = 0; t < 0x7F80u; t++) {
    for (uint32_t low : {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) {
      for (uint32_t sign : {0u, 0x80000000u}) {
        const float x = from_bits(sign | (t << 16) | low);
        if (float_to_bf16(x) != reference_round(x)) mismatches++;
        checked++;
      }
    }
  }
  CHECK(checked == 0x7F80L * 12);
  CHECK(mismatches == 0);
  // Widening is exact: every non-NaN bf16 survives a round trip.
  for (uint32_t h = 0; h < 0x10000u; h++) {
    const float x = bf16_to_float(static_cast<bf16>(h));
    if (!std::isnan(x)) REQUIRE(float_to_bf16(x) == h);
  }
  // And a random sample of all floats.
  Rng rng(21);
  for (int i = 0; i < 200000; i++) {
    const float x = from_bits(static_cast<uint32_t>(rng.next_u64()));
    if (std::isnan(x)) continue;
    REQUIRE(float_to_bf16(x) == reference_round(x));
  }
}

TEST_CASE("floats_to_bf16, the vectorized conversion, gives float_to_bf16's bits", "[bf16][convert]") {
  // The edge cases of the test above (around every bf16 number, NaNs, infinities), then random
  // floats; odd lengths leave a tail after the vector loop.
  std::vector<float> x;
  for (uint32_t t = 0; t < 0x7F80u; t += 7) {
    for (uint32_t low : {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) {
      x.push_back(from_bits((t << 16) | low));
      x.push_back(from_bits(0x80000000u | (t << 16) | low));
    }
  }
  for (uint32_t nan_bits : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0x7F800000u, 0xFF800000u}) {
    x.push_back(from_bits(nan_bits));
  }
  Rng rng(9);
  for (int i = 0; i < 20001; i++) x.push_back(from_bits(static_cast<uint32_t>(rng.next_u64())));
  for (long n : {long(x.size()), 1L, 15L, 17L}) {
    std::vector<bf16> got(size_t(n), 0xABCD);
    floats_to_bf16(x.data(), got.data(), n);
    long mismatches = 0;
    for (long i = 0; i < n; i++) mismatches += got[size_t(i)] != float_to_bf16(x[size_t(i)]);
    INFO(n << " numbers");
    CHECK(mismatches == 0);
  }
}

namespace {

struct Layout {
  bool a_t, b_t;  // a stored (K, M) and read transposed; b stored (N, K) and read transposed
};

// The worst-case error of a float sum of K products of bf16 numbers, element by element: the
// products are exact, and K additions in float lose at most K · 2^-24 of Σ|a_ik b_kj|.
double sum_bound(const std::vector<float>& a, const std::vector<float>& b, StridedMatrix A, StridedMatrix B, long i,
                 long j, long K) {
  (void)a;
  (void)b;
  double s = 0;
  for (long k = 0; k < K; k++) s += std::fabs(double(round_to_bf16(A.at(i, k))) * double(round_to_bf16(B.at(k, j))));
  return s * (double(K) + 2) * std::ldexp(1.0, -24);
}

}  // namespace

TEST_CASE("every bf16 kernel computes the definition", "[bf16][gemm]") {
  // Awkward sizes: odd depths, ragged register blocks (12 × 32), more than one depth slab (384)
  // and row block (96), a single row and a single column.
  const long shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 31}, {12, 32, 32}, {97, 385, 65}, {1, 64, 200}, {200, 3, 1}};
  const std::vector<Bf16Kernel> kernels = bf16_kernels_available();
  INFO("avx512_bf16 on this CPU: " << cpu_has_avx512_bf16() << ", oneDNN built in: " << onednn_built());
  Rng rng(7);
  for (const auto& s : shapes) {
    const long M = s[0], K = s[1], N = s[2];
    for (Layout lay : {Layout{false, false}, Layout{true, false}, Layout{false, true}, Layout{true, true}}) {
      std::vector<float> a(size_t(M * K)), b(size_t(K * N));
      for (float& v : a) v = static_cast<float>(rng.normal());
      for (float& v : b) v = static_cast<float>(rng.normal());
      const StridedMatrix A = lay.a_t ? StridedMatrix{a.data(), 1, M} : StridedMatrix{a.data(), K, 1};
      const StridedMatrix B = lay.b_t ? StridedMatrix{b.data(), 1, K} : StridedMatrix{b.data(), N, 1};
      std::vector<float> want(size_t(M * N), 0.5f);
      bf16_gemm(Bf16Kernel::naive, want.data(), N, A, B, M, K, N, false);
      for (Bf16Kernel k : kernels) {
        for (bool accumulate : {false, true}) {
          for (int threads : {1, 2}) {
            set_num_threads(threads);
            INFO(bf16_kernel_name(k) << " " << M << "x" << K << "x" << N << " a_t " << lay.a_t << " b_t " << lay.b_t
                                     << " accumulate " << accumulate << " threads " << threads);
            std::vector<float> got(size_t(M * N), 0.5f);  // accumulate adds to 0.5
            bf16_gemm(k, got.data(), N, A, B, M, K, N, accumulate);
            long bad = 0;
            for (long i = 0; i < M; i++) {
              for (long j = 0; j < N; j++) {
                const double expect = want[size_t(i * N + j)] + (accumulate ? 0.5 : 0.0);
                const double err = std::fabs(got[size_t(i * N + j)] - expect);
                if (err > 2 * sum_bound(a, b, A, B, i, j, K) + 1e-7) bad++;
              }
            }
            CHECK(bad == 0);
          }
        }
      }
    }
  }
  set_num_threads(0);
}

TEST_CASE("a bf16 product differs from the exact product by at most bf16's input rounding", "[bf16][gemm]") {
  // Each input is within 2^-9 (relative) of its bf16 rounding, so each exact product a·b moves by
  // at most about 2^-8 of |a·b|; the float sum adds K · 2^-24 of the same. Element by element:
  //   |bf16 result − exact| ≤ (2^-8 + 2^-17 + K · 2^-24) · Σ_k |a_ik b_kj|.
  // And the inputs' rounding must be visible: a bf16 product that secretly ran in fp32 would
  // differ from the exact one by about 2^-24, not 2^-9.
  const long M = 40, K = 300, N = 70;
  Rng rng(3);
  std::vector<float> a(size_t(M * K)), b(size_t(K * N)), out(size_t(M * N));
  for (float& v : a) v = static_cast<float>(rng.normal());
  for (float& v : b) v = static_cast<float>(rng.normal());
  for (Bf16Kernel k : bf16_kernels_available()) {
    bf16_gemm(k, out.data(), N, StridedMatrix{a.data(), K, 1}, StridedMatrix{b.data(), N, 1}, M, K, N, false);
    double worst_ratio = 0, typical = 0;
    for (long i = 0; i < M; i++) {
      for (long j = 0; j < N; j++) {
        double exact = 0, magnitude = 0;
        for (long kk = 0; kk < K; kk++) {
          exact += double(a[size_t(i * K + kk)]) * double(b[size_t(kk * N + j)]);
          magnitude += std::fabs(double(a[size_t(i * K + kk)]) * double(b[size_t(kk * N + j)]));
        }
        const double bound = (std::ldexp(1.0, -8) + std::ldexp(1.0, -17) + K * std::ldexp(1.0, -24)) * magnitude;
        worst_ratio = std::max(worst_ratio, std::fabs(out[size_t(i * N + j)] - exact) / bound);
        typical += std::fabs(out[size_t(i * N + j)] - exact) / magnitude;
      }
    }
    INFO(bf16_kernel_name(k) << ": worst error / bound " << worst_ratio << ", mean error / Σ|ab| "
                             << typical / double(M * N));
    CHECK(worst_ratio <= 1.0);
    CHECK(typical / double(M * N) > std::ldexp(1.0, -16));  // the rounding happened
  }
}

TEST_CASE("bf16 linear and matmul, forward and backward, equal float products on bf16-rounded inputs", "[bf16][gemm]") {
  // The emulated kernel is the float product on rounded inputs, so at one thread it must give
  // the very same bits as the float path fed with rounded copies: forward, dx and dw alike.
  set_num_threads(1);
  setenv("FOUNDRY_BF16_KERNEL", "emulated", 1);
  const int M = 24, K = 40, N = 18;
  Rng rng(5);
  Tensor x = test::random_tensor({M, K}, rng), w = test::random_tensor({N, K}, rng),
         dout = test::random_tensor({M, N}, rng);
  auto rounded = [](const Tensor& t) {
    Tensor r = t;
    for (real& v : r.data) v = round_to_bf16(v);
    return r;
  };
  const Tensor xr = rounded(x), wr = rounded(w), doutr = rounded(dout);
  Tensor y_bf16({M, N}), y_ref({M, N}), dx_bf16({M, K}), dx_ref({M, K}), dw_bf16({N, K}), dw_ref({N, K});
  {
    MatmulPrecisionScope bf16_scope(MatmulPrecision::bf16);
    linear_forward(y_bf16.ptr(), x.ptr(), w.ptr(), M, K, N);
    linear_backward(dx_bf16.ptr(), dw_bf16.ptr(), dout.ptr(), x.ptr(), w.ptr(), M, K, N);
  }
  REQUIRE(matmul_precision() == MatmulPrecision::fp32);
  linear_forward(y_ref.ptr(), xr.ptr(), wr.ptr(), M, K, N);
  linear_backward(dx_ref.ptr(), dw_ref.ptr(), doutr.ptr(), xr.ptr(), wr.ptr(), M, K, N);
  CHECK(y_bf16.data == y_ref.data);
  CHECK(dx_bf16.data == dx_ref.data);
  CHECK(dw_bf16.data == dw_ref.data);

  // matmul: a (M, K) · b (K, N), and its backward.
  Tensor b = test::random_tensor({K, N}, rng);
  const Tensor br = rounded(b);
  Tensor o1({M, N}), o2({M, N}), da1({M, K}), da2({M, K}), db1({K, N}), db2({K, N});
  {
    MatmulPrecisionScope bf16_scope(MatmulPrecision::bf16);
    matmul_forward(o1.ptr(), x.ptr(), b.ptr(), M, K, N);
    matmul_backward(da1.ptr(), db1.ptr(), dout.ptr(), x.ptr(), b.ptr(), M, K, N);
  }
  matmul_forward(o2.ptr(), xr.ptr(), br.ptr(), M, K, N);
  matmul_backward(da2.ptr(), db2.ptr(), doutr.ptr(), xr.ptr(), br.ptr(), M, K, N);
  CHECK(o1.data == o2.data);
  CHECK(da1.data == da2.data);
  CHECK(db1.data == db2.data);
  // And the float path really differs from it on unrounded inputs (the test can fail).
  linear_forward(y_ref.ptr(), x.ptr(), w.ptr(), M, K, N);
  CHECK(y_bf16.data != y_ref.data);
  unsetenv("FOUNDRY_BF16_KERNEL");
  set_num_threads(0);
}

TEST_CASE("the bf16 kernel is chosen from the CPU and can be forced", "[bf16][select]") {
  unsetenv("FOUNDRY_BF16_KERNEL");
  const bool units = cpu_has_avx512_bf16() || cpu_has_amx_bf16();
  const Bf16Kernel expected = units && onednn_built() ? Bf16Kernel::onednn
                              : cpu_has_avx512_bf16() ? Bf16Kernel::avx512_bf16
                                                      : Bf16Kernel::emulated;
  CHECK(bf16_kernel_default() == expected);
  setenv("FOUNDRY_BF16_KERNEL", "emulated", 1);
  CHECK(bf16_kernel_default() == Bf16Kernel::emulated);
  {
    MatmulPrecisionScope scope(MatmulPrecision::bf16);
    CHECK(matmul_precision_description().find("emulated") != std::string::npos);
    CHECK(matmul_precision_description().find("not faster") != std::string::npos);
  }
  setenv("FOUNDRY_BF16_KERNEL", "avx1024", 1);
  CHECK_THROWS_WITH(bf16_kernel_default(), Catch::Contains("FOUNDRY_BF16_KERNEL=avx1024") &&
                                               Catch::Contains("expected \"onednn\", \"avx512_bf16\", "
                                                               "\"emulated\" or \"naive\""));
  if (!cpu_has_avx512_bf16()) {
    setenv("FOUNDRY_BF16_KERNEL", "avx512_bf16", 1);
    CHECK_THROWS_WITH(bf16_kernel_default(), Catch::Contains("no AVX512-BF16"));
  }
  setenv("FOUNDRY_BF16_KERNEL", "onednn", 1);
  if (onednn_built()) {
    CHECK(bf16_kernel_default() == Bf16Kernel::onednn);
    // The header line names oneDNN's version, the instruction set it chose and its implementation.
    const std::string d = bf16_kernel_description(Bf16Kernel::onednn);
    INFO(d);
    CHECK(d.find("oneDNN 2.") != std::string::npos);
    CHECK(d.find("ISA ") != std::string::npos);
    CHECK(d.find("matmul ") != std::string::npos);
    CHECK(d.find("none (") == std::string::npos);
  } else {
    CHECK_THROWS_WITH(bf16_kernel_default(), Catch::Contains("this build has no oneDNN"));
    CHECK_THROWS_WITH(bf16_gemm(Bf16Kernel::onednn, nullptr, 1, StridedMatrix{nullptr, 1, 1},
                                StridedMatrix{nullptr, 1, 1}, 1, 1, 1, false),
                      Catch::Contains("no oneDNN"));
  }
  unsetenv("FOUNDRY_BF16_KERNEL");
  CHECK(matmul_precision_description().find("float32") != std::string::npos);
  CHECK_THROWS_WITH(parse_matmul_precision("fp16"), Catch::Contains("expected \"fp32\" or \"bf16\""));
  CHECK(parse_matmul_precision("bf16") == MatmulPrecision::bf16);
}

TEST_CASE("every bf16 kernel gives the same bits twice at one thread", "[bf16][gemm][reproducible]") {
  // Reproducibility: the same seed gives the same bits at one thread, so every kernel must be a
  // pure function of its inputs. oneDNN keeps a primitive per shape; running other shapes in
  // between makes the second call of each shape a cache hit, not a fresh primitive.
  set_num_threads(1);
  const long shapes[][3] = {{64, 96, 80}, {7, 300, 33}, {128, 128, 1}};
  for (Bf16Kernel k : bf16_kernels_available()) {
    std::vector<std::vector<float>> first;
    for (int round = 0; round < 2; round++) {
      for (size_t s = 0; s < 3; s++) {
        const long M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        Rng data(100 + s);  // the same operands in both rounds
        std::vector<float> a(size_t(M * K)), b(size_t(N * K)), out(size_t(M * N), 0.25f);
        for (float& v : a) v = static_cast<float>(data.normal());
        for (float& v : b) v = static_cast<float>(data.normal());
        bf16_gemm(k, out.data(), N, StridedMatrix{a.data(), K, 1}, StridedMatrix{b.data(), 1, K}, M, K, N, true);
        if (round == 0) {
          first.push_back(out);
        } else {
          INFO(bf16_kernel_name(k) << " " << M << "x" << K << "x" << N);
          CHECK(out == first[s]);
        }
      }
    }
  }
  set_num_threads(0);
}

TEST_CASE("a linear layer's backward gives the same bits whether it rounds dout once or per product", "[bf16][gemm]") {
  // linear_backward with both dx and dw rounds dout once and hands the copy to both products (on
  // the oneDNN kernel); asked for one gradient at a time, each product rounds its own. The
  // numbers must not depend on which.
  set_num_threads(1);
  const int M = 48, K = 72, N = 40;
  Rng rng(23);
  Tensor x = test::random_tensor({M, K}, rng), w = test::random_tensor({N, K}, rng),
         dout = test::random_tensor({M, N}, rng);
  for (Bf16Kernel k : bf16_kernels_available()) {
    setenv("FOUNDRY_BF16_KERNEL", bf16_kernel_name(k), 1);
    MatmulPrecisionScope bf16_scope(MatmulPrecision::bf16);
    Tensor dx_both({M, K}), dw_both({N, K}), dx_one({M, K}), dw_one({N, K}), da_both({M, K}), db_both({K, N}),
        da_one({M, K}), db_one({K, N});
    linear_backward(dx_both.ptr(), dw_both.ptr(), dout.ptr(), x.ptr(), w.ptr(), M, K, N);
    linear_backward(dx_one.ptr(), nullptr, dout.ptr(), x.ptr(), w.ptr(), M, K, N);
    linear_backward(nullptr, dw_one.ptr(), dout.ptr(), x.ptr(), w.ptr(), M, K, N);
    const Tensor b = test::random_tensor({K, N}, rng);
    matmul_backward(da_both.ptr(), db_both.ptr(), dout.ptr(), x.ptr(), b.ptr(), M, K, N);
    matmul_backward(da_one.ptr(), nullptr, dout.ptr(), x.ptr(), b.ptr(), M, K, N);
    matmul_backward(nullptr, db_one.ptr(), dout.ptr(), x.ptr(), b.ptr(), M, K, N);
    INFO(bf16_kernel_name(k));
    CHECK(dx_both.data == dx_one.data);
    CHECK(dw_both.data == dw_one.data);
    CHECK(da_both.data == da_one.data);
    CHECK(db_both.data == db_one.data);
    double norm = 0;  // and the gradients are not all zero (the test can fail)
    for (real v : dw_both.data) norm += double(v) * double(v);
    CHECK(norm > 0);
  }
  unsetenv("FOUNDRY_BF16_KERNEL");
  set_num_threads(0);
}
