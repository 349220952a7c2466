// foundry serve --model DIR [--host 127.0.0.1] [--port 8080] [--max-batch N] [--threads N]
//
// Loads the model once, then serves it over HTTP (serve/server.h): OpenAI-compatible
// completions and chat completions, streamed as Server-Sent Events, /health, /metrics and the
// playground page at /. Stops cleanly on Ctrl-C (SIGINT) or SIGTERM.
#include <unistd.h>

#include <pthread.h>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/parallel.h"
#include "model/model_io.h"
#include "serve/server.h"
#include "tokenizer/tokenizer.h"
#include "train/prepare.h"

namespace foundry::cli {

int cmd_serve(int argc, char** argv) {
  cxxopts::Options options(
      "foundry serve",
      "Serve a model over HTTP: an OpenAI-compatible API with streaming, and a playground page.\n\n"
      "  foundry serve --model runs/tiny/model            then open http://127.0.0.1:8080/\n"
      "  curl http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \\\n"
      "       -d '{\"model\": \"model\", \"prompt\": \"Once upon a time\", \"max_tokens\": 20}'\n\n"
      "Endpoints: POST /v1/completions, POST /v1/chat/completions (\"stream\": true for Server-Sent\n"
      "Events), GET /v1/models, GET /health, GET /metrics (Prometheus text), GET / (the playground).\n"
      "Requests decode together (continuous batching, up to --max-batch at once); a request's tokens\n"
      "do not depend on what runs beside it, and with the same seed and settings they are the\n"
      "tokens `foundry generate` prints.\n\n"
      "It listens on 127.0.0.1 (this machine only) unless --host says otherwise. There is no\n"
      "authentication: whoever can reach the port can use the model.");
  options.add_options()("model", "model directory (config.json, model.safetensors, tokenizer)",
                        cxxopts::value<std::string>())("host", "address to listen on",
                                                       cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0: any free port, printed at start)", cxxopts::value<int>()->default_value("8080"))(
      "name", "the model's name in the API (default: the model directory's name)", cxxopts::value<std::string>())(
      "max-batch", "sequences decoded together", cxxopts::value<int>()->default_value("8"))(
      "max-queue", "requests waiting for a slot before new ones get 503", cxxopts::value<int>()->default_value("64"))(
      "max-tokens", "most tokens one request may generate (default: the model's context)", cxxopts::value<int>())(
      "max-connections", "connections served at once", cxxopts::value<int>()->default_value("32"))(
      "max-body-bytes", "largest request body accepted", cxxopts::value<size_t>()->default_value("1048576"))(
      "threads", "threads to use, at least 1 (default: OMP_NUM_THREADS or all cores)", cxxopts::value<int>())(
      "h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::printf("%s\n", options.help().c_str());
    return 0;
  }
  if (!args.count("model")) throw UsageError("--model DIR is required (see --help)");
  if (args.count("threads")) set_num_threads(args["threads"].as<int>());
  auto at_least = [&](const char* name, int lo, int hi) {
    int v = args[name].as<int>();
    if (v < lo || v > hi)
      throw UsageError(std::string("--") + name + " " + std::to_string(v) + ": expected " + std::to_string(lo) +
                       " .. " + std::to_string(hi));
    return v;
  };
  serve::ServerOptions o;
  o.host = args["host"].as<std::string>();
  o.port = at_least("port", 0, 65535);
  o.scheduler.max_batch = at_least("max-batch", 1, 256);
  o.scheduler.max_queue = at_least("max-queue", 0, 100000);
  o.max_connections = at_least("max-connections", 1, 1024);
  o.max_body_bytes = args["max-body-bytes"].as<size_t>();
  if (o.max_body_bytes < 64 || o.max_body_bytes > (size_t(1) << 30))
    throw UsageError("--max-body-bytes " + std::to_string(o.max_body_bytes) + ": expected 64 .. 1073741824");

  const std::string dir = args["model"].as<std::string>();
  check_model_dir(dir);
  Model model = load_model(dir);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(dir);
  check_model_dir_vocab(dir, model.config.vocab_size, tokenizer->vocab_size());
  const int context = model.config.max_seq_len;
  o.limits.max_tokens = args.count("max-tokens") ? at_least("max-tokens", 1, context) : context;
  o.model_name = args.count("name") ? args["name"].as<std::string>()
                                    : std::filesystem::absolute(dir).lexically_normal().filename().string();
  if (o.model_name.empty()) o.model_name = "model";

  // Ctrl-C and SIGTERM are taken by a thread that waits for them and stops the server; every
  // other thread (those the server starts inherit this mask) never sees them. A client that
  // hangs up mid-write must not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  serve::Server server(model, *tokenizer, o);
  server.bind();
  std::printf("foundry serve: model '%s' (%s); listening on http://%s:%d/ (%s); up to %d sequences at once; %s\n",
              o.model_name.c_str(), dir.c_str(), o.host.c_str(), server.port(),
              o.host == "127.0.0.1" || o.host == "localhost" || o.host == "::1"
                  ? "loopback only: this machine"
                  : "reachable from the network, without authentication",
              o.scheduler.max_batch, threads_phrase(num_threads()).c_str());
  std::fflush(stdout);
  std::atomic<bool> signalled{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    std::fprintf(stderr, "foundry serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server.stop();
  });
  server.run();
  // run() also returns when listening fails; wake the waiter (blocked in sigwait) so it can be joined.
  if (!signalled) kill(getpid(), SIGTERM);
  waiter.join();
  return 0;
}

}  // namespace foundry::cli
