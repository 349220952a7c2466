// Serving throughput under concurrency: aggregate tokens/s and time to first token with 1, 2, 4,
// 8 and 16 concurrent streaming clients, beside the same requests sent one after another, and
// beside the bare batched forward pass at the same batch size.
//
//   build/bench/bench_serve [--model DIR | --config quickstart|medium|small|tiny] [--clients 1,2,4,8,16]
//                           [--requests-per-client 2] [--max-tokens 64] [--max-seconds 60] [--threads N]
//
// The server runs in this process (serve::Server on 127.0.0.1, a free port, --max-batch 16) and
// the clients are threads speaking HTTP to it over loopback: the whole path a real client takes
// (JSON, SSE, the scheduler) is measured, and nothing leaves the machine. Without --model the
// model is a configuration with random weights (speed does not depend on the values) and a
// stand-in byte tokenizer: the reference sizes of bench/reference_configs.h, or `quickstart`,
// the model of configs/tinystories.json that scripts/quickstart.sh trains. Bounded: each level
// sends clients × requests-per-client requests and stops sending new ones after --max-seconds.
//
// Columns: the bare forward pass (forward_batch decode steps of that many sequences, on a thread
// of its own as the scheduler runs it, no HTTP), concurrent tokens/s (all tokens of all clients /
// wall time) and its share of the bare figure (what HTTP, JSON and the scheduler cost),
// sequential tokens/s (the same number of requests one at a time), the speed-up over one client,
// and time to first token (p50, p99) of the concurrent run. The goal: 8 clients >= 4x
// one client on the medium configuration. No figure is asserted.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/reference_configs.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "infer/batch.h"
#include "model/model.h"
#include "model/model_io.h"
#include "serve/server.h"
#include "tokenizer/tokenizer.h"
#include "train/train_config.h"

using namespace foundry;
using Clock = std::chrono::steady_clock;

namespace {

// Bytes as tokens: id = byte value; ids above 255 decode to a letter. A stand-in for a trained
// tokenizer when the model has random weights; the model's vocabulary size is unchanged.
class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(int vocab) : vocab_(vocab) {}
  std::vector<int> encode(const std::string& text) const override {
    std::vector<int> ids;
    for (unsigned char ch : text) ids.push_back(ch);
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::string s;
    for (int id : ids) s += id < 256 && id >= 32 && id < 127 ? char(id) : char('a' + id % 26);
    return s;
  }
  int vocab_size() const override { return vocab_; }
  int bos_id() const override { return 0; }
  std::string kind() const override { return "bytes"; }
  void save_to_dir(const std::string&) const override {}

 private:
  int vocab_;
};

struct Outcome {
  int tokens = 0;
  double ttft = 0;  // seconds to the first text chunk
  bool ok = false;
};

// One streaming completion; counts the chunks that carry a token.
Outcome one_request(int port, int seed, int max_tokens) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(300);
  // As curl and node do: the request's header and body go out at once, not the body waiting
  // (Nagle's algorithm) for the server's delayed acknowledgement of the header.
  client.set_tcp_nodelay(true);
  nlohmann::json body = {{"model", "bench"},
                         {"prompt", "Once upon a time"},
                         {"max_tokens", max_tokens},
                         {"temperature", 1.0},
                         {"seed", seed},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}};
  Outcome out;
  auto start = Clock::now();
  std::string buffer;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: {", 0) != 0) continue;
      auto chunk = nlohmann::json::parse(event.substr(6), nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("usage")) out.tokens = chunk["usage"]["completion_tokens"];
      else if (out.ttft == 0) out.ttft = std::chrono::duration<double>(Clock::now() - start).count();
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error;
  out.ok = client.send(req, res, error) && res.status == 200;
  return out;
}

