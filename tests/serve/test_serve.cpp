// `foundry serve`: the request rules (api.h), the continuous-batching scheduler against
// generate() (same tokens alone and beside others), and the program end to end through curl
// (streaming, errors with their statuses, /health, /metrics, the same text as `foundry generate`).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "engine/parallel.h"
#include "infer/generate.h"
#include "model/llama2c.h"
#include "serve/api.h"
#include "serve/scheduler.h"
#include "serve/server.h"
#include "tests/common/test_helpers.h"
#include "tokenizer/bpe.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/sentencepiece.h"

extern char** environ;

using namespace foundry;
using namespace foundry::serve;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = FOUNDRY_SOURCE_DIR;
const std::string kBin = FOUNDRY_BINARY_DIR;
const std::string kFixture = kSrc + "/tests/fixtures/llama2c";

int status_of(const std::string& body, bool chat = false) {
  try {
    parse_request(body, chat, Limits{});
    return 200;
  } catch (const ApiError& e) {
    CHECK(error_json(e)["error"]["message"].get<std::string>().size() > 0);
    return e.status;
  }
}

// Runs a shell command, returns its standard output.
std::string shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Collects a job's events until it finishes.
std::vector<int> wait_tokens(Job& job, std::string* text = nullptr, std::string* reason = nullptr) {
  std::unique_lock<std::mutex> lock(job.mu);
  job.cv.wait(lock, [&] { return job.finished; });
  std::vector<int> ids;
  for (const Job::Event& e : job.events) {
    if (e.has_token) ids.push_back(e.token.id);
    if (text) *text += e.text;
  }
  if (reason) *reason = job.finish_reason;
  return ids;
}

}  // namespace

TEST_CASE("parse_request: bad requests are 400 with a reason, good ones parse", "[serve]") {
  CHECK(status_of(R"({"model":"m","prompt":"hi"})") == 200);
  CHECK(status_of(R"({"model":"m","prompt":"hi",)") == 400);                      // malformed JSON
  CHECK(status_of(R"([1,2])") == 400);                                            // not an object
  CHECK(status_of(R"({"model":"m","prompt":"hi","frobnicate":1})") == 400);       // unknown field
  CHECK(status_of(R"({"model":"m","prompt":"hi","temperature":-0.5})") == 400);   // negative temperature
  CHECK(status_of(R"({"model":"m","prompt":"hi","temperature":1e999})") == 400);  // infinite
  CHECK(status_of(R"({"model":"m","prompt":"hi","temperature":"hot"})") == 400);  // wrong type
  CHECK(status_of(R"({"model":"m","prompt":"hi","max_tokens":0})") == 400);       // out of range
  CHECK(status_of(R"({"model":"m","prompt":"hi","max_tokens":100000})") == 400);  // beyond the limit
  CHECK(status_of(R"({"model":"m","prompt":"hi","max_tokens":1.5})") == 400);     // not an integer
  CHECK(status_of(R"({"model":"m","prompt":"hi","top_p":0})") == 400);
  CHECK(status_of(R"({"model":"m","prompt":"hi","top_k":-1})") == 400);
  CHECK(status_of(R"({"model":"m","prompt":"hi","n":2})") == 400);
  CHECK(status_of(R"({"model":"m","prompt":"hi","stop":["a","b","c","d","e"]})") == 400);
  CHECK(status_of(R"({"model":"m","prompt":"hi","stream_options":{"include_usage":true}})") == 400);
  CHECK(status_of(R"({"prompt":"hi"})") == 400);                                                  // no model
  CHECK(status_of(R"({"model":"m","prompt":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]})") == 400);  // too deep
  CHECK(status_of(R"({"model":"m","messages":[]})", true) == 400);
  CHECK(status_of(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})", true) == 400);
  CHECK(status_of(R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":3})",
                  true) == 200);
  CHECK(status_of(R"({"model":"m","prompt":"x"})", true) == 400);  // a completion field on the chat endpoint

  CompletionRequest r = parse_request(
      R"({"model":"m","prompt":["hey"],"max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":40,"seed":42,)"
      R"("stop":"\n","stream":true,"stream_options":{"include_usage":true},"logprobs":3,"user":"u","n":1})",
      false, Limits{});
  CHECK(r.prompt == "hey");
  CHECK(r.max_tokens == 7);
  CHECK(r.sampling.temperature == 0.5);
  CHECK(r.sampling.top_k == 40);
  CHECK(r.has_seed);
  CHECK(r.seed == 42);
  CHECK(r.stop == std::vector<std::string>{"\n"});
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.logprobs == 3);
  CHECK(render_plain_chat({{"system", "Be brief."}, {"user", "Hi"}}) == "system: Be brief.\nuser: Hi\nassistant:");
}

