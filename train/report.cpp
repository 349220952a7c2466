// The run report: see report.h for the page's sections.
#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/file_io.h"
#include "model/config_fields.h"
#include "model/memory.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "train/instruct.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/train_config.h"

namespace fs = std::filesystem;

namespace foundry {

namespace {

using nlohmann::json;

enum class RunKind { kPretrain, kSft };

struct Run {
  std::string dir, name;
  RunKind kind;
  MetricsSeries metrics;
  json info;  // sft.json (fine-tuning); pretraining's config is read into `config`
  TrainConfig config;
  json eval;  // eval.json, or null
};

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// "runs/chat/sft/" -> "chat/sft": the last two parts name a run well enough on the page.
std::string run_name(const std::string& dir) {
  const fs::path p = fs::path(dir).lexically_normal();
  std::vector<std::string> parts;
  for (const fs::path& part : p)
    if (!part.empty() && part != "." && part != "/") parts.push_back(part.string());
  if (parts.empty()) return fs::absolute(p).filename().string();
  return parts.size() == 1 ? parts.back() : parts[parts.size() - 2] + "/" + parts.back();
}

// A number of a JSON object for the page, or "?" when the field is missing or not a number.
std::string num(const json& j, const char* key, const char* format) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? fmt(format, j[key].get<double>()) : "?";
}

std::string text_field(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "?";
}

// eval.json as `foundry eval-instruct --json` writes it, checked field by field so that a damaged
// file is named with what is wrong rather than shown as garbage.
void check_eval(const json& e, const std::string& path) {
  if (!e.is_object() || !e.contains("kinds") || !e["kinds"].is_object() || e["kinds"].empty())
    throw std::invalid_argument(path + ": expected an object with \"kinds\" (foundry eval-instruct --json output)");
  for (const auto& [kind, k] : e["kinds"].items()) {
    const std::string where = path + ": kinds." + kind;
    if (!k.is_object()) throw std::invalid_argument(where + " is not an object");
    if (!k.contains("n") || !k["n"].is_number_integer() || k["n"].get<long>() < 1)
      throw std::invalid_argument(where + ".n must be a positive integer");
    for (const char* rate : {"t0", "t08", "base_t0"}) {
      if (!k.contains(rate)) {
        if (std::string(rate) == "base_t0") continue;  // only with --base
        throw std::invalid_argument(where + "." + rate + " is missing");
      }
      if (!k[rate].is_number() || k[rate].get<double>() < 0 || k[rate].get<double>() > 1)
        throw std::invalid_argument(where + "." + rate + " must be a number from 0 to 1, got " +
                                    describe_json(k[rate]));
    }
    if (k.contains("samples")) {
      if (!k["samples"].is_array()) throw std::invalid_argument(where + ".samples is not an array");
      for (const json& s : k["samples"])
        if (!s.is_object() || !s.contains("instruction") || !s["instruction"].is_string() || !s.contains("answer_t0") ||
            !s["answer_t0"].is_string())
          throw std::invalid_argument(where + ".samples: each needs \"instruction\" and \"answer_t0\" strings");
    }
  }
}

Run read_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw std::invalid_argument(dir + ": no such run directory");
  if (!fs::is_directory(dir, ec)) throw std::invalid_argument(dir + ": not a directory (expected a run directory)");
  Run r;
  r.dir = dir;
  r.name = run_name(dir);
  const fs::path d(dir);
  if (fs::exists(d / "sft.json")) {
    r.kind = RunKind::kSft;
    r.info = read_json_file((d / "sft.json").string());
    if (!r.info.is_object()) throw std::invalid_argument((d / "sft.json").string() + ": expected a JSON object");
  } else if (fs::exists(d / "config.json") && fs::exists(d / "metrics.jsonl")) {
    r.kind = RunKind::kPretrain;
    const std::string path = (d / "config.json").string();
    r.config = train_config_from_json(read_json_file(path), path);
  } else {
    throw std::invalid_argument(dir +
                                ": not a run directory: expected metrics.jsonl with config.json (foundry train) or "
                                "with sft.json (foundry sft)");
  }
  if (!fs::exists(d / "metrics.jsonl"))
    throw std::invalid_argument(dir +
                                ": no metrics.jsonl (was the run finished or interrupted before its first log line?)");
  r.metrics = read_metrics((d / "metrics.jsonl").string());
  if (r.kind == RunKind::kSft && fs::exists(d / "eval.json")) {
    r.eval = read_json_file((d / "eval.json").string());
    check_eval(r.eval, (d / "eval.json").string());
  }
  return r;
}

