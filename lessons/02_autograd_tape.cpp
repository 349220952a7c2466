// Lesson 02: the autograd tape. First a tape of plain numbers written out in full in this file,
// then the engine's Tape on tensors: recording, the reverse loop, accumulation when a value is
// used twice, the printed tape, and clear() reusing every buffer. Exits non-zero if any
// gradient disagrees with the one derived by hand.
//
//   build/lessons/lesson_02
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/tape.h"
#include "lessons/lesson_common.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

// ANCHOR: scalar_tape
// A tape of numbers: each node remembers its op, its value, the ids of its inputs and its
// gradient dL/d(value). Recording appends; backward walks the list once, in reverse.
enum class Op { leaf, add, mul };

struct ScalarNode {
  Op op;
  double value;
  int a = -1, b = -1;  // input ids (-1: none)
  double grad = 0;
};

struct ScalarTape {
  std::vector<ScalarNode> nodes;

  int leaf(double v) { return push({Op::leaf, v}); }
  int add(int a, int b) { return push({Op::add, nodes[a].value + nodes[b].value, a, b}); }
  int mul(int a, int b) { return push({Op::mul, nodes[a].value * nodes[b].value, a, b}); }

  void backward(int loss) {
    for (ScalarNode& n : nodes) n.grad = 0;
    nodes[loss].grad = 1;  // dL/dL
    for (int i = loss; i >= 0; i--) {
      const ScalarNode& n = nodes[i];
      if (n.op == Op::add) {  // out = a + b:  da += dout,  db += dout
        nodes[n.a].grad += n.grad;
        nodes[n.b].grad += n.grad;
      } else if (n.op == Op::mul) {  // out = a * b:  da += dout * b,  db += dout * a
        nodes[n.a].grad += n.grad * nodes[n.b].value;
        nodes[n.b].grad += n.grad * nodes[n.a].value;
      }
    }
  }

 private:
  int push(ScalarNode n) {
    nodes.push_back(n);
    return static_cast<int>(nodes.size()) - 1;
  }
};
// ANCHOR_END: scalar_tape

// The same backward with `=` where `+=` belongs: the classic bug this lesson is about.
void backward_overwriting(ScalarTape& t, int loss) {
  for (ScalarNode& n : t.nodes) n.grad = 0;
  t.nodes[loss].grad = 1;
  for (int i = loss; i >= 0; i--) {
    const ScalarNode& n = t.nodes[i];
    if (n.op == Op::add) {
      t.nodes[n.a].grad = n.grad;
      t.nodes[n.b].grad = n.grad;
    } else if (n.op == Op::mul) {
      t.nodes[n.a].grad = n.grad * t.nodes[n.b].value;
      t.nodes[n.b].grad = n.grad * t.nodes[n.a].value;
    }
  }
}

const char* op_name(Op op) { return op == Op::leaf ? "leaf" : op == Op::add ? "add" : "mul"; }

void print_vec(const char* label, const Tensor& t) {
  std::printf("%s =", label);
  for (size_t i = 0; i < t.size(); i++) std::printf(" %g", t[i]);
  std::printf("\n");
}

bool equal(const Tensor& t, std::vector<real> want) { return t.data == want; }

}  // namespace

