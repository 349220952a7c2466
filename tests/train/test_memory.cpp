// The memory estimate that `foundry train` and `foundry model-info` print, against the tape of a
// real training step (gradient buffers pooled, as train() runs it).
#include <catch2/catch.hpp>

#include "engine/parallel.h"
#include "model/memory.h"
#include "train/trainer.h"

using namespace foundry;

TEST_CASE("memory: the training estimate describes the pooled tape of a real step", "[train][memory]") {
  set_num_threads(1);
  struct Case {
    int dim, layers, heads, kv_heads, hidden, vocab, B, T;
    bool tied;
  };
  const Case cases[] = {
      {16, 1, 4, 4, 24, 37, 1, 1, true},    {16, 2, 4, 2, 24, 37, 3, 7, true},
      {16, 3, 2, 2, 24, 37, 4, 5, false},   {64, 2, 8, 8, 32, 50, 2, 16, true},      // attention outweighs SwiGLU
      {64, 4, 4, 2, 172, 512, 4, 64, true}, {288, 2, 6, 6, 768, 4096, 2, 32, true},  // tiny's widths
  };
  for (const Case& cs : cases) {
    TrainConfig c;
    c.model.dim = cs.dim;
    c.model.n_layers = cs.layers;
    c.model.n_heads = cs.heads;
    c.model.n_kv_heads = cs.kv_heads;
    c.model.hidden_dim = cs.hidden;
    c.model.vocab_size = cs.vocab;
    c.model.max_seq_len = cs.T;
    c.model.tie_embeddings = cs.tied;
    c.training.batch_size = cs.B;
    c.training.seq_len = cs.T;
    c.training.warmup_steps = 1;
    Model model = make_model(c.model);
    Rng rng(3);
    init_weights(model, rng);
    std::vector<int> tokens(4000);
    for (int& id : tokens) id = static_cast<int>(rng.below(cs.vocab));
    DataLoader loader = make_data_loader(tokens, cs.B, cs.T, BatchOrder::random, 4, "tokens");
    AdamW opt = make_adamw(model.parameters());
    Tape tape;
    tape.set_reuse_grads(true);  // as train() does
    Batch batch;
    for (long step = 0; step < 2; ++step) training_step(model, opt, tape, loader, batch, c.training, step);

    const TrainingMemory est = estimate_training_memory(c.model, cs.B, cs.T);
    const size_t values = tape_numbers(tape) * sizeof(real);  // outputs and saved tensors
    const size_t pool = tape.grad_pool_numbers() * sizeof(real);
    INFO("dim " << cs.dim << " layers " << cs.layers << " B " << cs.B << " T " << cs.T << ": tape values " << values
                << " pool " << pool << ", estimate " << est.value_bytes << " + " << est.pooled_gradient_bytes);
    REQUIRE(est.value_bytes == values);  // exact
    // The pool: never under, and the whole tape within 10% of the real one.
    REQUIRE(est.pooled_gradient_bytes >= pool);
    REQUIRE(est.training_tape_bytes() <= 1.10 * (values + pool));
    // What `foundry train` prints is this figure, about the gradient half below the default tape's.
    CHECK(estimate_training_bytes(c) == static_cast<double>(est.training_bytes()));
    CHECK(est.training_bytes() < est.total_bytes());
  }
}
