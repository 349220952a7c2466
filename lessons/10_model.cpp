// Lesson 10: the block and the model. Counts the parameters of the tiny configuration by hand
// and against the program, runs the whole model at initialization (loss ≈ log V), follows the
// residual stream through the layers, and compares the gradients that reach each layer in a
// pre-norm and a post-norm stack. Exits non-zero if any check fails.
//
//   build/lessons/lesson_10
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/embedding.h"
#include "engine/matmul.h"
#include "engine/ops.h"
#include "engine/softmax.h"
#include "lessons/lesson_common.h"
#include "model/attention.h"
#include "model/block.h"
#include "model/memory.h"
#include "model/model.h"
#include "model/rmsnorm.h"
#include "model/swiglu.h"

using namespace foundry;

namespace {

using lesson::check;
using lesson::failures;

double rms(const Tensor& t) {
  double s = 0;
  for (real v : t.data) s += double(v) * v;
  return std::sqrt(s / t.size());
}

// ANCHOR: post_norm_block
// The original transformer's order ("post-norm"): add the branch first, normalize the sum.
// Same weights, same sub-layers; only the place of the two norms differs.
Var post_norm_block(Tape& tape, Var x, const LayerVars& w, const Model& model) {
  const ModelConfig& c = model.config;
  real eps = static_cast<real>(c.norm_eps);
  Var att = self_attention(tape, x, w.wq, w.wk, w.wv, w.wo, model.rope_cos, model.rope_sin, c.n_heads, c.n_kv_heads);
  Var h = rmsnorm(tape, add(tape, x, att), w.attention_norm, eps);
  Var ff = feed_forward(tape, h, w.w1, w.w3, w.w2);
  return rmsnorm(tape, add(tape, h, ff), w.ffn_norm, eps);
}
// ANCHOR_END: post_norm_block

std::vector<int> random_ids(size_t n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> ids(n);
  for (int& id : ids) id = static_cast<int>(rng.below(V));
  return ids;
}

}  // namespace

