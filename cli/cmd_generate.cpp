// foundry generate --model DIR --prompt TEXT [options]
//
// Prints the prompt and then each new token's text as soon as it is sampled (stdout is flushed
// per token); the speed goes to stderr so the text can be piped cleanly.
#include <cmath>
#include <cstdio>
#include <cxxopts.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/parallel.h"
#include "infer/generate.h"
#include "model/model_io.h"
#include "tokenizer/tokenizer.h"
#include "train/prepare.h"

namespace foundry::cli {

namespace {
std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }
}  // namespace

// A number as a person would type it back ("1.5", not "1.500000").
static std::string shortest(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

int cmd_generate(int argc, char** argv) {
  cxxopts::Options options(
      "foundry generate",
      "Continue a prompt with a model, streaming the text to stdout and the speed to stderr.\n\n"
      "  foundry generate --model runs/tiny/model --prompt \"Once upon a time\"\n"
      "  foundry generate --model DIR --prompt - < prompt.txt --temperature 0   (greedy)\n\n"
      "Sampling: temperature 0 is greedy (argmax). Otherwise the logits are divided by the temperature,\n"
      "then only the --top-k most likely tokens are kept (0: all), then of those the smallest set whose\n"
      "probability reaches --top-p (1: all); one token is drawn from what is left with the seeded\n"
      "generator (same seed, same text). Generation stops at the end-of-text token, at BOS (as llama2.c\n"
      "does), after --max-new-tokens, or when the context (max_seq_len) is full. Models with a BOS\n"
      "token (llama2.c) get it in front of the prompt. A prompt longer than the context is an error.");
  options.add_options()("model", "model directory (config.json, model.safetensors, tokenizer)",
                        cxxopts::value<std::string>())(
      "prompt", "prompt text; '-' reads it from standard input (default: none)", cxxopts::value<std::string>())(
      "prompt-file", "read the prompt from this file", cxxopts::value<std::string>())(
      "max-new-tokens", "most tokens to generate", cxxopts::value<int>()->default_value("256"))(
      "temperature", "0 = greedy; below 1 sharper, above 1 flatter", cxxopts::value<double>()->default_value("1.0"))(
      "top-k", "keep only the k most likely tokens (0 = off)", cxxopts::value<int>()->default_value("0"))(
      "top-p", "keep the smallest set reaching this probability (1 = off)",
      cxxopts::value<double>()->default_value("0.9"))("seed", "random seed of the sampler",
                                                      cxxopts::value<uint64_t>()->default_value("1337"))(
      "threads", "threads to use, at least 1 (default: OMP_NUM_THREADS or all cores)", cxxopts::value<int>())(
      "print-ids", "also print the prompt's and the new tokens' ids to stderr (for comparing with other engines)")(
      "h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("model")) {
    std::fprintf(stderr, "foundry generate: --model DIR is required (see --help)\n");
    return 2;
  }
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  int max_new = args["max-new-tokens"].as<int>();
  if (max_new < 0) throw UsageError("--max-new-tokens = " + std::to_string(max_new) + ", expected >= 0");
  // The sampler checks these too; checking them here makes a bad value a usage error (exit 2)
  // reported before the model is loaded.
  const double temperature = args["temperature"].as<double>(), top_p = args["top-p"].as<double>();
  if (!std::isfinite(temperature) || temperature < 0)
    throw UsageError("--temperature " + shortest(temperature) + ": expected a number >= 0 (0 is greedy)");
  if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p " + shortest(top_p) + ": expected 0 < p <= 1 (1 is off)");
  if (args["top-k"].as<int>() < 0)
    throw UsageError("--top-k " + std::to_string(args["top-k"].as<int>()) + ": expected >= 0 (0 is off)");

  std::string prompt = args.count("prompt") ? args["prompt"].as<std::string>() : std::string();
  if (args.count("prompt-file")) {
    std::string path = args["prompt-file"].as<std::string>();
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open the prompt file");
    prompt = read_all(f);
  } else if (prompt == "-") {
    prompt = read_all(std::cin);
  }

  std::string dir = args["model"].as<std::string>();
  check_model_dir(dir);
  Model model = load_model(dir);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
  // Before any text is printed: a model larger than its tokenizer can sample an id that has no
  // text, and would die mid-output.
  check_model_dir_vocab(dir, model.config.vocab_size, tokenizer->vocab_size());
  SamplingSettings settings{args["temperature"].as<double>(), args["top-k"].as<int>(), args["top-p"].as<double>()};
  Sampler sampler(settings, args["seed"].as<uint64_t>());
  std::vector<int> ids = prompt_ids(*tokenizer, prompt, model.config.max_seq_len);
  DecodeState state = make_decode_state(model.config);

  // The prompt is shown as the tokenizer reads it back; BOS (or a starting end-of-text token)
  // stays invisible context.
  std::vector<int> context;
  size_t first_text = 0;
  if (!ids.empty() && (ids[0] == tokenizer->bos_id() || ids[0] == tokenizer->eos_id())) {
    context.push_back(ids[0]);
    first_text = 1;
  }
  TextStream stream(*tokenizer, context);
  for (size_t i = first_text; i < ids.size(); i++) {
    std::string text = stream.push(ids[i]);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  std::fflush(stdout);

  GenerationResult r = generate(model, state, sampler, ids, max_new, stop_ids(*tokenizer), [&](int id) {
    std::string text = stream.push(id);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);
  if (args.count("print-ids")) {
    std::string line = "[ids] prompt:";
    for (int id : ids) line += " " + std::to_string(id);
    line += " | new:";
    for (int id : r.tokens) line += " " + std::to_string(id);
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  double tps = r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0;
  std::fprintf(stderr, "[%zu prompt positions in %.3f s; %zu new tokens in %.3f s: %.1f tokens/s; %s; stopped: %s]\n",
               ids.size(), r.prefill_seconds, r.tokens.size(), r.decode_seconds, tps,
               threads_phrase(num_threads()).c_str(), r.stop_reason.c_str());
  return 0;
}

}  // namespace foundry::cli
