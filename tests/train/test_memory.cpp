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

TEST_CASE("memory: the estimate with the loss in blocks and with recomputation describes the real tapes",
          "[train][memory][recompute]") {
  set_num_threads(1);
  struct Case {
    int dim, layers, heads, kv_heads, hidden, vocab, B, T;
    bool tied, recompute;
  };
  // B·T·V above 2^20 logits: the loss runs in blocks (4096 rows of 4096 / 256 per block).
  const Case cases[] = {
      {32, 2, 4, 2, 40, 4096, 2, 256, true, false},  {32, 2, 4, 2, 40, 4096, 2, 256, true, true},
      {32, 3, 4, 4, 88, 3000, 3, 200, false, true},  {16, 2, 4, 2, 24, 37, 3, 7, true, true},  // one block
      {48, 2, 4, 1, 64, 5000, 1, 256, false, false},
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
    c.training.recompute = cs.recompute;
    Model model = make_model(c.model);
    Rng rng(3);
    init_weights(model, rng);
    std::vector<int> tokens(4000);
    for (int& id : tokens) id = static_cast<int>(rng.below(cs.vocab));
    DataLoader loader = make_data_loader(tokens, cs.B, cs.T, BatchOrder::random, 4, "tokens");
    AdamW opt = make_adamw(model.parameters());
    Tape tape;
    tape.set_reuse_grads(true);
    Batch batch;
    for (long step = 0; step < 2; ++step) training_step(model, opt, tape, loader, batch, c.training, step);

    const TrainingMemory est = estimate_training_memory(c.model, cs.B, cs.T, cs.recompute);
    const size_t values = tape_numbers(tape) * sizeof(real);  // with the scratch tape's block
    size_t pool = tape.grad_pool_numbers();
    if (const Tape* scratch = tape.scratch_if_any()) pool += scratch->grad_pool_numbers();
    pool *= sizeof(real);
    INFO("vocab " << cs.vocab << " B " << cs.B << " T " << cs.T << " recompute " << cs.recompute << ": tape values "
                  << values << " pool " << pool << ", estimate " << est.value_bytes << " + "
                  << est.pooled_gradient_bytes << ", loss block rows " << est.loss_block_rows);
    REQUIRE(est.value_bytes == values);  // exact
    REQUIRE(est.pooled_gradient_bytes >= pool);
    REQUIRE(est.training_tape_bytes() <= 1.10 * (values + pool));
    CHECK(estimate_training_bytes(c) == static_cast<double>(est.training_bytes()));
    REQUIRE((est.loss_block_rows < cs.B * cs.T) == (cs.vocab >= 3000));
  }
}

TEST_CASE("memory: recomputation and the blocked loss shrink the estimate of the small reference config",
          "[train][memory][recompute]") {
  ModelConfig c;  // configs/small.json's sizes with bench_vs_pytorch's vocabulary, batch 16, context 256
  c.dim = 256;
  c.n_layers = 4;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.hidden_dim = 704;
  c.vocab_size = 4096;
  c.max_seq_len = 256;
  const TrainingMemory plain = estimate_training_memory(c, 16, 256, false);
  const TrainingMemory saving = estimate_training_memory(c, 16, 256, true);
  REQUIRE(plain.loss_block_rows == 256);
  // No (N, V) buffer is left in either; recomputation keeps one block's activations of four.
  for (const TrainingMemory* m : {&plain, &saving}) {
    for (const ActivationItem& item : m->activations) REQUIRE(item.what.find("(N, V)") == std::string::npos);
  }
  INFO("tape bytes without recomputation " << plain.training_tape_bytes() << ", with " << saving.training_tape_bytes());
  REQUIRE(saving.training_tape_bytes() < plain.training_tape_bytes() / 2);
}
