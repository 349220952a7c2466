// `add` must accumulate (+=) into both of its inputs' gradients. That only shows when an input's
// gradient already holds something when add's backward runs: the input feeds another op that
// was recorded after the add, so its backward runs first. In the other graphs of the suite the
// add writes first, and an add that assigns (=) would pass them all; this graph catches it (the
// exercise of lesson 02 relies on that).
#include <catch2/catch.hpp>

#include "engine/ops.h"
#include "tests/engine_f64/helpers.h"

using namespace foundry;
using foundry::test::kGradTol;
using foundry::test::random_tensor;

namespace {

enum class Side { a, b };

// add whose backward assigns (=) on one side instead of adding: the deliberately broken twin.
Var add_assigns(Tape& tape, Var a, Var b, Side side) {
  Var out = tape.record("add_assigns", {a.id, b.id}, tape.value(a).shape);
  add_forward(tape.mutable_value(out).ptr(), tape.value(a).ptr(), tape.value(b).ptr(), tape.value(a).size());
  tape.set_backward(out, [&tape, a, b, out, side] {
    Tensor& da = tape.grad(a);
    Tensor& db = tape.grad(b);
    const Tensor& dout = tape.grad(out);
    for (size_t i = 0; i < dout.size(); i++) {
      if (side == Side::a) da[i] = dout[i];
      else da[i] += dout[i];
      if (side == Side::b) db[i] = dout[i];
      else db[i] += dout[i];
    }
  });
  return out;
}

using AddFn = Var (*)(Tape&, Var, Var, Side);

Var real_add(Tape& tape, Var a, Var b, Side) { return add(tape, a, b); }

// loss graph: first = x + y (or y + x, to test the other side), then second = x ⊙ z, recorded
// after first, and out = first + second. Backward runs second's backward before first's, so
// dx already holds z ⊙ dout when first's backward adds its share.
GradCheckFn graph(AddFn add_fn, Side side) {
  return [add_fn, side](Tape& t, const std::vector<Var>& v) {
    Var x = v[0], y = v[1], z = v[2];
    Var first = side == Side::a ? add_fn(t, x, y, side) : add_fn(t, y, x, side);
    Var second = mul(t, x, z);
    return add(t, first, second);
  };
}

}  // namespace

TEST_CASE("add accumulates into an input whose gradient another op wrote first", "[gradcheck][add]") {
  Rng rng(31);
  Tensor x = random_tensor({2, 5}, rng), y = random_tensor({2, 5}, rng), z = random_tensor({2, 5}, rng);
  for (Side side : {Side::a, Side::b}) {
    const char* label = side == Side::a ? "x as add's first input" : "x as add's second input";
    INFO(label);
    GradCheckResult good = check_gradients(graph(real_add, side), {&x, &y, &z}, {"x", "y", "z"});
    INFO("add: " << good.str());
    CHECK(good.passed(kGradTol));
    // The broken twin overwrites the x ⊙ z share of dx: the same graph must catch it.
    GradCheckResult broken = check_gradients(graph(add_assigns, side), {&x, &y, &z}, {"x", "y", "z"});
    INFO("add with = on that side: " << broken.str());
    CHECK_FALSE(broken.passed(kGradTol));
    CHECK(broken.worst.find("input 0 (x)") != std::string::npos);
  }
}