TEST_CASE("scheduler: a request's tokens are the ones generate() gives, alone and beside 1 and 7 others", "[serve]") {
  Model model = load_llama2c_checkpoint(kFixture + "/stories260K.bin");
  auto tokenizer = load_llama2c_tokenizer(kFixture + "/tok512.bin");
  const std::vector<std::string> prompts = {"Once upon a time",
                                            "The cat",
                                            "Lily and Ben went to the park",
                                            "A",
                                            "One day, a little bird",
                                            "Tom had a red ball",
                                            "She",
                                            "The sun was"};
  auto settings_of = [](size_t i) {
    return i % 2 == 0 ? SamplingSettings{0.0, 0, 1.0} : SamplingSettings{0.8, 40, 0.9};
  };
  const int max_tokens = 24;
  std::vector<std::vector<int>> alone;
  for (size_t i = 0; i < prompts.size(); i++) {
    DecodeState state = make_decode_state(model.config);
    Sampler sampler(settings_of(i), 1000 + i);
    alone.push_back(generate(model, state, sampler, prompt_ids(*tokenizer, prompts[i], model.config.max_seq_len),
                             max_tokens, stop_ids(*tokenizer))
                        .tokens);
  }
  for (size_t together : {1, 2, 8}) {
    Scheduler scheduler(model, *tokenizer, SchedulerOptions{8, 64, 16});  // small prefill budget: prompts span steps
    std::vector<std::shared_ptr<Job>> jobs;
    for (size_t i = 0; i < together; i++) {
      auto job = std::make_shared<Job>();
      job->prompt = prompt_ids(*tokenizer, prompts[i], model.config.max_seq_len);
      job->max_tokens = max_tokens;
      job->sampling = settings_of(i);
      job->seed = 1000 + i;
      job->want_probs = true;
      job->top_n = 5;
      REQUIRE(scheduler.submit(job));
      jobs.push_back(job);
    }
    for (size_t i = 0; i < together; i++) {
      INFO("request " << i << " beside " << together - 1 << " others");
      CHECK(wait_tokens(*jobs[i]) == alone[i]);
    }
    Metrics m = scheduler.metrics();
    CHECK(m.requests_finished == (long long)together);
    if (together == 8) CHECK(m.rows > m.steps);  // steps did carry several rows
  }
}