int main() {
  std::printf("[count]\n");
  {
    ModelConfig c;  // the defaults are the tiny reference configuration (configs/tiny.json)
    // ANCHOR: count_by_hand
    long C = c.dim, F = c.hidden_dim, V = c.vocab_size, L = c.n_layers;
    long HS = C / c.n_heads, q = c.n_heads * HS, kv = c.n_kv_heads * HS;
    long embedding = V * C;                       // tok_embeddings (V, C), also the output when tied
    long attention = q * C + 2 * kv * C + C * q;  // wq, wk, wv, wo
    long ffn = 3 * F * C;                         // w1, w3, w2
    long norms = 2 * C;                           // attention_norm, ffn_norm
    long total = embedding + L * (attention + ffn + norms) + C + (c.tie_embeddings ? 0 : V * C);
    // ANCHOR_END: count_by_hand
    std::printf("C = %ld, L = %ld, NH = %d, NKV = %d, F = %ld, V = %ld, tied = %s\n", C, L, c.n_heads, c.n_kv_heads, F,
                V, c.tie_embeddings ? "yes" : "no");
    std::printf("embedding            %9ld\n", embedding);
    std::printf("per layer: attention %9ld\n", attention);
    std::printf("per layer: SwiGLU    %9ld\n", ffn);
    std::printf("per layer: norms     %9ld\n", norms);
    std::printf("final norm           %9ld\n", C);
    std::printf("total by hand        %9ld\n", total);
    Model m = make_model(c);
    std::printf("Model::num_parameters %8zu\n", m.num_parameters());
    check((size_t)total == m.num_parameters(), "the hand count equals the program's");
    std::printf("share of the embedding: %.1f%%\n", 100.0 * embedding / total);
  }

  // A deeper tiny model for the rest: 8 layers of width 64, GQA 4 heads / 2 kv heads.
  ModelConfig c;
  c.dim = 64;
  c.n_layers = 8;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.hidden_dim = 192;
  c.vocab_size = 512;
  c.max_seq_len = 32;
  Model model = make_model(c);
  Rng rng(1337);
  init_weights(model, rng);
  const int B = 2, T = 32;
  std::vector<int> ids = random_ids(B * T, c.vocab_size, 1), targets = random_ids(B * T, c.vocab_size, 2);

  std::printf("[loss]\n");
  {
    Tape tape;
    Var loss = model_loss(tape, model, ids, targets, B, T);
    std::printf("loss at initialization %.4f, log V = %.4f\n", tape.value(loss)[0], std::log(double(c.vocab_size)));
    check(std::fabs(tape.value(loss)[0] - std::log(double(c.vocab_size))) < 0.05, "a fresh model predicts ~uniformly");
    std::printf("tape: %d nodes for %d layers\n", tape.size(), c.n_layers);
  }

  std::printf("[stream]\n");
  {
    // The model's own loop, written out so we can look at the stream between blocks.
    Tape tape;
    const ModelVars w = name_leaves(model, model_leaves(tape, model));
    Var x = reshape(tape, embedding(tape, w.tok_embeddings, ids), {B, T, c.dim});
    std::printf("RMS of the residual stream: embedding %.4f", rms(tape.value(x)));
    double first = rms(tape.value(x)), last = 0;
    for (int i = 0; i < c.n_layers; i++) {
      x = transformer_block(tape, x, w.layers[i], model);
      last = rms(tape.value(x));
      if (i % 2 == 1) std::printf(", after layer %d %.4f", i, last);
    }
    std::printf("\n");
    check(last > first && last < 3 * first, "each block adds a little to the stream, which grows slowly");
  }

  std::printf("[pre_post]\n");
  {
    // Gradient norm reaching each layer's w1, for the same weights stacked both ways. Post-norm
    // uses the norm gains after the adds; with gains 1 at initialization the comparison is fair.
    auto w1_grad_norms = [&](bool post) {
      Tape tape;
      model.zero_grad();
      const ModelVars w = name_leaves(model, model_leaves(tape, model));
      Var x = reshape(tape, embedding(tape, w.tok_embeddings, ids), {B, T, c.dim});
      for (const LayerVars& layer : w.layers) {
        x = post ? post_norm_block(tape, x, layer, model) : transformer_block(tape, x, layer, model);
      }
      x = rmsnorm(tape, x, w.norm, static_cast<real>(c.norm_eps));
      tape.backward(cross_entropy(tape, linear(tape, x, w.tok_embeddings), targets));
      std::vector<double> norms;
      for (int i = 0; i < c.n_layers; i++) norms.push_back(rms(*model.grads.layers[i].w1) * 1e6);
      return norms;
    };
    std::vector<double> pre = w1_grad_norms(false), post = w1_grad_norms(true);
    std::printf("RMS of dL/dw1 (x 1e6) per layer\n%5s %10s %10s\n", "layer", "pre-norm", "post-norm");
    for (int i = 0; i < c.n_layers; i++) std::printf("%5d %10.3f %10.3f\n", i, pre[i], post[i]);
    double pre_ratio = pre[0] / pre[c.n_layers - 1], post_ratio = post[0] / post[c.n_layers - 1];
    std::printf("first layer / last layer: pre-norm %.2f, post-norm %.2f\n", pre_ratio, post_ratio);
    check(pre_ratio > 0.5 && pre_ratio < 2, "pre-norm: every layer gets a gradient of the same size");
  }

  std::printf("[memory]\n");
  {
    TrainingMemory mem = estimate_training_memory(c, B, T);
    std::printf("B = %d, T = %d: weights %zu, gradients %zu, AdamW %zu, activations %zu bytes\n", B, T,
                mem.weight_bytes, mem.gradient_bytes, mem.optimizer_bytes, mem.activation_bytes);
    Tape tape;
    tape.backward(model_loss(tape, model, ids, targets, B, T));
    std::printf("the tape really holds %zu numbers = %zu bytes\n", tape_numbers(tape),
                tape_numbers(tape) * sizeof(real));
    check(tape_numbers(tape) * sizeof(real) == mem.activation_bytes, "the estimate is what the tape stores");
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
