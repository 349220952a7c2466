// foundry make-instruct --input data/tinystories.txt --out FILE.jsonl
// foundry sft --base DIR --data FILE.jsonl --out DIR [--max-steps N] [--max-seconds S] [--lora ...] ...
// foundry sft --resume DIR [--max-seconds S] [--stop-at N]
#include <cmath>
#include <cstdio>
#include <cxxopts.hpp>
#include <map>

#include "cli/commands.h"
#include "cli/lora_options.h"
#include "cli/options.h"
#include "common/file_io.h"
#include "engine/parallel.h"
#include "train/instruct.h"
#include "train/sft.h"
#include "train/sft_checkpoint.h"

namespace foundry::cli {

int cmd_make_instruct(int argc, char** argv) {
  cxxopts::Options options(
      "foundry make-instruct",
      "Build the checkable instruction set from a story corpus, as JSONL (train/instruct.h).\n\n"
      "  foundry make-instruct --input data/tinystories.txt --out runs/instruct.jsonl\n\n"
      "Stories are the documents between separators, cut as `foundry prepare` cuts them; the last\n"
      "--val-fraction of them (prepare's validation split) become the \"test\" split, never trained on.\n"
      "Per story: \"Write a story that uses the words W1, W2 and W3\", \"Write a story about a girl/boy\n"
      "named N\", \"Continue this story: ...\" and a two-turn conversation, each with what a program checks.\n"
      "The same input and seed give the same bytes. Derived from TinyStories: CDLA-Sharing-1.0.");
  options.add_options()("input", "the story corpus", cxxopts::value<std::string>())(
      "out", "the JSONL file to write (atomically)", cxxopts::value<std::string>())(
      "separator", "the text between stories", cxxopts::value<std::string>()->default_value("<|endoftext|>"))(
      "val-fraction", "share of stories held out as the test split (as foundry prepare)",
      cxxopts::value<double>()->default_value("0.1"))("seed", "seed for choosing the words",
                                                      cxxopts::value<uint64_t>()->default_value("1337"))(
      "words-per-story", "words instructions per training story, each with other words",
      cxxopts::value<int>()->default_value("1"))(
      "words-in-order", "list a training instruction's words in the order its answer uses them")(
      "words-opening",
      "n > 0: a words answer is the story's first n sentences (or more, until three content words), its words "
      "listed in order, in both splits; 0: the whole answer",
      cxxopts::value<int>()->default_value("0"))(
      "words-windows",
      "n > 0: also every run of n consecutive sentences of a training story becomes a words answer (words "
      "from it, in order, no common opening words; repeats skipped): many short distinct answers; the test "
      "split is unchanged; 0: none",
      cxxopts::value<int>()->default_value("0"))("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("input") || !args.count("out"))
    throw UsageError("give --input FILE and --out FILE.jsonl (see --help)");
  InstructOptions io;
  io.separator = args["separator"].as<std::string>();
  io.val_fraction = args["val-fraction"].as<double>();
  io.seed = args["seed"].as<uint64_t>();
  io.words_per_story = args["words-per-story"].as<int>();
  io.words_in_order = args.count("words-in-order") > 0;
  io.words_opening = args["words-opening"].as<int>();
  if (io.words_opening < 0 || io.words_opening > 20)
    throw UsageError("--words-opening " + std::to_string(io.words_opening) + ": expected 0 to 20");
  io.words_windows = args["words-windows"].as<int>();
  if (io.words_windows < 0 || io.words_windows > 20)
    throw UsageError("--words-windows " + std::to_string(io.words_windows) + ": expected 0 to 20");
  if (io.words_per_story < 1 || io.words_per_story > 20)
    throw UsageError("--words-per-story " + std::to_string(io.words_per_story) + ": expected 1 to 20");
  if (!(io.val_fraction > 0 && io.val_fraction < 1))
    throw UsageError("--val-fraction " + std::to_string(io.val_fraction) + ": expected a number in (0, 1)");
  if (io.separator.empty()) throw UsageError("--separator is empty: stories need a separator");
  const std::string input = args["input"].as<std::string>();
  std::vector<InstructExample> ex = make_instruct(read_file(input, "story corpus"), io);
  write_file_atomic(args["out"].as<std::string>(), instruct_to_jsonl(ex));
  std::map<std::string, std::map<std::string, int>> counts;
  for (const InstructExample& e : ex) counts[e.split][e.kind]++;
  std::printf("%zu examples written to %s\n", ex.size(), args["out"].as<std::string>().c_str());
  for (const auto& [split, kinds] : counts) {
    std::printf("  %-5s", split.c_str());
    for (const std::string& k : instruct_kinds()) std::printf("  %s %d", k.c_str(), kinds.count(k) ? kinds.at(k) : 0);
    std::printf("\n");
  }
  return 0;
}

int cmd_sft(int argc, char** argv) {
  cxxopts::Options options(
      "foundry sft",
      "Supervised fine-tuning: teach a pretrained model to answer chat turns (train/sft.h).\n\n"
      "  foundry sft --base runs/quickstart/train/best --data runs/instruct.jsonl --out runs/sft --max-seconds 300\n\n"
      "Each example of the data's \"train\" split is rendered with the ChatML template; the loss is the\n"
      "cross-entropy of the assistant's tokens only (the masked loss, engine/masked_loss.h). A base model\n"
      "without <|im_start|>/<|im_end|> gets them, its embedding rows grown (new rows = the mean of the old).\n"
      "Writes OUT/model (a chat model directory for `foundry chat`), OUT/metrics.jsonl and OUT/sft.json.\n"
      "With --lora only low-rank adapters train (the base is frozen: no gradients, no AdamW moments for\n"
      "it) and OUT/adapter.safetensors holds them; --merge also writes OUT/model with them folded in\n"
      "(or later: foundry merge-lora).\n\n"
      "Checkpoints go to OUT/ckpt-<step>/ every --checkpoint-interval steps and whenever the run stops\n"
      "before --max-steps (--max-seconds, --stop-at, Ctrl-C or SIGTERM: the step under way ends first).\n"
      "`foundry sft --resume OUT` continues from the newest one with the run's own settings, ending (at\n"
      "one thread) on the bits of a run that never stopped. A LoRA run writes no checkpoints (it is short;\n"
      "its adapters are its whole state): stopped early it saves the adapters it has; run it again.");
  options.add_options()("base", "the pretrained model directory", cxxopts::value<std::string>())(
      "data", "instruction data, JSONL (foundry make-instruct)", cxxopts::value<std::string>())(
      "out", "the output directory", cxxopts::value<std::string>())(
      "max-steps", "optimizer updates (the schedule's length)", cxxopts::value<long>()->default_value("300"))(
      "max-seconds", "stop and save after this much wall time (0: no limit)",
      cxxopts::value<double>()->default_value("0"))("batch-size", "examples per step",
                                                    cxxopts::value<int>()->default_value("16"))(
      "seq-len", "longest example in tokens (0: the model's context)", cxxopts::value<int>()->default_value("0"))(
      "lr", "peak learning rate", cxxopts::value<double>()->default_value("0.001"))(
      "min-lr", "learning rate at the end of the cosine", cxxopts::value<double>()->default_value("0.0001"))(
      "warmup-steps", "linear warmup", cxxopts::value<long>()->default_value("20"))(
      "eval-interval", "held-out answer loss every this many steps", cxxopts::value<long>()->default_value("100"))(
      "log-interval", "a progress line every this many steps", cxxopts::value<long>()->default_value("10"))(
      "seed", "batch order", cxxopts::value<uint64_t>()->default_value("1337"))("threads", "threads to use, at least 1",
                                                                                cxxopts::value<int>())(
      "checkpoint-interval", "a checkpoint every this many steps (0: only when stopping early)",
      cxxopts::value<long>()->default_value("200"))("keep-checkpoints", "how many checkpoints to keep",
                                                    cxxopts::value<int>()->default_value("2"))(
      "resume", "continue the run in this output directory (or from this checkpoint)", cxxopts::value<std::string>())(
      "stop-at", "stop after this step, with a checkpoint (0: no)", cxxopts::value<long>()->default_value("0"))(
      "overwrite", "replace a non-empty output directory")(
      "word-weight", "loss weight of the answer tokens that spell a requested word (the others weigh 1)",
      cxxopts::value<double>()->default_value("1"))(
      "group-by-length", "batch examples of about the same length together (less padding, faster steps)")(
      "h,help", "show this help");
  add_lora_options(options);
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  const long stop_at = args["stop-at"].as<long>();
  const double max_seconds = args["max-seconds"].as<double>();
  if (stop_at < 0) throw UsageError("--stop-at " + std::to_string(stop_at) + ": expected at least 0");
  if (!(max_seconds >= 0)) throw UsageError("--max-seconds: expected a number >= 0");
  if (args.count("resume")) {
    // The settings that decide the numbers are the run's own; only this session's limits may change.
    for (const char* fixed : {"base",
                              "data",
                              "out",
                              "max-steps",
                              "batch-size",
                              "seq-len",
                              "lr",
                              "min-lr",
                              "warmup-steps",
                              "eval-interval",
                              "log-interval",
                              "seed",
                              "checkpoint-interval",
                              "keep-checkpoints",
                              "overwrite",
                              "word-weight",
                              "group-by-length",
                              "lora",
                              "lora-rank",
                              "lora-alpha",
                              "lora-targets",
                              "merge"})
      if (args.count(fixed))
        throw UsageError(std::string("--") + fixed +
                         " with --resume: a resumed run keeps the settings it started with (only --max-seconds, "
                         "--stop-at and --threads apply to the new session)");
    SftOptions o = sft_resume_options(args["resume"].as<std::string>());
    o.max_seconds = max_seconds;
    o.stop_at = stop_at;
    run_sft(o);
    return 0;
  }
  if (!args.count("base") || !args.count("data") || !args.count("out"))
    throw UsageError("give --base DIR, --data FILE.jsonl and --out DIR, or --resume DIR (see --help)");
  SftOptions o;
  o.base_dir = args["base"].as<std::string>();
  o.data_path = args["data"].as<std::string>();
  o.out_dir = args["out"].as<std::string>();
  o.max_steps = args["max-steps"].as<long>();
  o.max_seconds = args["max-seconds"].as<double>();
  o.batch_size = args["batch-size"].as<int>();
  o.seq_len = args["seq-len"].as<int>();
  o.lr = args["lr"].as<double>();
  o.min_lr = args["min-lr"].as<double>();
  o.warmup_steps = args["warmup-steps"].as<long>();
  o.eval_interval = args["eval-interval"].as<long>();
  o.log_interval = args["log-interval"].as<long>();
  o.seed = args["seed"].as<uint64_t>();
  o.checkpoint_interval = args["checkpoint-interval"].as<long>();
  o.keep_checkpoints = args["keep-checkpoints"].as<int>();
  o.stop_at = stop_at;
  o.overwrite = args.count("overwrite") > 0;
  o.word_weight = args["word-weight"].as<double>();
  o.group_by_length = args.count("group-by-length") > 0;
  if (!(o.word_weight >= 0) || !std::isfinite(o.word_weight))
    throw UsageError("--word-weight: expected a finite number >= 0");
  if (o.max_steps < 1) throw UsageError("--max-steps " + std::to_string(o.max_steps) + ": expected at least 1");
  if (o.batch_size < 1) throw UsageError("--batch-size " + std::to_string(o.batch_size) + ": expected at least 1");
  if (o.seq_len < 0) throw UsageError("--seq-len " + std::to_string(o.seq_len) + ": expected at least 0");
  if (o.checkpoint_interval < 0 || o.keep_checkpoints < 1)
    throw UsageError("--checkpoint-interval must be >= 0 and --keep-checkpoints >= 1");
  if (!(o.lr > 0) || !(o.min_lr >= 0)) throw UsageError("--lr must be > 0 and --min-lr >= 0");
  if (o.warmup_steps < 0 || o.eval_interval < 1 || o.log_interval < 1)
    throw UsageError("--warmup-steps must be >= 0, --eval-interval and --log-interval >= 1");
  check_model_dir(o.base_dir);
  read_lora_options(args, o);
  run_sft(o);
  return 0;
}

}  // namespace foundry::cli
