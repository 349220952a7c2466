// foundry sft --lora [--lora-rank R --lora-alpha A --lora-targets wq,wk,wv,wo] [--merge] ...
// foundry merge-lora --base DIR --adapter FILE --out DIR
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/lora_options.h"
#include "cli/options.h"
#include "model/config.h"
#include "model/lora.h"
#include "tokenizer/chat_template.h"
#include "train/checkpoint.h"
#include "train/sft.h"

namespace foundry::cli {

void add_lora_options(cxxopts::Options& options) {
  options.add_options("LoRA")("lora", "train low-rank adapters only; the base stays frozen (model/lora.h)")(
      "lora-rank", "adapter rank R, at least 1 and at most min(in, out) of every target",
      cxxopts::value<int>()->default_value("8"))("lora-alpha", "scale numerator: the branch is scaled by alpha / R",
                                                 cxxopts::value<double>()->default_value("16"))(
      "lora-targets", "weights that get an adapter in every layer, from wq,wk,wv,wo,w1,w3,w2",
      cxxopts::value<std::string>()->default_value("wq,wk,wv,wo"))(
      "merge", "with --lora: also write OUT/model, the base with the adapters folded in (w + alpha/R · b·a)");
}

void read_lora_options(const cxxopts::ParseResult& args, SftOptions& o) {
  o.lora_on = args.count("lora") > 0;
  for (const char* name : {"lora-rank", "lora-alpha", "lora-targets", "merge"})
    if (!o.lora_on && args.count(name)) throw UsageError(std::string("--") + name + " needs --lora");
  if (!o.lora_on) return;
  o.merge = args.count("merge") > 0;
  o.lora.rank = args["lora-rank"].as<int>();
  o.lora.alpha = args["lora-alpha"].as<double>();
  try {
    o.lora.targets = parse_lora_targets(args["lora-targets"].as<std::string>());
    // The sizes the rank is checked against come from the base's config.json.
    validate_lora(o.lora, load_model_config((std::filesystem::path(o.base_dir) / "config.json").string()));
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    if (what.rfind("lora", 0) == 0) throw UsageError("--lora-rank/--lora-alpha/--lora-targets: " + what);
    throw;  // a bad config.json: its own message
  }
}

int cmd_merge_lora(int argc, char** argv) {
  cxxopts::Options options(
      "foundry merge-lora",
      "Fold LoRA adapters into their base: a plain model directory that needs no adapter (model/lora.h).\n\n"
      "  foundry merge-lora --base runs/quickstart/train/best --adapter runs/sft-lora/adapter.safetensors \\\n"
      "                     --out runs/sft-lora/merged\n\n"
      "Every adapted weight becomes w' = w + (alpha/R) · b · a. The base is loaded as `foundry sft` loaded it\n"
      "(chat tokens added when missing), and must be the very model the adapters were trained on: the\n"
      "adapter file records the base's fingerprint, and a different one is refused. The output is a chat\n"
      "model directory, as `foundry sft` writes without --lora.");
  options.add_options()("base", "the base model directory the adapters were trained on", cxxopts::value<std::string>())(
      "adapter", "the adapter file (OUT/adapter.safetensors of foundry sft --lora)", cxxopts::value<std::string>())(
      "out", "the model directory to write", cxxopts::value<std::string>())(
      "overwrite", "replace a non-empty output directory")("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("base") || !args.count("adapter") || !args.count("out"))
    throw UsageError("give --base DIR, --adapter FILE and --out DIR (see --help)");
  const std::string base_dir = args["base"].as<std::string>(), adapter = args["adapter"].as<std::string>(),
                    out = args["out"].as<std::string>();
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)) && !args.count("overwrite"))
    throw UsageError("--out " + out + ": exists and is not empty; choose another or pass --overwrite");
  check_model_dir(base_dir);
  LoraModel lora = load_lora(adapter);
  ChatModel cm = load_chat_base(base_dir);
  check_lora_base(lora, cm.model, adapter, base_dir);
  merge_lora(cm.model, lora);
  save_model_with_tokenizer(cm.model, out, &cm.tokenizer);
  save_chat_config(out);
  std::printf("merged %zu adapters (%s) into %s: %s\n", lora.adapters.size(), lora_summary(lora.config).c_str(),
              base_dir.c_str(), out.c_str());
  return 0;
}

}  // namespace foundry::cli