TEST_CASE("scheduler: stop strings, probabilities, a full queue, a cancelled request frees its slot", "[serve]") {
  Model model = load_llama2c_checkpoint(kFixture + "/stories260K.bin");
  auto tokenizer = load_llama2c_tokenizer(kFixture + "/tok512.bin");
  Scheduler scheduler(model, *tokenizer, SchedulerOptions{1, 1, 64});
  auto make = [&](int max_tokens) {
    auto job = std::make_shared<Job>();
    job->prompt = prompt_ids(*tokenizer, "Once upon a time", model.config.max_seq_len);
    job->max_tokens = max_tokens;
    job->sampling = {0.0, 0, 1.0};
    return job;
  };
  // The greedy text, then the same request stopped at a word in the middle of it.
  auto full = make(40);
  full->want_probs = true;
  full->top_n = 3;
  REQUIRE(scheduler.submit(full));
  std::string text, reason;
  wait_tokens(*full, &text, &reason);
  CHECK(reason == "length");
  CHECK(full->completion_tokens == 40);
  for (const Job::Event& e : full->events) {
    if (!e.has_token) continue;
    double before = 0, after = 0;
    for (const Alternative& a : e.token.top) before += a.prob;
    for (const Alternative& a : e.token.after) after += a.prob;
    CHECK(e.token.top.size() == 3);
    CHECK(before <= 1 + 1e-9);
    CHECK(after == Approx(1.0));  // greedy: all mass on one token
    CHECK(e.token.top[0].id == e.token.id);
  }
  const size_t cut = text.find(' ', 10);
  REQUIRE(cut != std::string::npos);
  const std::string stop_word = text.substr(cut, 4);
  auto stopped = make(40);
  stopped->stop = {stop_word};
  REQUIRE(scheduler.submit(stopped));
  std::string text2;
  wait_tokens(*stopped, &text2, &reason);
  CHECK(reason == "stop");
  CHECK(text2 == text.substr(0, text.find(stop_word)));

  // One slot and a queue of one: a long request runs, one waits, the third is refused.
  auto a = make(400), b = make(5), c = make(5);
  REQUIRE(scheduler.submit(a));
  // wait until a has its slot: submit() counted it in the queue, admit() takes it out
  for (int i = 0; i < 5000 && scheduler.metrics().queue_length > 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(scheduler.submit(b));
  CHECK_FALSE(scheduler.submit(c));
  CHECK(scheduler.metrics().requests_rejected == 1);
  a->cancelled = true;  // its client went away: b gets the slot and finishes
  wait_tokens(*b, nullptr, &reason);
  CHECK(reason == "length");
  CHECK(a->finished);
  CHECK(a->finish_reason == "cancelled");
  CHECK(a->completion_tokens < 400);
}

TEST_CASE("foundry serve end to end with curl: streaming, errors, metrics, same text as foundry generate", "[serve]") {
  if (shell("command -v curl").empty()) {
    WARN("skipped: curl is not installed");
    return;
  }
  const std::string foundry = kBin + "/foundry";
  const std::string dir = test::fresh_dir("test_scratch/serve_curl");
  const std::string model = dir + "/stories";
  REQUIRE(std::system(("OMP_NUM_THREADS=1 " + foundry + " import llama2c --checkpoint " + kFixture +
                       "/stories260K.bin --tokenizer " + kFixture + "/tok512.bin --out " + model + " > /dev/null")
                          .c_str()) == 0);

  // The server on any free port; it prints the address it listens on.
  const std::string log = dir + "/serve.log";
  std::vector<std::string> args = {foundry,       "serve", "--model",          model,  "--port",    "0",
                                   "--max-batch", "4",     "--max-body-bytes", "4096", "--threads", "1"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // The environment without any wait-policy setting, so the server chooses its own (below).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; e++) {
    const std::string entry = *e;
    bool policy = false;
    for (const char* name : {"OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=", "FOUNDRY_KEEP_WAIT_POLICY=", "FOUNDRY_WAIT_POLICY"})
      policy = policy || entry.rfind(name, 0) == 0;
    if (!policy) env_strings.push_back(entry);
  }
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, foundry.c_str(), &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);  // (LeakSanitizer caught the missing destroy)
  REQUIRE(spawned == 0);
  struct Stop {
    pid_t pid;
    ~Stop() {
      kill(pid, SIGTERM);
      int status = 0;
      waitpid(pid, &status, 0);
    }
  } stop{pid};
  std::string url;
  for (int i = 0; i < 300 && url.empty(); i++) {
    std::smatch m;
    std::string text = test::read_bytes(log);
    if (std::regex_search(text, m, std::regex("listening on (http://127\\.0\\.0\\.1:[0-9]+)/"))) url = m[1];
    else std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(test::read_bytes(log));
  REQUIRE(!url.empty());
  CHECK(test::read_bytes(log).find("loopback only") != std::string::npos);
  // The engine's OpenMP threads spin briefly, then sleep (engine/parallel.h, choose_wait_policy).
  // With libgomp's default of 300000 spins, one streaming client got 2.9 tokens/s where short
  // spins give 40 (bench_serve, medium, on a loaded 2-core machine): the waiting threads kept
  // the cores that the engine and the threads carrying tokens to the socket needed.
  if (have_openmp() && sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
    std::string server_env = test::read_bytes("/proc/" + std::to_string(pid) + "/environ");
    std::smatch m;
    REQUIRE(std::regex_search(server_env, m, std::regex(std::string("(^|") + '\0' + ")GOMP_SPINCOUNT=([0-9]+)")));
    CHECK(std::stol(m[2]) < 300000);
  }

  auto post = [&](const std::string& path, const std::string& body, int* status = nullptr) {
    std::ofstream(dir + "/body.json", std::ios::binary) << body;
    std::string out = shell("curl -s -N -w '\\n%{http_code}' -H 'Content-Type: application/json' --data-binary @" +
                            dir + "/body.json " + url + path);
    size_t nl = out.rfind('\n');
    if (status) *status = std::atoi(out.c_str() + nl + 1);
    return out.substr(0, nl);
  };
  CHECK(json::parse(shell("curl -s " + url + "/health"))["status"] == "ok");
  json models = json::parse(shell("curl -s " + url + "/v1/models"));
  CHECK(models["data"][0]["id"] == "stories");

  // Same seed and settings: the text `foundry generate` prints after the prompt.
  std::string gen = shell("OMP_NUM_THREADS=1 " + foundry + " generate --model " + model +
                          " --prompt 'Once upon a time' --temperature 0.8 --top-k 40 --top-p 0.9 --seed 7"
                          " --max-new-tokens 30 2>/dev/null");
  REQUIRE(gen.rfind("Once upon a time", 0) == 0);
  gen = gen.substr(std::string("Once upon a time").size());
  gen.pop_back();  // the final newline
  int status = 0;
  json r = json::parse(post("/v1/completions",
                            R"({"model":"stories","prompt":"Once upon a time","max_tokens":30,"temperature":0.8,)"
                            R"("top_k":40,"top_p":0.9,"seed":7})",
                            &status));
  CHECK(status == 200);
  CHECK(r["object"] == "text_completion");
  CHECK(r["choices"][0]["text"] == gen);
  CHECK(r["usage"]["completion_tokens"].get<int>() <= 30);
  CHECK(r["usage"]["prompt_tokens"].get<int>() > 1);

  // Streamed: the same text in SSE chunks, each with the required fields, then usage, then [DONE].
  std::string sse = post("/v1/completions",
                         R"({"model":"stories","prompt":"Once upon a time","max_tokens":30,"temperature":0.8,)"
                         R"("top_k":40,"top_p":0.9,"seed":7,"stream":true,"stream_options":{"include_usage":true}})",
                         &status);
  CHECK(status == 200);
  std::string streamed, finish;
  bool done = false, usage = false;
  std::istringstream lines(sse);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == ':') continue;
    REQUIRE(line.rfind("data: ", 0) == 0);
    std::string data = line.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    CHECK_FALSE(done);
    json chunk = json::parse(data);
    for (const char* key : {"id", "object", "created", "model", "choices"}) CHECK(chunk.contains(key));
    if (chunk.contains("usage")) {
      usage = true;
      CHECK(chunk["choices"].empty());
      continue;
    }
    streamed += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
  }
  CHECK(done);
  CHECK(usage);
  CHECK(streamed == gen);
  CHECK((finish == "length" || finish == "stop"));

  // Chat, streamed: the role first, then content, then finish_reason.
  sse = post("/v1/chat/completions",
             R"({"model":"stories","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":10,)"
             R"("stream":true,"seed":1})",
             &status);
  CHECK(status == 200);
  CHECK(sse.find(R"("role":"assistant")") != std::string::npos);
  CHECK(sse.find("chat.completion.chunk") != std::string::npos);
  CHECK(sse.find(R"("finish_reason":"length")") != std::string::npos);
  CHECK(sse.find("data: [DONE]") != std::string::npos);

  // Every bad request: its status and an OpenAI-shaped error.
  std::string long_prompt(3000, 'x');
  std::string huge_body = R"({"model":"stories","prompt":")" + std::string(5000, 'a') + R"("})";
  const std::vector<std::tuple<std::string, std::string, int>> bad = {
      {"/v1/completions", R"({"model":"stories","prompt":"hi",)", 400},
      {"/v1/completions", R"({"model":"stories","prompt":"hi","colour":"red"})", 400},
      {"/v1/completions", R"({"model":"stories","prompt":")" + long_prompt + R"("})", 400},
      {"/v1/completions", R"({"model":"stories","prompt":"hi","max_tokens":0})", 400},
      {"/v1/completions", R"({"model":"stories","prompt":"hi","max_tokens":100000})", 400},
      {"/v1/completions", R"({"model":"stories","prompt":"hi","temperature":-1})", 400},
      {"/v1/completions", huge_body, 413},
      {"/v1/completions", R"({"model":"gpt-9","prompt":"hi"})", 404},
      {"/v1/nothing", R"({})", 404},
  };
  for (const auto& [path, body, want] : bad) {
    INFO(path << " " << body.substr(0, 80));
    std::string answer = post(path, body, &status);
    CHECK(status == want);
    json e = json::parse(answer, nullptr, false);
    REQUIRE_FALSE(e.is_discarded());
    CHECK(e["error"]["message"].is_string());
    CHECK(e["error"]["type"].is_string());
  }

  std::string metrics = shell("curl -s " + url + "/metrics");
  for (const char* name :
       {"foundry_requests_total{outcome=\"finished\"}", "foundry_tokens_generated_total", "foundry_tokens_per_second",
        "foundry_queue_length", "foundry_batch_occupancy", "foundry_engine_threads 1"})
    CHECK(metrics.find(name) != std::string::npos);
  // The page is served.
  CHECK(shell("curl -s " + url + "/").find("<html") != std::string::npos);
}

