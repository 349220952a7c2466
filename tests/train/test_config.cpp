// Training configs: the reference files, strict parsing, overrides.
#include <catch2/catch.hpp>

#include "train/train_config.h"

using namespace foundry;

namespace {
std::string config_path(const std::string& name) {
  return std::string(FOUNDRY_SOURCE_DIR) + "/configs/" + name + ".json";
}

nlohmann::json tiny_json() { return read_json_file(config_path("tiny")); }

// Parses `j` and returns the error message (empty when it parses).
std::string error_of(const nlohmann::json& j) {
  try {
    train_config_from_json(j, "cfg.json");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("the reference configs have the reference sizes", "[train][config]") {
  TrainConfig tiny = load_train_config(config_path("tiny"));
  CHECK(tiny.model.dim == 128);
  CHECK(tiny.model.n_layers == 4);
  CHECK(tiny.model.n_heads == 4);
  CHECK(tiny.model.n_kv_heads == 4);
  CHECK(tiny.model.hidden_dim == 352);
  CHECK(tiny.model.max_seq_len == 64);
  CHECK(tiny.model.vocab_size == 4096);
  CHECK(tiny.training.batch_size == 12);
  CHECK(tiny.training.seq_len == 64);

  TrainConfig small = load_train_config(config_path("small"));
  CHECK(small.model.dim == 256);
  CHECK(small.model.n_layers == 4);
  CHECK(small.model.n_heads == 8);
  CHECK(small.model.n_kv_heads == 4);
  CHECK(small.model.hidden_dim == 704);
  CHECK(small.model.max_seq_len == 256);
  CHECK(small.training.batch_size == 16);

  TrainConfig medium = load_train_config(config_path("medium"));
  CHECK(medium.model.dim == 512);
  CHECK(medium.model.n_layers == 8);
  CHECK(medium.model.n_heads == 8);
  CHECK(medium.model.n_kv_heads == 4);
  CHECK(medium.model.hidden_dim == 1376);
  CHECK(medium.model.max_seq_len == 256);
  CHECK(medium.training.batch_size == 8);
  CHECK(medium.model.vocab_size == 4096);

  // to_json and back is the identity.
  CHECK(to_json(train_config_from_json(to_json(small), "x")) == to_json(small));
}

TEST_CASE("unknown keys are rejected, naming the field", "[train][config]") {
  nlohmann::json j = tiny_json();
  j["training"]["learning_rate"] = 0.1;
  CHECK_THAT(error_of(j), Catch::Contains("unknown field 'training.learning_rate'"));
  j = tiny_json();
  j["model"]["n_experts"] = 4;
  CHECK_THAT(error_of(j), Catch::Contains("n_experts"));
  j = tiny_json();
  j["optimizer"] = nlohmann::json::object();
  CHECK_THAT(error_of(j), Catch::Contains("unknown top-level field 'optimizer'"));
  j = tiny_json();
  j.erase("training");
  CHECK_THAT(error_of(j), Catch::Contains("missing the \"training\" section"));
}

TEST_CASE("invalid values are rejected with the field and the reason", "[train][config]") {
  struct Case {
    const char* field;
    nlohmann::json value;
    const char* message;
  };
  const Case cases[] = {
      {"lr", -1e-3, "training.lr = -0.001: must be a finite number > 0"},
      {"lr", "fast", "training.lr = \"fast\": must be a number"},
      {"batch_size", 0, "training.batch_size = 0: must be a positive integer"},
      {"batch_size", 2.5, "training.batch_size = 2.5: must be an integer"},
      {"seq_len", 65, "training.seq_len = 65: must be <= model.max_seq_len = 64"},
      {"warmup_steps", 5000, "training.warmup_steps = 5000: must be <= training.max_steps = 2000"},
      {"min_lr", 1.0, "training.min_lr = 1: must be in [0, training.lr"},
      {"beta2", 1.0, "training.beta2 = 1: must be in [0, 1)"},
      {"grad_clip", -1, "training.grad_clip = -1: must be >= 0"},
      {"patience", -2, "training.patience = -2: must be >= 0"},
      {"keep_checkpoints", 0, "training.keep_checkpoints = 0: must be a positive integer"},
      {"sampling", "shuffle", "training.sampling = \"shuffle\": expected \"random\" or \"sequential\""},
      {"seed", -1, "training.seed = -1: must not be negative"},
      {"max_steps", 1e30, "training.max_steps = 1e+30: must be an integer"},
  };
  for (const Case& c : cases) {
    nlohmann::json j = tiny_json();
    j["training"][c.field] = c.value;
    INFO(c.field);
    CHECK_THAT(error_of(j), Catch::Contains(c.message));
    CHECK_THAT(error_of(j), Catch::StartsWith("cfg.json: "));
  }
  nlohmann::json j = tiny_json();
  j["model"]["n_heads"] = 3;
  CHECK_THAT(error_of(j), Catch::Contains("n_heads"));
  j = tiny_json();
  j["model"].erase("dim");
  CHECK_THAT(error_of(j), Catch::Contains("missing field 'dim'"));
}

TEST_CASE("command-line overrides reach any field and get the same checks", "[train][config]") {
  TrainConfig c =
      load_train_config(config_path("tiny"), {"training.lr=3e-4", "training.sampling=sequential", "model.n_layers=2",
                                              "training.grad_clip=0", "model.tie_embeddings=false"});
  CHECK(c.training.lr == Approx(3e-4));
  CHECK(c.training.batch_order == "sequential");
  CHECK(c.model.n_layers == 2);
  CHECK(c.training.grad_clip == 0.0);
  CHECK_FALSE(c.model.tie_embeddings);
  CHECK_THROWS_WITH(load_train_config(config_path("tiny"), {"training.lr=-1"}), Catch::Contains("training.lr = -1"));
  CHECK_THROWS_WITH(load_train_config(config_path("tiny"), {"training.lrr=1"}),
                    Catch::Contains("unknown field 'training.lrr'"));
  CHECK_THROWS_WITH(load_train_config(config_path("tiny"), {"training.lr"}),
                    Catch::Contains("expected section.field=value"));
  CHECK_THROWS_WITH(load_train_config(config_path("tiny"), {"lr=1"}), Catch::Contains("section.field"));
  CHECK_THROWS_WITH(load_train_config(config_path("tiny"), {"optim.lr=1"}), Catch::Contains("unknown section 'optim'"));
  CHECK_THROWS_WITH(load_train_config(config_path("tiny"), {"training.batch_size=big"}),
                    Catch::Contains("training.batch_size = \"big\": must be an integer"));
}
