#include "model/block.h"

#include "engine/ops.h"
#include "model/attention.h"
#include "model/rmsnorm.h"
#include "model/swiglu.h"

namespace foundry {

// ANCHOR: transformer_block
Var transformer_block(Tape& tape, Var x, const LayerVars& w, const Model& model) {
  const ModelConfig& c = model.config;
  real eps = static_cast<real>(c.norm_eps);
  // attention branch: normalize a copy of the stream, attend, add the result back
  Var xn = rmsnorm(tape, x, w.attention_norm, eps);
  Var att = self_attention(tape, xn, w.wq, w.wk, w.wv, w.wo, model.rope_cos, model.rope_sin, c.n_heads, c.n_kv_heads);
  Var h = add(tape, x, att);  // the residual stream after attention
  // feed-forward branch, the same pattern
  Var hn = rmsnorm(tape, h, w.ffn_norm, eps);
  Var ff = feed_forward(tape, hn, w.w1, w.w3, w.w2);
  return add(tape, h, ff);
}
// ANCHOR_END: transformer_block

}  // namespace foundry
