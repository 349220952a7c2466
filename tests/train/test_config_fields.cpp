// Config fields declared once (model/config_fields.h): the generated parts agree with the
// declarations, and the readers of config.json, training configs and train_state.json refuse
// hostile values with short, clear messages (no truncation, no huge allocation, no deep recursion).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/parallel.h"
#include "model/config.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/token_file.h"
#include "train/train_config.h"
#include "train/trainer.h"

using namespace foundry;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string source(const std::string& rel) { return std::string(FOUNDRY_SOURCE_DIR) + "/" + rel; }

std::string scratch(const std::string& name) {
  const fs::path dir = fs::path(FOUNDRY_BINARY_DIR) / "test_scratch" / "config_fields" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// About 200 KB of nested arrays: deep enough to overflow the stack of any recursive printer.
std::string deep_array() { return std::string(100000, '[') + std::string(100000, ']'); }

// The message of what `f` throws (any exception), or "" when it does not throw.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

nlohmann::json tiny_model_json() { return read_json_file(source("configs/tiny.json")).at("model"); }

// The text between "<!-- generated: NAME -->" and the next "<!-- end generated -->".
std::string generated_block(const std::string& text, const std::string& name) {
  const std::string open = "<!-- generated: " + name + " -->\n", close = "<!-- end generated -->";
  const size_t a = text.find(open);
  if (a == std::string::npos) return "(no marker " + open + ")";
  const size_t b = text.find(close, a);
  if (b == std::string::npos) return "(no end marker)";
  return text.substr(a + open.size(), b - a - open.size());
}

}  // namespace

// With FOUNDRY_UPDATE_README=1 in the environment this test first writes the generated tables
// into configs/README.md (the generator), then checks them like any other run.
TEST_CASE("configs/README.md's field tables are what the declarations generate", "[train][config][fields]") {
  const std::string model = fields_markdown(model_config_fields(), false);
  const std::string training = fields_markdown(training_config_fields(), true);
  if (const char* update = std::getenv("FOUNDRY_UPDATE_README"); update && std::string(update) == "1") {
    std::string text = read_text(source("configs/README.md"));
    for (const auto& [name, table] :
         {std::pair<std::string, std::string>{"model fields", model}, {"training fields", training}}) {
      const std::string open = "<!-- generated: " + name + " -->\n";
      const size_t a = text.find(open);
      REQUIRE(a != std::string::npos);
      const size_t b = text.find("<!-- end generated -->", a);
      REQUIRE(b != std::string::npos);
      text.replace(a + open.size(), b - a - open.size(), table);
    }
    write_text(source("configs/README.md"), text);
  }
  const std::string readme = read_text(source("configs/README.md"));
  INFO("configs/README.md should hold, between its markers (FOUNDRY_UPDATE_README=1 writes them):\n"
       << model << "\nand\n"
       << training);
  CHECK(generated_block(readme, "model fields") == model);
  CHECK(generated_block(readme, "training fields") == training);
  // Every field has a row, with its default.
  for (const auto& f : training_config_fields()) CHECK_THAT(training, Contains("| `" + std::string(f.name) + "` |"));
  CHECK_THAT(training, Contains("| `lr` | number > 0 | 0.001 |"));
  CHECK_THAT(model, Contains("| `n_layers` | int in [1, 1024] |"));
}

