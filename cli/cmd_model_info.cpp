// foundry model-info --config FILE
#include <cxxopts.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "model/config.h"

namespace foundry::cli {

int cmd_model_info(int argc, char** argv) {
  cxxopts::Options options("foundry model-info", "Print a model's architecture and parameter counts.");
  options.add_options()("config", "model config.json, or a training config with a \"model\" section",
                        cxxopts::value<std::string>())("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help") || !args.count("config")) {
    std::printf("%s\n", options.help().c_str());
    return args.count("help") ? 0 : 2;
  }
  ModelConfig config = load_model_config(args["config"].as<std::string>());
  std::printf("%s\n", to_json(config).dump(2).c_str());
  return 0;
}

}  // namespace foundry::cli