// The model directory a run leaves, where its tokenizer is.
std::string model_dir_of(const Run& r) {
  for (const char* sub : {"model", "best"})
    if (fs::exists(fs::path(r.dir) / sub / "tokenizer.json")) return (fs::path(r.dir) / sub).string();
  return "";
}

// Text shown inside a fenced block: a fence in the text would end the block early.
std::string fenced(const std::string& text) {
  std::string t = text;
  for (size_t at = t.find("```"); at != std::string::npos; at = t.find("```", at)) t.replace(at, 3, "'''");
  return "```text\n" + t + "\n```\n";
}

// Markdown table cells: a '|' would start a new cell, a newline a new row.
std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

const char* kSentence = "Once upon a time, a little girl named Lily found a shiny red ball in the park.";

void tokenizer_section(std::string& md, const std::vector<Run>& runs) {
  std::string first, chat;
  for (const Run& r : runs) {
    const std::string m = model_dir_of(r);
    if (m.empty()) continue;
    if (first.empty()) first = m;
    if (chat.empty() && r.kind == RunKind::kSft) chat = m;
  }
  md += "## Tokenizer\n\n";
  if (first.empty()) {
    md += "No run holds a model directory with a tokenizer.json (model/ or best/).\n\n";
    return;
  }
  const std::string path = (fs::path(first) / "tokenizer.json").string();
  const BpeTokenizer tok = BpeTokenizer::load_json(path);
  std::string specials;
  for (int id : tok.special_ids())
    specials +=
        (specials.empty() ? "" : ", ") + std::string("`") + cell(tok.vocab()[id]) + "` (id " + std::to_string(id) + ")";
  md += "From `" + path + "`.\n\n| | |\n|---|---|\n";
  md += "| vocabulary | " + std::to_string(tok.vocab_size()) + " tokens: 256 bytes, " +
        std::to_string(tok.merges().size()) + " merges, " + std::to_string(tok.special_ids().size()) + " special |\n";
  md += "| special tokens | " + (specials.empty() ? std::string("none") : specials) + " |\n";
  if (!chat.empty() && chat != first) {
    const BpeTokenizer ct = BpeTokenizer::load_json((fs::path(chat) / "tokenizer.json").string());
    if (has_chat_tokens(ct))
      md += "| chat tokens (fine-tuning) | `<\\|im_start\\|>` (id " + std::to_string(ct.special_id(kImStart)) +
            "), `<\\|im_end\\|>` (id " + std::to_string(ct.special_id(kImEnd)) + ") |\n";
  }
  const std::vector<int> ids = tok.encode(kSentence);
  std::string pieces;
  for (size_t k = 0; k < ids.size(); ++k) pieces += (k ? "|" : "") + tok.decode_text({ids[k]});
  md += "\nA sentence in " + std::to_string(ids.size()) + " tokens (" +
        fmt("%.2f", static_cast<double>(std::string(kSentence).size()) / static_cast<double>(ids.size())) +
        " characters per token), cut at `|`:\n\n" + fenced(pieces) + "\n";
}

// The last finite training loss and the first, with their steps.
std::string train_loss_span(const MetricsSeries& m) {
  const TrainPoint* a = nullptr;
  const TrainPoint* b = nullptr;
  for (const TrainPoint& p : m.train) {
    if (!std::isfinite(p.loss)) continue;
    if (!a) a = &p;
    b = &p;
  }
  if (!a) return "no finite training loss logged";
  return fmt("%.4f", a->loss) + " (step " + std::to_string(a->step) + ") → " + fmt("%.4f", b->loss) + " (step " +
         std::to_string(b->step) + ")";
}

std::string val_loss_span(const MetricsSeries& m) {
  const EvalPoint* best = nullptr;
  const EvalPoint* last = nullptr;
  for (const EvalPoint& p : m.eval) {
    if (!std::isfinite(p.val_loss)) continue;
    if (!best || p.val_loss < best->val_loss) best = &p;
    last = &p;
  }
  if (!best) return "not evaluated";
  return "best " + fmt("%.4f", best->val_loss) + " (step " + std::to_string(best->step) + "), last " +
         fmt("%.4f", last->val_loss) + " (step " + std::to_string(last->step) + ")";
}

// A run's loss curves; a log with nothing to draw is named.
std::string curve_svg(const Run& r, const std::string& title) {
  try {
    return loss_curve_svg(r.metrics, title);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(r.dir + "/metrics.jsonl: " + e.what());
  }
}

