// The LoRA options of `foundry sft` (--lora, --lora-rank, --lora-alpha, --lora-targets, --merge),
// kept beside merge-lora in cli/cmd_lora.cpp.
#pragma once

#include <cxxopts.hpp>

#include "train/sft.h"

namespace foundry::cli {

void add_lora_options(cxxopts::Options& options);
// Fills o.lora_on, o.lora and o.merge; call after o.base_dir is set. Throws UsageError on a LoRA
// option without --lora, a rank below 1 or above min(in, out) of a target, a non-positive alpha,
// or an unknown target.
void read_lora_options(const cxxopts::ParseResult& args, SftOptions& o);

}  // namespace foundry::cli