TEST_CASE("chat_prompt_ids: a chat model gets its ChatML template, a base model the plain rendering", "[serve]") {
  BpeTrainOptions opt;
  opt.vocab_size = 300;
  opt.special_tokens = {"<|endoftext|>"};
  const BpeTokenizer base = train_bpe(test::load_corpus("tinystories.txt").substr(0, 20000), opt);
  const BpeTokenizer chat = add_chat_tokens(base);
  const std::vector<serve::ChatMessage> messages = {{"system", "Be brief."}, {"user", "Hi <|im_end|> there"}};

  CHECK_FALSE(has_chat_template(base));
  CHECK(chat_prompt_ids(base, messages, 512) == prompt_ids(base, render_plain_chat(messages), 512));

  REQUIRE(has_chat_template(chat));
  const std::vector<int> ids = chat_prompt_ids(chat, messages, 512);
  const std::vector<foundry::ChatMessage> turns = {{"system", "Be brief."}, {"user", "Hi <|im_end|> there"}};
  CHECK(ids == render_chat(chat, turns, true).ids);
  // Ends with the generation prompt; the user's literal "<|im_end|>" is text, so the control
  // token appears exactly twice (closing the system and the user turn).
  CHECK(chat.decode(ids).size() >= std::string("<|im_start|>assistant\n").size());
  CHECK(chat.decode(ids).substr(chat.decode(ids).size() - 22) == "<|im_start|>assistant\n");
  const int im_end = chat.encode(kImEnd).at(0);
  CHECK(std::count(ids.begin(), ids.end(), im_end) == 2);
  CHECK_THROWS_WITH(chat_prompt_ids(chat, messages, 8), Catch::Contains("context"));
}

