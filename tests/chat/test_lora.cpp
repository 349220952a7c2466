// LoRA in the float build (model/lora.h, train/sft.h, cli/cmd_lora.cpp): the checks of the
// settings, the adapter file and its refusals, a frozen base that stays bit-identical through
// training, the merged model's logits, and `foundry sft --lora` / `foundry merge-lora` end to end.
#include <sys/wait.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "engine/masked_loss.h"
#include "engine/rng.h"
#include "model/lora.h"
#include "model/model_io.h"
#include "model/safetensors.h"
#include "tests/chat/tiny_chat_base.h"
#include "tests/common/test_helpers.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/sft.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;  // wk, wv: (8, 16)
  c.vocab_size = 23;
  c.hidden_dim = 24;
  c.max_seq_len = 8;
  return c;
}

Model small_model(uint64_t seed) {
  Model m = make_model(small_config());
  Rng rng(seed);
  init_weights(m, rng);
  return m;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (real v : t.data) m = std::max(m, std::fabs(double(v)));
  return m;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return out + "\n[exit " + std::to_string(WEXITSTATUS(status)) + "]";
}

const std::string kFoundry = std::string(FOUNDRY_BINARY_DIR) + "/foundry";

// The tiny chat base of the SFT tests (a one-layer model with random weights, a BPE without the
// chat tokens), with a 300-token vocabulary and 30 training examples, made once.
const test::TinyChatBase& lora_base() {
  static const test::TinyChatBase b = test::make_tiny_chat_base("test_scratch/lora_base", 30, 300);
  return b;
}

}  // namespace

TEST_CASE("LoRA settings: rank, alpha and targets are checked with a message", "[lora]") {
  const ModelConfig c = small_config();  // wq, wo (16, 16); wk, wv (8, 16); w1, w3 (24, 16); w2 (16, 24)
  LoraConfig lc;
  CHECK_NOTHROW(validate_lora(lc, c));
  lc.rank = 0;
  CHECK_THROWS_WITH(validate_lora(lc, c), Catch::Contains("rank 0: expected at least 1"));
  lc.rank = 9;  // above min(8, 16) of wk
  CHECK_THROWS_WITH(validate_lora(lc, c), Catch::Contains("rank 9 exceeds min(in, out) = 8 of wk (8, 16)"));
  lc.rank = 8;
  CHECK_NOTHROW(validate_lora(lc, c));
  lc.alpha = 0;
  CHECK_THROWS_WITH(validate_lora(lc, c), Catch::Contains("alpha"));
  CHECK(parse_lora_targets("wq,w2") == std::vector<std::string>{"wq", "w2"});
  CHECK_THROWS_WITH(parse_lora_targets("wq,wz"), Catch::Contains("unknown target 'wz'"));
  CHECK_THROWS_WITH(parse_lora_targets("wq,wq"), Catch::Contains("listed twice"));
  CHECK_THROWS_WITH(parse_lora_targets(""), Catch::Contains("no target"));
  CHECK_THROWS_WITH(parse_lora_targets("wq,"), Catch::Contains("unknown target ''"));
}

