// Mixed precision (training.precision = "bf16"): a bf16 training step is the float step with the
// products' inputs rounded to bf16, the model's components stay within what bf16's 8-bit mantissa
// allows of their fp32 outputs, and the master weights stay float32.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <vector>

#include "engine/bf16.h"
#include "engine/matmul.h"
#include "engine/matmul_bf16.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "engine/softmax.h"
#include "model/attention.h"
#include "model/model.h"
#include "model/rmsnorm.h"
#include "model/rope.h"
#include "model/swiglu.h"
#include "tests/common/test_helpers.h"
#include "train/adamw.h"
#include "train/plot.h"
#include "train/train_config.h"

using namespace foundry;

namespace {

// The kernels this CPU and build can run besides the naive one: the tests below pass on each.
std::vector<Bf16Kernel> kernels_here() { return bf16_kernels_available(); }

// Selects a kernel through the environment for one scope, as a user would.
struct ForceKernel {
  explicit ForceKernel(Bf16Kernel k) { setenv("FOUNDRY_BF16_KERNEL", bf16_kernel_name(k), 1); }
  ~ForceKernel() { unsetenv("FOUNDRY_BF16_KERNEL"); }
};

double relative_difference(const Tensor& a, const Tensor& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); i++) {
    diff += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
    norm += double(b[i]) * double(b[i]);
  }
  return std::sqrt(diff / norm);
}

// y = x · wᵀ as the float step would compute it on bf16-rounded inputs: forward on round(x) and
// round(w), backward on round(dout) with the same rounded x and w, every product in float.
Var rounded_linear(Tape& tape, Var x, Var w) {
  const int K = tape.value(w).dim(1), N = tape.value(w).dim(0);
  const int M = static_cast<int>(tape.value(x).size() / K);
  Shape shape = tape.value(x).shape;
  shape.back() = N;
  auto rounded = [](const Tensor& t) {
    Tensor r = t;
    for (real& v : r.data) v = round_to_bf16(v);
    return r;
  };
  Var out = tape.record("rounded_linear", {x.id, w.id}, shape);
  linear_forward(tape.mutable_value(out).ptr(), rounded(tape.value(x)).ptr(), rounded(tape.value(w)).ptr(), M, K, N);
  tape.set_backward(out, [&tape, x, w, out, M, K, N, rounded] {
    const Tensor xr = rounded(tape.value(x)), wr = rounded(tape.value(w)), dr = rounded(tape.grad(out));
    real* dx = tape.needs_grad(x) ? tape.grad(x).ptr() : nullptr;
    linear_backward(dx, tape.grad(w).ptr(), dr.ptr(), xr.ptr(), wr.ptr(), M, K, N);
  });
  return out;
}

// A small network with the parts of a transformer step: products, an RMSNorm, a residual, the
// loss, AdamW. logits = rmsnorm(x·w1ᵀ + x) · w2ᵀ, cross-entropy against targets.
struct Net {
  Tensor w1, g, w2, dw1, dg, dw2;
  std::vector<NamedTensor> params() { return {{"w1", &w1, &dw1}, {"g", &g, &dg}, {"w2", &w2, &dw2}}; }
};

double net_step(Net& net, AdamW& opt, const Tensor& x, const std::vector<int>& targets, bool reference) {
  Tape tape;
  for (NamedTensor& p : net.params()) p.grad->fill(0);
  Var xv = tape.input(x);
  Var w1 = tape.param(net.w1, net.dw1, "w1"), g = tape.param(net.g, net.dg, "g"),
      w2 = tape.param(net.w2, net.dw2, "w2");
  auto lin = [&](Var a, Var b) { return reference ? rounded_linear(tape, a, b) : linear(tape, a, b); };
  Var h = add(tape, lin(xv, w1), xv);
  Var logits = lin(rmsnorm(tape, h, g, 1e-5f), w2);
  Var loss = cross_entropy(tape, logits, targets);
  tape.backward(loss);
  adamw_step(opt, net.params(), 1e-2, AdamWSettings{0.9, 0.95, 1e-8, 0.1});
  return tape.value(loss)[0];
}

}  // namespace

