#include "cli/options.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/parallel.h"
#include "train/prepare.h"

namespace foundry::cli {

namespace {

// What is wrong with a value cxxopts could not convert: text that is no number at all, a
// fraction given to a whole-number option, or a whole number outside the option's range (a
// negative seed, a count beyond int).
std::string why_not(const std::string& value) {
  char* end = nullptr;
  std::strtod(value.c_str(), &end);
  const bool numeric = !value.empty() && end && *end == '\0';
  if (!numeric) return "is not a number";
  if (value.find_first_of(".eE") != std::string::npos) return "is not a whole number";
  return "is out of range for this option";
}

}  // namespace

std::string explain_parse_error(const cxxopts::exceptions::parsing& e, int argc, char** argv) {
  const std::string what = e.what();
  if (dynamic_cast<const cxxopts::exceptions::incorrect_argument_type*>(&e)) {
    // Find the option the value was given to: --name=value or --name value.
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i], name, value;
      if (arg.rfind("--", 0) != 0) continue;
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        name = arg;
        value = argv[i + 1];
      }
      // cxxopts quotes the value with ‘’ (or '' without Unicode); match it whole, so "--seed 1"
      // is not blamed for "1x".
      const bool quoted = what.find("\u2018" + value + "\u2019") != std::string::npos ||
                          what.find("'" + value + "'") != std::string::npos;
      if (!value.empty() && quoted) {
        return name + " '" + value + "' " + why_not(value) + " (see --help)";
      }
    }
  }
  return what + " (see --help)";
}

void check_common_options(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--threads" && i + 1 < argc) value = argv[i + 1];
    else if (arg.rfind("--threads=", 0) == 0) value = arg.substr(10);
    else continue;
    char* end = nullptr;
    const long n = std::strtol(value.c_str(), &end, 10);
    // Text that is no number is left to the command's own parsing, which names it.
    if (!value.empty() && *end == '\0' && n < 1) {
      throw UsageError("--threads " + value +
                       ": expected at least 1 (leave the option out to use OMP_NUM_THREADS or every core)");
    }
  }
}

std::string threads_phrase(int n) { return std::to_string(n) + (n == 1 ? " thread" : " threads"); }

std::string tokenizer_file(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  return (d /
          (fs::exists(d / "tokenizer.bin") && !fs::exists(d / "tokenizer.json") ? "tokenizer.bin" : "tokenizer.json"))
      .string();
}

void check_model_dir_vocab(const std::string& dir, int model_vocab, int tokenizer_vocab) {
  check_model_tokenizer_vocab(model_vocab, (std::filesystem::path(dir) / "config.json").string(), tokenizer_vocab,
                              tokenizer_file(dir));
}

void check_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path d(dir);
  if (!fs::is_directory(d, ec) || fs::exists(d / "model.safetensors", ec)) return;
  // A run directory: metrics.jsonl and the training config, with the models one level down.
  const bool run_dir =
      fs::exists(d / "metrics.jsonl", ec) || fs::is_directory(d / "best", ec) || fs::is_directory(d / "model", ec);
  if (!run_dir) return;
  std::string use;
  auto add = [&](const std::string& sub, const std::string& what) {
    if (!fs::exists(d / sub / "model.safetensors", ec)) return;
    use += (use.empty() ? "" : " or ") + (d / sub).string() + " (" + what + ")";
  };
  add("best", "the best evaluated model");
  add("model", "the weights as the run ended");
  if (use.empty()) {
    // Stopped before its first evaluation: only checkpoints hold weights.
    std::string newest;
    long newest_step = -1;
    for (const auto& entry : fs::directory_iterator(d, ec)) {
      const std::string name = entry.path().filename().string();
      // ckpt-<8 digits>: not the ckpt-*.tmp or ckpt-*.old a crash may leave.
      if (name.size() != 13 || name.rfind("ckpt-", 0) != 0 ||
          name.find_first_not_of("0123456789", 5) != std::string::npos ||
          !fs::exists(entry.path() / "model.safetensors", ec)) {
        continue;
      }
      const long step = std::atol(name.c_str() + 5);
      if (step > newest_step) {
        newest_step = step;
        newest = entry.path().string();
      }
    }
    if (!newest.empty()) use = newest + " (its newest checkpoint)";
  }
  throw UsageError(
      dir + " is a run directory of `foundry train`, not a model directory: use " +
      (use.empty() ? (d / "best").string() + " or " + (d / "model").string() + " once the run has saved one" : use));
}

}  // namespace foundry::cli