TEST_CASE("LoRA training: the base stays bit-identical and has no gradients or moments", "[lora]") {
  Model m = small_model(1);
  const std::vector<Tensor> before = m.values;
  LoraConfig lc;
  lc.rank = 4;
  lc.targets = {"wq", "wv", "w2"};
  Rng rng(2);
  LoraModel lora = make_lora(m, lc, rng);
  freeze_base(m);
  for (const Tensor& g : m.gradients) CHECK(g.size() == 0);  // no gradient buffers for the base
  std::vector<NamedTensor> params = lora.parameters();
  AdamW opt = make_adamw(params);
  size_t moments = 0;
  for (size_t k = 0; k < opt.m.size(); k++) moments += opt.m[k].size() + opt.v[k].size();
  CHECK(moments == 2 * lora.num_parameters());  // AdamW's moments: the adapters' alone
  // wq (16, 16): 4·32; wv (8, 16): 4·24; w2 (16, 24): 4·40; two layers.
  CHECK(lora.num_parameters() == size_t{2 * 4 * (32 + 24 + 40)});
  const int B = 2, T = 8;
  std::vector<int> ids(B * T), targets(B * T);
  std::vector<uint8_t> mask(B * T);
  for (int i = 0; i < B * T; i++) {
    ids[i] = (i * 7 + 3) % 23;
    targets[i] = (i * 5 + 1) % 23;
    mask[i] = i % 3 != 0;
  }
  Tape tape;
  tape.set_reuse_grads(true);
  double first = 0, last = 0;
  for (int step = 0; step < 30; step++) {
    lora.zero_grad();
    tape.clear();
    Var loss = masked_cross_entropy(tape, lora_logits(tape, m, lora, ids, B, T), targets, mask);
    tape.backward(loss);
    adamw_step(opt, params, 1e-2, AdamWSettings{0.9, 0.95, 1e-8, 0.0});
    (step == 0 ? first : last) = tape.value(loss)[0];
  }
  CHECK(last < first - 0.1);  // the adapters learn
  for (size_t k = 0; k < m.values.size(); k++) {
    INFO(m.entries[k].name);
    CHECK(m.values[k].data == before[k].data);  // bit for bit
  }
  CHECK(model_fingerprint(m) == lora.base_fingerprint);

  // Merged: float32 sums in another order. Each logit is a sum of a few hundred products of
  // numbers of order 1, rounded at 6e-8 relative per step, so the two computations differ by
  // about 1e-6 of the largest logit; 1e-4 leaves room and still catches a missing scale or a
  // transposed b·a (errors of the size of the adapters' contribution, 1e-2 here or more).
  Tape adapted;
  const Tensor want = adapted.value(lora_logits(adapted, m, lora, ids, B, T));
  for (size_t k = 0; k < m.values.size(); k++) m.gradients[k] = Tensor(m.values[k].shape);  // model_logits' leaves
  Tape base_only;
  const Tensor base_logits = base_only.value(model_logits(base_only, m, ids, B, T));
  CHECK(max_abs_diff(want, base_logits) > 1e-2 * max_abs(want));  // the check below is not vacuous
  merge_lora(m, lora);
  Tape merged;
  CHECK(max_abs_diff(merged.value(model_logits(merged, m, ids, B, T)), want) <= 1e-4 * max_abs(want));
}