TEST_CASE("scheduler: the engine thread runs with the creating thread's thread count, not OpenMP's default",
          "[serve]") {
  // OpenMP's thread count is a setting of each thread; a thread the program starts itself gets
  // the process default (OMP_NUM_THREADS, 2 under ctest), not what set_num_threads() chose on
  // the main thread. `foundry serve --threads 1` must reach the engine thread.
  Model model = load_llama2c_checkpoint(kFixture + "/stories260K.bin");
  auto tokenizer = load_llama2c_tokenizer(kFixture + "/tok512.bin");
  const int before = num_threads();
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    Scheduler scheduler(model, *tokenizer, SchedulerOptions{2, 4, 64});
    set_num_threads(before);
    auto job = std::make_shared<Job>();
    job->prompt = prompt_ids(*tokenizer, "Once upon a time", model.config.max_seq_len);
    job->max_tokens = 3;
    REQUIRE(scheduler.submit(job));
    wait_tokens(*job);
    CHECK(scheduler.metrics().threads == (have_openmp() ? threads : 1));
  }
}

TEST_CASE("server: a connection's socket has TCP_NODELAY, so each streamed token leaves at once", "[serve]") {
  Model model = load_llama2c_checkpoint(kFixture + "/stories260K.bin");
  auto tokenizer = load_llama2c_tokenizer(kFixture + "/tok512.bin");
  ServerOptions o;
  o.port = 0;
  o.model_name = "stories";
  Server server(model, *tokenizer, o);
  server.bind();
  std::thread serving([&] { server.run(); });
  struct Join {
    Server& server;
    std::thread& thread;
    ~Join() {
      server.stop();
      thread.join();
    }
  } join{server, serving};

  // A client connection that stays open (keep-alive) after one answer.
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(client >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)server.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = false;
  for (int i = 0; i < 200 && !connected; i++) {  // until run() listens
    connected = connect(client, (sockaddr*)&address, sizeof address) == 0;
    if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(connected);
  const std::string request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(send(client, request.data(), request.size(), 0) == (ssize_t)request.size());
  char answer[512];
  REQUIRE(recv(client, answer, sizeof answer, 0) > 0);
  CHECK(std::string(answer, 12) == "HTTP/1.1 200");

  // The server's end of that connection is a socket of this process: local port = the server's
  // port, and a peer (the listening socket has none).
  int server_ends = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_in local{}, peer{};
    socklen_t length = sizeof local, peer_length = sizeof peer;
    if (getsockname(fd, (sockaddr*)&local, &length) != 0 || local.sin_family != AF_INET) continue;
    if (ntohs(local.sin_port) != server.port() || getpeername(fd, (sockaddr*)&peer, &peer_length) != 0) continue;
    int nodelay = 0;
    socklen_t size = sizeof nodelay;
    REQUIRE(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &size) == 0);
    CHECK(nodelay != 0);
    server_ends++;
  }
  CHECK(server_ends == 1);
  close(client);
}

