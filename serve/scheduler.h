// Continuous batching: one thread owns the model and runs steps; HTTP threads hand it jobs and
// read back tokens.
//
//   HTTP thread:  parse → validate → tokenize → submit(job) ─┐          ┌→ wait for events → stream
//                                                            ▼          │
//   engine thread:  queue ─(free slot)→ slot: prefill ─→ decode ... ─→ finish, slot free again
//                   every step: one forward_batch over the decode rows of every active slot
//                   plus (at most prefill_chunk) prompt rows of slots that have just joined
//
// A slot is a KV cache with room for max_seq_len positions plus the request's sampler; there
// are max_batch of them, allocated once. New requests join between steps and finished ones
// leave, so the batch is never held back by its slowest member (that is the "continuous").
// A request whose client went away is dropped at the next step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "infer/batch.h"
#include "infer/generate.h"
#include "infer/sampling.h"
#include "model/model.h"
#include "serve/api.h"
#include "tokenizer/tokenizer.h"

namespace foundry::serve {

// One request in flight, shared by the HTTP thread that made it and the engine thread.
struct Job {
  // Set before submit(), read-only after.
  std::vector<int> prompt;  // token ids (BOS first when the tokenizer has one)
  int max_tokens = 16;
  SamplingSettings sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // stop strings; the text ends before the first one
  int top_n = 0;                  // alternatives per token to report (0: none)
  bool want_probs = false;        // compute logprob / alternatives at all

  // Written by the engine thread under mu; the HTTP thread waits on cv.
  struct Event {
    std::string text;  // text to append (held back while it could be the start of a stop string)
    bool has_token = false;
    TokenInfo token;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  bool finished = false;
  std::string finish_reason;  // "stop", "length" or "error"
  std::string error;          // when finish_reason is "error"
  int completion_tokens = 0;

  std::atomic<bool> cancelled{false};  // set by the HTTP side when the client has gone
};

struct SchedulerOptions {
  int max_batch = 8;       // slots: sequences decoded together
  int max_queue = 64;      // jobs waiting for a slot; submit() refuses beyond this
  int prefill_chunk = 64;  // most prompt rows per step (longer prompts take several steps)
  // Threads of the engine thread's batched forward; 0: those of the thread that creates the
  // Scheduler. (OpenMP's thread count is a setting of each thread: the engine thread does not
  // inherit the count that `--threads` set on the main thread, so it is passed on here.)
  int threads = 0;
};

// The counters of /metrics.
struct Metrics {
  long long requests_started = 0, requests_finished = 0, requests_cancelled = 0, requests_rejected = 0;
  long long prompt_tokens = 0, tokens_generated = 0, steps = 0, rows = 0;
  double busy_seconds = 0;  // time spent in steps
  int queue_length = 0, active = 0, max_batch = 0;
  int threads = 0;  // the engine thread's OpenMP threads, as it sees them
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job; false when the queue is full (the caller answers 503).
  bool submit(const std::shared_ptr<Job>& job);
  Metrics metrics();
  void stop();

 private:
  struct Slot {
    std::shared_ptr<Job> job;  // null: free
    KVCache cache;
    Sampler sampler;
    size_t prefilled = 0;              // prompt positions in the cache
    int last = -1;                     // the token to feed next step
    std::unique_ptr<TextStream> text;  // the generated text, token by token, in context
    std::string pending;               // generated text not yet sent (could start a stop string)
  };
  void loop();
  void admit();
  // The sampled token of a slot whose logits are ready; may finish the job.
  void on_logits(Slot& slot, const real* logits);
  void finish(Slot& slot, const std::string& reason, const std::string& error = "");
  void emit(Slot& slot, Job::Event event);

  const Model& model_;
  const Tokenizer& tokenizer_;
  SchedulerOptions options_;
  std::vector<int> stop_ids_;
  std::vector<Slot> slots_;
  BatchState batch_;
  std::vector<TokenProb> scratch_;  // for the alternatives (the sampler's own buffer is untouched)

  std::mutex mu_;  // guards queue_, metrics_, running_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  Metrics metrics_;
  bool running_ = true;
  std::thread thread_;
};

}  // namespace foundry::serve
