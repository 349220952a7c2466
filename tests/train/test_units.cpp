// Token files, the data loader, AdamW, clipping and the schedule.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "tests/common/test_helpers.h"
#include "train/adamw.h"
#include "train/baselines.h"
#include "train/data_loader.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/token_file.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) { return test::fresh_dir("test_train_tmp/" + name); }

using test::read_bytes;

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

}  // namespace

TEST_CASE("token files round-trip with 2- and 4-byte ids and a documented header", "[train][tokens]") {
  const std::string dir = temp_dir("tokens");
  const std::vector<int> small = {0, 1, 65535, 42, 7};
  save_tokens(dir + "/a.bin", small, 65536);
  CHECK(load_tokens(dir + "/a.bin") == small);
  const std::string bytes = read_bytes(dir + "/a.bin");
  REQUIRE(bytes.size() == 24 + 2 * small.size());
  CHECK(bytes.substr(0, 8) == "FNDRYTOK");
  CHECK(bytes[8] == 1);                                          // version, little-endian
  CHECK(bytes[12] == 2);                                         // token width
  CHECK(bytes[16] == 5);                                         // count
  CHECK(static_cast<unsigned char>(bytes[24 + 2 * 2]) == 0xff);  // 65535 = ff ff

  const std::vector<int> big = {70000, 3, 0};
  save_tokens(dir + "/b.bin", big, 100000);
  CHECK(read_bytes(dir + "/b.bin").size() == 24 + 4 * big.size());
  CHECK(load_tokens(dir + "/b.bin") == big);
  save_tokens(dir + "/empty.bin", {}, 10);
  CHECK(load_tokens(dir + "/empty.bin").empty());
}

TEST_CASE("token files are validated on save and load", "[train][tokens]") {
  const std::string dir = temp_dir("tokens_bad");
  CHECK_THROWS_WITH(save_tokens(dir + "/x.bin", {1, 2, 300}, 256), Catch::Contains("token 2 has id 300"));
  CHECK_FALSE(fs::exists(dir + "/x.bin"));
  CHECK_THROWS_WITH(load_tokens(dir + "/missing.bin"), Catch::Contains("cannot open"));

  save_tokens(dir + "/good.bin", {1, 2, 3, 4}, 1000);
  const std::string good = read_bytes(dir + "/good.bin");
  auto corrupt = [&](const std::string& bytes) {
    write_bytes(dir + "/bad.bin", bytes);
    return dir + "/bad.bin";
  };
  std::string s = good;
  s[0] = 'X';
  CHECK_THROWS_WITH(load_tokens(corrupt(s)), Catch::Contains("not a token file"));
  s = good;
  s[8] = 9;
  CHECK_THROWS_WITH(load_tokens(corrupt(s)), Catch::Contains("version 9"));
  s = good;
  s[12] = 3;
  CHECK_THROWS_WITH(load_tokens(corrupt(s)), Catch::Contains("token width 3"));
  CHECK_THROWS_WITH(load_tokens(corrupt(good.substr(0, good.size() - 1))), Catch::Contains("truncated"));
  CHECK_THROWS_WITH(load_tokens(corrupt(good + "zz")), Catch::Contains("4 tokens"));
  CHECK_THROWS_WITH(load_tokens(corrupt(good.substr(0, 10))), Catch::Contains("too short"));
  s = good;
  s[23] = 0x40;  // an absurd count must not overflow into a "valid" size
  CHECK_THROWS_WITH(load_tokens(corrupt(s)), Catch::Contains("truncated"));
}

TEST_CASE("sequential batches follow o = ((k*B + b)*T) mod n and wrap at the end", "[train][loader]") {
  std::vector<int> tokens(50);
  for (int i = 0; i < 50; ++i) tokens[i] = 100 + i;
  const int B = 3, T = 7;
  DataLoader loader = make_data_loader(tokens, B, T, BatchOrder::sequential, 0, "test");
  Batch batch;
  for (uint64_t k = 0; k < 6; ++k) {
    next_batch(loader, batch);
    for (int b = 0; b < B; ++b) {
      const uint64_t o = ((k * B + b) * T) % 50;
      for (int t = 0; t < T; ++t) {
        REQUIRE(batch.inputs[b * T + t] == 100 + static_cast<int>((o + t) % 50));
        REQUIRE(batch.targets[b * T + t] == 100 + static_cast<int>((o + t + 1) % 50));
      }
    }
  }
  CHECK(loader.next_batch == 6);
  // Batch 2, row 1: o = 49, so the row wraps: 149, 100, 101, ...; its first target is 100.
  sequential_batch(tokens, 2, B, T, batch);
  CHECK(batch.inputs[1 * T + 0] == 149);
  CHECK(batch.inputs[1 * T + 1] == 100);
  CHECK(batch.targets[1 * T + 0] == 100);
}

