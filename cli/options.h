// Helpers every `foundry` command shares: option errors with the project's own message, the
// --threads option, and a first look at a --model directory.
#pragma once

#include <cxxopts.hpp>
#include <stdexcept>
#include <string>

namespace foundry::cli {

// Bad usage: main() prints the message and exits with status 2 (a runtime error exits with 1).
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// cxxopts' parse errors name only the value ("Argument 'abc' failed to parse"); this names the
// option and says what is wrong, e.g.
//   --temperature 'warm' is not a number
//   --top-k '2.5' is not a whole number
// (argc, argv as the command saw them).
std::string explain_parse_error(const cxxopts::exceptions::parsing& e, int argc, char** argv);

// Checks of options every command shares, before the command parses its own: --threads N must be
// at least 1 (leaving it out keeps OpenMP's default). Throws UsageError.
void check_common_options(int argc, char** argv);

// "1 thread", "2 threads".
std::string threads_phrase(int n);

// Throws a UsageError when `dir` is a run directory of `foundry train` rather than a model
// directory, naming the model directories inside it (best/, model/, the newest checkpoint).
// Anything else is left to load_model, whose errors are already precise.
void check_model_dir(const std::string& dir);

// The tokenizer file of a model directory: tokenizer.json, or llama2.c's tokenizer.bin when only
// that one is there (for messages).
std::string tokenizer_file(const std::string& dir);
// Before any text is printed: a model larger than its tokenizer can sample an id that has no text,
// and would die mid-output. Refuses a model directory whose config.json and tokenizer disagree on
// the vocabulary (check_model_tokenizer_vocab, naming both files).
void check_model_dir_vocab(const std::string& dir, int model_vocab, int tokenizer_vocab);

}  // namespace foundry::cli
