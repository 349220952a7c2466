// A run report: one Markdown page for a whole pipeline (a tokenizer, a pretraining run, the
// fine-tuning runs made from it and their evaluations), with its loss curves as SVG pictures
// beside it: what good looks like, in one place.
//
//   foundry report runs/quickstart/train runs/chat/sft runs/chat/sft-lora --out runs/chat/report.md
//
// A run directory is recognised by what it holds:
//   pretraining (foundry train)  config.json and metrics.jsonl
//   fine-tuning (foundry sft)    sft.json and metrics.jsonl, and eval.json when it was evaluated
//                                (foundry eval-instruct --json RUN/eval.json)
// The page's sections, each present when some run provides it:
//   Tokenizer        vocabulary size, special tokens, a sentence cut into its tokens (the tokenizer
//                    of the first run's model; a fine-tuned model's includes the chat tokens)
//   Pretraining      the loss curves (train/plot.h), the model and the run's settings and losses
//   Fine-tuning      each run's curves, all of them on one picture when there are several, and a
//                    table of their settings, time and losses
//   Evaluation       per instruction kind: the share followed at temperature 0 and 0.8 and the
//                    base model's, and the loss on the held-out stories (what fine-tuning cost)
//   Conversations    sample instructions with the fine-tuned model's answers (and the base's)
// The same runs give the same bytes (no dates, no timings other than the runs' own).
#pragma once

#include <string>
#include <vector>

namespace foundry {

struct ReportFile {
  std::string name;  // a file name beside the report page
  std::string content;
};

struct Report {
  std::string markdown;
  std::vector<ReportFile> pictures;  // the SVG files the page links to
};

// `stem` prefixes the pictures' file names ("report" gives report-pretrain.svg, ...). Throws
// std::invalid_argument naming the directory or file and the problem: a missing directory, one
// that is no run directory, a damaged metrics log, sft.json or eval.json.
Report build_report(const std::vector<std::string>& run_dirs, const std::string& stem);

// Writes the pictures beside `out_md` and then the page, each atomically; returns the report.
Report write_report(const std::vector<std::string>& run_dirs, const std::string& out_md);

}  // namespace foundry