TEST_CASE("the adapter file: a round trip, and refusals that name the problem", "[lora]") {
  const std::string dir = test::fresh_dir("test_scratch/lora_file");
  Model m = small_model(4);
  LoraConfig lc;
  lc.rank = 3;
  lc.alpha = 6;
  lc.targets = {"wo", "wq"};  // kept in table order: wq, wo
  Rng rng(5);
  LoraModel lora = make_lora(m, lc, rng);
  for (LoraAdapter& ad : lora.adapters)
    for (real& v : ad.b.data) v = static_cast<real>(rng.normal());
  lora.base_dir = "some/base";
  const std::string path = dir + "/adapter.safetensors";
  save_lora(lora, path);
  LoraModel back = load_lora(path);
  CHECK(back.config.rank == 3);
  CHECK(back.config.alpha == 6);
  CHECK(back.config.targets == std::vector<std::string>{"wq", "wo"});
  CHECK(back.base_dir == "some/base");
  CHECK(back.base_fingerprint == model_fingerprint(m));
  REQUIRE(back.adapters.size() == 4);
  for (size_t k = 0; k < 4; k++) {
    CHECK(back.adapters[k].weight == lora.adapters[k].weight);
    CHECK(back.adapters[k].a.data == lora.adapters[k].a.data);
    CHECK(back.adapters[k].b.data == lora.adapters[k].b.data);
  }
  CHECK_NOTHROW(check_lora_base(back, m, path, "base"));
  Model other = small_model(99);  // the same shapes, other weights
  CHECK_THROWS_WITH(check_lora_base(back, other, path, "other"), Catch::Contains("fingerprint"));
  ModelConfig wide = small_config();
  wide.dim = 32;
  wide.hidden_dim = 48;
  Model bigger = make_model(wide);
  CHECK_THROWS_WITH(check_lora_base(back, bigger, path, "bigger", false), Catch::Contains("the adapter is for a"));
  ModelConfig deep = small_config();
  deep.n_layers = 3;
  Model deeper = make_model(deep);
  CHECK_THROWS_WITH(check_lora_base(back, deeper, path, "deeper", false), Catch::Contains("2 layers"));

  // Broken files. Each is the good one with one thing changed.
  SafetensorsFile f = load_safetensors(path);
  auto write = [&](const std::string& name, std::map<std::string, std::string> meta,
                   const std::map<std::string, Tensor>& tensors) {
    std::vector<std::pair<std::string, const Tensor*>> list;
    for (const auto& [n, t] : tensors) list.emplace_back(n, &t);
    save_safetensors(dir + "/" + name, list, meta);
    return dir + "/" + name;
  };
  auto meta_with = [&](const std::string& key, const std::string& value) {
    auto meta = f.metadata;
    meta[key] = value;
    return meta;
  };
  CHECK_THROWS_WITH(load_lora(write("fmt.safetensors", meta_with("format", "pt"), f.tensors)),
                    Catch::Contains("expected 'foundry-lora'"));
  CHECK_THROWS_WITH(load_lora(write("rank.safetensors", meta_with("rank", "x3"), f.tensors)),
                    Catch::Contains("expected a whole number"));
  CHECK_THROWS_WITH(load_lora(write("rank2.safetensors", meta_with("rank", "2"), f.tensors)),
                    Catch::Contains("do not fit rank 2"));
  CHECK_THROWS_WITH(load_lora(write("alpha.safetensors", meta_with("alpha", "nan"), f.tensors)),
                    Catch::Contains("alpha 'nan'"));
  CHECK_THROWS_WITH(load_lora(write("targets.safetensors", meta_with("targets", "wq,wx"), f.tensors)),
                    Catch::Contains("unknown target 'wx'"));
  CHECK_THROWS_WITH(load_lora(write("fp.safetensors", meta_with("base_fingerprint", "zz"), f.tensors)),
                    Catch::Contains("16 lowercase hex digits"));
  auto meta_without = f.metadata;
  meta_without.erase("alpha");
  CHECK_THROWS_WITH(load_lora(write("noalpha.safetensors", meta_without, f.tensors)), Catch::Contains("no \"alpha\""));
  auto missing = f.tensors;
  missing.erase("layers.1.attention.wo.lora_b");
  missing["layers.1.attention.wk.lora_b"] = Tensor({16, 3});  // the count still fits; the name does not
  CHECK_THROWS_WITH(load_lora(write("missing.safetensors", f.metadata, missing)),
                    Catch::Contains("no tensor 'layers.1.attention.wo.lora_b'"));
  auto fewer = f.tensors;
  fewer.erase("layers.1.attention.wo.lora_b");
  CHECK_THROWS_WITH(load_lora(write("fewer.safetensors", f.metadata, fewer)), Catch::Contains("holds 7 tensors"));
  auto mixed = f.tensors;
  mixed["layers.1.attention.wq.lora_a"] = Tensor({3, 8});
  mixed["layers.1.attention.wq.lora_b"] = Tensor({8, 3});
  CHECK_THROWS_WITH(load_lora(write("mixed.safetensors", f.metadata, mixed)), Catch::Contains("but layer 0's wq"));
  auto inf = f.tensors;
  inf["layers.0.attention.wq.lora_a"][0] = INFINITY;
  CHECK_THROWS_WITH(load_lora(write("inf.safetensors", f.metadata, inf)), Catch::Contains("not finite"));
}