TEST_CASE("random batches are windows inside the split, reproducible from the seed", "[train][loader]") {
  std::vector<int> tokens(40);
  for (int i = 0; i < 40; ++i) tokens[i] = i;
  DataLoader a = make_data_loader(tokens, 4, 8, BatchOrder::random, 99, "test");
  DataLoader b = make_data_loader(tokens, 4, 8, BatchOrder::random, 99, "test");
  DataLoader c = make_data_loader(tokens, 4, 8, BatchOrder::random, 100, "test");
  Batch ba, bb, bc;
  bool any_differs = false;
  std::vector<int> starts_seen(40, 0);
  for (int step = 0; step < 50; ++step) {
    next_batch(a, ba);
    next_batch(b, bb);
    next_batch(c, bc);
    REQUIRE(ba.inputs == bb.inputs);
    any_differs = any_differs || ba.inputs != bc.inputs;
    for (int r = 0; r < 4; ++r) {
      const int o = ba.inputs[r * 8];
      starts_seen[o]++;
      for (int t = 0; t < 8; ++t) {
        REQUIRE(ba.inputs[r * 8 + t] == o + t);       // contiguous window
        REQUIRE(ba.targets[r * 8 + t] == o + t + 1);  // shifted by one, never past the end
      }
    }
  }
  CHECK(any_differs);
  // Every start in [0, n - T) = [0, 32) is possible; none beyond.
  for (int o = 32; o < 40; ++o) CHECK(starts_seen[o] == 0);
  CHECK(starts_seen[0] + starts_seen[31] > 0);
  CHECK_THROWS_WITH(make_data_loader(std::vector<int>(8), 2, 8, BatchOrder::random, 1, "val.bin"),
                    Catch::Contains("need at least 9"));
  CHECK_THROWS_WITH(batch_order_from_string("shuffled", "training.sampling"), Catch::Contains("training.sampling"));
}