// The engine alone: `steps` decode steps of `batch` sequences through forward_batch, each
// sequence first prefilled with a prompt of `prompt_len` tokens (not timed), so that attention
// spans the same positions as in the requests. Runs on a thread of its own, as the scheduler's
// steps do. Tokens per second of wall time.
double bare_tokens_per_second(const Model& model, int batch, int prompt_len, int steps) {
  double result = 0;
  std::thread worker([&] {
    const int V = model.config.vocab_size;
    BatchState state = make_batch_state(model.config, std::max(batch, prompt_len));
    std::vector<KVCache> caches((size_t)batch);
    std::vector<BatchRow> rows;
    for (int b = 0; b < batch; b++) {
      caches[b] = make_kv_cache(model.config);
      rows.clear();
      for (int i = 0; i < prompt_len; i++) rows.push_back({&caches[b], (7 * i + b) % V, i + 1 == prompt_len});
      forward_batch(state, model, rows);
    }
    const auto start = Clock::now();
    for (int step = 0; step < steps; step++) {
      rows.clear();
      for (int b = 0; b < batch; b++) rows.push_back({&caches[b], (31 * step + b) % V, true});
      forward_batch(state, model, rows);
    }
    result = double(batch) * steps / std::chrono::duration<double>(Clock::now() - start).count();
  });
  worker.join();
  return result;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, (size_t)(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  std::string model_dir, config = "medium", clients_list = "1,2,4,8,16";
  int per_client = 2, max_tokens = 64, threads = 0;
  double max_seconds = 60;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_serve: %s needs a value (see the comment at the top of bench/bench_serve.cpp)\n",
                   k.c_str());
      return 2;
    }
    std::string v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--config") config = v;
    else if (k == "--clients") clients_list = v;
    else if (k == "--requests-per-client") per_client = std::max(1, std::stoi(v));
    else if (k == "--max-tokens") max_tokens = std::max(1, std::stoi(v));
    else if (k == "--max-seconds") max_seconds = std::stod(v);
    else if (k == "--threads") threads = std::max(1, std::stoi(v));
    else {
      std::fprintf(stderr, "bench_serve: unknown option %s (see the comment at the top of bench/bench_serve.cpp)\n",
                   k.c_str());
      return 2;
    }
  }
  if (threads > 0) set_num_threads(threads);
  threads = num_threads();
  std::vector<int> levels;
  std::stringstream ls(clients_list);
  for (std::string x; std::getline(ls, x, ',');) levels.push_back(std::max(1, std::min(64, std::stoi(x))));

  Model model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string what;
  if (!model_dir.empty()) {
    model = load_model(model_dir);
    tokenizer = load_tokenizer(model_dir);
    what = model_dir;
  } else {
    ModelConfig c;
    if (config == "quickstart") {
      // The model scripts/quickstart.sh trains: the "model" part of its training config.
      c = load_train_config(std::string(FOUNDRY_SOURCE_DIR) + "/configs/tinystories.json").model;
    } else if (config == "tiny" || config == "small" || config == "medium") {
      c = config == "tiny"    ? make_config(128, 4, 4, 4, 352, 64)
          : config == "small" ? make_config(256, 4, 8, 4, 704, 256)
                              : make_config(512, 8, 8, 4, 1376, 256);
    } else {
      std::fprintf(stderr, "bench_serve: --config %s: expected quickstart, tiny, small or medium\n", config.c_str());
      return 2;
    }
    model = make_model(c);
    Rng rng(1);
    init_weights(model, rng);
    tokenizer = std::make_unique<ByteTokenizer>(c.vocab_size);
    what = config + " configuration, random weights";
  }
  max_tokens = std::min(max_tokens, model.config.max_seq_len - 20);

  serve::ServerOptions o;
  o.port = 0;
  o.model_name = "bench";
  o.scheduler.max_batch = 16;
  o.scheduler.max_queue = 256;
  o.scheduler.threads = threads;
  o.max_connections = 40;
  o.limits.max_tokens = model.config.max_seq_len;

  std::printf("bench_serve: %s; %d new tokens per request, %d requests per client; %d thread(s)\n", what.c_str(),
              max_tokens, per_client, threads);
  // The bare forward pass first, while nothing else runs: what the server's steps cost at best.
  const int prompt_len = (int)tokenizer->encode("Once upon a time").size() + 1;
  std::vector<double> bare;
  for (int clients : levels)
    bare.push_back(bare_tokens_per_second(model, std::min(clients, o.scheduler.max_batch), prompt_len, max_tokens));

  serve::Server server(model, *tokenizer, o);
  server.bind();
  std::thread serving([&] { server.run(); });
  const int port = server.port();
  std::printf("serving on loopback port %d; bare = forward_batch alone at that batch size (at most %d)\n", port,
              o.scheduler.max_batch);
  std::printf("%8s %9s %10s %14s %8s %14s %7s %10s %10s\n", "clients", "requests", "bare t/s", "concurrent t/s",
              "of bare", "sequential t/s", "vs 1", "TTFT p50", "TTFT p99");
  one_request(port, 0, 4);  // warm-up
  double one_client = 0;
  for (size_t level = 0; level < levels.size(); level++) {
    const int clients = levels[level];
    const auto deadline = Clock::now() + std::chrono::duration<double>(max_seconds);
    // Concurrent: `clients` threads, each sending its requests one after another.
    std::vector<Outcome> outcomes((size_t)clients * per_client);
    auto start = Clock::now();
    std::vector<std::thread> client_threads;
    for (int c = 0; c < clients; c++) {
      client_threads.emplace_back([&, c] {
        for (int r = 0; r < per_client && Clock::now() < deadline; r++)
          outcomes[(size_t)c * per_client + r] = one_request(port, 100 + c * per_client + r, max_tokens);
      });
    }
    for (std::thread& t : client_threads) t.join();
    double concurrent_s = std::chrono::duration<double>(Clock::now() - start).count();
    long tokens = 0, failed = 0;
    std::vector<double> ttft;
    for (const Outcome& x : outcomes) {
      tokens += x.tokens;
      if (x.ok) ttft.push_back(x.ttft);
      else failed++;
    }
    // Sequential: the same number of requests, one at a time.
    start = Clock::now();
    long seq_tokens = 0;
    const auto seq_deadline = Clock::now() + std::chrono::duration<double>(max_seconds);
    for (size_t r = 0; r < outcomes.size() && Clock::now() < seq_deadline; r++)
      seq_tokens += one_request(port, 100 + (int)r, max_tokens).tokens;
    double sequential_s = std::chrono::duration<double>(Clock::now() - start).count();
    double conc = tokens / concurrent_s, seq = seq_tokens / sequential_s;
    if (clients == 1 || one_client == 0) one_client = conc;
    std::printf("%8d %9zu %10.1f %14.1f %7.0f%% %14.1f %6.2fx %9.3fs %9.3fs%s\n", clients, outcomes.size(), bare[level],
                conc, 100 * conc / bare[level], seq, conc / one_client, percentile(ttft, 0.5), percentile(ttft, 0.99),
                failed ? (" (" + std::to_string(failed) + " failed)").c_str() : "");
    std::fflush(stdout);
  }
  server.stop();
  serving.join();
  return 0;
}
