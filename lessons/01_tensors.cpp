// Lesson 01: tensors and memory layout. Prints where each element of a small tensor lives,
// computes strides by hand and checks them against the engine's flat_index, shows that a Tensor
// is a value (copies do not share), and what reshape and swap_axes12 do to memory.
// Exits non-zero if any check fails.
//
//   build/lessons/lesson_01
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "engine/tensor.h"
#include "lessons/lesson_common.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

void print_memory(const char* label, const Tensor& t) {
  std::printf("%s %s memory:", label, shape_str(t.shape).c_str());
  for (size_t i = 0; i < t.size(); i++) std::printf(" %g", t[i]);
  std::printf("\n");
}

// ANCHOR: strides
// The stride of a dimension is how far apart, in elements, two neighbours along it sit in
// memory. Row-major: the last dimension has stride 1, and each dimension to its left steps
// over one whole copy of everything to its right.
std::vector<size_t> strides_of(const Shape& shape) {
  std::vector<size_t> strides(shape.size());
  size_t step = 1;
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; d--) {
    strides[d] = step;
    step *= shape[d];
  }
  return strides;
}
// ANCHOR_END: strides

}  // namespace

int main() {
  std::printf("[layout]\n");
  // ANCHOR: make_x
  Tensor x({2, 3, 4});                                                // (2, 3, 4), zeros
  for (size_t i = 0; i < x.size(); i++) x[i] = static_cast<real>(i);  // element i holds i
  // ANCHOR_END: make_x
  std::vector<size_t> s = strides_of(x.shape);
  std::printf("shape %s, %zu elements, rank %d\n", shape_str(x.shape).c_str(), x.size(), x.rank());
  std::printf("strides (%zu, %zu, %zu)\n", s[0], s[1], s[2]);
  std::printf("x[1][2][3] sits at 1*%zu + 2*%zu + 3*%zu = %zu and holds %g\n", s[0], s[1], s[2],
              1 * s[0] + 2 * s[1] + 3 * s[2], x.at({1, 2, 3}));
  std::printf("x[0][1][0] sits at %zu; x[1][0][0] sits at %zu\n", flat_index(x.shape, {0, 1, 0}),
              flat_index(x.shape, {1, 0, 0}));

  // Every index, both ways: the hand-made strides and the engine's Horner-style loop agree.
  bool agree = true;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        size_t by_strides = i * s[0] + j * s[1] + k * s[2];
        agree = agree && by_strides == flat_index(x.shape, {i, j, k}) && x.at({i, j, k}) == real(by_strides);
      }
  check(agree, "strides and flat_index agree on all 24 indices");

  std::printf("[value]\n");
  // ANCHOR: value_semantics
  Tensor y = x;  // a copy: its own 24 numbers
  y[0] = 100;
  // ANCHOR_END: value_semantics
  std::printf("after y = x; y[0] = 100:  x[0] = %g, y[0] = %g\n", x[0], y[0]);
  check(x[0] == 0 && y[0] == 100, "copying a Tensor copies the data");

  std::printf("[reshape]\n");
  bool threw = false;
  Tensor r = x.reshaped({6, 4});  // (6, 4)
  std::printf("x %s reshaped to %s: same numbers, same order\n", shape_str(x.shape).c_str(),
              shape_str(r.shape).c_str());
  std::printf("r[4][1] = %g = x[1][1][1] = %g\n", r.at({4, 1}), x.at({1, 1, 1}));
  check(r.data == x.data, "reshape keeps the memory order");
  try {
    x.reshaped({5, 5});
  } catch (const std::invalid_argument& e) {
    std::printf("x.reshaped({5, 5}) throws: %s\n", e.what());
    threw = true;
  }
  check(threw, "a reshape that changes the element count is rejected");

  std::printf("[swap]\n");
  // (B, T, NH, HS) = (1, 3, 2, 2): three positions, two heads, head size two.
  // ANCHOR: swap_example
  Tensor q({1, 3, 2, 2});  // (B, T, NH, HS)
  for (size_t i = 0; i < q.size(); i++) q[i] = static_cast<real>(i);
  Tensor qt({1, 2, 3, 2});  // (B, NH, T, HS)
  swap_axes12_forward(qt.ptr(), q.ptr(), 1, 3, 2, 2);
  // ANCHOR_END: swap_example
  print_memory("q ", q);
  print_memory("qt", qt);
  bool swapped = true;
  for (int t = 0; t < 3; t++)
    for (int h = 0; h < 2; h++)
      for (int k = 0; k < 2; k++) swapped = swapped && qt.at({0, h, t, k}) == q.at({0, t, h, k});
  check(swapped, "qt[0][h][t][k] == q[0][t][h][k] everywhere");

  std::printf("[errors]\n");
  Tensor a({2, 3}), b({3, 2});
  threw = false;
  try {
    check_same_shape(a, b, "add");
  } catch (const std::invalid_argument& e) {
    std::printf("%s\n", e.what());
    threw = true;
  }
  check(threw, "tensors of different shapes are rejected, naming both shapes");
  threw = false;
  try {
    x.at({0, 3, 0});
  } catch (const std::out_of_range& e) {
    std::printf("%s\n", e.what());
    threw = true;
  }
  check(threw, "an index past the end of a dimension is rejected");

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
