// `foundry serve`: the HTTP side. Routes, bounds, Server-Sent Events; the model work is the
// Scheduler's (scheduler.h), the request rules are api.h's.
//
//   GET  /                      the playground (serve/playground/: plain HTML, JS and CSS)
//   GET  /health                {"status": "ok"}
//   GET  /metrics               Prometheus text: requests, tokens, tokens/s, queue, batch occupancy
//   GET  /v1/models             the one model this server holds
//   POST /v1/completions        text completion, streamed (SSE) or not
//   POST /v1/chat/completions   chat completion, streamed (SSE) or not
//
// Bounded everywhere: the body size, max_tokens, the queue of waiting requests, the number of
// connections being served and waiting. Binds to 127.0.0.1 unless told otherwise: anyone who
// can reach the port can use the model, and there is no authentication.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "serve/api.h"
#include "serve/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace foundry::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (port() tells which)
  std::string model_name = "model";  // what /v1/models lists and requests must name
  Limits limits;
  SchedulerOptions scheduler;
  int max_connections = 32;          // connections served at once (one thread each)
  int max_waiting_connections = 64;  // accepted connections waiting for a thread; beyond: 503
  size_t max_body_bytes = 1 << 20;   // larger bodies get 413
};

class Server {
 public:
  Server(const Model& model, const Tokenizer& tokenizer, ServerOptions options);
  ~Server();
  // Binds the socket; throws std::runtime_error naming host and port when it cannot.
  void bind();
  int port() const;
  // Serves until stop() (from another thread or a signal handler's thread).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The playground's files, compiled into the program: (content, MIME type) by path, or null.
const std::pair<std::string, std::string>* playground_asset(const std::string& path);

}  // namespace foundry::serve