std::string picture(Report& report, const std::string& name, const std::string& svg, const std::string& alt) {
  report.pictures.push_back({name, svg});
  return "![" + alt + "](" + name + ")\n\n";
}

void pretraining_section(Report& report, const std::vector<Run>& runs, const std::string& stem) {
  int k = 0;
  for (const Run& r : runs) {
    if (r.kind != RunKind::kPretrain) continue;
    ++k;
    std::string& md = report.markdown;
    md += "## Pretraining: " + r.name + "\n\n";
    md += picture(report, stem + "-pretrain-" + std::to_string(k) + ".svg", curve_svg(r, "Pretraining: " + r.name),
                  "pretraining loss curves of " + r.name);
    const ModelConfig& m = r.config.model;
    const TrainingSection& t = r.config.training;
    md += "| | |\n|---|---|\n";
    md += "| model | dim " + std::to_string(m.dim) + ", " + std::to_string(m.n_layers) + " layers, " +
          std::to_string(m.n_heads) + " heads (" + std::to_string(m.n_kv_heads) + " key/value), hidden " +
          std::to_string(m.hidden_dim) + ", context " + std::to_string(m.max_seq_len) + ", vocabulary " +
          std::to_string(m.vocab_size) + ": " + fmt("%.2f", static_cast<double>(count_parameters(m)) / 1e6) +
          " M parameters |\n";
    md += "| training | " + std::to_string(t.max_steps) + " steps of " + std::to_string(t.batch_size) + " × " +
          std::to_string(t.seq_len) + " tokens" + (t.grad_accum > 1 ? " × " + std::to_string(t.grad_accum) : "") +
          ", lr " + fmt("%g", t.lr) + " → " + fmt("%g", t.min_lr) + " (warmup " + std::to_string(t.warmup_steps) +
          "), weight decay " + fmt("%g", t.weight_decay) + ", " + t.precision + " |\n";
    md += "| train loss | " + train_loss_span(r.metrics) + " |\n";
    md += "| validation loss | " + val_loss_span(r.metrics) + " |\n\n";
  }
}

void fine_tuning_section(Report& report, const std::vector<Run>& runs, const std::string& stem) {
  std::vector<LabeledSeries> all;
  std::string& md = report.markdown;
  for (const Run& r : runs)
    if (r.kind == RunKind::kSft) all.push_back({r.name, r.metrics});
  if (all.empty()) return;
  md += "## Fine-tuning\n\n";
  md +=
      "| run | base | steps | stopped by | seconds | batch | lr | answer loss, first → last step | held-out answer "
      "loss |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const Run& r : runs) {
    if (r.kind != RunKind::kSft) continue;
    const json& i = r.info;
    md += "| " + cell(r.name) + " | " + cell(text_field(i, "base")) + " | " + num(i, "steps", "%.0f") + " | " +
          cell(text_field(i, "stop_reason")) + " | " + num(i, "seconds", "%.0f") + " | " +
          num(i, "batch_size", "%.0f") + " | " + num(i, "lr", "%g") + " | " + num(i, "first_loss", "%.4f") + " → " +
          num(i, "last_loss", "%.4f") + " | " + num(i, "val_loss", "%.4f") + " |\n";
  }
  md += "\n";
  int k = 0;
  for (const Run& r : runs) {
    if (r.kind != RunKind::kSft) continue;
    ++k;
    md += "### " + r.name + "\n\n";
    md += picture(report, stem + "-sft-" + std::to_string(k) + ".svg", curve_svg(r, "Fine-tuning: " + r.name),
                  "fine-tuning loss curves of " + r.name);
  }
  if (all.size() > 1) {
    md += "### The fine-tuning runs side by side\n\n";
    md += picture(report, stem + "-sft-compare.svg", compare_loss_curves_svg(all, "Fine-tuning runs"),
                  "fine-tuning runs compared");
  }
}

std::string percent(const json& k, const char* key) {
  return k.contains(key) ? fmt("%.1f%%", 100 * k[key].get<double>()) : "–";
}

