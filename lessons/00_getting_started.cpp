// Lesson 00: getting started. Proves that the build works end to end: the engine library links,
// a tensor can be made and multiplied, a gradient flows back through the tape, and the program
// finds the source tree it was built from. Exits non-zero if any of that fails.
//
//   build/lessons/lesson_00
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/tape.h"
#include "engine/tensor.h"

using namespace foundry;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("  %-44s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) failures++;
}

}  // namespace

int main() {
  // How this program was built. Not quoted by the lesson: it differs between machines.
  std::printf("[build]\n");
  std::printf("scalar type: %s\n", real_name());
  std::printf("OpenMP: %s, threads: %d\n", have_openmp() ? "yes" : "no (built without it)", num_threads());
  std::printf("source tree: %s\n", FOUNDRY_SOURCE_DIR);

  // ANCHOR: hello_tensor
  // A (2, 3) matrix times a (3, 2) matrix, small enough to check by hand.
  // The matrices laid out as rows (clang-format would join them).
  // clang-format off
  Tensor a({2, 3}, {1, 2, 3,
                    4, 5, 6});  // (2, 3)
  Tensor b({3, 2}, {1, 0,
                    0, 1,
                    1, 1});     // (3, 2)
  // clang-format on
  Tensor a_grad(a.shape), b_grad(b.shape);

  Tape tape;
  Var va = tape.param(a, a_grad, "a");
  Var vb = tape.param(b, b_grad, "b");
  Var c = matmul(tape, va, vb);  // (2, 2)
  Var loss = sum(tape, c);       // () : the sum of all four entries
  tape.backward(loss);
  // ANCHOR_END: hello_tensor

  std::printf("[hello]\n");
  const Tensor& C = tape.value(c);
  std::printf("c = a . b = [[%g, %g], [%g, %g]]\n", C[0], C[1], C[2], C[3]);
  std::printf("loss = sum(c) = %g\n", tape.value(loss)[0]);
  std::printf("dloss/da = [[%g, %g, %g], [%g, %g, %g]]\n", a_grad[0], a_grad[1], a_grad[2], a_grad[3], a_grad[4],
              a_grad[5]);
  std::printf("dloss/db = [[%g, %g], [%g, %g], [%g, %g]]\n", b_grad[0], b_grad[1], b_grad[2], b_grad[3], b_grad[4],
              b_grad[5]);

  std::printf("[checks]\n");
  // c[0][0] = 1·1 + 2·0 + 3·1 = 4, and so on; all small integers, exact in float.
  check(C.at({0, 0}) == 4 && C.at({0, 1}) == 5 && C.at({1, 0}) == 10 && C.at({1, 1}) == 11,
        "matmul gives the hand-computed product");
  // dloss/da[i][k] = sum over j of b[k][j]: the row sums of b, (1, 1, 2), in every row.
  check(a_grad.at({0, 0}) == 1 && a_grad.at({0, 2}) == 2 && a_grad.at({1, 1}) == 1,
        "the gradient reaches the first input");
  // dloss/db[k][j] = sum over i of a[i][k]: the column sums of a, (5, 7, 9).
  check(b_grad.at({0, 0}) == 5 && b_grad.at({1, 1}) == 7 && b_grad.at({2, 0}) == 9,
        "the gradient reaches the second input");

  // The folders every later lesson refers to, found from the path compiled into this program.
  static const char* kFolders[] = {"engine",  "model", "tokenizer", "train", "infer",   "cli",
                                   "lessons", "tests", "tools",     "bench", "scripts", "configs"};
  bool all_there = true;
  for (const char* f : kFolders) {
    if (!std::filesystem::is_directory(std::string(FOUNDRY_SOURCE_DIR) + "/" + f)) {
      std::printf("  missing folder: %s\n", f);
      all_there = false;
    }
  }
  check(all_there, "the source tree has all its folders");

  std::printf("%s\n", failures == 0 ? "all good: the build works" : "SOMETHING IS WRONG (see above)");
  return failures == 0 ? 0 : 1;
}
