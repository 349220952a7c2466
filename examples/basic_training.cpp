// basic_training: the whole training loop in one page, written against the libraries directly.
//
//   example_basic_training [steps] [text_file]
//
// A tiny LLaMA-style model learns to predict the next byte of a text (default: the first 64 KiB
// of data/tinyshakespeare.txt). Bytes are the simplest tokenizer there is: every id is a byte,
// V = 256, nothing to train. The program prints the loss as it goes and exits with status 1 if
// the loss did not fall, so the test suite can run it.
//
// `foundry train` does all of this plus evaluation, schedules, logging and checkpoints
// (train/trainer.cpp); here is what is left once all of that is taken away.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tape.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/data_loader.h"
#include "train/grad_clip.h"

using namespace foundry;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 100;
  const std::string path = argc > 2 ? argv[2] : std::string(FOUNDRY_SOURCE_DIR) + "/data/tinyshakespeare.txt";

  // 1. Data: the text's bytes are the token ids.
  std::ifstream in(path, std::ios::binary);
  std::string text(64 * 1024, '\0');
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() < 1024 || steps < 10) {
    std::fprintf(stderr, "basic_training: need steps >= 10 and a text of at least 1 KiB (%s has %zu bytes)\n",
                 path.c_str(), text.size());
    return 1;
  }
  std::vector<int> tokens(text.begin(), text.end());  // (n)
  for (int& t : tokens) t &= 0xff;                    // subtle: char may be signed; ids are 0..255

  // 2. A tiny model: 2 layers of width 64. make_model allocates; init_weights draws from a seeded
  //    generator, so every run of this program prints the same numbers (at a fixed thread count).
  ModelConfig config;
  config.dim = 64;
  config.n_layers = 2;
  config.n_heads = 4;
  config.n_kv_heads = 2;  // grouped-query attention: two query heads share each key/value head
  config.vocab_size = 256;
  config.hidden_dim = 176;
  config.max_seq_len = 32;
  Model model = make_model(config);
  Rng init_rng(1337);
  init_weights(model, init_rng);
  std::printf("model: %zu parameters; data: %zu bytes of %s\n", model.num_parameters(), tokens.size(), path.c_str());

  // 3. Batches of B random windows of T + 1 tokens (inputs and the same window shifted by one).
  const int B = 8, T = 32;
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::random, /*seed=*/1, path);
  Batch batch;

  // 4. The optimizer keeps two moments per parameter; the tape is made once and reused, so its
  //    buffers are allocated on the first step only (the first touch of fresh memory is a page fault).
  AdamW opt = make_adamw(model.parameters());
  const AdamWSettings adamw{/*beta1=*/0.9, /*beta2=*/0.95, /*eps=*/1e-8, /*weight_decay=*/0.1};
  Tape tape;
  const double lr = 3e-3;

  double first_loss = 0, recent = 0;  // recent: mean of the last 10 losses (one loss is noisy)
  for (int step = 1; step <= steps; ++step) {
    next_batch(loader, batch);
    model.zero_grad();  // gradients accumulate (+=), so each step starts from zero
    tape.clear();       // forget last step's nodes, keep their buffers
    Var loss = model_loss(tape, model, batch.inputs, batch.targets, B, T);
    tape.backward(loss);  // fills model.grads
    const double norm = clip_grad_norm(model.parameters(), /*max_norm=*/1.0);
    adamw_step(opt, model.parameters(), lr, adamw);

    const double value = tape.value(loss)[0];
    if (step == 1) first_loss = value;
    if (step > steps - 10) recent += value / 10;
    if (step == 1 || step % 10 == 0) std::printf("step %4d  loss %.4f  grad norm %.3f\n", step, value, norm);
  }

  // A model that guesses uniformly scores ln 256 = 5.545; the first loss should be close to it.
  // Learning which bytes are common alone takes the loss to about 3.3 on this text.
  std::printf("first loss %.4f (ln 256 = %.4f), mean of the last 10: %.4f\n", first_loss, std::log(256.0), recent);
  if (!(recent < first_loss - 1.0)) {
    std::fprintf(stderr, "FAILED: the loss did not fall by at least 1 nat\n");
    return 1;
  }
  std::printf("ok: the loss fell\n");
  return 0;
}
