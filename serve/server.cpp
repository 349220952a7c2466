// The HTTP server of `foundry serve` on cpp-httplib. See server.h for the routes.
#include "serve/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <random>
#include <sstream>

#include "infer/generate.h"
#include "tokenizer/chat_template.h"

namespace foundry::serve {

using nlohmann::json;

namespace {

// Set on the accepting thread while it answers a connection that found every worker busy and
// the waiting line full; the pre-routing handler then answers 503 without doing any work.
thread_local bool t_overloaded = false;

// cpp-httplib's own thread pool queues accepted connections without limit. This one has a
// fixed number of workers and a bounded line; a connection beyond the line is answered at once
// (503) on the accepting thread, so a flood costs a short answer each, not unbounded memory.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int workers, int max_waiting) : max_waiting_(max_waiting) {
    for (int i = 0; i < workers; i++) threads_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if ((int)jobs_.size() < max_waiting_) {
        jobs_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    t_overloaded = true;
    fn();  // reads the request, answers 503, closes the connection
    t_overloaded = false;
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and nothing left to finish
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }
  int max_waiting_;
  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> jobs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(json_text(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, error_json(e)); }

std::string new_id(const char* prefix) {
  static std::atomic<unsigned long long> counter{0};
  std::ostringstream id;
  id << prefix << std::hex << std::chrono::system_clock::now().time_since_epoch().count() << "x" << ++counter;
  return id.str();
}

// A seed for a request that gave none: different for every request, as OpenAI's API behaves.
uint64_t fresh_seed() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return gen();
}

}  // namespace

struct Server::Impl {
  const Model& model;
  const Tokenizer& tokenizer;
  ServerOptions options;
  Scheduler scheduler;
  httplib::Server http;
  int bound_port = -1;
  int listen_fd = -1;  // the listening socket, once bind() made it
  long long created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  Impl(const Model& m, const Tokenizer& t, ServerOptions o)
      : model(m), tokenizer(t), options(std::move(o)), scheduler(m, t, options.scheduler) {}

  // How a conversation becomes the prompt: chat_prompt_ids (api.h) uses the model's ChatML
  // template when its tokenizer has one (a `foundry sft` model), else the plain rendering.
  bool has_chat_template() const { return serve::has_chat_template(tokenizer); }

  void handle_completion(const httplib::Request& req, httplib::Response& res, bool chat);
  void routes();
};

