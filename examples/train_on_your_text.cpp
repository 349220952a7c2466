// train_on_your_text: from a text file of your own to a model directory, in four library calls.
//
//   example_train_on_your_text [text_file] [out_dir] [steps]
//
// defaults: data/tinyshakespeare.txt, ./my-model-run, 200 steps. What it does:
//   1. train a byte-level BPE tokenizer on the text           (tokenizer/bpe_train.h)
//   2. tokenize the text into train.bin / val.bin              (train/prepare.h)
//   3. train a small model on them, with checkpoints           (train/trainer.h)
//   4. load the saved model and its tokenizer back, check that it scores what training measured,
//      and continue a prompt with it                           (model/model_io.h, infer/generate.h)
// These are the same steps as `foundry tokenizer train`, `foundry prepare`, `foundry train` and
// `foundry generate`, which are thin wrappers around the same functions. Exits with status 1
// if the saved model does not load or does not reproduce its validation loss.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "infer/generate.h"
#include "model/model_io.h"
#include "tokenizer/bpe_train.h"
#include "train/prepare.h"
#include "train/trainer.h"

using namespace foundry;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const std::string text_path = argc > 1 ? argv[1] : std::string(FOUNDRY_SOURCE_DIR) + "/data/tinyshakespeare.txt";
  const std::string out = argc > 2 ? argv[2] : "my-model-run";
  const long steps = argc > 3 ? std::atol(argv[3]) : 200;
  try {
    // 1. The tokenizer. 512 tokens (256 bytes + 255 merges + one end-of-text token) is plenty for
    //    a few MB of text; a larger corpus earns a larger vocabulary (TinyStories uses 4096).
    BpeTrainOptions tok_options;
    tok_options.vocab_size = 512;
    tok_options.special_tokens = {"<|endoftext|>"};
    BpeTokenizer tokenizer = train_bpe_files({text_path}, tok_options);
    std::printf("tokenizer: %d tokens learned from %s\n", tokenizer.vocab_size(), text_path.c_str());

    // 2. Token files. Without "<|endoftext|>" in the text, the last 10% of its tokens become the
    //    validation split: text the model never trains on, so its loss measures generalization.
    const std::string data_dir = (fs::path(out) / "data").string();
    PreparedData data = prepare_data({text_path}, tokenizer, "<|endoftext|>", 0.1, data_dir);
    std::printf("data: %zu training tokens, %zu validation tokens in %s\n", data.train.size(), data.val.size(),
                data_dir.c_str());

    // 3. Training. Start from the defaults of TrainConfig, as configs/*.json would, and shrink the
    //    model so this finishes in seconds. vocab_size must match the tokenizer's.
    TrainConfig config;
    config.model.dim = 64;
    config.model.n_layers = 2;
    config.model.n_heads = 4;
    config.model.n_kv_heads = 4;
    config.model.hidden_dim = 176;
    config.model.max_seq_len = 64;
    config.model.vocab_size = tokenizer.vocab_size();
    config.training.batch_size = 8;
    config.training.seq_len = 64;
    config.training.max_steps = steps;
    config.training.warmup_steps = steps / 10;
    config.training.lr = 3e-3;
    config.training.min_lr = 3e-4;
    config.training.eval_interval = std::max(1L, steps / 4);
    config.training.eval_batches = 4;
    config.training.checkpoint_interval = steps;  // one checkpoint, at the end
    config.training.log_interval = std::max(1L, steps / 4);
    TrainOptions options;
    options.data_dir = data_dir;
    options.out_dir = (fs::path(out) / "run").string();
    // train() refuses to start a new run in a directory that holds one; this example's own run
    // directory is replaced on every run instead.
    fs::remove_all(options.out_dir);
    TrainResult result = train(config, options);  // prints progress; writes <run>/best/ and ckpt-*/

    // 4. The model directory best/ holds config.json, model.safetensors and tokenizer.json: all a
    //    user needs. Load it as a user would and score the validation split with the same
    //    function training used: same weights, same batches, so the same loss.
    const std::string model_dir = (fs::path(options.out_dir) / "best").string();
    Model model = load_model(model_dir);
    std::unique_ptr<Tokenizer> loaded_tokenizer = load_tokenizer(model_dir);
    Tape tape;
    Batch batch;
    const int B = config.training.batch_size, T = config.training.seq_len;
    const int batches = std::max(1, std::min<int>(config.training.eval_batches, data.val.size() / (B * T)));
    const double val = validation_loss(model, tape, data.val, B, T, batches, batch);
    std::printf("saved model %s: validation loss %.4f (training measured %.4f; uniform guessing ln %d = %.4f)\n",
                model_dir.c_str(), val, result.best_val_loss, tokenizer.vocab_size(), std::log(tokenizer.vocab_size()));

    DecodeState state = make_decode_state(model.config);
    Sampler sampler(SamplingSettings{0.8, 40, 0.95}, /*seed=*/1);
    const std::vector<int> prompt = prompt_ids(*loaded_tokenizer, "ROMEO:", model.config.max_seq_len);
    GenerationResult gen = generate(model, state, sampler, prompt, 40, stop_ids(*loaded_tokenizer));
    std::printf("sample: ROMEO:%s\n", loaded_tokenizer->decode(gen.tokens).c_str());

    if (loaded_tokenizer->vocab_size() != tokenizer.vocab_size() || std::fabs(val - result.best_val_loss) > 1e-6) {
      std::fprintf(stderr, "FAILED: the saved model or tokenizer does not reproduce the trained one\n");
      return 1;
    }
    if (!(result.best_val_loss < std::log(tokenizer.vocab_size()))) {
      std::fprintf(stderr, "FAILED: the model did not beat uniform guessing\n");
      return 1;
    }
    std::printf("ok: the saved model loads, reproduces its validation loss and generates\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_on_your_text: %s\n", e.what());
    return 1;
  }
  return 0;
}
