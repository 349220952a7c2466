// Parity with PyTorch: the whole model against an independent PyTorch implementation.
//
// tests/parity/make_fixtures.py writes, for each case under tests/fixtures/parity/<case>/, a
// model directory (config.json + model.safetensors), the token ids and targets with the loss
// (expected.json), and the logits and the gradient of every parameter (expected.safetensors).
// PyTorch computed them in float64 from the float32 weights; we run the float build and ask for
// logits and loss within 1e-5 and every gradient within 1e-4, relative to the tensor's scale:
//
//   rel(ours, theirs) = max_i |ours_i − theirs_i| / max(max_i |theirs_i|, 1e-12)
//
// Relative to the largest element, not element by element: a gradient entry that is nearly
// zero is legitimately dominated by float32 rounding, and per-element ratios would flag it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/tape.h"
#include "model/model.h"
#include "model/model_io.h"
#include "model/safetensors.h"

using namespace foundry;

namespace {

double relative_error(const Tensor& ours, const Tensor& theirs) {
  REQUIRE(ours.shape == theirs.shape);
  double max_diff = 0, scale = 0;
  for (size_t i = 0; i < ours.size(); i++) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(ours[i]) - theirs[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(theirs[i])));
  }
  if (std::isnan(max_diff)) return INFINITY;
  return max_diff / std::max(scale, 1e-12);
}

struct Fixture {
  std::string dir;
  Model model;
  SafetensorsFile expected;  // "logits" and "grad.<name>"
  int B = 0, T = 0;
  std::vector<int> ids, targets;
  double loss = 0;
};

Fixture load_fixture(const std::string& name) {
  Fixture f;
  f.dir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/parity/" + name;
  f.model = load_model(f.dir);
  f.expected = load_safetensors(f.dir + "/expected.safetensors");
  std::ifstream in(f.dir + "/expected.json");
  REQUIRE(in);
  nlohmann::json j = nlohmann::json::parse(in);
  f.B = j.at("B").get<int>();
  f.T = j.at("T").get<int>();
  f.ids = j.at("ids").get<std::vector<int>>();
  f.targets = j.at("targets").get<std::vector<int>>();
  f.loss = j.at("loss").get<double>();
  REQUIRE(f.ids.size() == static_cast<size_t>(f.B * f.T));
  REQUIRE(f.targets.size() == f.ids.size());
  return f;
}

Tensor logits_of(Model& model, const Fixture& f) {
  Tape tape;
  Var logits = model_logits(tape, model, f.ids, f.B, f.T);
  return tape.value(logits);
}

void check_parity(const std::string& name) {
  Fixture f = load_fixture(name);
  const ModelConfig& c = f.model.config;

  // The fixture itself must exercise the model: logits far from constant, a loss far from
  // ln V (what near-zero weights would give), and gradients for every parameter.
  const Tensor& expected_logits = f.expected.tensors.at("logits");
  REQUIRE(expected_logits.shape == Shape{f.B, f.T, c.vocab_size});
  REQUIRE(std::fabs(f.loss - std::log(static_cast<double>(c.vocab_size))) > 0.1);

  SECTION("logits") {
    Tensor logits = logits_of(f.model, f);
    double rel = relative_error(logits, expected_logits);
    INFO(name << ": logits relative error " << rel);
    REQUIRE(rel <= 1e-5);
  }

  SECTION("loss and every gradient") {
    Tape tape;
    f.model.zero_grad();
    Var loss = model_loss(tape, f.model, f.ids, f.targets, f.B, f.T);
    REQUIRE(tape.value(loss).shape == Shape{});
    const double ours = tape.value(loss)[0];
    INFO(name << ": loss " << ours << " vs PyTorch " << f.loss);
    REQUIRE(std::fabs(ours - f.loss) / std::fabs(f.loss) <= 1e-5);

    tape.backward(loss);
    size_t compared = 0;
    double worst = 0;
    std::string worst_name;
    for (NamedTensor& p : f.model.parameters()) {
      auto it = f.expected.tensors.find("grad." + p.name);
      REQUIRE(it != f.expected.tensors.end());
      double rel = relative_error(*p.grad, it->second);
      INFO(name << ": gradient of " << p.name << " relative error " << rel);
      CHECK(rel <= 1e-4);
      if (rel > worst) worst = rel, worst_name = p.name;
      compared++;
    }
    // One expected gradient per parameter, no more (the fixture also holds the logits).
    REQUIRE(compared + 1 == f.expected.tensors.size());
    INFO(name << ": worst gradient " << worst_name << " at " << worst);
    REQUIRE(worst <= 1e-4);
  }

  SECTION("the comparison notices a change of one part in a thousand") {
    // Without this, a tolerance too loose (or a comparison of the wrong tensors) would pass anything.
    Tensor& gain = *f.model.weights.layers.back().ffn_norm;
    for (real& g : gain.data) g *= static_cast<real>(1.001);
    Tensor logits = logits_of(f.model, f);
    REQUIRE(relative_error(logits, expected_logits) > 1e-5);
  }
}

}  // namespace

TEST_CASE("parity with PyTorch: GQA (NKV < NH), untied output, T = max_seq_len", "[parity]") {
  check_parity("untied_gqa");
}

TEST_CASE("parity with PyTorch: tied embeddings, one kv head, T < max_seq_len, other eps and theta", "[parity]") {
  check_parity("tied_mqa");
}