void evaluation_section(std::string& md, const std::vector<Run>& runs) {
  bool any_sft = false;
  for (const Run& r : runs) any_sft = any_sft || r.kind == RunKind::kSft;
  if (!any_sft) return;
  md += "## Evaluation\n\n";
  md +=
      "Held-out instructions (stories never trained on), checked by a program: *words* all requested words "
      "present; *name* the named character present; *continue* not a repeat and on the story; *two_turn* the "
      "second answer's words. The base model gets the same instructions as plain text.\n\n";
  for (const Run& r : runs) {
    if (r.kind != RunKind::kSft) continue;
    md += "### " + r.name + "\n\n";
    if (r.eval.is_null()) {
      md += "Not evaluated: `foundry eval-instruct --model " + r.dir + "/model --corpus data/tinystories.txt --base " +
            text_field(r.info, "base") + " --json " + r.dir + "/eval.json` writes what this section shows.\n\n";
      continue;
    }
    md += "| kind | n | fine-tuned, T=0 | fine-tuned, T=0.8 | base, T=0 |\n|---|---|---|---|---|\n";
    const json& kinds = r.eval["kinds"];
    std::vector<std::string> order = instruct_kinds();
    for (const auto& [kind, k] : kinds.items())
      if (std::find(order.begin(), order.end(), kind) == order.end()) order.push_back(kind);
    for (const std::string& kind : order) {
      if (!kinds.contains(kind)) continue;
      const json& k = kinds[kind];
      md += "| " + cell(kind) + " | " + std::to_string(k["n"].get<long>()) + " | " + percent(k, "t0") + " | " +
            percent(k, "t08") + " | " + percent(k, "base_t0") + " |\n";
    }
    if (r.eval.contains("val_loss") && r.eval["val_loss"].is_number()) {
      md += "\nLoss on the held-out stories: " + fmt("%.4f", r.eval["val_loss"].get<double>()) + " fine-tuned";
      if (r.eval.contains("base_val_loss") && r.eval["base_val_loss"].is_number())
        md += ", " + fmt("%.4f", r.eval["base_val_loss"].get<double>()) + " base";
      md += ".\n";
    }
    md += "\n";
  }
}

void conversations_section(std::string& md, const std::vector<Run>& runs) {
  bool header = false;
  for (const Run& r : runs) {
    if (r.kind != RunKind::kSft || r.eval.is_null()) continue;
    if (!header) {
      md += "## Sample conversations\n\nGreedy answers (temperature 0) to held-out instructions.\n\n";
      header = true;
    }
    md += "### " + r.name + "\n\n";
    const json& kinds = r.eval["kinds"];
    for (const std::string& kind : instruct_kinds()) {
      if (!kinds.contains(kind) || !kinds[kind].contains("samples")) continue;
      for (const json& s : kinds[kind]["samples"]) {
        const bool ok = s.contains("ok") && s["ok"].is_boolean() && s["ok"].get<bool>();
        md += "**" + kind + "** (" + (ok ? "followed" : "not followed") + ")\n\n";
        md += "User:\n\n" + fenced(s["instruction"].get<std::string>()) + "\nAssistant:\n\n" +
              fenced(s["answer_t0"].get<std::string>()) + "\n";
        if (s.contains("answer_base") && s["answer_base"].is_string())
          md += "The base model, given the instruction as plain text:\n\n" +
                fenced(s["answer_base"].get<std::string>()) + "\n";
      }
    }
  }
}

}  // namespace

Report build_report(const std::vector<std::string>& run_dirs, const std::string& stem) {
  if (run_dirs.empty()) throw std::invalid_argument("a report needs at least one run directory");
  std::vector<Run> runs;
  for (const std::string& d : run_dirs) runs.push_back(read_run(d));
  Report report;
  std::string& md = report.markdown;
  md += "# Run report\n\n";
  for (const Run& r : runs)
    md += "- `" + r.dir +
          "`: " + (r.kind == RunKind::kPretrain ? "pretraining (foundry train)" : "fine-tuning (foundry sft)") + "\n";
  md += "\n";
  tokenizer_section(md, runs);
  pretraining_section(report, runs, stem);
  fine_tuning_section(report, runs, stem);
  evaluation_section(md, runs);
  conversations_section(md, runs);
  return report;
}

Report write_report(const std::vector<std::string>& run_dirs, const std::string& out_md) {
  const fs::path out(out_md);
  Report report = build_report(run_dirs, out.stem().string());
  if (!out.parent_path().empty()) fs::create_directories(out.parent_path());
  // Pictures first: the page never links to a picture that is not there yet.
  for (const ReportFile& f : report.pictures) write_file_atomic((out.parent_path() / f.name).string(), f.content);
  write_file_atomic(out_md, report.markdown);
  return report;
}

}  // namespace foundry