// ANCHOR: handle_completion
void Server::Impl::handle_completion(const httplib::Request& http_req, httplib::Response& res, bool chat) {
  // parse → validate → tokenize → queue; every failure before the queue is a 4xx with a reason.
  CompletionRequest req = parse_request(http_req.body, chat, options.limits);
  if (req.model != options.model_name)
    throw ApiError(404, "The model '" + req.model + "' does not exist; this server has '" + options.model_name + "'",
                   "model", "model_not_found");
  const bool templated = chat && has_chat_template();
  const int context = model.config.max_seq_len;
  auto job = std::make_shared<Job>();
  try {
    job->prompt = chat ? chat_prompt_ids(tokenizer, req.messages, context) : prompt_ids(tokenizer, req.prompt, context);
  } catch (const std::invalid_argument& e) {
    throw ApiError(400, e.what(), chat ? "messages" : "prompt", "context_length_exceeded");
  }
  if ((int)job->prompt.size() >= context) {
    throw ApiError(400,
                   "the prompt is " + std::to_string(job->prompt.size()) + " tokens, which leaves no room in the " +
                       std::to_string(context) + "-token context for a completion",
                   chat ? "messages" : "prompt", "context_length_exceeded");
  }
  job->max_tokens = req.max_tokens;
  job->sampling = req.sampling;
  job->seed = req.has_seed ? req.seed : fresh_seed();
  job->stop = req.stop;
  if (templated) job->stop.push_back(kImEnd);  // the end of the assistant's turn ends the answer
  job->top_n = std::max(req.logprobs, req.foundry_probs);
  job->want_probs = req.logprobs >= 0 || req.foundry_probs > 0;
  if (!scheduler.submit(job))
    throw ApiError(503,
                   "the server is busy: " + std::to_string(options.scheduler.max_queue) +
                       " requests are already waiting; try again shortly",
                   "", "server_overloaded", "server_error");

  const std::string id = new_id(chat ? "chatcmpl-" : "cmpl-");
  const int prompt_tokens = (int)job->prompt.size();
  auto usage = [job, prompt_tokens] {
    return json{{"prompt_tokens", prompt_tokens},
                {"completion_tokens", job->completion_tokens},
                {"total_tokens", prompt_tokens + job->completion_tokens}};
  };
  // The fields every answer and every chunk carries.
  json head = {{"id", id},
               {"object", chat ? "chat.completion" : "text_completion"},
               {"created", created},
               {"model", options.model_name}};

  if (!req.stream) {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->finished; });
    if (job->finish_reason == "error") throw ApiError(500, job->error, "", "", "server_error");
    std::string content;
    std::vector<TokenInfo> tokens;
    for (Job::Event& e : job->events) {
      content += e.text;
      if (e.has_token) tokens.push_back(std::move(e.token));
    }
    json choice = {{"index", 0}, {"finish_reason", job->finish_reason}, {"logprobs", nullptr}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", content}};
      if (req.logprobs >= 0) choice["logprobs"] = chat_logprobs(tokens);
    } else {
      choice["text"] = content;
      if (req.logprobs >= 0) choice["logprobs"] = completion_logprobs(tokens, 0);
    }
    if (req.foundry_probs > 0) choice["foundry"] = foundry_tokens(tokens);
    json body = head;
    body["choices"] = json::array({choice});
    body["usage"] = usage();
    lock.unlock();
    send_json(res, 200, body);
    return;
  }

  // Streaming: Server-Sent Events, one "data: {chunk}\n\n" per piece of text, then the last
  // chunk with finish_reason, the usage chunk when asked for, and "data: [DONE]".
  head["object"] = chat ? "chat.completion.chunk" : "text_completion";
  struct StreamState {
    bool started = false;
    size_t offset = 0;  // bytes of text sent so far (completion logprobs' text_offset)
  };
  auto state = std::make_shared<StreamState>();
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, head, chat, req, state, usage](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& chunk) {
          const std::string line = "data: " + json_text(chunk) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        auto chunk_with = [&](json choice) {
          json c = head;
          choice["index"] = 0;
          c["choices"] = json::array({choice});
          return c;
        };
        std::deque<Job::Event> events;
        bool finished;
        {
          std::unique_lock<std::mutex> lock(job->mu);
          job->cv.wait_for(lock, std::chrono::seconds(1), [&] { return !job->events.empty() || job->finished; });
          events.swap(job->events);
          finished = job->finished;
        }
        bool ok = true;
        if (chat && !state->started) {
          ok = send(chunk_with({{"delta", {{"role", "assistant"}, {"content", ""}}},
                                {"logprobs", nullptr},
                                {"finish_reason", nullptr}}));
          state->started = true;
        }
        if (events.empty() && !finished) ok = ok && sink.write(": waiting\n\n", 11);  // notices a gone client
        for (Job::Event& e : events) {
          if (!ok) break;
          if (e.text.empty() && !e.has_token) continue;
          std::vector<TokenInfo> one;
          if (e.has_token) one.push_back(e.token);
          json choice = {{"finish_reason", nullptr}, {"logprobs", nullptr}};
          if (chat) {
            choice["delta"] = {{"content", e.text}};
            if (req.logprobs >= 0 && e.has_token) choice["logprobs"] = chat_logprobs(one);
          } else {
            choice["text"] = e.text;
            if (req.logprobs >= 0 && e.has_token) choice["logprobs"] = completion_logprobs(one, state->offset);
          }
          if (req.foundry_probs > 0 && e.has_token) choice["foundry"] = foundry_tokens(one);
          state->offset += e.text.size();
          ok = send(chunk_with(choice));
        }
        if (ok && finished) {
          if (job->finish_reason == "error") {
            ok = send(error_json(ApiError(500, job->error, "", "", "server_error")));
          } else {
            json last = {{"finish_reason", job->finish_reason}, {"logprobs", nullptr}};
            if (chat) last["delta"] = json::object();
            else last["text"] = "";
            ok = send(chunk_with(last));
            if (ok && req.include_usage) {
              json u = head;
              u["choices"] = json::array();
              u["usage"] = usage();
              ok = send(u);
            }
          }
          if (ok) ok = sink.write("data: [DONE]\n\n", 14);
          if (ok) sink.done();
        }
        if (!ok) job->cancelled = true;  // the client has gone: its slot is freed at the next step
        return ok;
      },
      [job](bool) { job->cancelled = true; });  // the response is over, however it ended
}
// ANCHOR_END: handle_completion

