// Lesson 19: serving. Prints why batching pays on a memory-bound decode (bytes read and
// multiply-adds per step as the batch grows), the KV cache memory per slot, proves on the
// llama2.c fixture that continuous batching gives every request the tokens it gets alone, and
// shows the Server-Sent Events of a streamed request through the real server on loopback. The
// [timing] section (not quoted: timings vary) measures decode tokens/s at batch 1 .. 16 on the
// medium configuration. Exits non-zero if a check fails.
//
//   build/lessons/lesson_19
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "engine/rng.h"
#include "infer/batch.h"
#include "infer/generate.h"
#include "lessons/lesson_common.h"
#include "model/llama2c.h"
#include "serve/scheduler.h"
#include "serve/server.h"
#include "tokenizer/sentencepiece.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

ModelConfig medium() {
  ModelConfig c;
  c.dim = 512, c.n_layers = 8, c.n_heads = 8, c.n_kv_heads = 4, c.hidden_dim = 1376, c.vocab_size = 4096;
  c.max_seq_len = 256, c.tie_embeddings = true;
  return c;
}

}  // namespace

int main() {
  const std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/llama2c";

  std::printf("[intensity]\n");
  {
    // One decode step reads every weight matrix once. With B sequences in the batch, each
    // weight read does B multiply-adds instead of one.
    ModelConfig c = medium();
    Model m = make_model(c);
    double bytes = (double)m.num_parameters() * sizeof(real);
    std::printf("medium: %zu parameters = %.1f MiB of weights read per decode step\n", m.num_parameters(),
                bytes / (1 << 20));
    for (int B : {1, 2, 4, 8, 16}) {
      double madds = (double)m.num_parameters() * B;  // one multiply-add per weight per sequence
      std::printf("batch %2d: %6.1f M multiply-adds per step, %5.2f multiply-adds per byte of weights\n", B,
                  madds / 1e6, madds / bytes);
    }
  }

  std::printf("[kv_memory]\n");
  {
    for (auto [name, c] :
         {std::pair<const char*, ModelConfig>{"stories260K", load_llama2c_checkpoint(dir + "/stories260K.bin").config},
          {"medium", medium()}}) {
      size_t per_slot = kv_cache_bytes_per_position(c) * c.max_seq_len;
      std::printf("%s: %zu bytes per position x %d positions = %.2f MiB per slot; 8 slots %.2f MiB\n", name,
                  kv_cache_bytes_per_position(c), c.max_seq_len, per_slot / 1048576.0, 8 * per_slot / 1048576.0);
    }
  }

  Model model = load_llama2c_checkpoint(dir + "/stories260K.bin");
  auto tokenizer = load_llama2c_tokenizer(dir + "/tok512.bin");

  std::printf("[same_tokens]\n");
  {
    // ANCHOR: same_tokens
    // Eight requests, alone through generate() and then together through the scheduler.
    const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily went", "A big dog",
                                              "One day",          "Tom",     "The sun",   "She had a"};
    bool all_same = true;
    for (size_t together : {1, 2, 8}) {
      serve::Scheduler scheduler(model, *tokenizer, serve::SchedulerOptions{8, 64, 64});
      std::vector<std::shared_ptr<serve::Job>> jobs;
      for (size_t i = 0; i < together; i++) {
        auto job = std::make_shared<serve::Job>();
        job->prompt = prompt_ids(*tokenizer, prompts[i], model.config.max_seq_len);
        job->max_tokens = 20;
        job->sampling = {0.8, 40, 0.9};
        job->seed = 42 + i;
        scheduler.submit(job);
        jobs.push_back(job);
      }
      int same = 0;
      for (size_t i = 0; i < together; i++) {
        std::unique_lock<std::mutex> lock(jobs[i]->mu);
        jobs[i]->cv.wait(lock, [&] { return jobs[i]->finished; });
        std::string text;
        for (const auto& e : jobs[i]->events) text += e.text;
        DecodeState state = make_decode_state(model.config);
        Sampler sampler({0.8, 40, 0.9}, 42 + i);
        std::vector<int> alone = generate(model, state, sampler, jobs[i]->prompt, 20, stop_ids(*tokenizer)).tokens;
        TextStream stream(*tokenizer, jobs[i]->prompt);
        std::string alone_text;
        for (int id : alone) alone_text += stream.push(id);
        same += text == alone_text;
        if (together == 8 && i < 3) std::printf("  %-18s -> %s\n", ("\"" + prompts[i] + "\"").c_str(), text.c_str());
      }
      // (How many steps the requests shared depends on when each joined the running scheduler, so
      // it is not printed: the texts are what must not depend on it.)
      std::printf("%zu together: %d of %zu texts equal to running alone\n", together, same, together);
      all_same = all_same && same == (int)together;
    }
    // ANCHOR_END: same_tokens
    check(all_same, "every request gets the same text alone and batched");
  }

  std::printf("[sse]\n");
  {
    serve::ServerOptions o;
    o.port = 0;
    o.model_name = "stories260K";
    o.limits.max_tokens = 64;
    serve::Server server(model, *tokenizer, o);
    server.bind();
    std::thread serving([&] { server.run(); });
    httplib::Client client("127.0.0.1", server.port());
    auto res = client.Post("/v1/completions",
                           R"({"model":"stories260K","prompt":"Once upon a time","max_tokens":4,"temperature":0,)"
                           R"("stream":true,"stream_options":{"include_usage":true}})",
                           "application/json");
    std::string body = res ? res->body : "";
    // The id and the creation time differ on every run; everything else is the same.
    body = std::regex_replace(body, std::regex(R"("id":"cmpl-[0-9a-fx]+")"), R"("id":"cmpl-...")");
    body = std::regex_replace(body, std::regex(R"("created":[0-9]+)"), R"("created":...)");
    std::printf("HTTP %d, Content-Type: %s\n%s", res ? res->status : 0,
                res ? res->get_header_value("Content-Type").c_str() : "", body.c_str());
    check(res && res->status == 200 && body.size() > 14 && body.substr(body.size() - 14) == "data: [DONE]\n\n",
          "the stream ends with data: [DONE]");
    server.stop();
    serving.join();
  }

  std::printf("[timing]\n");
  {
    // Decode steps of B sequences at once on the medium configuration (random weights).
    ModelConfig c = medium();
    Model m = make_model(c);
    Rng rng(1);
    init_weights(m, rng);
    BatchState batch = make_batch_state(c, 16);
    double one = 0;
    for (int B : {1, 2, 4, 8, 16}) {
      std::vector<KVCache> caches;
      for (int b = 0; b < B; b++) caches.push_back(make_kv_cache(c));
      std::vector<BatchRow> rows;
      for (int b = 0; b < B; b++) rows.push_back({&caches[b], 1 + b, true});
      const int steps = 16;
      auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < steps; s++) forward_batch(batch, m, rows);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double tps = B * steps / secs;
      if (B == 1) one = tps;
      std::printf("batch %2d: %7.1f tokens/s (%.2fx batch 1)\n", B, tps, tps / one);
    }
  }
  return failures == 0 ? 0 : 1;
}