int main() {
  std::printf("[scalar]\n");
  // ANCHOR: scalar_example
  // f(x, y) = x * y + x, with x used twice.  df/dx = y + 1,  df/dy = x.
  ScalarTape t;
  int x = t.leaf(3);
  int y = t.leaf(4);
  int m = t.mul(x, y);
  int f = t.add(m, x);
  t.backward(f);
  // ANCHOR_END: scalar_example
  for (size_t i = 0; i < t.nodes.size(); i++) {
    const ScalarNode& n = t.nodes[i];
    std::printf("#%zu %-4s value %g", i, op_name(n.op), n.value);
    if (n.a >= 0) std::printf("  <- #%d #%d", n.a, n.b);
    std::printf("   grad %g\n", n.grad);
  }
  check(t.nodes[f].value == 15, "f(3, 4) = 15");
  check(t.nodes[x].grad == 5 && t.nodes[y].grad == 3, "df/dx = y + 1 = 5 and df/dy = x = 3");

  backward_overwriting(t, f);
  std::printf("with = instead of +=: df/dx = %g (the add's share, 1, was overwritten)\n", t.nodes[x].grad);
  check(t.nodes[x].grad == 4, "overwriting loses a share of the gradient");

  // x * x: both inputs of one node are the same value.
  ScalarTape sq;
  int z = sq.leaf(3);
  int z2 = sq.mul(z, z);
  sq.backward(z2);
  double with_add = sq.nodes[z].grad;
  backward_overwriting(sq, z2);
  std::printf("g(z) = z * z at z = 3: dg/dz = %g with +=, %g with =\n", with_add, sq.nodes[z].grad);
  check(with_add == 6, "d(z*z)/dz = 2z = 6");

  std::printf("[tensor]\n");
  // ANCHOR: tensor_example
  // The same function on tensors: L = sum(w ⊙ x + w). w is a parameter used twice, x is data.
  Tensor w({3}, {3, -1, 0.5});     // (3) a parameter
  Tensor w_grad({3});              // (3) dL/dw, accumulated by backward
  Tensor x_data({3}, {4, 2, -2});  // (3) an input: no gradient wanted

  Tape tape;
  Var vw = tape.param(w, w_grad, "w");
  Var vx = tape.input(x_data, "x");
  Var prod = mul(tape, vw, vx);    // (3)  w ⊙ x
  Var both = add(tape, prod, vw);  // (3)  w ⊙ x + w: the second use of w
  Var loss = sum(tape, both);      // ()
  tape.backward(loss);
  // ANCHOR_END: tensor_example
  std::printf("%s", tape.str().c_str());
  std::printf("loss = %g\n", tape.value(loss)[0]);
  print_vec("dL/dw", w_grad);
  check(tape.value(loss)[0] == 11.5f, "L = (12 + 3) + (-2 - 1) + (-1 + 0.5) = 11.5");
  check(equal(w_grad, {5, 3, -1}), "dL/dw = x + 1 = (5, 3, -1)");
  check(!tape.needs_grad(vx), "the input x gets no gradient");

  std::printf("[clear]\n");
  const Tensor* first_buffer = &tape.value(prod);
  const real* first_data = tape.value(prod).ptr();
  // ANCHOR: clear_reuse
  tape.clear();  // forget the nodes, keep their buffers
  vw = tape.param(w, w_grad, "w");
  vx = tape.input(x_data, "x");
  prod = mul(tape, vw, vx);
  both = add(tape, prod, vw);
  loss = sum(tape, both);
  tape.backward(loss);  // w_grad was not zeroed: the second step adds onto the first
  // ANCHOR_END: clear_reuse
  std::printf("nodes after clear() and a second step: %d\n", tape.size());
  std::printf("node #2 reuses its buffer: %s\n",
              &tape.value(prod) == first_buffer && tape.value(prod).ptr() == first_data ? "yes" : "no");
  print_vec("dL/dw without zeroing", w_grad);
  check(tape.value(prod).ptr() == first_data, "clear() keeps the buffers");
  check(equal(w_grad, {10, 6, -2}), "parameter gradients accumulate across backward calls");

  w_grad.fill(0);  // what the training loop does before every step
  tape.clear();
  vw = tape.param(w, w_grad, "w");
  vx = tape.input(x_data, "x");
  loss = sum(tape, add(tape, mul(tape, vw, vx), vw));
  tape.backward(loss);
  print_vec("dL/dw after zeroing", w_grad);
  check(equal(w_grad, {5, 3, -1}), "zeroed first, the gradient is right again");

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