void Server::Impl::routes() {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(10);
  http.set_write_timeout(10);
  http.set_keep_alive_max_count(100);
  http.set_keep_alive_timeout(5);
  // Every token is a small write (one SSE event). With Nagle's algorithm a small write waits
  // while an earlier one is unacknowledged, and the client's TCP delays its acknowledgement
  // (up to 40 ms on Linux) hoping to piggyback it on data it never sends: the stream would
  // arrive in bursts. TCP_NODELAY sends each event when it is written.
  http.set_tcp_nodelay(true);
  // cpp-httplib listens with a backlog of 5: the kernel holds at most 6 connections that the
  // accepting thread has not taken yet, and drops the handshake of the next ones, whose clients
  // try again only a second later. Eight clients connecting at once would wait a second for
  // their first token. The socket is remembered here and its backlog raised after bind().
  http.set_socket_options([this](int fd) {
    httplib::default_socket_options(fd);
    listen_fd = fd;
  });
  const int workers = options.max_connections, waiting = options.max_waiting_connections;
  http.new_task_queue = [workers, waiting] { return new BoundedPool(workers, waiting); };

  http.set_pre_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (!t_overloaded) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(503, "the server has too many connections; try again shortly", "", "server_overloaded",
                             "server_error"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors httplib answers by itself (unknown path, body too large, ...) get an OpenAI-shaped body.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP " + std::to_string(res.status);
    std::string code;
    if (res.status == 404) message = "Unknown endpoint: " + req.method + " " + req.path, code = "unknown_url";
    if (res.status == 413) message = "the request body is larger than this server accepts", code = "body_too_large";
    if (res.status == 400) message = "the request could not be read as HTTP", code = "bad_request";
    send_error(res, ApiError(res.status, message, "", code));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what(), "", "", "server_error"));
    } catch (...) {
      send_error(res, ApiError(500, "internal error", "", "", "server_error"));
    }
  });

  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { handle_completion(req, res, false); });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { handle_completion(req, res, true); });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json m = {{"id", options.model_name},
              {"object", "model"},
              {"created", created},
              {"owned_by", "foundry"},
              {"context_length", model.config.max_seq_len},
              {"max_tokens", options.limits.max_tokens},
              {"chat_template", has_chat_template()}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({m})}});
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    Metrics m = scheduler.metrics();
    std::ostringstream out;
    auto metric = [&](const char* name, const char* type, const char* help, auto value) {
      out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
          << name << " " << value << "\n";
    };
    out << "# HELP foundry_requests_total Requests by outcome.\n# TYPE foundry_requests_total counter\n";
    out << "foundry_requests_total{outcome=\"finished\"} " << m.requests_finished << "\n";
    out << "foundry_requests_total{outcome=\"cancelled\"} " << m.requests_cancelled << "\n";
    out << "foundry_requests_total{outcome=\"rejected\"} " << m.requests_rejected << "\n";
    metric("foundry_prompt_tokens_total", "counter", "Prompt tokens prefilled.", m.prompt_tokens);
    metric("foundry_tokens_generated_total", "counter", "Tokens generated.", m.tokens_generated);
    metric("foundry_tokens_per_second", "gauge", "Tokens generated per second of engine work.",
           m.busy_seconds > 0 ? m.tokens_generated / m.busy_seconds : 0.0);
    metric("foundry_steps_total", "counter", "Batched forward passes.", m.steps);
    metric("foundry_rows_per_step", "gauge", "Mean rows (positions) per batched forward pass.",
           m.steps > 0 ? double(m.rows) / m.steps : 0.0);
    metric("foundry_queue_length", "gauge", "Requests waiting for a slot.", m.queue_length);
    metric("foundry_active_sequences", "gauge", "Sequences in the batch.", m.active);
    metric("foundry_batch_occupancy", "gauge", "Active sequences / slots.",
           m.max_batch > 0 ? double(m.active) / m.max_batch : 0.0);
    metric("foundry_engine_threads", "gauge", "Threads of the engine's batched forward pass.", m.threads);
    res.set_content(out.str(), "text/plain; version=0.0.4");
  });
  for (const char* path : {"/", "/playground.js", "/playground.css"}) {
    http.Get(path, [](const httplib::Request& req, httplib::Response& res) {
      const auto* asset = playground_asset(req.path == "/" ? "/index.html" : req.path);
      if (asset) res.set_content(asset->first, asset->second);
    });
  }
}

Server::Server(const Model& model, const Tokenizer& tokenizer, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, tokenizer, std::move(options))) {
  impl_->routes();
}

Server::~Server() {
  stop();
  impl_->scheduler.stop();
}

void Server::bind() {
  const ServerOptions& o = impl_->options;
  impl_->bound_port =
      o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (impl_->bound_port < 0)
    throw std::runtime_error("serve: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             " (in use, or not an address of this machine)");
  // Calling listen() again on a listening socket sets its backlog (the kernel caps it at
  // net.core.somaxconn).
  if (::listen(impl_->listen_fd, SOMAXCONN) != 0)
    throw std::runtime_error("serve: cannot set the listening queue of " + o.host + ":" + std::to_string(o.port));
}

int Server::port() const { return impl_->bound_port; }

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

}  // namespace foundry::serve
