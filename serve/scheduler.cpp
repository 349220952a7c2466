// The continuous-batching engine loop. See scheduler.h for the picture.
#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/parallel.h"
#include "infer/generate.h"

namespace foundry::serve {

namespace {
// How many trailing bytes of `text` are the start of a UTF-8 character whose other bytes have
// not arrived yet (a token can end in the middle of a character).
size_t incomplete_utf8_tail(const std::string& text) {
  for (size_t back = 1; back <= std::min<size_t>(3, text.size()); back++) {
    unsigned char ch = text[text.size() - back];
    if ((ch & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    size_t need = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

// The longest suffix of `text` that is a proper prefix of one of the stop strings: text that
// may not be sent yet, because the next token could complete the stop string.
size_t stop_prefix_tail(const std::string& text, const std::vector<std::string>& stop) {
  size_t hold = 0;
  for (const std::string& s : stop) {
    for (size_t n = std::min(text.size(), s.size() - 1); n > hold; n--) {
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}
}  // namespace

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      stop_ids_(stop_ids(tokenizer)),
      batch_(make_batch_state(model.config, options.max_batch + options.prefill_chunk)) {
  if (options_.threads <= 0) options_.threads = num_threads();
  // Every slot's KV cache exists from the start: the server's memory does not grow with load.
  slots_.resize(options_.max_batch);
  for (Slot& slot : slots_) slot.cache = make_kv_cache(model.config);
  metrics_.max_batch = options_.max_batch;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if ((int)queue_.size() >= options_.max_queue || !running_) {
      metrics_.requests_rejected++;
      return false;
    }
    queue_.push_back(job);
    metrics_.queue_length = (int)queue_.size();
  }
  cv_.notify_all();
  return true;
}

Metrics Scheduler::metrics() {
  std::lock_guard<std::mutex> lock(mu_);
  return metrics_;
}

void Scheduler::emit(Slot& slot, Job::Event event) {
  Job& job = *slot.job;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    job.events.push_back(std::move(event));
  }
  job.cv.notify_all();
}

void Scheduler::finish(Slot& slot, const std::string& reason, const std::string& error) {
  Job& job = *slot.job;
  if (reason != "error" && !slot.pending.empty()) emit(slot, {slot.pending, false, {}});  // whatever was held back
  {
    // Counted before the waiter wakes, so /metrics never lags a finished request.
    std::lock_guard<std::mutex> lock(mu_);
    if (reason == "cancelled") metrics_.requests_cancelled++;
    else metrics_.requests_finished++;
  }
  {
    std::lock_guard<std::mutex> lock(job.mu);
    job.finished = true;
    job.finish_reason = reason;
    job.error = error;
  }
  job.cv.notify_all();
  slot.job.reset();
}

void Scheduler::admit() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Slot& slot : slots_) {
    if (slot.job) continue;
    while (!queue_.empty() && queue_.front()->cancelled) {  // gone before it got a slot
      std::shared_ptr<Job> gone = queue_.front();
      queue_.pop_front();
      std::lock_guard<std::mutex> job_lock(gone->mu);
      gone->finished = true;
      gone->finish_reason = "cancelled";
      gone->cv.notify_all();
      metrics_.requests_cancelled++;
    }
    if (queue_.empty()) break;
    slot.job = queue_.front();
    queue_.pop_front();
    // The slot is reused as it is: its cache's old positions are simply overwritten.
    slot.cache.length = 0;
    slot.sampler = Sampler(slot.job->sampling, slot.job->seed);
    slot.prefilled = 0;
    slot.last = -1;
    slot.text = std::make_unique<TextStream>(tokenizer_, slot.job->prompt);
    slot.pending.clear();
    metrics_.requests_started++;
    metrics_.prompt_tokens += (long long)slot.job->prompt.size();
  }
  metrics_.queue_length = (int)queue_.size();
}

void Scheduler::on_logits(Slot& slot, const real* logits) {
  Job& job = *slot.job;
  const int V = model_.config.vocab_size;
  bool finite = true;
  for (int v = 0; v < V; v++) finite &= std::isfinite(logits[v]);
  if (!finite) return finish(slot, "error", "the model's logits are not finite (NaN or infinite weights)");

  // The same sampler, seed and settings as `foundry generate`, so the same tokens.
  const int next = slot.sampler.sample(logits, V);
  if (std::find(stop_ids_.begin(), stop_ids_.end(), next) != stop_ids_.end()) return finish(slot, "stop");

  // The token's text in context, as `foundry generate` prints it.
  std::string piece = slot.text->push(next);

  Job::Event event;
  if (job.want_probs) {
    TokenInfo& t = event.token;
    event.has_token = true;
    t.id = next;
    t.text = piece;
    // Before the filters: the model's own distribution (temperature 1).
    softmax_with_temperature(scratch_, logits, V, 1.0);
    t.logprob = std::log(std::max(scratch_[next].prob, 1e-300));
    keep_top_k(scratch_, job.top_n);
    for (const TokenProb& c : scratch_) t.top.push_back({c.id, tokenizer_.decode({c.id}), c.prob});
    // After: what the sampler drew from (temperature, then top-k, then top-p, renormalized).
    const SamplingSettings& s = job.sampling;
    if (s.temperature == 0) {
      t.after.push_back({sample_greedy(logits, V), "", 1.0});
    } else {
      softmax_with_temperature(scratch_, logits, V, s.temperature);
      keep_top_k(scratch_, s.top_k);
      keep_top_p(scratch_, s.top_p);
      double total = 0;
      for (const TokenProb& c : scratch_) total += c.prob;
      for (size_t i = 0; i < scratch_.size() && (int)i < job.top_n; i++)
        t.after.push_back({scratch_[i].id, "", scratch_[i].prob / total});
    }
    for (Alternative& a : t.after) a.text = tokenizer_.decode({a.id});
  }
  job.completion_tokens++;
  {
    std::lock_guard<std::mutex> lock(mu_);
    metrics_.tokens_generated++;
  }

  // Stop strings: the text ends just before the first one. Text that could still turn into a
  // stop string with the next token, or that ends inside a UTF-8 character, waits.
  slot.pending += piece;
  for (const std::string& s : job.stop) {
    size_t at = slot.pending.find(s);
    if (at != std::string::npos) {
      event.text = slot.pending.substr(0, at);
      slot.pending.clear();
      emit(slot, std::move(event));
      return finish(slot, "stop");
    }
  }
  size_t hold = std::max(stop_prefix_tail(slot.pending, job.stop), incomplete_utf8_tail(slot.pending));
  event.text = slot.pending.substr(0, slot.pending.size() - hold);
  slot.pending.erase(0, slot.pending.size() - hold);
  emit(slot, std::move(event));

  // As generate(): the last allowed token, or a full context, ends the request.
  if (job.completion_tokens >= job.max_tokens || slot.cache.length >= model_.config.max_seq_len)
    return finish(slot, "length");
  slot.last = next;
}

// ANCHOR: loop
void Scheduler::loop() {
  std::vector<BatchRow> rows;
  std::vector<Slot*> owners;  // the slot of each logits row, in order
  const int V = model_.config.vocab_size;
  set_num_threads(options_.threads);  // this thread's own setting (see SchedulerOptions::threads)
  {
    std::lock_guard<std::mutex> lock(mu_);
    metrics_.threads = num_threads();
  }
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto any_active = [&] {
        for (const Slot& s : slots_)
          if (s.job) return true;
        return false;
      };
      cv_.wait(lock, [&] { return !running_ || !queue_.empty() || any_active(); });
      if (!running_) break;
    }
    admit();
    for (Slot& slot : slots_)
      if (slot.job && slot.job->cancelled) finish(slot, "cancelled");  // the client went away: free the slot now

    // One row per decoding sequence, then prompt rows up to the prefill budget.
    rows.clear();
    owners.clear();
    for (Slot& slot : slots_) {
      if (slot.job && slot.last >= 0) {
        rows.push_back({&slot.cache, slot.last, true});
        owners.push_back(&slot);
      }
    }
    int budget = options_.prefill_chunk;
    for (Slot& slot : slots_) {
      if (!slot.job || slot.last >= 0 || budget == 0) continue;
      const std::vector<int>& prompt = slot.job->prompt;
      size_t n = std::min(prompt.size() - slot.prefilled, (size_t)budget);
      for (size_t i = 0; i < n; i++) {
        bool last = slot.prefilled + i + 1 == prompt.size();
        rows.push_back({&slot.cache, prompt[slot.prefilled + i], last});
        if (last) owners.push_back(&slot);
      }
      slot.prefilled += n;
      budget -= (int)n;
    }
    if (rows.empty()) continue;

    auto start = std::chrono::steady_clock::now();
    const real* logits = nullptr;
    try {
      logits = forward_batch(batch_, model_, rows);
    } catch (const std::exception& e) {
      // Cannot happen for validated jobs; should it anyway, the jobs of this step end with the
      // reason instead of the server ending.
      for (Slot& slot : slots_)
        if (slot.job) finish(slot, "error", e.what());
      continue;
    }
    for (size_t k = 0; k < owners.size(); k++) on_logits(*owners[k], logits + k * V);
    std::lock_guard<std::mutex> lock(mu_);
    metrics_.steps++;
    metrics_.rows += (long long)rows.size();
    metrics_.busy_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int active = 0;
    for (const Slot& s : slots_) active += s.job ? 1 : 0;
    metrics_.active = active;
  }
  // Shutting down: whoever still waits hears so.
  for (Slot& slot : slots_)
    if (slot.job) finish(slot, "error", "the server is shutting down");
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& job : queue_) {
    std::lock_guard<std::mutex> job_lock(job->mu);
    job->finished = true;
    job->finish_reason = "error";
    job->error = "the server is shutting down";
    job->cv.notify_all();
  }
  queue_.clear();
}
// ANCHOR_END: loop

}  // namespace foundry::serve
