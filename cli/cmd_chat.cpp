// foundry chat --model DIR [--message TEXT]       a conversation with a fine-tuned model
// foundry eval-instruct --model DIR --corpus FILE  how often its answers follow the instruction
#include <unistd.h>

#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/file_io.h"
#include "engine/parallel.h"
#include "infer/chat.h"
#include "infer/evaluate.h"
#include "infer/generate.h"
#include "model/model_io.h"
#include "train/instruct.h"
#include "train/prepare.h"

namespace foundry::cli {

namespace {

struct LoadedChat {
  Model model;
  BpeTokenizer tokenizer;
};

// A chat model directory: the model and a tokenizer.json holding the chat tokens.
LoadedChat load_chat_model(const std::string& dir) {
  check_model_dir(dir);
  const std::string tok = (std::filesystem::path(dir) / "tokenizer.json").string();
  if (!std::filesystem::exists(tok))
    throw std::runtime_error(dir +
                             ": no tokenizer.json (a chat model directory holds one with <|im_start|>, <|im_end|>)");
  LoadedChat c{load_model(dir), BpeTokenizer::load_json(tok)};
  if (!has_chat_tokens(c.tokenizer))
    throw std::runtime_error(dir +
                             ": not a chat model (its tokenizer has no <|im_start|>/<|im_end|>); fine-tune it "
                             "first: foundry sft --base " +
                             dir + " --data FILE.jsonl --out DIR");
  check_model_tokenizer_vocab(c.model.config.vocab_size, dir + "/config.json", c.tokenizer.vocab_size(), tok);
  return c;
}

SamplingSettings sampling(double temperature, double top_p) {
  SamplingSettings s{temperature, 0, top_p};
  validate(s);
  return s;
}

}  // namespace

int cmd_chat(int argc, char** argv) {
  cxxopts::Options options(
      "foundry chat",
      "Talk with a fine-tuned model (foundry sft) through the ChatML template.\n\n"
      "  foundry chat --model runs/sft/model\n"
      "  foundry chat --model runs/sft/model --message \"Write a story about a girl named Mia.\"\n\n"
      "Interactive: type a message and Enter; the answer streams as it is generated. The conversation\n"
      "so far is the context of every answer; when it no longer fits the model's context window the\n"
      "oldest messages are dropped, with a note saying so. Commands: /reset (forget the conversation),\n"
      "/temperature T (0 = greedy), /help. Ctrl-D (end of input) quits.\n"
      "--message answers one message, prints the answer and exits (for scripts and tests).");
  options.add_options()("model", "a chat model directory", cxxopts::value<std::string>())(
      "message", "answer this one message and exit", cxxopts::value<std::string>())(
      "system", "a system message that opens the conversation", cxxopts::value<std::string>())(
      "temperature", "sampling temperature (0: greedy)", cxxopts::value<double>()->default_value("0.8"))(
      "top-p", "nucleus sampling threshold in (0, 1]", cxxopts::value<double>()->default_value("0.95"))(
      "max-new-tokens", "longest answer in tokens", cxxopts::value<int>()->default_value("200"))(
      "seed", "sampling seed", cxxopts::value<uint64_t>()->default_value("1337"))(
      "threads", "threads to use, at least 1", cxxopts::value<int>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("model")) throw UsageError("give --model DIR (a chat model from foundry sft; see --help)");
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  const int max_new = args["max-new-tokens"].as<int>();
  if (max_new < 1) throw UsageError("--max-new-tokens " + std::to_string(max_new) + ": expected at least 1");
  double temperature = args["temperature"].as<double>();
  const double top_p = args["top-p"].as<double>();
  try {
    sampling(temperature, top_p);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  LoadedChat c = load_chat_model(args["model"].as<std::string>());
  DecodeState state = make_decode_state(c.model.config);
  Sampler sampler(sampling(temperature, top_p), args["seed"].as<uint64_t>());
  std::vector<ChatMessage> history;
  if (args.count("system")) history.push_back({"system", args["system"].as<std::string>()});
  const int ctx = c.model.config.max_seq_len;
  const int reserve = std::min(max_new, std::max(1, ctx / 4));  // room kept for the answer

  auto answer = [&](const std::string& message) {
    history.push_back({"user", message});
    int dropped = 0;
    try {
      dropped = fit_history(c.tokenizer, history, ctx, reserve);
    } catch (const std::invalid_argument& e) {
      history.pop_back();
      if (args.count("message")) throw std::runtime_error(std::string("message too long: ") + e.what());
      std::fprintf(stderr, "[message too long: %s]\n", e.what());
      return false;
    }
    if (dropped > 0)
      std::fprintf(stderr,
                   "[context full: the oldest %d message%s dropped to fit the %d-position context; /reset starts "
                   "afresh]\n",
                   dropped, dropped == 1 ? " was" : "s were", ctx);
    ChatReply r = chat_reply(c.model, c.tokenizer, state, sampler, history, max_new, [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    std::printf("\n");
    std::fflush(stdout);
    if (r.stop_reason == "context full")
      std::fprintf(stderr, "[the answer filled the %d-position context and was cut; /reset starts afresh]\n", ctx);
    history.push_back({"assistant", r.text});
    return true;
  };

  if (args.count("message")) return answer(args["message"].as<std::string>()) ? 0 : 1;

  const bool tty = isatty(STDIN_FILENO);
  if (tty)
    std::printf("chat with %s (context %d positions). /reset, /temperature T, /help; Ctrl-D quits.\n",
                args["model"].as<std::string>().c_str(), ctx);
  std::string line;
  while (true) {
    if (tty) std::printf("> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;  // Ctrl-D or the end of piped input
    if (line.empty()) continue;
    if (line == "/reset") {
      history.erase(history.begin() + (args.count("system") ? 1 : 0), history.end());
      std::printf("[conversation reset]\n");
      continue;
    }
    if (line == "/help") {
      std::printf(
          "/reset forgets the conversation; /temperature T sets the sampling temperature (0 = greedy); "
          "Ctrl-D quits\n");
      continue;
    }
    if (line.rfind("/temperature", 0) == 0) {
      const std::string value = line.size() > 12 ? line.substr(12) : "";
      char* end = nullptr;
      const double t = std::strtod(value.c_str(), &end);
      if (value.find_first_not_of(' ') == std::string::npos || (end && *end != '\0') || !(t >= 0) || t > 100) {
        std::printf("[/temperature needs a number from 0 to 100, e.g. /temperature 0.7; it stays %g]\n", temperature);
        continue;
      }
      temperature = t;
      sampler.settings.temperature = t;
      std::printf("[temperature %g]\n", t);
      continue;
    }
    if (line[0] == '/') {
      std::printf("[unknown command %s: /reset, /temperature T, /help]\n", line.c_str());
      continue;
    }
    answer(line);
  }
  if (tty) std::printf("\n");
  return 0;
}

int cmd_eval_instruct(int argc, char** argv) {
  cxxopts::Options options(
      "foundry eval-instruct",
      "How often a chat model's answers follow held-out instructions (train/instruct.h's checks).\n\n"
      "  foundry eval-instruct --model runs/sft/model --corpus data/tinystories.txt --base "
      "runs/quickstart/train/best\n\n"
      "The instructions are those of the test split (stories held out from pretraining and fine-tuning),\n"
      "made from --corpus as `foundry make-instruct` makes them by default, or read from --data (say,\n"
      "the file the model was fine-tuned on). Each is answered at temperature 0 and at 0.8 (top-p 0.95,\n"
      "seed = the example's number + --seed), and checked:\n"
      "words: all requested words present; name: the name present; continue: not a repeat, on the story;\n"
      "two_turn: the second answer's words. With --base, the base model gets the same instructions as\n"
      "plain text (no template) at temperature 0, for comparison. With --corpus, the validation loss on\n"
      "the held-out stories shows what fine-tuning cost the base skill.");
  options.add_options()("model", "the fine-tuned chat model", cxxopts::value<std::string>())(
      "corpus", "the story corpus the instructions come from", cxxopts::value<std::string>())(
      "data", "instruction JSONL (its test split), instead of those made from --corpus", cxxopts::value<std::string>())(
      "base", "the base model, prompted in plain text for comparison", cxxopts::value<std::string>())(
      "per-kind", "instructions per kind", cxxopts::value<int>()->default_value("50"))(
      "max-new-tokens", "longest answer", cxxopts::value<int>()->default_value("160"))(
      "seed", "added to each example's sampling seed", cxxopts::value<uint64_t>()->default_value("0"))(
      "val-windows", "windows of the held-out stories to score (0: all)", cxxopts::value<int>()->default_value("0"))(
      "json", "also write the results as JSON here", cxxopts::value<std::string>())(
      "threads", "threads to use, at least 1", cxxopts::value<int>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("model") || args.count("corpus") + args.count("data") == 0)
    throw UsageError("give --model DIR and --corpus FILE or --data FILE.jsonl (or both) (see --help)");
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  const int per_kind = args["per-kind"].as<int>(), max_new = args["max-new-tokens"].as<int>();
  if (per_kind < 1) throw UsageError("--per-kind " + std::to_string(per_kind) + ": expected at least 1");
  if (max_new < 1) throw UsageError("--max-new-tokens " + std::to_string(max_new) + ": expected at least 1");
  const int val_windows = args["val-windows"].as<int>();
  if (val_windows < 0) throw UsageError("--val-windows: expected at least 0");

  LoadedChat c = load_chat_model(args["model"].as<std::string>());
  std::string corpus;
  std::vector<InstructExample> all;
  if (args.count("corpus")) corpus = read_file(args["corpus"].as<std::string>(), "story corpus");
  // --data: the instructions of that file (made with other make-instruct options, say); --corpus
  // alone: those make-instruct's defaults make. The corpus, when given, scores the held-out stories.
  all = args.count("data") ? load_instruct(args["data"].as<std::string>()) : make_instruct(corpus);
  std::map<std::string, std::vector<const InstructExample*>> by_kind;
  for (const InstructExample& e : all)
    if (e.split == "test" && static_cast<int>(by_kind[e.kind].size()) < per_kind) by_kind[e.kind].push_back(&e);
  if (by_kind.empty()) throw std::runtime_error("no test-split instructions to evaluate");

  std::unique_ptr<Model> base;
  std::unique_ptr<Tokenizer> base_tok;
  if (args.count("base")) {
    check_model_dir(args["base"].as<std::string>());
    base = std::make_unique<Model>(load_model(args["base"].as<std::string>()));
    base_tok = load_tokenizer(args["base"].as<std::string>());
  }
  DecodeState state = make_decode_state(c.model.config);
  std::unique_ptr<DecodeState> base_state =
      base ? std::make_unique<DecodeState>(make_decode_state(base->config)) : nullptr;
  const uint64_t seed = args["seed"].as<uint64_t>();
  nlohmann::ordered_json results;
  results["model"] = args["model"].as<std::string>();
  if (base) results["base"] = args["base"].as<std::string>();
  results["per_kind"] = per_kind;
  results["max_new_tokens"] = max_new;
  std::printf("%-9s %5s %10s %10s %10s\n", "kind", "n", "sft T=0", "sft T=0.8", base ? "base T=0" : "");
  for (const std::string& kind : instruct_kinds()) {
    if (!by_kind.count(kind)) continue;
    int ok0 = 0, ok8 = 0, okb = 0, k = 0;
    nlohmann::ordered_json samples = nlohmann::ordered_json::array();
    for (const InstructExample* e : by_kind[kind]) {
      std::vector<ChatMessage> ask(e->messages.begin(), e->messages.end() - 1);
      Sampler greedy(sampling(0, 1), seed + k);
      Sampler warm(sampling(0.8, 0.95), seed + k);
      ++k;
      ChatReply a0 = chat_reply(c.model, c.tokenizer, state, greedy, ask, max_new);
      ChatReply a8 = chat_reply(c.model, c.tokenizer, state, warm, ask, max_new);
      ok0 += satisfies(*e, a0.text);
      ok8 += satisfies(*e, a8.text);
      if (samples.size() < 2)
        samples.push_back(
            {{"instruction", ask.back().content}, {"answer_t0", a0.text}, {"ok", satisfies(*e, a0.text)}});
      if (base) {
        // The same words as plain text: the user's turns, one per line, then the model continues.
        std::string plain;
        for (const ChatMessage& m : ask) plain += m.content + "\n";
        std::vector<int> ids = prompt_ids(*base_tok, plain, base->config.max_seq_len);
        Sampler bg(sampling(0, 1), seed + k);
        GenerationResult g = generate(*base, *base_state, bg, ids, max_new, stop_ids(*base_tok));
        const std::string answer = base_tok->decode(g.tokens);
        okb += satisfies(*e, answer);
        if (samples.size() == static_cast<size_t>(k) && k <= 2) samples.back()["answer_base"] = answer;
      }
    }
    const double n = static_cast<double>(k);
    std::printf("%-9s %5d %9.1f%% %9.1f%%", kind.c_str(), k, 100 * ok0 / n, 100 * ok8 / n);
    if (base) std::printf(" %9.1f%%", 100 * okb / n);
    std::printf("\n");
    std::fflush(stdout);
    results["kinds"][kind] = {{"n", k}, {"t0", ok0 / n}, {"t08", ok8 / n}, {"samples", samples}};
    if (base) results["kinds"][kind]["base_t0"] = okb / n;
  }
  if (!corpus.empty()) {
    // The held-out stories' loss, in windows of the context the base was trained at when known.
    const std::string stories = held_out_stories(corpus);
    std::vector<int> tokens = c.tokenizer.encode(stories);
    TrainingContext ctx = training_context(args["model"].as<std::string>(), c.model.config);
    const int window = ctx.seq_len > 0 ? ctx.seq_len : std::min(128, c.model.config.max_seq_len);
    EvalResult ev = evaluate(c.model, tokens, window, val_windows);
    std::printf("held-out stories: loss %.4f (%d windows of %d)", ev.mean_loss, ev.windows, window);
    results["val_loss"] = ev.mean_loss;
    if (base) {
      std::vector<int> bt = base_tok->encode(stories);
      EvalResult eb = evaluate(*base, bt, window, val_windows);
      std::printf("; base %.4f", eb.mean_loss);
      results["base_val_loss"] = eb.mean_loss;
    }
    std::printf("\n");
  }
  // An answer cut inside a UTF-8 character must not stop the file from being written.
  if (args.count("json"))
    write_file_atomic(args["json"].as<std::string>(),
                      results.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  return 0;
}

}  // namespace foundry::cli
