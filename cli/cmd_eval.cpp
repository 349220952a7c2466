// foundry eval --model DIR (--text FILE | --tokens FILE) [--logits-out FILE.npy]
#include <cxxopts.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "cli/commands.h"
#include "engine/parallel.h"
#include "infer/evaluate.h"
#include "model/atomic_file.h"
#include "model/model_io.h"
#include "train/token_file.h"

namespace foundry::cli {

int cmd_eval(int argc, char** argv) {
  cxxopts::Options options(
      "foundry eval",
      "Mean cross-entropy loss and perplexity of a model on a text or a token file.\n\n"
      "  foundry eval --model DIR --text data/tinystories.txt\n"
      "  foundry eval --model DIR --tokens run/val.bin --logits-out logits.npy --max-windows 4\n\n"
      "The tokens are cut into non-overlapping windows of the context length (max_seq_len, or --window):\n"
      "window k reads tokens [kT, kT+T) and is scored on the next tokens [kT+1, kT+T+1). Tokens after the\n"
      "last full window are not scored (a text shorter than one window is one shorter window). --text is\n"
      "encoded with the model's tokenizer, after a BOS when the tokenizer has one (llama2.c models).\n"
      "--tokens reads a token file of `foundry prepare` (train/token_file.h: \"FNDRYTOK\" header).\n\n"
      "--logits-out writes every scored position's logits as a NumPy .npy file: float32, shape (N, T, V)\n"
      "for N windows of T positions and a vocabulary of V; numpy.load(path)[k, t] are the logits that\n"
      "predict token kT+t+1. That is N·T·V·4 bytes: limit it with --max-windows.");
  options.add_options()("model", "model directory", cxxopts::value<std::string>())(
      "text", "a text file to evaluate on", cxxopts::value<std::string>())(
      "tokens", "a token file (from foundry prepare) to evaluate on", cxxopts::value<std::string>())(
      "logits-out", "write the logits to this .npy file (float32, shape (N, T, V))", cxxopts::value<std::string>())(
      "window", "positions per window (default: the model's max_seq_len)", cxxopts::value<int>()->default_value("0"))(
      "max-windows", "evaluate at most this many windows (0: all)", cxxopts::value<int>()->default_value("0"))(
      "threads", "threads to use (default: all cores)", cxxopts::value<int>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("model") || args.count("text") + args.count("tokens") != 1) {
    std::fprintf(stderr, "foundry eval: give --model DIR and exactly one of --text FILE, --tokens FILE (see --help)\n");
    return 2;
  }
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  std::string dir = args["model"].as<std::string>();
  Model model = load_model(dir);

  std::vector<int> tokens;
  std::string source;
  if (args.count("text")) {
    source = args["text"].as<std::string>();
    std::ifstream f(source, std::ios::binary);
    if (!f) throw std::runtime_error(source + ": cannot open the text file");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
    if (tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
    std::vector<int> ids = tokenizer->encode(text);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  } else {
    source = args["tokens"].as<std::string>();
    tokens = load_tokens(source);
  }

  int window = args["window"].as<int>(), max_windows = args["max-windows"].as<int>();
  EvalResult r;
  if (args.count("logits-out")) {
    std::string out = args["logits-out"].as<std::string>();
    // Plain variables rather than a structured binding: C++17 does not let a lambda capture one.
    const std::pair<int, int> shape = eval_windows(model.config, tokens.size(), window, max_windows);
    const int N = shape.first, T = shape.second;
    // Streamed window by window into out.tmp, renamed over out only when every byte is written.
    write_file_atomic(out, [&](std::ostream& os) {
      os << npy_header_float32({(size_t)N, (size_t)T, (size_t)model.config.vocab_size});
      r = evaluate(model, tokens, window, max_windows,
                   [&](const real* logits, int t, int v) { write_float32(os, logits, (size_t)t * v); });
    });
    std::fprintf(stderr, "wrote logits (%d, %d, %d) float32 to %s\n", N, T, model.config.vocab_size, out.c_str());
  } else {
    r = evaluate(model, tokens, window, max_windows);
  }
  std::printf("%s: %zu tokens, %d windows of %d positions, %zu targets scored\n", source.c_str(), tokens.size(),
              r.windows, r.window_len, r.targets);
  std::printf("mean loss %.6f  perplexity %.4f\n", r.mean_loss, r.perplexity);
  return 0;
}

}  // namespace foundry::cli