TEST_CASE("a bf16 training step equals the float step on bf16-rounded inputs", "[bf16][train]") {
  set_num_threads(1);
  const int N = 20, C = 24, V = 30;  // rows, width, classes
  Rng rng(17);
  Net start{test::random_tensor({C, C}, rng, 0.2),
            test::random_tensor({C}, rng, 0.1, 1.0),
            test::random_tensor({V, C}, rng, 0.2),
            Tensor({C, C}),
            Tensor({C}),
            Tensor({V, C})};
  const Tensor x = test::random_tensor({N, C}, rng);
  std::vector<int> targets(N);
  for (int& t : targets) t = static_cast<int>(rng.below(V));

  for (Bf16Kernel k : kernels_here()) {
    INFO("kernel " << bf16_kernel_name(k));
    Net ref = start, got = start;
    AdamW opt_ref = make_adamw(ref.params()), opt_got = make_adamw(got.params());
    double loss_ref = 0, loss_got = 0;
    for (int step = 0; step < 3; step++) {
      loss_ref = net_step(ref, opt_ref, x, targets, true);  // precision fp32, rounding by hand
      ForceKernel force(k);
      MatmulPrecisionScope bf16(MatmulPrecision::bf16);
      loss_got = net_step(got, opt_got, x, targets, false);
    }
    if (k == Bf16Kernel::emulated) {
      // The emulated kernel is the float product on rounded inputs: the very same bits.
      CHECK(loss_got == loss_ref);
      CHECK(got.w1.data == ref.w1.data);
      CHECK(got.g.data == ref.g.data);
      CHECK(got.w2.data == ref.w2.data);
      CHECK(opt_got.v[2].data == opt_ref.v[2].data);
    } else {
      // vdpbf16ps and oneDNN sum in another order (and flush subnormals): float-rounding close.
      CHECK(std::fabs(loss_got - loss_ref) <= 1e-5 * std::fabs(loss_ref));
      CHECK(relative_difference(got.w2, ref.w2) < 1e-5);
      CHECK(relative_difference(got.w1, ref.w1) < 1e-5);
    }
    // Reproducible: the same three steps again from the same start give the same bits.
    Net again = start;
    AdamW opt_again = make_adamw(again.params());
    double loss_again = 0;
    for (int step = 0; step < 3; step++) {
      ForceKernel force(k);
      MatmulPrecisionScope bf16(MatmulPrecision::bf16);
      loss_again = net_step(again, opt_again, x, targets, false);
    }
    CHECK(loss_again == loss_got);
    CHECK(again.w1.data == got.w1.data);
    CHECK(again.w2.data == got.w2.data);
    // Master weights: AdamW's updates land in float32, so they are not bf16 numbers.
    long not_bf16 = 0;
    for (real v : got.w2.data) not_bf16 += round_to_bf16(v) != v;
    CHECK(not_bf16 > long(got.w2.size()) / 2);
  }
  // The step really is different from the fp32 one (the rounding is there to see).
  Net fp32 = start;
  AdamW opt_fp32 = make_adamw(fp32.params());
  Net ref = start;
  AdamW opt_ref = make_adamw(ref.params());
  const double l32 = net_step(fp32, opt_fp32, x, targets, false), lref = net_step(ref, opt_ref, x, targets, true);
  CHECK(l32 != lref);
  set_num_threads(0);
}