TEST_CASE("server: the listening socket queues a burst of connections (backlog above cpp-httplib's 5)", "[serve]") {
  // With cpp-httplib's backlog of 5, the 7th of several clients connecting at once had its
  // handshake dropped and retried a second later (time to first token: 1 s). TCP_INFO of a
  // listening socket reports its backlog in tcpi_sacked (Linux).
  Model model = load_llama2c_checkpoint(kFixture + "/stories260K.bin");
  auto tokenizer = load_llama2c_tokenizer(kFixture + "/tok512.bin");
  ServerOptions o;
  o.port = 0;
  Server server(model, *tokenizer, o);
  server.bind();
  int listeners = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_in local{}, peer{};
    socklen_t length = sizeof local, peer_length = sizeof peer;
    if (getsockname(fd, (sockaddr*)&local, &length) != 0 || local.sin_family != AF_INET) continue;
    if (ntohs(local.sin_port) != server.port() || getpeername(fd, (sockaddr*)&peer, &peer_length) == 0) continue;
    tcp_info info{};
    socklen_t size = sizeof info;
    REQUIRE(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0);
    CHECK(info.tcpi_state == TCP_LISTEN);
    CHECK(info.tcpi_sacked >= 64);  // SOMAXCONN, capped by net.core.somaxconn (4096 by default)
    listeners++;
  }
  CHECK(listeners == 1);
}
