// The forward of every op on fixed seeded inputs, computed by whichever build includes this
// header: the float build (test_engine) and the double build (test_engine_f64). The double
// build's numbers are committed in tests/fixtures/engine/forward_f64.txt; test_engine_f64 checks
// that the double build still reproduces them, test_engine that the float build agrees with them.
// Regenerate after an intended change of an op's math:
//   build/tests/test_engine_f64 "[.regenerate]"
//
// Every input is rounded to float before use, in both builds, so the two builds start from the
// same numbers and any difference comes from the arithmetic alone.
#pragma once

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/embedding.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/softmax.h"

namespace foundry {
namespace test {

using Results = std::map<std::string, std::vector<double>>;  // op case -> its output values

inline Tensor suite_tensor(const Shape& shape, Rng& rng, double scale, double offset = 0) {
  Tensor t(shape);
  for (real& v : t.data) v = static_cast<real>(static_cast<float>(offset + scale * rng.normal()));
  return t;
}

inline std::vector<double> values(const Tensor& t) { return std::vector<double>(t.data.begin(), t.data.end()); }

inline Results forward_suite() {
  Rng rng(2024);
  Results r;
  Tape tape;
  auto run = [&](const std::string& name, Var v) { r[name] = values(tape.value(v)); };

  Tensor a = suite_tensor({7, 33}, rng, 1), b = suite_tensor({33, 5}, rng, 1);  // (M, K), (K, N)
  Tensor big_a = suite_tensor({64, 256}, rng, 1), big_b = suite_tensor({256, 48}, rng, 1);
  Tensor x = suite_tensor({2, 3, 16}, rng, 1), w = suite_tensor({10, 16}, rng, 0.25);  // (B, T, K), (N, K)
  Tensor p = suite_tensor({4, 9}, rng, 3), q = suite_tensor({4, 9}, rng, 3);
  Tensor h = suite_tensor({2, 3, 4, 5}, rng, 1);         // (B, T, NH, HS)
  Tensor table = suite_tensor({11, 6}, rng, 1);          // (V, C)
  Tensor logits = suite_tensor({6, 13}, rng, 2);         // (N, V)
  Tensor huge = suite_tensor({6, 13}, rng, 3, 1e4);      // logits around +1e4
  for (int j = 0; j < 13; j++) huge.at({1, j}) -= 2e4f;  // ...and one row around -1e4
  std::vector<int> ids = {3, 10, 3, 0, 7, 3, 10};
  std::vector<int> targets = {1, 12, 0, 5, 5, 7};

  tape.clear();
  run("matmul_7x33x5", matmul(tape, tape.input(a), tape.input(b)));
  run("matmul_64x256x48", matmul(tape, tape.input(big_a), tape.input(big_b)));
  run("linear", linear(tape, tape.input(x), tape.input(w)));
  run("add", add(tape, tape.input(p), tape.input(q)));
  run("mul", mul(tape, tape.input(p), tape.input(q)));
  run("scale", scale(tape, tape.input(p), real(0.37)));
  run("sum", sum(tape, tape.input(big_a)));
  run("mean", mean(tape, tape.input(big_a)));
  run("silu", silu(tape, tape.input(p)));
  run("reshape", reshape(tape, tape.input(p), {9, 4}));
  run("transpose", transpose(tape, tape.input(a)));
  run("swap_axes12", swap_axes12(tape, tape.input(h)));
  run("embedding", embedding(tape, tape.input(table), ids));
  run("softmax", softmax(tape, tape.input(logits)));
  run("log_softmax", log_softmax(tape, tape.input(logits)));
  run("cross_entropy", cross_entropy(tape, tape.input(logits), targets));
  run("softmax_1e4", softmax(tape, tape.input(huge)));
  run("log_softmax_1e4", log_softmax(tape, tape.input(huge)));
  run("cross_entropy_1e4", cross_entropy(tape, tape.input(huge), targets));

  // A small network, forward and backward: embedding -> linear -> silu -> linear -> loss.
  Tensor emb = suite_tensor({11, 16}, rng, 1), w1 = suite_tensor({24, 16}, rng, 0.25),
         w2 = suite_tensor({11, 24}, rng, 0.2);  // (V, C), (F, C), (V, F)
  Tensor demb(emb.shape), dw1(w1.shape), dw2(w2.shape);
  std::vector<int> net_ids = {1, 5, 5, 9, 0, 2}, net_targets = {5, 5, 9, 0, 2, 1};
  tape.clear();
  Var e = embedding(tape, tape.param(emb, demb), net_ids);     // (N, C)
  Var hid = silu(tape, linear(tape, e, tape.param(w1, dw1)));  // (N, F)
  Var loss = cross_entropy(tape, linear(tape, hid, tape.param(w2, dw2)), net_targets);
  tape.backward(loss);
  run("net_loss", loss);
  r["net_demb"] = values(demb);
  r["net_dw1"] = values(dw1);
  r["net_dw2"] = values(dw2);
  return r;
}

// One line per case: name, count, values at full double precision.
inline void write_results(const Results& r, const std::string& path) {
  std::ofstream out(path + ".tmp");
  out.precision(17);
  for (const auto& [name, v] : r) {
    out << name << " " << v.size();
    for (double x : v) out << " " << x;
    out << "\n";
  }
  out.close();
  if (!out || std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    throw std::runtime_error("could not write " + path);
  }
}

inline Results read_results(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Results r;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    size_t n = 0;
    if (!(fields >> name >> n)) throw std::runtime_error(path + ": bad line '" + line.substr(0, 40) + "'");
    std::vector<double>& v = r[name];
    v.resize(n);
    for (double& x : v) {
      if (!(fields >> x))
        throw std::runtime_error(path + ": case " + name + " has fewer than " + std::to_string(n) + " values");
    }
  }
  return r;
}

// Norm-wise relative difference: max |got - want| / max |want|. (Element-wise relative error
// is meaningless for an output that happens to be near zero through cancellation.)
inline double relative_difference(const std::vector<double>& got, const std::vector<double>& want) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.size(); i++) {
    double d = std::fabs(got[i] - want[i]);
    if (!(d <= diff)) diff = d;  // written so that a NaN wins
    scale = std::max(scale, std::fabs(want[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

}  // namespace test
}  // namespace foundry
