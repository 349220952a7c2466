#include "model/params.h"

#include <set>
#include <stdexcept>

namespace foundry {

// ANCHOR: param_table
const ParamTable& llama_param_table() {
  using D = Dim;
  // clang-format off: one row per tensor, in columns
  static const ParamTable table = {
      // name                    scope          shape          init            decay
      {"tok_embeddings.weight", Scope::model, {D::V, D::C}, Init::normal, true},
      {"attention_norm.weight", Scope::layer, {D::C}, Init::ones, false},
      {"attention.wq.weight", Scope::layer, {D::Q, D::C}, Init::normal, true},
      {"attention.wk.weight", Scope::layer, {D::KV, D::C}, Init::normal, true},
      {"attention.wv.weight", Scope::layer, {D::KV, D::C}, Init::normal, true},
      {"attention.wo.weight", Scope::layer, {D::C, D::Q}, Init::residual, true},
      {"ffn_norm.weight", Scope::layer, {D::C}, Init::ones, false},
      {"feed_forward.w1.weight", Scope::layer, {D::F, D::C}, Init::normal, true},
      {"feed_forward.w3.weight", Scope::layer, {D::F, D::C}, Init::normal, true},
      {"feed_forward.w2.weight", Scope::layer, {D::C, D::F}, Init::residual, true},
      {"norm.weight", Scope::model, {D::C}, Init::ones, false},
      {"output.weight", Scope::untied, {D::V, D::C}, Init::normal, true},
  };
  // clang-format on
  return table;
}
// ANCHOR_END: param_table

int dim_size(Dim d, const ModelConfig& c) {
  switch (d) {
    case Dim::C:
      return c.dim;
    case Dim::Q:
      return c.n_heads * c.head_size();
    case Dim::KV:
      return c.kv_dim();
    case Dim::F:
      return c.hidden_dim;
    case Dim::V:
      return c.vocab_size;
  }
  throw std::logic_error("dim_size: unknown dimension");
}

std::string shape_reason(const ParamSpec& spec, const ModelConfig& c) {
  // The config fields behind each letter, listed once each in this order.
  bool vocab = false, dim = false, heads = false, kv_heads = false, hidden = false;
  for (Dim d : spec.shape) {
    vocab = vocab || d == Dim::V;
    dim = true;  // every letter but V depends on dim, and V never stands alone
    heads = heads || d == Dim::Q || d == Dim::KV;
    kv_heads = kv_heads || d == Dim::KV;
    hidden = hidden || d == Dim::F;
  }
  std::string out;
  auto add = [&](bool on, const char* key, int v) {
    if (on) out += (out.empty() ? "" : ", ") + std::string(key) + " = " + std::to_string(v);
  };
  add(vocab, "vocab_size", c.vocab_size);
  add(dim, "dim", c.dim);
  add(heads, "n_heads", c.n_heads);
  add(kv_heads, "n_kv_heads", c.n_kv_heads);
  add(hidden, "hidden_dim", c.hidden_dim);
  return out;
}

std::vector<ParamEntry> param_entries(const ModelConfig& c, const ParamTable& table) {
  std::set<std::string> names;
  size_t first_layer_row = table.size(), end_layer_rows = table.size();
  for (size_t r = 0; r < table.size(); ++r) {
    if (!names.insert(table[r].name).second) {
      throw std::invalid_argument("parameter table: two rows are named '" + table[r].name + "'");
    }
    if (table[r].scope != Scope::layer) continue;
    if (first_layer_row == table.size()) first_layer_row = r;
    else if (end_layer_rows != r) throw std::invalid_argument("parameter table: the per-layer rows must be contiguous");
    end_layer_rows = r + 1;
  }
  auto entry = [&](size_t r, int layer) {
    const ParamSpec& s = table[r];
    Shape shape;
    for (Dim d : s.shape) shape.push_back(dim_size(d, c));
    const std::string prefix = layer < 0 ? "" : "layers." + std::to_string(layer) + ".";
    return ParamEntry{prefix + s.name, shape, s.init, s.decay, layer, r};
  };
  std::vector<ParamEntry> list;
  for (size_t r = 0; r < table.size(); ++r) {
    if (r == first_layer_row) {
      // The whole block of per-layer rows, once for each layer.
      for (int i = 0; i < c.n_layers; ++i) {
        for (size_t k = first_layer_row; k < end_layer_rows; ++k) list.push_back(entry(k, i));
      }
      r = end_layer_rows - 1;
    } else if (table[r].scope == Scope::model || (table[r].scope == Scope::untied && !c.tie_embeddings)) {
      list.push_back(entry(r, -1));
    }
  }
  return list;
}

size_t parameter_count(const ModelConfig& c, const ParamTable& table) {
  size_t n = 0;
  for (const ParamEntry& e : param_entries(c, table)) {
    size_t size = 1;
    for (int d : e.shape) size *= static_cast<size_t>(d);
    n += size;
  }
  return n;
}

}  // namespace foundry
