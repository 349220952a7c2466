// Lesson 08: grouped-query attention (GQA). Prints which kv head each query head reads, the
// weights and KV-cache memory GQA saves, shows that GQA is multi-head attention with duplicated
// kv heads, and where the gradient of a shared kv head comes from. Exits non-zero if any check
// fails.
//
//   build/lessons/lesson_08
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/rng.h"
#include "lessons/lesson_common.h"
#include "model/attention.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

Tensor random_tensor(const Shape& shape, Rng& rng) {
  Tensor t(shape);
  for (real& x : t.data) x = static_cast<real>(rng.normal());
  return t;
}

// k (B, T, NKV, HS) -> (B, T, NH, HS), kv head g copied to query heads g·group .. (g+1)·group − 1.
// ANCHOR: duplicate_kv
Tensor duplicate_kv(const Tensor& kv, int NH) {
  const int B = kv.dim(0), T = kv.dim(1), NKV = kv.dim(2), HS = kv.dim(3), group = NH / NKV;
  Tensor out({B, T, NH, HS});  // (B, T, NH, HS)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < NH; h++)
        for (int c = 0; c < HS; c++) out.at({b, t, h, c}) = kv.at({b, t, h / group, c});
  return out;
}
// ANCHOR_END: duplicate_kv

struct Shape5 {
  const char* name;
  long L, C, NH, NKV, bytes;  // bytes per cached number
};

}  // namespace

int main() {
  std::printf("[groups]\n");
  {
    const int NH = 8, NKV = 4, group = NH / NKV;  // the small reference configuration
    for (int h = 0; h < NH; h++) std::printf("query head %d reads kv head %d\n", h, h / group);
  }

  std::printf("[weights]\n");
  {
    // Small configuration: C = 256, NH = 8, HS = 32, NKV = 4.
    const long C = 256, NH = 8, NKV = 4, HS = C / NH;
    const long mha = 2 * NH * HS * C, gqa = 2 * NKV * HS * C;  // wk and wv together
    std::printf("wk + wv per layer: %ld numbers with NKV = NH = %ld, %ld with NKV = %ld\n", mha, NH, gqa, NKV);
    const long total_mha = 2 * NH * HS * C + 2 * NH * HS * C;  // wq, wk, wv, wo
    const long total_gqa = 2 * NH * HS * C + 2 * NKV * HS * C;
    std::printf("attention weights per layer: %ld -> %ld (%.0f%% fewer)\n", total_mha, total_gqa,
                100.0 * (total_mha - total_gqa) / total_mha);
  }

  std::printf("[kv_cache]\n");
  // ANCHOR: kv_cache_bytes
  // Generation keeps every past position's k and v: 2 vectors of NKV·HS numbers per layer.
  for (const Shape5& m : {Shape5{"small (float32)", 4, 256, 8, 4, 4}, Shape5{"medium (float32)", 8, 512, 8, 4, 4},
                          Shape5{"LLaMA-2-70B shape (16-bit)", 80, 8192, 64, 8, 2}}) {
    const long HS = m.C / m.NH;
    const long per_token_gqa = 2 * m.L * m.NKV * HS * m.bytes;
    const long per_token_mha = 2 * m.L * m.NH * HS * m.bytes;
    // ANCHOR_END: kv_cache_bytes
    std::printf("%s: %ld bytes per token with NKV = %ld, %ld with NKV = NH = %ld (%ldx)\n", m.name, per_token_gqa,
                m.NKV, per_token_mha, m.NH, per_token_mha / per_token_gqa);
    std::printf("  a 4096-token context: %.1f MiB instead of %.1f MiB\n", per_token_gqa * 4096.0 / (1 << 20),
                per_token_mha * 4096.0 / (1 << 20));
  }

  std::printf("[equivalence]\n");
  const int B = 1, T = 6, NH = 4, NKV = 2, HS = 8;
  Rng rng(8);
  Tensor q = random_tensor({B, T, NH, HS}, rng);     // (B, T, NH, HS)
  Tensor k = random_tensor({B, T, NKV, HS}, rng);    // (B, T, NKV, HS)
  Tensor v = random_tensor({B, T, NKV, HS}, rng);    // (B, T, NKV, HS)
  Tensor dout = random_tensor({B, T, NH, HS}, rng);  // (B, T, NH, HS) a gradient from above
  Tensor k_dup = duplicate_kv(k, NH), v_dup = duplicate_kv(v, NH);
  // ANCHOR: gqa_vs_mha
  Tensor out_gqa({B, T, NH, HS}), att_gqa({B, NH, T, T});
  Tensor out_mha({B, T, NH, HS}), att_mha({B, NH, T, T});
  attention_forward(out_gqa.ptr(), att_gqa.ptr(), q.ptr(), k.ptr(), v.ptr(), B, T, NH, NKV, HS);
  attention_forward(out_mha.ptr(), att_mha.ptr(), q.ptr(), k_dup.ptr(), v_dup.ptr(), B, T, NH, NH, HS);
  // ANCHOR_END: gqa_vs_mha
  std::printf("max |GQA − MHA with duplicated kv heads| = %g\n", max_abs_diff(out_gqa, out_mha));
  check(max_abs_diff(out_gqa, out_mha) < 1e-6, "GQA computes exactly multi-head attention with shared k, v");

  std::printf("[gradients]\n");
  {
    Tensor dq_gqa(q.shape), dk_gqa(k.shape), dv_gqa(v.shape);
    Tensor dq_mha(q.shape), dk_mha(k_dup.shape), dv_mha(v_dup.shape);
    attention_backward(dq_gqa.ptr(), dk_gqa.ptr(), dv_gqa.ptr(), dout.ptr(), att_gqa.ptr(), q.ptr(), k.ptr(), v.ptr(),
                       B, T, NH, NKV, HS);
    attention_backward(dq_mha.ptr(), dk_mha.ptr(), dv_mha.ptr(), dout.ptr(), att_mha.ptr(), q.ptr(), k_dup.ptr(),
                       v_dup.ptr(), B, T, NH, NH, HS);
    // Element (t = 1, c = 0) of kv head 1, which query heads 2 and 3 share.
    const int t = 1, g = 1, c = 0, group = NH / NKV;
    double total = 0;
    for (int h = g * group; h < (g + 1) * group; h++) {
      std::printf("dk from query head %d: %+.4f\n", h, dk_mha.at({0, t, h, c}));
      total += dk_mha.at({0, t, h, c});
    }
    std::printf("sum of the copies:      %+.4f\n", total);
    std::printf("GQA's dk of kv head %d:  %+.4f\n", g, dk_gqa.at({0, t, g, c}));
    double worst = 0;
    for (int tt = 0; tt < T; tt++)
      for (int gg = 0; gg < NKV; gg++)
        for (int cc = 0; cc < HS; cc++) {
          double sk = 0, sv = 0;
          for (int h = gg * group; h < (gg + 1) * group; h++) {
            sk += dk_mha.at({0, tt, h, cc});
            sv += dv_mha.at({0, tt, h, cc});
          }
          worst =
              std::max({worst, std::fabs(sk - dk_gqa.at({0, tt, gg, cc})), std::fabs(sv - dv_gqa.at({0, tt, gg, cc}))});
        }
    check(worst < 1e-5, "dk and dv of a kv head = the sum over the query heads that share it");
    check(max_abs_diff(dq_gqa, dq_mha) < 1e-6, "dq is the same either way");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
