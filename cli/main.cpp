// foundry: the one command-line program. `foundry <command> --help` explains each command.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/parallel.h"

// The project version from CMake's project() (a build outside CMake says so).
#ifndef FOUNDRY_VERSION
#define FOUNDRY_VERSION "unknown"
#endif

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

// ANCHOR: command_table
const Command kCommands[] = {
    {"prepare", "tokenize a text corpus into train.bin and val.bin token files", foundry::cli::cmd_prepare},
    {"train", "train a model from a JSON config (checkpoints, resume, early stopping)", foundry::cli::cmd_train},
    {"plot", "draw a run's training and validation loss curves as an SVG", foundry::cli::cmd_plot},
    {"model-info", "print a model's architecture, parameter counts and training memory", foundry::cli::cmd_model_info},
    {"tokenizer", "train, inspect and use byte-level BPE tokenizers (train | encode | decode | info)",
     foundry::cli::cmd_tokenizer},
    {"generate", "continue a prompt with a model (greedy or sampled, KV cache), streaming the text",
     foundry::cli::cmd_generate},
    {"eval", "mean loss and perplexity of a model on a text or token file; optional logits .npy",
     foundry::cli::cmd_eval},
    {"import", "convert a llama2.c checkpoint or a GGUF file into a model directory", foundry::cli::cmd_import},
    {"export", "write a model directory as a GGUF file for llama.cpp", foundry::cli::cmd_export},
    {"make-instruct", "build the checkable instruction set (JSONL) from a story corpus",
     foundry::cli::cmd_make_instruct},
    {"sft", "supervised fine-tuning on chat data, loss on the assistant's tokens only", foundry::cli::cmd_sft},
    {"merge-lora", "fold LoRA adapters (foundry sft --lora) into their base model", foundry::cli::cmd_merge_lora},
    {"chat", "talk with a fine-tuned model (interactive, or one --message)", foundry::cli::cmd_chat},
    {"eval-instruct", "fraction of held-out instructions a chat model follows, per kind",
     foundry::cli::cmd_eval_instruct},
    {"report", "one Markdown page with SVG plots for a pipeline: tokenizer, curves, evaluation, samples",
     foundry::cli::cmd_report},
    {"quantize", "quantize a model's weights to llama.cpp's q8_0 or q4_0 blocks (a new model directory)",
     foundry::cli::cmd_quantize},
    {"serve", "serve a model over HTTP: OpenAI-compatible API, streaming, batching, playground",
     foundry::cli::cmd_serve},
};
// ANCHOR_END: command_table

void print_help() {
  std::printf(
      "foundry: train and run small LLaMA-style language models on your CPU.\n\n"
      "usage: foundry <command> [options]      (foundry <command> --help for its options)\n"
      "       foundry --version\n\n"
      "commands:\n");
  for (const Command& c : kCommands) std::printf("  %-14s %s\n", c.name, c.summary);
  std::printf("\nthreads: %s by default (%s; set OMP_NUM_THREADS or --threads N, N >= 1, where a command offers it)\n",
              foundry::cli::threads_phrase(foundry::num_threads()).c_str(),
              foundry::have_openmp() ? "OpenMP" : "built without OpenMP");
  std::printf(
      "waiting threads: %s\n"
      "  (by default they spin about %.0f us, then sleep, so that a busy neighbour program does not\n"
      "  stall them: foundry sets GOMP_SPINCOUNT and restarts itself once; OMP_WAIT_POLICY,\n"
      "  GOMP_SPINCOUNT or FOUNDRY_KEEP_WAIT_POLICY=1 in the environment override it)\n",
      foundry::wait_policy_description().c_str(), foundry::kSpinMicroseconds);
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    std::printf("foundry %s (LLM Foundry, %s)\n", FOUNDRY_VERSION,
                foundry::have_openmp() ? "OpenMP" : "without OpenMP");
    return 0;
  }
  for (const Command& c : kCommands) {
    if (argv[1] == std::string(c.name)) {
      try {
        // The command sees its own name as argv[0], so cxxopts prints "foundry-<name>" usage.
        foundry::check_parallel_settings();  // FOUNDRY_SPLIT, FOUNDRY_PIN_THREADS (engine/parallel.h)
        foundry::cli::check_common_options(argc - 1, argv + 1);
        return c.run(argc - 1, argv + 1);
      } catch (const foundry::cli::UsageError& e) {
        std::fprintf(stderr, "foundry %s: %s\n", c.name, e.what());
        return 2;
      } catch (const cxxopts::exceptions::parsing& e) {
        std::fprintf(stderr, "foundry %s: %s\n", c.name,
                     foundry::cli::explain_parse_error(e, argc - 1, argv + 1).c_str());
        return 2;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "foundry %s: error: %s\n", c.name, e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "foundry: unknown command '%s' (run 'foundry --help' for the list)\n", argv[1]);
  return 2;
}
