#include "model/block.h"

#include "engine/ops.h"
#include "model/attention.h"
#include "model/rmsnorm.h"
#include "model/swiglu.h"

namespace foundry {

// ANCHOR: transformer_block
Var transformer_block(Tape& tape, Var x, const LayerVars& w, const Model& model, const LayerLora& lora) {
  const ModelConfig& c = model.config;
  real eps = static_cast<real>(c.norm_eps);
  // attention branch: normalize a copy of the stream, attend, add the result back
  Var xn = rmsnorm(tape, x, w.attention_norm, eps);
  Var att = self_attention(tape, xn, w.wq, w.wk, w.wv, w.wo, model.rope_cos, model.rope_sin, c.n_heads, c.n_kv_heads,
                           {lora.wq, lora.wk, lora.wv, lora.wo});
  Var h = add(tape, x, att);  // the residual stream after attention
  // feed-forward branch, the same pattern
  Var hn = rmsnorm(tape, h, w.ffn_norm, eps);
  Var ff = feed_forward(tape, hn, w.w1, w.w3, w.w2, {lora.w1, lora.w3, lora.w2});
  return add(tape, h, ff);
}
// ANCHOR_END: transformer_block

}  // namespace foundry

namespace foundry {

namespace {

// The layer's weights as leaves of another tape: the same tensors, the same gradient tensors, so
// what the other tape's backward adds lands where this tape's would have.
LayerVars mirror_layer(Tape& inner, const Tape& outer, const LayerVars& w) {
  auto mirror = [&inner, &outer](Var v) {
    Tensor* g = outer.node(v.id).grad;
    return g ? inner.param(outer.value(v), *g, outer.node(v.id).op) : inner.input(outer.value(v));
  };
  return {mirror(w.attention_norm), mirror(w.wq), mirror(w.wk), mirror(w.wv), mirror(w.wo),
          mirror(w.ffn_norm),       mirror(w.w1), mirror(w.w3), mirror(w.w2)};
}

std::vector<int> layer_inputs(Var x, const LayerVars& w) {
  return {x.id, w.attention_norm.id, w.wq.id, w.wk.id, w.wv.id, w.wo.id, w.ffn_norm.id, w.w1.id, w.w3.id, w.w2.id};
}

}  // namespace

// ANCHOR: transformer_block_recomputed
Var transformer_block_recomputed(Tape& tape, Var x, const LayerVars& w, const Model& model) {
  Var out = tape.record("block (recomputed)", layer_inputs(x, w), tape.value(x).shape);
  // Forward: the block on the scratch tape, of which only the output is kept.
  Tape& inner = tape.scratch();
  inner.set_reuse_grads(tape.reuse_grads());
  inner.clear();
  Var y = transformer_block(inner, inner.input(tape.value(x)), mirror_layer(inner, tape, w), model);
  tape.mutable_value(out).data = inner.value(y).data;  // (B, T, C), the buffer reused from step to step
  // Backward: the same ops again on the scratch tape, from the same input and weights, so every
  // activation comes back with the same bits; then the scratch tape's backward, seeded with this
  // node's gradient. x's gradient is this tape's own buffer, a leaf of the scratch tape: the
  // block's two uses of x add into it in the order the plain block would.
  tape.set_backward(out, [&tape, x, w, out, &model] {
    Tape& in = tape.scratch();
    in.clear();
    Var xi = tape.needs_grad(x) ? in.param(tape.value(x), tape.grad(x), "x") : in.input(tape.value(x));
    Var yi = transformer_block(in, xi, mirror_layer(in, tape, w), model);
    in.backward(yi, tape.grad(out));
  });
  return out;
}
// ANCHOR_END: transformer_block_recomputed

}  // namespace foundry