TEST_CASE("the declarations drive to_json, the settings print-out and --set", "[train][config][fields]") {
  TrainConfig c = load_train_config(source("configs/tiny.json"));
  const nlohmann::json model = to_json(c.model), training = to_json(c.training);
  CHECK(model.size() == model_config_fields().size());
  CHECK(training.size() == training_config_fields().size());
  std::string all;
  for (const std::string& line : settings_lines(c)) {
    CHECK(line.size() <= 100);
    all += line + "\n";
  }
  for (const auto& f : model_config_fields()) CHECK_THAT(all, Contains("model." + std::string(f.name) + "="));
  for (const auto& f : training_config_fields()) CHECK_THAT(all, Contains("training." + std::string(f.name) + "="));
  CHECK_THAT(all, Contains("training.sampling=\"random\""));
  CHECK_THAT(all, Contains("model.dim=128"));

  // A string field takes the text as it is, even when it would parse as JSON.
  nlohmann::json j = read_json_file(source("configs/tiny.json"));
  apply_override(j, "training.sampling=123");
  CHECK(j["training"]["sampling"] == "123");
  CHECK_THAT(error_of([&] { train_config_from_json(j, "cfg.json"); }),
             Contains("training.sampling = \"123\": expected \"random\" or \"sequential\""));
  j = read_json_file(source("configs/tiny.json"));
  j["model"] = 5;
  CHECK_THAT(error_of([&] { apply_override(j, "model.dim=8"); }), Contains("no \"model\" section"));
}

// The declared ranges fit the members' types, so a value that passed its range check converts
// exactly.
template <typename Config>
void require_ranges_fit(const std::vector<ConfigField<Config>>& fields) {
  for (const ConfigField<Config>& f : fields) {
    INFO(f.name);
    std::visit(
        [&](auto member) {
          using T = std::decay_t<decltype(std::declval<Config>().*member)>;
          if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_unsigned_v<T>) {
            CHECK(f.range.lo >= static_cast<double>(std::numeric_limits<T>::min()));
            CHECK(f.range.hi <= static_cast<double>(std::numeric_limits<T>::max()));
            CHECK(std::isfinite(f.range.hi));
          }
        },
        f.member);
  }
}

TEST_CASE("JSON integers are range-checked, never cast", "[train][config][fields]") {
  require_ranges_fit(model_config_fields());
  require_ranges_fit(training_config_fields());
  // 4294967312 = 2^32 + 16: a cast to int would make it 16, a working model.
  nlohmann::json m = tiny_model_json();
  m["dim"] = 4294967312ull;
  CHECK_THAT(error_of([&] { model_config_from_json(m, "config.json"); }),
             Contains("config.json: field 'dim' = 4294967312: must be a positive integer, at most 65536"));
  m = tiny_model_json();
  m["vocab_size"] = -4294967296ll;
  CHECK_THAT(error_of([&] { model_config_from_json(m, "config.json"); }),
             Contains("field 'vocab_size' = -4294967296: must be a positive integer"));

  nlohmann::json t = read_json_file(source("configs/tiny.json"));
  t["training"]["batch_size"] = 4294967308ull;
  CHECK_THAT(error_of([&] { train_config_from_json(t, "cfg.json"); }),
             Contains("cfg.json: training.batch_size = 4294967308: must be a positive integer, at most 65536"));
  t = read_json_file(source("configs/tiny.json"));
  t["training"]["max_steps"] = 18446744073709551615ull;
  CHECK_THAT(error_of([&] { train_config_from_json(t, "cfg.json"); }),
             Contains("training.max_steps = 18446744073709551615: must be a positive integer, at most 1000000000000"));
  t = read_json_file(source("configs/tiny.json"));
  t["training"]["seed"] = 18446744073709551615ull;  // every 64-bit seed is fine
  CHECK(train_config_from_json(t, "cfg.json").training.seed == 18446744073709551615ull);
}

TEST_CASE("huge sizes are refused before anything is allocated", "[train][config][fields]") {
  const std::string dir = scratch("huge");
  struct Case {
    const char* field;
    long long value;
    const char* message;
  };
  const Case cases[] = {
      {"n_layers", 2147483647, "field 'n_layers' = 2147483647: must be a positive integer, at most 1024"},
      {"max_seq_len", 100000000, "field 'max_seq_len' = 100000000: must be a positive integer, at most 131072"},
      {"vocab_size", 100000000, "field 'vocab_size' = 100000000: must be a positive integer, at most 1048576"},
      {"hidden_dim", 2147483647, "field 'hidden_dim' = 2147483647: must be a positive integer, at most 262144"},
  };
  for (const Case& c : cases) {
    INFO(c.field);
    nlohmann::json m = tiny_model_json();
    m[c.field] = c.value;
    write_text(dir + "/config.json", m.dump());
    CHECK_THAT(error_of([&] { load_model_config(dir + "/config.json"); }), Contains(c.message));
  }
  // A config built in code gets the same limits from make_model, before it allocates.
  ModelConfig big;
  big.n_layers = 2147483647;
  CHECK_THAT(error_of([&] { make_model(big); }),
             Contains("model config: n_layers = 2147483647: must be a positive integer, at most 1024"));
}

