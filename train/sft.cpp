// Supervised fine-tuning: see sft.h for the batches, the loss and the output directory.
#include "train/sft.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "common/file_io.h"
#include "engine/masked_loss.h"
#include "model/model_io.h"
#include "model/resize_vocab.h"
#include "tokenizer/chat_template.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/prepare.h"
#include "train/sft_checkpoint.h"
#include "train/stop_signal.h"

namespace foundry {

namespace {

// Marks with kWordTarget the target tokens of the last answer that spell one of ex.words (as
// whole words, compared lower-case as satisfies() compares them). The answer's ids are found at
// the end of the rendered ids (render_chat encodes a message's content as one piece), and each
// token's bytes give its span of the answer's text.
void mark_word_targets(SftExample& e, const InstructExample& ex, const BpeTokenizer& tokenizer) {
  if (ex.words.empty() || ex.messages.empty()) return;
  const std::string& answer = ex.messages.back().content;
  const std::vector<int> aids = tokenizer.encode_ordinary(answer);
  if (aids.empty() || aids.size() > e.ids.size()) return;
  size_t at = e.ids.size() - aids.size() + 1;
  while (at-- > 0)
    if (std::equal(aids.begin(), aids.end(), e.ids.begin() + static_cast<long>(at))) break;
  if (at == static_cast<size_t>(-1)) return;
  // Byte spans [begin, end) of the requested words' whole-word occurrences in the answer.
  std::vector<std::pair<size_t, size_t>> spans;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  for (size_t i = 0; i < answer.size();) {
    if (!letter(answer[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    std::string w;
    while (j < answer.size() && letter(answer[j])) w += static_cast<char>(std::tolower((unsigned char)answer[j++]));
    if (std::find(ex.words.begin(), ex.words.end(), w) != ex.words.end()) spans.push_back({i, j});
    i = j;
  }
  size_t pos = 0;
  for (size_t k = 0; k < aids.size(); ++k) {
    const size_t len = tokenizer.decode({aids[k]}).size(), begin = pos, end = pos + len;
    pos = end;
    for (const auto& [a, b] : spans)
      if (begin < b && a < end && e.target[at + k]) e.target[at + k] = kWordTarget;
  }
}

}  // namespace

std::vector<SftExample> render_sft_examples(const std::vector<InstructExample>& examples, const BpeTokenizer& tokenizer,
                                            const std::string& split, int max_tokens) {
  std::vector<SftExample> out;
  for (const InstructExample& ex : examples) {
    if (ex.split != split) continue;
    ChatTokens r = render_chat(tokenizer, ex.messages, false);
    SftExample e{std::move(r.ids), std::move(r.target)};
    mark_word_targets(e, ex, tokenizer);
    if (static_cast<int>(e.ids.size()) > max_tokens) {
      e.ids.resize(max_tokens);
      e.target.resize(max_tokens);
    }
    // Token 0 is never predicted (nothing comes before it), so a target there does not count.
    if (std::any_of(e.target.begin() + 1, e.target.end(), [](uint8_t t) { return t != 0; }))
      out.push_back(std::move(e));
  }
  return out;
}

// ANCHOR: fill_sft_batch
void fill_sft_batch(const std::vector<SftExample>& examples, const std::vector<size_t>& rows, int T_max,
                    std::vector<int>& ids, std::vector<int>& targets, std::vector<uint8_t>& mask, int& T) {
  T = 1;
  for (size_t r : rows) T = std::max(T, static_cast<int>(examples[r].ids.size()) - 1);
  T = std::min(T, T_max);
  const size_t B = rows.size();
  ids.assign(B * T, 0);
  targets.assign(B * T, -1);
  mask.assign(B * T, 0);
  for (size_t b = 0; b < B; ++b) {
    const SftExample& e = examples[rows[b]];
    const int n = std::min(static_cast<int>(e.ids.size()) - 1, T);  // positions with a next token
    for (int t = 0; t < n; ++t) {
      ids[b * T + t] = e.ids[t];
      targets[b * T + t] = e.ids[t + 1];
      mask[b * T + t] = e.target[t + 1];  // position t is trained when the token it predicts is an answer's
    }
  }
}
// ANCHOR_END: fill_sft_batch

void group_by_length(std::vector<size_t>& order, const std::vector<SftExample>& examples, int B, std::mt19937_64& rng) {
  const size_t batch = static_cast<size_t>(std::max(B, 1)), chunk = batch * kGroupBatches;
  std::vector<size_t> sorted, starts;
  for (size_t first = 0; first < order.size(); first += chunk) {
    const auto begin = order.begin() + static_cast<long>(first);
    const auto end = order.begin() + static_cast<long>(std::min(order.size(), first + chunk));
    std::stable_sort(begin, end, [&](size_t a, size_t b) { return examples[a].ids.size() < examples[b].ids.size(); });
    sorted.assign(begin, end);
    starts.clear();
    for (size_t s = 0; s < sorted.size(); s += batch) starts.push_back(s);
    std::shuffle(starts.begin(), starts.end(), rng);
    auto out = begin;
    for (size_t s : starts)
      for (size_t k = s; k < std::min(sorted.size(), s + batch); ++k) *out++ = sorted[k];
  }
}

Var sft_loss(Tape& tape, Model& model, const std::vector<int>& ids, const std::vector<int>& targets,
             const std::vector<uint8_t>& mask, int B, int T, LoraModel* lora, double word_weight) {
  Var logits = lora ? lora_logits(tape, model, *lora, ids, B, T) : model_logits(tape, model, ids, B, T);  // (B, T, V)
  if (word_weight == 1.0) return masked_cross_entropy(tape, logits, targets, mask);
  std::vector<real> weight(mask.size());
  for (size_t i = 0; i < mask.size(); ++i)
    weight[i] = mask[i] == kWordTarget ? static_cast<real>(word_weight) : static_cast<real>(mask[i] != 0);
  return weighted_cross_entropy(tape, logits, targets, weight);
}

double sft_validation_loss(Model& model, Tape& tape, const std::vector<SftExample>& examples, int B, int T_max,
                           LoraModel* lora) {
  double weighted = 0;
  size_t counted = 0;
  std::vector<int> ids, targets;
  std::vector<uint8_t> mask;
  for (size_t first = 0; first < examples.size(); first += B) {
    std::vector<size_t> rows;
    for (size_t k = first; k < std::min(examples.size(), first + B); ++k) rows.push_back(k);
    int T = 0;
    fill_sft_batch(examples, rows, T_max, ids, targets, mask, T);
    const size_t M = mask.size() - std::count(mask.begin(), mask.end(), 0);
    if (M == 0) continue;
    tape.clear();
    Var loss = sft_loss(tape, model, ids, targets, mask, static_cast<int>(rows.size()), T, lora);
    weighted += tape.value(loss)[0] * static_cast<double>(M);  // a mean per target token over all batches
    counted += M;
  }
  tape.clear();
  return counted ? weighted / counted : NAN;
}

ChatModel load_chat_base(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string tok_path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(tok_path))
    throw std::runtime_error(dir +
                             ": no tokenizer.json (chat needs a byte-level BPE model directory; a llama2.c "
                             "tokenizer.bin has no room for the chat tokens)");
  Model model = load_model(dir);
  BpeTokenizer base = BpeTokenizer::load_json(tok_path);
  if (base.vocab_size() != model.config.vocab_size)
    throw std::runtime_error(dir + ": tokenizer.json has " + std::to_string(base.vocab_size()) +
                             " tokens but config.json says vocab_size " + std::to_string(model.config.vocab_size));
  const bool had = has_chat_tokens(base);
  BpeTokenizer tok = had ? std::move(base) : add_chat_tokens(base);
  if (!had) model = grow_vocab(model, tok.vocab_size());
  return ChatModel{std::move(model), std::move(tok), !had};
}

SftResult run_sft(const SftOptions& o) {
  namespace fs = std::filesystem;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::error_code ec;
  const bool resuming = !o.resume.empty();
  if (resuming && o.lora_on)
    throw std::invalid_argument("sft: a LoRA run cannot be resumed (it writes no checkpoints); run it again");
  if (!resuming && fs::exists(o.out_dir, ec) && !(fs::is_directory(o.out_dir, ec) && fs::is_empty(o.out_dir, ec))) {
    if (!o.overwrite)
      throw std::runtime_error(o.out_dir + ": exists and is not empty; choose another --out or pass --overwrite");
    fs::remove_all(o.out_dir, ec);
  }
  // A resumed run starts from its checkpoint, a model directory with the chat tokens.
  const std::string resume_dir = resuming ? resolve_sft_checkpoint(o.resume) : "";
  ChatModel cm = load_chat_base(resuming ? resume_dir : o.base_dir);
  Model& model = cm.model;
  const int T_max = o.seq_len > 0 ? std::min(o.seq_len, model.config.max_seq_len) : model.config.max_seq_len;
  std::vector<InstructExample> data = load_instruct(o.data_path);
  std::vector<SftExample> train = render_sft_examples(data, cm.tokenizer, "train", T_max + 1);
  std::vector<SftExample> val = render_sft_examples(data, cm.tokenizer, "test", T_max + 1);
  if (train.empty()) throw std::runtime_error(o.data_path + ": no example of the \"train\" split has a target");
  if (static_cast<int>(val.size()) > o.eval_examples) val.resize(o.eval_examples);
  fs::create_directories(o.out_dir);

  if (!o.quiet)
    std::fprintf(
        o.out, "sft: base %s (%s), %zu training examples, %zu validation examples, B=%d, T<=%d, %ld steps%s\n",
        o.base_dir.c_str(), cm.added_tokens ? "chat tokens added, embedding rows grown" : "has chat tokens",
        train.size(), val.size(), o.batch_size, T_max, o.max_steps,
        o.max_seconds > 0 ? (", at most " + std::to_string(static_cast<long>(o.max_seconds)) + " s").c_str() : "");

  // LoRA: adapters on the base, whose gradient buffers go; only the adapters train.
  std::optional<LoraModel> lora;
  if (o.lora_on) {
    Rng lora_rng(o.seed);
    lora = make_lora(model, o.lora, lora_rng);
    lora->base_dir = o.base_dir;
    freeze_base(model);
  }
  LoraModel* adapters = lora ? &*lora : nullptr;
  std::vector<NamedTensor> params = lora ? lora->parameters() : model.parameters();
  AdamW opt = make_adamw(params);
  SftResult res;
  for (const NamedTensor& p : params) res.trainable_parameters += p.value->size();
  res.gradient_bytes = res.trainable_parameters * sizeof(real);
  res.optimizer_bytes = 2 * res.trainable_parameters * sizeof(real);  // AdamW's m and v
  if (!o.quiet)
    std::fprintf(o.out, "sft: %s: %zu trainable of %zu parameters; gradients %.2f MiB, AdamW moments %.2f MiB\n",
                 lora ? lora_summary(lora->config).c_str() : "full fine-tuning", res.trainable_parameters,
                 model.num_parameters() + (lora ? lora->num_parameters() : 0), res.gradient_bytes / 1048576.0,
                 res.optimizer_bytes / 1048576.0);
  const AdamWSettings settings{0.9, 0.95, 1e-8, o.weight_decay};
  const LrSchedule schedule{o.lr, o.min_lr, o.warmup_steps, o.max_steps};
  Tape tape;
  tape.set_reuse_grads(true);
  std::mt19937_64 rng(o.seed);
  std::vector<size_t> order(train.size());
  std::iota(order.begin(), order.end(), 0);
  // Every epoch's order: shuffled, then (with group_by_length) batched by length. A later epoch's
  // length need not be a multiple of B, so its batches may straddle two neighbouring groups: still
  // about one length.
  auto new_epoch_order = [&] {
    std::shuffle(order.begin(), order.end(), rng);
    if (o.group_by_length) group_by_length(order, train, o.batch_size, rng);
  };
  new_epoch_order();
  size_t cursor = 0;
  std::vector<int> ids, targets;
  std::vector<uint8_t> mask;
  std::string metrics;
  const std::string metrics_path = (fs::path(o.out_dir) / "metrics.jsonl").string();

  res.stop_reason = "max_steps";
  const std::string data_fingerprint = file_fingerprint(o.data_path);
  long first_step = 0;
  double earlier_seconds = 0;  // the wall time of the sessions before a resume
  if (resuming) {
    SftProgress p = load_sft_checkpoint(resume_dir, o, data_fingerprint, train.size(), params, opt);
    std::istringstream rng_text(p.rng);  // checked by load_sft_checkpoint
    rng_text >> rng;
    order = std::move(p.order);
    cursor = p.cursor;
    metrics = std::move(p.metrics);
    first_step = res.steps = p.step;
    res.first_loss = p.first_loss;
    earlier_seconds = p.seconds;
    cm.added_tokens = p.chat_tokens_added;
    if (!o.quiet) std::fprintf(o.out, "sft: resumed from %s at step %ld\n", resume_dir.c_str(), p.step);
  }
  // A LoRA run writes no checkpoints: a checkpoint holds the whole model and the optimizer state of
  // its trainable tensors, and resuming would have to rebuild the adapters around the same base;
  // a LoRA run is short and its adapters are its whole state, so it is simply run again.
  const bool checkpoints = !lora;
  // A checkpoint of the run as it is after `step` updates.
  auto checkpoint = [&](long step) {
    std::ostringstream rng_text;
    rng_text << rng;
    const SftProgress p{step,
                        rng_text.str(),
                        order,
                        cursor,
                        res.first_loss,
                        earlier_seconds + std::chrono::duration<double>(clock::now() - start).count(),
                        cm.added_tokens,
                        metrics};
    res.last_checkpoint = checkpoint_path(o.out_dir, step);
    save_sft_checkpoint(res.last_checkpoint, model, cm.tokenizer, params, opt, o, data_fingerprint, p);
    prune_checkpoints(o.out_dir, o.keep_checkpoints);
    write_file_atomic(metrics_path, metrics);  // the log so far, also outside the checkpoint
  };
  double step_seconds = 0;  // the training steps alone, without evaluation
  // Ctrl-C or SIGTERM: the step under way (and its evaluation) ends, then the run stops as at
  // --stop-at, with a checkpoint to resume from.
  const StopSignalGuard stop_signals;
  for (long step = first_step; step < o.max_steps; ++step) {
    if (stop_requested()) {
      res.stop_reason = "interrupted";
      if (!o.quiet)
        std::fprintf(o.out, "sft: interrupted at step %ld: %s\n", step,
                     checkpoints ? "saving a checkpoint"
                                 : "a LoRA run writes no checkpoints; saving the adapters as they are (run it "
                                   "again for the whole schedule)");
      break;
    }
    if (o.max_seconds > 0 && std::chrono::duration<double>(clock::now() - start).count() >= o.max_seconds) {
      res.stop_reason = "max_seconds";
      break;
    }
    if (o.stop_at > 0 && step >= o.stop_at) {
      res.stop_reason = "stop_at";
      break;
    }
    const auto step_start = clock::now();
    std::vector<size_t> rows;
    for (int b = 0; b < o.batch_size; ++b) {
      if (cursor == order.size()) {  // a new epoch: a new order
        new_epoch_order();
        cursor = 0;
      }
      rows.push_back(order[cursor++]);
    }
    int T = 0;
    fill_sft_batch(train, rows, T_max, ids, targets, mask, T);
    if (lora) lora->zero_grad();
    else model.zero_grad();
    tape.clear();
    Var loss = sft_loss(tape, model, ids, targets, mask, o.batch_size, T, adapters, o.word_weight);
    tape.backward(loss);
    const double l = tape.value(loss)[0];
    const double norm = clip_grad_norm(params, o.grad_clip);
    if (!std::isfinite(l) || !std::isfinite(norm))
      throw std::runtime_error("sft: step " + std::to_string(step + 1) +
                               ": the loss or the gradient norm is not finite");
    const double lr = learning_rate(schedule, step);
    adamw_step(opt, params, lr, settings);
    step_seconds += std::chrono::duration<double>(clock::now() - step_start).count();
    res.steps = step + 1;
    if (step == 0) res.first_loss = l;
    res.last_loss = l;
    const bool log = (step + 1) % o.log_interval == 0 || step == 0;
    if (log) {
      metrics +=
          nlohmann::json{{"kind", "train"}, {"step", step + 1}, {"loss", l}, {"lr", lr}, {"grad_norm", norm}}.dump() +
          "\n";
      if (!o.quiet)
        std::fprintf(o.out, "step %ld/%ld | loss %.4f | lr %.2e | norm %.3f | %.0f s\n", step + 1, o.max_steps, l, lr,
                     norm, std::chrono::duration<double>(clock::now() - start).count());
    }
    if (!val.empty() && (step + 1) % o.eval_interval == 0) {
      const double v = sft_validation_loss(model, tape, val, o.batch_size, T_max, adapters);
      metrics += nlohmann::json{{"kind", "eval"}, {"step", step + 1}, {"val_loss", v}}.dump() + "\n";
      if (!o.quiet) std::fprintf(o.out, "eval step %ld: val loss (answers of held-out stories) %.4f\n", step + 1, v);
    }
    std::fflush(o.out);
    if (checkpoints && o.checkpoint_interval > 0 && (step + 1) % o.checkpoint_interval == 0 && step + 1 < o.max_steps)
      checkpoint(step + 1);
  }
  // Stopped early: a checkpoint to continue from (unless the last one is of this very step).
  if (checkpoints && res.steps < o.max_steps && res.last_checkpoint != checkpoint_path(o.out_dir, res.steps))
    checkpoint(res.steps);
  if (!val.empty()) {
    res.val_loss = sft_validation_loss(model, tape, val, o.batch_size, T_max, adapters);
    metrics += nlohmann::json{{"kind", "eval"}, {"step", res.steps}, {"val_loss", res.val_loss}}.dump() + "\n";
  }
  res.seconds_per_step = res.steps > first_step ? step_seconds / (res.steps - first_step) : 0;
  if (lora) {
    // The base must have come through untouched: the adapters are worthless on other weights.
    if (model_fingerprint(model) != lora->base_fingerprint)
      throw std::logic_error("sft: the base weights changed during LoRA training");
    res.adapter_path = (fs::path(o.out_dir) / "adapter.safetensors").string();
    save_lora(*lora, res.adapter_path);
  }
  if (!lora || o.merge) {
    if (lora) merge_lora(model, *lora);
    res.model_dir = (fs::path(o.out_dir) / "model").string();
    save_model_with_tokenizer(model, res.model_dir, &cm.tokenizer);
    save_chat_config(res.model_dir);
  }
  write_file_atomic(metrics_path, metrics);
  res.seconds = earlier_seconds + std::chrono::duration<double>(clock::now() - start).count();
  nlohmann::ordered_json info;
  info["base"] = o.base_dir;
  info["data"] = o.data_path;
  info["chat_tokens_added"] = cm.added_tokens;
  info["batch_size"] = o.batch_size;
  info["seq_len"] = T_max;
  info["max_steps"] = o.max_steps;
  info["max_seconds"] = o.max_seconds;
  info["lr"] = o.lr;
  info["min_lr"] = o.min_lr;
  info["warmup_steps"] = o.warmup_steps;
  info["weight_decay"] = o.weight_decay;
  info["grad_clip"] = o.grad_clip;
  info["word_weight"] = o.word_weight;
  info["group_by_length"] = o.group_by_length;
  info["seed"] = o.seed;
  info["steps"] = res.steps;
  info["stop_reason"] = res.stop_reason;
  info["seconds"] = res.seconds;
  info["first_loss"] = res.first_loss;
  info["last_loss"] = res.last_loss;
  if (std::isfinite(res.val_loss)) info["val_loss"] = res.val_loss;
  if (lora) {
    info["lora"] = {
        {"rank", o.lora.rank},         {"alpha", o.lora.alpha}, {"targets", lora->config.targets},
        {"adapter", res.adapter_path}, {"merged", o.merge},     {"base_fingerprint", lora->base_fingerprint}};
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  res.peak_rss_mib = usage.ru_maxrss / 1024.0;  // KiB on Linux
  info["trainable_parameters"] = res.trainable_parameters;
  info["gradient_bytes"] = res.gradient_bytes;
  info["optimizer_bytes"] = res.optimizer_bytes;
  info["peak_rss_mib"] = res.peak_rss_mib;
  info["seconds_per_step"] = res.seconds_per_step;
  write_file_atomic((fs::path(o.out_dir) / "sft.json").string(), info.dump(1) + "\n");
  if (!o.quiet) {
    std::fprintf(o.out, "sft: %ld steps in %.0f s (%s, %.3f s/step, peak RSS %.1f MiB); loss %.4f -> %.4f; %s%s%s\n",
                 res.steps, res.seconds, res.stop_reason.c_str(), res.seconds_per_step, res.peak_rss_mib,
                 res.first_loss, res.last_loss, lora ? ("adapters in " + res.adapter_path).c_str() : "",
                 lora && o.merge ? ", " : "", res.model_dir.empty() ? "" : ("model in " + res.model_dir).c_str());
    if (res.steps < o.max_steps && !lora)
      std::fprintf(o.out, "  continue with: foundry sft --resume %s\n", o.out_dir.c_str());
  }
  return res;
}

}  // namespace foundry