TEST_CASE("bf16 forward of each component stays within bf16 rounding of fp32", "[bf16][forward]") {
  // A product of bf16-rounded inputs moves each term a·b by at most 2^-8 of |a·b| (each input by
  // at most 2^-9); over K terms of random sign these errors add like a random walk, as does the
  // sum itself, so the norm-wise relative error of one product is about 2^-9 (≈ 2e-3), at most
  // 2^-8 whatever K is. A component with p products in a chain compounds about p of these: we
  // allow p · 2^-8 norm-wise, and ask for at least 2^-13 so that a bf16 path that silently ran
  // fp32 (relative error 1e-7) fails.
  set_num_threads(1);
  const int B = 2, T = 16, C = 64, NH = 4, NKV = 2, HS = C / NH, F = 176, V = 96;
  Rng rng(11);
  const Tensor x = test::random_tensor({B, T, C}, rng);
  const Tensor w1 = test::random_tensor({F, C}, rng, 1 / std::sqrt(double(C)));
  const Tensor w3 = test::random_tensor({F, C}, rng, 1 / std::sqrt(double(C)));
  const Tensor w2 = test::random_tensor({C, F}, rng, 1 / std::sqrt(double(F)));
  const Tensor wq = test::random_tensor({NH * HS, C}, rng, 1 / std::sqrt(double(C)));
  const Tensor wk = test::random_tensor({NKV * HS, C}, rng, 1 / std::sqrt(double(C)));
  const Tensor wv = test::random_tensor({NKV * HS, C}, rng, 1 / std::sqrt(double(C)));
  const Tensor wo = test::random_tensor({C, NH * HS}, rng, 1 / std::sqrt(double(C)));
  Tensor rope_cos({T, HS / 2}), rope_sin({T, HS / 2});
  rope_tables(rope_cos.ptr(), rope_sin.ptr(), T, HS, 10000.0);

  ModelConfig mc;
  mc.dim = C, mc.n_layers = 2, mc.n_heads = NH, mc.n_kv_heads = NKV, mc.hidden_dim = F, mc.vocab_size = V;
  mc.max_seq_len = T;
  Model model = make_model(mc);
  Rng init(3);
  init_weights(model, init);
  std::vector<int> ids(size_t(B * T)), targets(size_t(B * T));
  for (size_t i = 0; i < ids.size(); i++) ids[i] = int(rng.below(V)), targets[i] = int(rng.below(V));

  struct Case {
    const char* name;
    int products;  // the longest chain of products
    std::function<Var(Tape&)> run;
  };
  const std::vector<Case> cases = {
      {"linear", 1, [&](Tape& t) { return linear(t, t.input(x), t.input(wq)); }},
      {"feed_forward", 2, [&](Tape& t) { return feed_forward(t, t.input(x), t.input(w1), t.input(w3), t.input(w2)); }},
      {"self_attention", 2,
       [&](Tape& t) {
         return self_attention(t, t.input(x), t.input(wq), t.input(wk), t.input(wv), t.input(wo), rope_cos, rope_sin,
                               NH, NKV);
       }},
      // Two layers of attention and feed-forward, then the output projection.
      {"model_logits", 9, [&](Tape& t) { return model_logits(t, model, ids, B, T); }},
  };
  for (Bf16Kernel k : kernels_here()) {
    ForceKernel force(k);
    for (const Case& c : cases) {
      Tape t32, t16;
      const Tensor want = t32.value(c.run(t32));
      Tensor got;
      {
        MatmulPrecisionScope bf16(MatmulPrecision::bf16);
        got = t16.value(c.run(t16));
      }
      const double rel = relative_difference(got, want);
      INFO(bf16_kernel_name(k) << " " << c.name << ": norm-wise relative difference " << rel);
      CHECK(rel <= c.products * std::ldexp(1.0, -8));
      CHECK(rel >= std::ldexp(1.0, -13));
    }
    // The loss: a mean over B·T tokens of a log-sum-exp; its error is far below the logits'.
    Tape t32, t16;
    const double l32 = t32.value(model_loss(t32, model, ids, targets, B, T))[0];
    double l16;
    {
      MatmulPrecisionScope bf16(MatmulPrecision::bf16);
      l16 = t16.value(model_loss(t16, model, ids, targets, B, T))[0];
    }
    INFO(bf16_kernel_name(k) << " loss fp32 " << l32 << " bf16 " << l16);
    CHECK(std::fabs(l16 - l32) <= 1e-3 * l32);
  }
  set_num_threads(0);
}

TEST_CASE("training.precision is a config field: fp32 by default, bf16 accepted, anything else refused",
          "[bf16][config]") {
  TrainConfig c;
  CHECK(c.training.precision == "fp32");
  nlohmann::json j = to_json(c);
  j["training"]["precision"] = "bf16";
  CHECK(train_config_from_json(j, "t.json").training.precision == "bf16");
  j["training"]["precision"] = "fp16";
  CHECK_THROWS_WITH(train_config_from_json(j, "t.json"),
                    Catch::Contains("training.precision") && Catch::Contains("expected \"fp32\" or \"bf16\""));
}

TEST_CASE("foundry plot of several runs: one picture, a colour and a legend entry per run", "[plot][compare]") {
  MetricsSeries a, b;
  for (long s = 1; s <= 40; s++) {
    a.train.push_back({s, 5.0 - 0.05 * double(s)});
    b.train.push_back({s, 5.1 - 0.05 * double(s)});
  }
  a.eval = {{0, 5.2}, {20, 4.1}, {40, 3.2}};
  b.eval = {{0, 5.2}, {20, 4.15}, {40, 3.25}};
  const std::string svg = compare_loss_curves_svg({{"fp32 <run>", a}, {"bf16", b}}, "fp32 vs bf16");
  CHECK(svg.find("fp32 &lt;run&gt;: validation") != std::string::npos);  // labels escaped
  CHECK(svg.find("bf16: train (moving average)") != std::string::npos);
  CHECK(svg.find("#1f77b4") != std::string::npos);
  CHECK(svg.find("#d62728") != std::string::npos);
  size_t dashed = 0;  // dashed polylines (the legend's dashes are <line>s)
  for (size_t at = svg.find("stroke-dasharray=\"6 4\" points="); at != std::string::npos;
       at = svg.find("stroke-dasharray=\"6 4\" points=", at + 1)) {
    dashed++;
  }
  CHECK(dashed == 2);  // one validation curve per run
  CHECK(std::count(svg.begin(), svg.end(), '\n') > 20);
  CHECK_THROWS_WITH(compare_loss_curves_svg({{"empty", MetricsSeries{}}}, "t"), Catch::Contains("no finite loss"));
}
