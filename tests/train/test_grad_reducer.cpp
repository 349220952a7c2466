// The seam between the training step and data parallelism (train/grad_reducer.h): the fold of a
// single process, how micro-batches are dealt to ranks, the refusal of a rank count that does not
// divide grad_accum, and the cost model (train/dp_cost.h). The MPI reducer itself is tested
// under mpirun (tests/robustness/data_parallel.sh).
#include <catch2/catch.hpp>

#include <cstring>

#include "engine/parallel.h"
#include "tests/common/test_helpers.h"
#include "train/dp_cost.h"
#include "train/grad_reducer.h"
#include "train/token_file.h"
#include "train/trainer.h"

using namespace foundry;

namespace {

ModelConfig small_model() {
  ModelConfig m;
  m.dim = 16;
  m.n_layers = 2;
  m.n_heads = 2;
  m.n_kv_heads = 1;
  m.vocab_size = 32;
  m.hidden_dim = 40;
  m.max_seq_len = 8;
  return m;
}

std::vector<int> some_tokens(size_t n) {
  Rng rng(5);
  std::vector<int> ids(n);
  for (int& t : ids) t = static_cast<int>(rng.below(32));
  return ids;
}

std::vector<real> all_gradients(Model& model) {
  std::vector<real> out;
  for (const NamedTensor& p : model.parameters()) out.insert(out.end(), p.grad->data.begin(), p.grad->data.end());
  return out;
}

// A reducer that says it is rank `r` of `n` and otherwise does what one process does.
struct PretendRanks : GradientReducer {
  int r, n;
  PretendRanks(int r_, int n_) : r(r_), n(n_) {}
  int rank() const override { return r; }
  int ranks() const override { return n; }
  void backward(Model&, Tape& tape, Var loss, int, int) override { tape.backward(loss); }
  void reduce(Model&, int, int) override {}
};

}  // namespace

TEST_CASE("one process folds the micro-batches' gradients in order, each computed from zero", "[train][reducer]") {
  set_num_threads(1);
  Model model = make_model(small_model());
  Rng init(1);
  init_weights(model, init);
  const std::vector<int> tokens = some_tokens(2000);
  DataLoader loader = make_data_loader(tokens, 3, 8, BatchOrder::random, 2, "tokens");
  std::vector<Batch> batches(3);
  for (Batch& b : batches) next_batch(loader, b);
  Tape tape;
  // Each micro-batch's gradient alone, from zeroed gradients.
  std::vector<std::vector<real>> g;
  for (const Batch& b : batches) {
    model.zero_grad();
    tape.clear();
    tape.backward(model_loss(tape, model, b.inputs, b.targets, 3, 8));
    g.push_back(all_gradients(model));
  }
  std::vector<real> fold = g[0];
  for (size_t k = 1; k < g.size(); ++k) {
    for (size_t i = 0; i < fold.size(); ++i) fold[i] = fold[i] + g[k][i];
  }
  LocalReducer reducer;
  for (int round = 0; round < 3; ++round) {
    model.zero_grad();
    tape.clear();
    const Batch& b = batches[round];
    reducer.backward(model, tape, model_loss(tape, model, b.inputs, b.targets, 3, 8), round, 3);
    reducer.reduce(model, round, 3);
  }
  const std::vector<real> got = all_gradients(model);
  REQUIRE(got.size() == fold.size());
  CHECK(std::memcmp(got.data(), fold.data(), fold.size() * sizeof(real)) == 0);
  // One round: the gradient is left as backward wrote it.
  model.zero_grad();
  tape.clear();
  reducer.backward(model, tape, model_loss(tape, model, batches[0].inputs, batches[0].targets, 3, 8), 0, 1);
  reducer.reduce(model, 0, 1);
  const std::vector<real> single = all_gradients(model);
  CHECK(std::memcmp(single.data(), g[0].data(), g[0].size() * sizeof(real)) == 0);
}

TEST_CASE("rank k of N takes the k-th of every N batches and every rank's loader stays the same", "[train][reducer]") {
  const std::vector<int> tokens = some_tokens(2000);
  for (const char* order : {"random", "sequential"}) {
    DYNAMIC_SECTION(order) {
      const BatchOrder o = batch_order_from_string(order, "order");
      DataLoader reference = make_data_loader(tokens, 2, 8, o, 9, "tokens");
      DataLoader rank1 = reference;
      std::vector<Batch> three(3);
      for (Batch& b : three) next_batch(reference, b);
      Batch mine;
      next_batch_of_rank(rank1, mine, PretendRanks(1, 3));
      CHECK(mine.inputs == three[1].inputs);
      CHECK(mine.targets == three[1].targets);
      Batch after_a, after_b;
      next_batch(reference, after_a);
      next_batch(rank1, after_b);
      CHECK(after_a.inputs == after_b.inputs);  // the same position afterwards
    }
  }
}

TEST_CASE("a number of ranks that does not divide grad_accum is refused before training", "[train][reducer]") {
  const std::string dir = test::fresh_dir("test_train_tmp/reducer_refusal");
  save_tokens(dir + "/train.bin", some_tokens(3000), 32);
  save_tokens(dir + "/val.bin", some_tokens(600), 32);
  TrainConfig c;
  c.model = small_model();
  c.training.batch_size = 2;
  c.training.seq_len = 8;
  c.training.grad_accum = 3;
  c.training.max_steps = 2;
  c.training.warmup_steps = 1;
  PretendRanks two(0, 2);
  TrainOptions o;
  o.data_dir = dir;
  o.out_dir = dir + "/run";
  o.quiet = true;
  o.reducer = &two;
  CHECK_THROWS_WITH(train(c, o), Catch::Contains("grad_accum = 3 is not a multiple of the 2 ranks"));
  CHECK_FALSE(std::filesystem::exists(dir + "/run"));
}

TEST_CASE("the cost model: nothing to hide on one rank, a hidden all-reduce, a link-bound one", "[train][reducer]") {
  DpCost c;
  c.forward_s = 0.5;
  c.backward_s = 1.0;
  c.optimizer_s = 0.1;
  c.gradient_bytes = 1e9;
  c.buckets = 4;
  c.rounds = 1;
  CHECK(predict_step(c, 1, 1e9, 1e-5).step_s == Approx(1.6));
  // A fast link: 2 ranks move 2 x 1/2 x 1 GB = 1 GB in 0.01 s; only the last bucket's share shows.
  DpPrediction fast = predict_step(c, 2, 100e9, 0);
  CHECK(fast.comm_s == Approx(0.01));
  CHECK(fast.exposed_s == Approx(0.01 / 4));
  // A slow link: 1 GB at 0.5 GB/s = 2 s; after the first bucket's backward the link is the
  // bottleneck: done at 1/4 + 2 s, 1.25 s more than backward alone.
  DpPrediction slow = predict_step(c, 2, 0.5e9, 0);
  CHECK(slow.comm_s == Approx(2.0));
  CHECK(slow.exposed_s == Approx(1.25));
  CHECK(slow.step_s == Approx(1.6 + 1.25));
  // Latency: 2 (N - 1) message steps per bucket, 4 buckets, 8 ranks.
  CHECK(predict_step(c, 8, 1e30, 1e-3).comm_s == Approx(2 * 7 * 4 * 1e-3));
}