TEST_CASE("deeply nested JSON is refused with a short message, in every config reader", "[train][config][fields]") {
  const std::string dir = scratch("deep");
  // config.json: a nested value for a field, and a nested document.
  write_text(dir + "/config.json", "{\"dim\": " + deep_array() + "}");
  std::string e = error_of([&] { load_model_config(dir + "/config.json"); });
  CHECK_THAT(e, Contains("config.json: not valid JSON here: arrays and objects nested deeper than 64 levels"));
  CHECK(e.size() < 300);
  write_text(dir + "/config.json", deep_array());
  CHECK_THAT(error_of([&] { load_model_config(dir + "/config.json"); }), Contains("nested deeper"));

  // A training config, and an override whose value is a deep array.
  write_text(dir + "/train.json", "{\"model\": {}, \"training\": {\"lr\": " + deep_array() + "}}");
  e = error_of([&] { load_train_config(dir + "/train.json"); });
  CHECK_THAT(e, Contains("train.json: not valid JSON here"));
  CHECK(e.size() < 300);
  e = error_of([&] { load_train_config(source("configs/tiny.json"), {"training.lr=" + deep_array()}); });
  CHECK_THAT(e, Contains("training.lr = "));
  CHECK(e.size() < 300);

  // A wide but shallow value is described, not printed.
  nlohmann::json t = read_json_file(source("configs/tiny.json"));
  t["training"]["lr"] = nlohmann::json::array();
  for (int i = 0; i < 50000; i++) t["training"]["lr"].push_back(i);
  e = error_of([&] { train_config_from_json(t, "cfg.json"); });
  CHECK_THAT(e, Contains("cfg.json: training.lr = an array of 50000 elements: must be a number"));
  t = read_json_file(source("configs/tiny.json"));
  t["description"] = std::string(200000, 'x');
  t["training"]["sampling"] = std::string(200000, 'y');
  e = error_of([&] { train_config_from_json(t, "cfg.json"); });
  CHECK_THAT(e, Contains("training.sampling = \"yyyy") && Contains("... (200000 bytes)"));
  CHECK(e.size() < 300);
  // Keys are shown cut short too.
  const std::string long_key(200000, 'k');
  for (const char* where : {"", "model", "training"}) {
    INFO(where);
    t = read_json_file(source("configs/tiny.json"));
    (where[0] ? t[where] : t)[long_key] = 1;
    e = error_of([&] { train_config_from_json(t, "cfg.json"); });
    CHECK_THAT(e, Contains("unknown") && Contains("kkkk... (200000 bytes)"));
    CHECK(e.size() < 300);
  }
  t = read_json_file(source("configs/tiny.json"));
  t["description"] = nlohmann::json::object({{"a", std::string(200000, 'z')}});
  e = error_of([&] { train_config_from_json(t, "cfg.json"); });
  CHECK_THAT(e, Contains("description = an object of 1 key: must be a string"));
}

