// foundry eval --model DIR (--text FILE | --tokens FILE) [--window T] [--logits-out FILE.npy]
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/file_io.h"
#include "common/npy.h"
#include "engine/parallel.h"
#include "infer/evaluate.h"
#include "model/model_io.h"
#include "tokenizer/tokenizer.h"
#include "train/prepare.h"
#include "train/token_file.h"

namespace foundry::cli {

namespace {

// Above this, --logits-out needs an explicit --max-windows: the file holds N·T·V float32 values,
// which for a whole corpus is easily gigabytes nobody meant to write.
constexpr uint64_t kLogitsLimitBytes = uint64_t(1) << 30;  // 1 GiB

std::string gigabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(uint64_t(1) << 30));  // the limit is in GiB too
  return buf;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  cxxopts::Options options(
      "foundry eval",
      "Mean cross-entropy loss and perplexity of a model on a text or a token file.\n\n"
      "  foundry eval --model runs/tiny/best --text data/tinyshakespeare.txt\n"
      "  foundry eval --model runs/tiny/best --tokens runs/data/val.bin --logits-out logits.npy --max-windows 4\n\n"
      "The tokens are cut into non-overlapping windows of T positions: window k reads tokens [kT, kT+T)\n"
      "and is scored on the next tokens [kT+1, kT+T+1). T is --window, or else the context the model was\n"
      "trained at when its directory records it (training.json, written by `foundry train`), so the loss\n"
      "is comparable with training's; or else max_seq_len. Tokens after the last full window are not\n"
      "scored (a text shorter than one window is one shorter window). --text is encoded with the model's\n"
      "tokenizer, after a BOS when the tokenizer has one (llama2.c models). --tokens reads a token file of\n"
      "`foundry prepare` (train/token_file.h); when its prepare.json says another tokenizer made it, eval\n"
      "refuses.\n\n"
      "--logits-out writes every scored position's logits as a NumPy .npy file: float32, shape (N, T, V)\n"
      "for N windows of T positions and a vocabulary of V; numpy.load(path)[k, t] are the logits that\n"
      "predict token kT+t+1. That is N·T·V·4 bytes: above 1 GiB eval refuses unless --max-windows is given.");
  options.add_options()("model", "model directory", cxxopts::value<std::string>())("text", "a text file to evaluate on",
                                                                                   cxxopts::value<std::string>())(
      "tokens", "a token file (from foundry prepare) to evaluate on", cxxopts::value<std::string>())(
      "logits-out", "write the logits to this .npy file (float32, shape (N, T, V))", cxxopts::value<std::string>())(
      "window", "positions per window (default: the training context, else max_seq_len)", cxxopts::value<int>())(
      "max-windows", "evaluate at most this many windows (default: all)", cxxopts::value<int>())(
      "threads", "threads to use, at least 1 (default: OMP_NUM_THREADS or all cores)", cxxopts::value<int>())(
      "h,help", "show this help");
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
  const int max_windows = args.count("max-windows") ? args["max-windows"].as<int>() : 0;
  if (max_windows < 0) throw UsageError("--max-windows " + std::to_string(max_windows) + ": expected at least 0");
  int window = args.count("window") ? args["window"].as<int>() : 0;
  if (args.count("window") && window < 1) {
    throw UsageError("--window " + std::to_string(window) + ": expected at least 1");
  }

  std::string dir = args["model"].as<std::string>();
  check_model_dir(dir);
  Model model = load_model(dir);
  const std::string model_where = (std::filesystem::path(dir) / "config.json").string();

  std::vector<int> tokens;
  std::string source;
  if (args.count("text")) {
    source = args["text"].as<std::string>();
    const std::string text = read_file(source, "text file");
    std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
    check_model_tokenizer_vocab(model.config.vocab_size, model_where, tokenizer->vocab_size(), tokenizer_file(dir));
    if (tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
    std::vector<int> ids = tokenizer->encode(text);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  } else {
    source = args["tokens"].as<std::string>();
    // The ids must be the model's: prepare.json beside the file says which tokenizer made them.
    std::string data_dir = std::filesystem::path(source).parent_path().string();
    check_token_data(data_dir.empty() ? "." : data_dir, source, model.config.vocab_size, model_where, dir);
    tokens = load_tokens(source);
  }

  // The window: asked for, or the training context, or the whole context the model supports.
  std::string window_why = "--window";
  if (window == 0) {
    TrainingContext ctx = training_context(dir, model.config);
    if (ctx.seq_len > 0 && ctx.seq_len <= model.config.max_seq_len) {
      window = ctx.seq_len;
      window_why = "the context the model was trained at, from " + ctx.source;
    } else {
      window = model.config.max_seq_len;
      window_why = "max_seq_len; the model directory does not record its training context";
    }
  }
  std::printf("window: %d positions (%s)\n", window, window_why.c_str());

  EvalResult r;
  if (args.count("logits-out")) {
    std::string out = args["logits-out"].as<std::string>();
    // (two named ints, not a structured binding: C++17 does not let a lambda capture one)
    const std::pair<int, int> windows = eval_windows(model.config, tokens.size(), window, max_windows);
    const int N = windows.first, T = windows.second;
    const int V = model.config.vocab_size;
    const uint64_t bytes = logits_file_bytes(N, T, V);
    if (bytes > kLogitsLimitBytes && max_windows == 0) {
      const uint64_t per_window = (uint64_t)T * V * sizeof(float);
      throw UsageError("--logits-out would write " + gigabytes(bytes) + " (" + std::to_string(N) + " windows x " +
                       std::to_string(T) + " positions x " + std::to_string(V) +
                       " logits x 4 bytes); give --max-windows K to write fewer (K = " +
                       std::to_string(std::max<uint64_t>(1, kLogitsLimitBytes / per_window)) +
                       " stays under 1 GiB) or --max-windows " + std::to_string(N) + " to write them all");
    }
    // Streamed window by window into out.tmp, renamed over out only when every byte is written.
    write_file_atomic(out, [&](std::ostream& os) {
      os << npy_header_float32({(size_t)N, (size_t)T, (size_t)V});
      r = evaluate(model, tokens, window, max_windows,
                   [&](const real* logits, int t, int v) { write_float32(os, logits, (size_t)t * v); });
    });
    std::fprintf(stderr, "wrote logits (%d, %d, %d) float32 to %s\n", N, T, V, out.c_str());
  } else {
    r = evaluate(model, tokens, window, max_windows);
  }
  std::printf("%s: %zu tokens, %d window%s of %d positions, %zu targets scored\n", source.c_str(), tokens.size(),
              r.windows, r.windows == 1 ? "" : "s", r.window_len, r.targets);
  std::printf("mean loss %.6f  perplexity %.4f\n", r.mean_loss, r.perplexity);
  return 0;
}

}  // namespace foundry::cli
