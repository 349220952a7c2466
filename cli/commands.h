// The subcommands of the `foundry` program. Each lives in its own cli/cmd_<name>.cpp, parses
// its own options with cxxopts, and returns the process exit code (0 on success, 1 on a user
// error that it has already explained on stderr, 2 on bad usage).
#pragma once

namespace foundry::cli {

int cmd_model_info(int argc, char** argv);
int cmd_prepare(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_tokenizer(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_import(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_make_instruct(int argc, char** argv);
int cmd_sft(int argc, char** argv);
int cmd_merge_lora(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_eval_instruct(int argc, char** argv);
int cmd_report(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_serve(int argc, char** argv);

}  // namespace foundry::cli