TEST_CASE("train_state.json: a deeply nested or huge value is refused with a short message",
          "[train][config][fields]") {
  set_num_threads(1);
  const std::string data = scratch("state_data");
  std::vector<int> ids(600);
  for (size_t i = 0; i < ids.size(); i++) ids[i] = static_cast<int>(i * 7 % 32);
  save_tokens(data + "/train.bin", ids, 32);
  save_tokens(data + "/val.bin", ids, 32);
  TrainConfig c;
  c.model.dim = 16;
  c.model.n_layers = 1;
  c.model.n_heads = 2;
  c.model.n_kv_heads = 1;
  c.model.vocab_size = 32;
  c.model.hidden_dim = 32;
  c.model.max_seq_len = 8;
  c.training.batch_size = 2;
  c.training.seq_len = 8;
  c.training.max_steps = 1;
  c.training.warmup_steps = 0;
  c.training.eval_batches = 1;
  TrainOptions o;
  o.data_dir = data;
  o.out_dir = scratch("state_run");
  o.quiet = true;
  const std::string ckpt = train(c, o).last_checkpoint;
  REQUIRE_FALSE(ckpt.empty());
  const std::string state_path = ckpt + "/train_state.json";
  const std::string good = read_text(state_path);

  for (const char* field : {"\"step\": ", "\"version\": ", "\"config\": "}) {
    INFO(field);
    std::string text = good;
    const size_t at = text.find(field);
    REQUIRE(at != std::string::npos);
    text.insert(at + std::strlen(field), deep_array() + ", \"x\": ");
    write_text(state_path, text);
    std::string e = error_of([&] { load_checkpoint(ckpt); });
    CHECK_THAT(e, Contains("train_state.json: not valid JSON here: arrays and objects nested deeper than 64 levels"));
    CHECK(e.size() < 400);
    e = error_of([&] { resume_config(ckpt, {}); });
    CHECK_THAT(e, Contains("nested deeper"));
  }
  // Shallow but wrong: described in a few words.
  nlohmann::json j = nlohmann::json::parse(good);
  j["step"] = nlohmann::json::array();
  for (int i = 0; i < 50000; i++) j["step"].push_back(i);
  write_text(state_path, j.dump());
  const std::string e = error_of([&] { load_checkpoint(ckpt); });
  CHECK_THAT(e, Contains("field 'step' must be a non-negative integer, got an array of 50000 elements"));
  // A huge string where a number belongs is shown cut short.
  j = nlohmann::json::parse(good);
  j["data_next_batch"] = std::string(200000, '7') + "x";
  write_text(state_path, j.dump());
  const std::string long_error = error_of([&] { load_checkpoint(ckpt); });
  CHECK_THAT(long_error, Contains("field 'data_next_batch' = \"7777") && Contains("... (200001 bytes)"));
  CHECK(long_error.size() < 400);
  // An integer too large for its field is an error, not a wrapped value.
  j = nlohmann::json::parse(good);
  j["evals_without_improvement"] = 4294967296ll;
  write_text(state_path, j.dump());
  CHECK_THAT(error_of([&] { load_checkpoint(ckpt); }),
             Contains("field 'evals_without_improvement' = 4294967296 is out of range"));
  j["evals_without_improvement"] = 18446744073709551615ull;
  write_text(state_path, j.dump());
  CHECK_THAT(error_of([&] { load_checkpoint(ckpt); }),
             Contains("field 'evals_without_improvement' must be a non-negative integer, got 18446744073709551615"));
  write_text(state_path, good);
  CHECK(error_of([&] { load_checkpoint(ckpt); }).empty());
}

TEST_CASE("describe_json is bounded and keeps UTF-8 whole", "[train][config][fields]") {
  CHECK(describe_json(nlohmann::json(2.5)) == "2.5");
  CHECK(describe_json(nlohmann::json(nullptr)) == "null");
  CHECK(describe_json(nlohmann::json("fast")) == "\"fast\"");
  CHECK(describe_json(nlohmann::json::array({1})) == "an array of 1 element");
  std::string s;
  for (int i = 0; i < 100; i++) s += "é";  // two bytes each
  const std::string d = describe_json(nlohmann::json(s));
  CHECK_THAT(d, Contains("... (200 bytes)"));
  CHECK(d.size() < 90);
  CHECK(nlohmann::json::parse(d.substr(0, d.find("..."))).get<std::string>().size() % 2 == 0);
}