TEST_CASE("AdamW matches torch.optim.AdamW (committed fixture)", "[train][adamw]") {
  std::ifstream in(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/train/adamw_torch.json");
  REQUIRE(in);
  nlohmann::json fx = nlohmann::json::parse(in);
  Tensor matrix({3, 4}, fx["matrix0"].get<std::vector<real>>());
  Tensor vector({4}, fx["vector0"].get<std::vector<real>>());
  Tensor gm({3, 4}), gv({4});
  std::vector<NamedTensor> params = {{"w", &matrix, &gm}, {"gain", &vector, &gv}};
  AdamW opt = make_adamw(params);
  const AdamWSettings settings{fx["beta1"], fx["beta2"], fx["eps"], fx["weight_decay"]};
  for (size_t s = 0; s < fx["steps"].size(); ++s) {
    gm.data = fx["grads"][s][0].get<std::vector<real>>();
    gv.data = fx["grads"][s][1].get<std::vector<real>>();
    adamw_step(opt, params, fx["lr"].get<double>(), settings);
    const std::vector<real> want_m = fx["steps"][s]["matrix"].get<std::vector<real>>();
    const std::vector<real> want_v = fx["steps"][s]["vector"].get<std::vector<real>>();
    for (size_t i = 0; i < want_m.size(); ++i) REQUIRE(matrix[i] == Approx(want_m[i]).epsilon(1e-6).margin(1e-7));
    for (size_t i = 0; i < want_v.size(); ++i) REQUIRE(vector[i] == Approx(want_v[i]).epsilon(1e-6).margin(1e-7));
  }
  CHECK(opt.t == 3);
}

TEST_CASE("AdamW by hand: the first step moves each weight by about lr against its gradient", "[train][adamw]") {
  // t = 1: m̂ = g and v̂ = g², so the step is lr·g/(|g| + eps) ≈ lr·sign(g), whatever |g| is;
  // the matrix also shrinks by the factor (1 − lr·wd) first, the vector does not.
  const double lr = 0.1, wd = 0.5, eps = 1e-8;
  Tensor w({1, 2}, std::vector<real>{1.0f, -2.0f}), dw({1, 2}, std::vector<real>{0.001f, -300.0f});
  Tensor g({2}, std::vector<real>{1.0f, -2.0f}), dg({2}, std::vector<real>{0.001f, -300.0f});
  std::vector<NamedTensor> params = {{"w", &w, &dw}, {"g", &g, &dg}};
  AdamW opt = make_adamw(params);
  const AdamWSettings settings{0.9, 0.95, eps, wd};
  adamw_step(opt, params, lr, settings);
  CHECK(w[0] == Approx(1.0 * (1 - lr * wd) - lr * 0.001 / (0.001 + eps)).epsilon(1e-6));
  CHECK(w[1] == Approx(-2.0 * (1 - lr * wd) + lr).epsilon(1e-6));
  CHECK(g[0] == Approx(1.0 - lr * 0.001 / (0.001 + eps)).epsilon(1e-6));  // no weight decay on a 1-D gain
  CHECK(g[1] == Approx(-2.0 + lr).epsilon(1e-6));
  CHECK(opt.m[0][1] == Approx(0.1 * -300.0).epsilon(1e-6));          // (1 − β1)·g
  CHECK(opt.v[0][1] == Approx(0.05 * 300.0 * 300.0).epsilon(1e-6));  // (1 − β2)·g²
  CHECK(params[0].decay);                                            // a list made by hand: matrices decay
  CHECK_FALSE(params[1].decay);
  // Second step by hand for w[1], gradient unchanged: m = 0.19·g, v = 0.0975·g², m̂ = g, v̂ = g².
  const double w1 = w[1];
  adamw_step(opt, params, lr, settings);
  CHECK(w[1] == Approx(w1 * (1 - lr * wd) + lr).epsilon(1e-6));
}

TEST_CASE("global-norm clipping scales by max_norm / (norm + 1e-6) only above max_norm", "[train][clip]") {
  Tensor a({2}), da({2}, std::vector<real>{3.0f, 0.0f});
  Tensor b({1, 1}), db({1, 1}, std::vector<real>{4.0f});
  std::vector<NamedTensor> params = {{"a", &a, &da}, {"b", &b, &db}};
  CHECK(grad_norm(params) == Approx(5.0));
  CHECK(clip_grad_norm(params, 10.0) == Approx(5.0));
  CHECK(da[0] == 3.0f);  // below the limit: untouched
  CHECK(clip_grad_norm(params, 1.0) == Approx(5.0));
  const double scale = 1.0 / (5.0 + 1e-6);
  CHECK(da[0] == Approx(3.0 * scale).epsilon(1e-6));
  CHECK(db[0] == Approx(4.0 * scale).epsilon(1e-6));
  CHECK(grad_norm(params) == Approx(1.0).epsilon(1e-5));            // one norm over all tensors
  CHECK(clip_grad_norm(params, 0.0) == Approx(1.0).epsilon(1e-5));  // 0 = off
  db[0] = NAN;
  CHECK(std::isnan(clip_grad_norm(params, 1.0)));  // the loop's NaN check sees it
}

TEST_CASE("warmup + cosine schedule at its boundaries", "[train][schedule]") {
  const LrSchedule sc{1e-3, 1e-4, 10, 110};
  CHECK(learning_rate(sc, 0) == Approx(1e-4));  // lr/W on the first update
  CHECK(learning_rate(sc, 4) == Approx(5e-4));
  CHECK(learning_rate(sc, 9) == Approx(1e-3));                  // end of warmup: lr_max
  CHECK(learning_rate(sc, 10) == Approx(1e-3));                 // cosine starts at lr_max
  CHECK(learning_rate(sc, 60) == Approx(0.5 * (1e-3 + 1e-4)));  // halfway: the mean
  CHECK(learning_rate(sc, 109) == Approx(1e-4 + 0.5 * (1 + std::cos(M_PI * 99.0 / 100.0)) * 9e-4));
  CHECK(learning_rate(sc, 110) == Approx(1e-4));  // the end: lr_min
  CHECK(learning_rate(sc, 500) == Approx(1e-4));
  for (long s = 10; s < 110; ++s) REQUIRE(learning_rate(sc, s + 1) <= learning_rate(sc, s));  // monotone decay
  const LrSchedule flat{2e-3, 2e-3, 0, 5};  // no warmup, min = max: constant
  for (long s = 0; s < 7; ++s) CHECK(learning_rate(flat, s) == Approx(2e-3));
}

TEST_CASE("baselines: uniform ln V and smoothed unigram", "[train][baselines]") {
  CHECK(uniform_loss(4096) == Approx(std::log(4096.0)));
  // train counts (+1): token 0: 3+1, token 1: 1+1, token 2: 0+1; total 4 + 3 = 7.
  const double want = -(std::log(4.0 / 7) + std::log(2.0 / 7)) / 2;
  CHECK(unigram_loss({0, 0, 0, 1}, {0, 1}, 3) == Approx(want));
}