TEST_CASE("foundry sft --lora: adapters only, merged by --merge and by merge-lora alike", "[lora][sft][cli]") {
  const test::TinyChatBase& b = lora_base();
  SftOptions o;
  o.base_dir = b.dir;
  o.data_path = b.data;
  o.out_dir = test::fresh_dir("test_scratch/lora_sft") + "/out";
  o.batch_size = 4;
  o.max_steps = 60;
  o.warmup_steps = 2;
  o.lr = 3e-2;
  o.eval_interval = 60;
  o.eval_examples = 8;
  o.quiet = true;
  o.lora_on = true;
  o.lora.rank = 4;
  o.lora.targets = lora_target_names();  // a random base has little to re-weight: adapt every weight
  o.merge = true;
  SftResult r = run_sft(o);
  CHECK(r.last_loss < r.first_loss - 0.1);  // a random base learns slowly through adapters alone
  // wq (32, 32), wk and wv (16, 32), wo (32, 32), w1 and w3 (64, 32), w2 (32, 64), one layer.
  CHECK(r.trainable_parameters == size_t{4 * (64 + 48 + 48 + 64 + 96 + 96 + 96)});
  CHECK(r.optimizer_bytes == 2 * r.trainable_parameters * sizeof(real));
  REQUIRE(fs::exists(r.adapter_path));
  REQUIRE(fs::exists(r.model_dir + "/model.safetensors"));
  const std::string sft_json = read_file(o.out_dir + "/sft.json");
  CHECK(sft_json.find("\"trainable_parameters\": 2048") != std::string::npos);
  CHECK(sft_json.find("\"peak_rss_mib\"") != std::string::npos);
  // The adapters belong to the chat base, which load_chat_base makes the same way every time.
  ChatModel base = load_chat_base(b.dir);
  LoraModel lora = load_lora(r.adapter_path);
  CHECK(lora.base_fingerprint == model_fingerprint(base.model));  // the base came through bit-identical
  // merge-lora writes the same model as --merge.
  const std::string merged = o.out_dir + "/merged";
  std::string out = run(kFoundry + " merge-lora --base " + b.dir + " --adapter " + r.adapter_path + " --out " + merged);
  INFO(out);
  REQUIRE(out.find("[exit 0]") != std::string::npos);
  CHECK(test::read_bytes(merged + "/model.safetensors") == test::read_bytes(r.model_dir + "/model.safetensors"));
  CHECK(fs::exists(merged + "/tokenizer_config.json"));
  // The merged model and the adapted one give the same logits (tolerance as above).
  Model m = load_model(r.model_dir);
  const int chat = m.config.vocab_size - 2;  // <|im_start|>, <|im_end|>: the two ids add_chat_tokens appends
  std::vector<int> ids = {5, 17, 42, 9, chat, chat + 1, 7, 8};
  Tape tm, ta;
  const Tensor merged_logits = tm.value(model_logits(tm, m, ids, 1, 8));
  const Tensor adapted_logits = ta.value(lora_logits(ta, base.model, lora, ids, 1, 8));
  CHECK(max_abs_diff(merged_logits, adapted_logits) <= 1e-4 * max_abs(adapted_logits));

  // The command line's refusals: exit 2 for bad options, 1 for an adapter of another base.
  const std::string sft = kFoundry + " sft --base " + b.dir + " --data " + b.data + " --out " + o.out_dir + "-x";
  CHECK(run(sft + " --lora --lora-rank 0").find("rank 0: expected at least 1\n\n[exit 2]") != std::string::npos);
  CHECK(run(sft + " --lora --lora-rank 17").find("exceeds min(in, out) = 16 of wk") != std::string::npos);
  CHECK(run(sft + " --lora --lora-targets wq,wz").find("unknown target 'wz'") != std::string::npos);
  CHECK(run(sft + " --lora-rank 4").find("--lora-rank needs --lora\n\n[exit 2]") != std::string::npos);
  CHECK(run(sft + " --merge").find("--merge needs --lora") != std::string::npos);
  const std::string other = test::fresh_dir("test_scratch/lora_other") + "/base";
  fs::copy(b.dir, other);
  {
    Model changed = load_model(other);
    changed.values[0][0] += 1;
    save_model(changed, other);
  }
  out = run(kFoundry + " merge-lora --base " + other + " --adapter " + r.adapter_path + " --out " + merged + "2");
  CHECK(out.find("fingerprint") != std::string::npos);
  CHECK(out.find("[exit 1]") != std::string::npos);
  CHECK(!fs::exists(merged + "2/model.safetensors"));
  CHECK(run(kFoundry + " merge-lora --base " + b.dir + " --adapter " + b.data + " --out " + merged + "3")
            .find("[exit 1]") != std::string::npos);
  CHECK(run(kFoundry + " merge-lora --base " + b.dir + " --adapter " + r.adapter_path + " --out " + merged)
            .find("exists and is not empty") != std::string::npos);
  CHECK(run(kFoundry + " sft --help").find("--lora-targets") != std::string::npos);
}
