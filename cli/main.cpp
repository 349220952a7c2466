// foundry: the one command-line program. `foundry <command> --help` explains each command.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "engine/parallel.h"

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
    {"tokenizer", "train, inspect and use byte-level BPE tokenizers (train | encode | decode | info)", foundry::cli::cmd_tokenizer},
    {"generate", "continue a prompt with a model (greedy or sampled, KV cache), streaming the text", foundry::cli::cmd_generate},
    {"eval", "mean loss and perplexity of a model on a text or token file; optional logits .npy", foundry::cli::cmd_eval},
    {"import", "convert a llama2.c checkpoint and tokenizer into a model directory", foundry::cli::cmd_import},
};
// ANCHOR_END: command_table

void print_help() {
  std::printf(
      "foundry: train and run small LLaMA-style language models on your CPU.\n\n"
      "usage: foundry <command> [options]      (foundry <command> --help for its options)\n\n"
      "commands:\n");
  for (const Command& c : kCommands) std::printf("  %-12s %s\n", c.name, c.summary);
  std::printf("\nthreads: %d (%s; set OMP_NUM_THREADS or --threads where a command offers it)\n",
              foundry::num_threads(), foundry::have_openmp() ? "OpenMP" : "built without OpenMP");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (argv[1] == std::string(c.name)) {
      try {
        // The command sees its own name as argv[0], so cxxopts prints "foundry-<name>" usage.
        return c.run(argc - 1, argv + 1);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "foundry %s: error: %s\n", c.name, e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "foundry: unknown command '%s' (run 'foundry --help' for the list)\n", argv[1]);
  return 2;
}
