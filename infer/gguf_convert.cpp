#include "infer/gguf_convert.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "engine/quant.h"
#include "model/config.h"
#include "model/model_io.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/sentencepiece.h"

namespace foundry {

namespace {

// llama.cpp's token types (llama_token_type): what each vocabulary entry is.
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6 };

// SentencePiece spells a space as U+2581 LOWER ONE EIGHTH BLOCK; llama2.c's tokenizer.bin has
// real spaces instead.
const char kSpaceMark[] = "\xE2\x96\x81";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string float32_bytes(const Tensor& t) {
  std::string out(t.data.size() * 4, '\0');
  for (size_t k = 0; k < t.data.size(); k++) {
    float v = static_cast<float>(t.data[k]);
    std::memcpy(&out[k * 4], &v, 4);
  }
  return out;
}

// llama.cpp's general.file_type (llama_ftype) for the bulk of the weights.
uint32_t file_type(GgufWeightType type) {
  switch (type) {
    case GgufWeightType::kF32:
      return 0;
    case GgufWeightType::kF16:
      return 1;
    case GgufWeightType::kQ4_0:
      return 2;
    case GgufWeightType::kQ8_0:
      return 7;
  }
  return 0;
}

const GgufValue& need(const GgufFile& f, const std::string& key, const std::string& where) {
  const GgufValue* v = f.find(key);
  if (!v) throw std::invalid_argument(where + ": metadata key " + key + " is missing");
  return *v;
}

int64_t need_int(const GgufFile& f, const std::string& key, const std::string& where) {
  const GgufValue& v = need(f, key, where);
  if (!v.is_integer()) throw std::invalid_argument(where + ": " + key + " is not an integer");
  return v.i;
}

double need_float(const GgufFile& f, const std::string& key, const std::string& where) {
  const GgufValue& v = need(f, key, where);
  if (v.type != GgufValueType::kF32 && v.type != GgufValueType::kF64)
    throw std::invalid_argument(where + ": " + key + " is not a float");
  return v.f;
}

const std::vector<GgufValue>& need_array(const GgufFile& f, const std::string& key, GgufValueType element,
                                         const std::string& where) {
  const GgufValue& v = need(f, key, where);
  if (v.type != GgufValueType::kArray || v.element_type != element)
    throw std::invalid_argument(where + ": " + key + " is not an array of the expected type");
  return v.array;
}

// GGUF stores norm_eps and rope_theta as f32: 1e-5 comes back as 9.99999975e-06. The shortest
// decimal that gives the same float (1e-05) is what config.json said, and what the model computes
// with is the same float either way.
double shortest_float(double v) {
  for (int digits = 1; digits <= 9; digits++) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == static_cast<float>(v)) return d;
  }
  return v;
}

// An int metadata value as a config field; the config's own validation checks its range after.
int to_int(int64_t v, const std::string& key, const std::string& where) {
  if (v < 0 || v > INT32_MAX)
    throw std::invalid_argument(where + ": " + key + " = " + std::to_string(v) + " is out of range");
  return static_cast<int>(v);
}

}  // namespace

GgufWeightType parse_gguf_weight_type(const std::string& name) {
  if (name == "f32") return GgufWeightType::kF32;
  if (name == "f16") return GgufWeightType::kF16;
  if (name == "q8_0") return GgufWeightType::kQ8_0;
  if (name == "q4_0") return GgufWeightType::kQ4_0;
  throw std::invalid_argument("GGUF weight type \"" + name + "\": expected f32, f16, q8_0 or q4_0");
}

std::string gguf_tensor_name(const std::string& ours) {
  static const std::unordered_map<std::string, std::string> top = {{"tok_embeddings.weight", "token_embd.weight"},
                                                                   {"norm.weight", "output_norm.weight"},
                                                                   {"output.weight", "output.weight"}};
  static const std::unordered_map<std::string, std::string> layer = {
      {"attention_norm.weight", "attn_norm.weight"}, {"attention.wq.weight", "attn_q.weight"},
      {"attention.wk.weight", "attn_k.weight"},      {"attention.wv.weight", "attn_v.weight"},
      {"attention.wo.weight", "attn_output.weight"}, {"ffn_norm.weight", "ffn_norm.weight"},
      {"feed_forward.w1.weight", "ffn_gate.weight"}, {"feed_forward.w3.weight", "ffn_up.weight"},
      {"feed_forward.w2.weight", "ffn_down.weight"}};
  if (auto it = top.find(ours); it != top.end()) return it->second;
  if (ours.rfind("layers.", 0) == 0) {
    size_t dot = ours.find('.', 7);
    if (dot != std::string::npos) {
      if (auto it = layer.find(ours.substr(dot + 1)); it != layer.end())
        return "blk." + ours.substr(7, dot - 7) + "." + it->second;
    }
  }
  throw std::invalid_argument("gguf: no llama.cpp name for the tensor " + ours);
}

std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const Tokenizer& tokenizer) {
  std::vector<std::pair<std::string, GgufValue>> kv;
  if (auto* bpe = dynamic_cast<const BpeTokenizer*>(&tokenizer)) {
    std::vector<std::string> tokens;
    std::vector<int32_t> types(bpe->vocab().size(), kNormal);
    for (int id : bpe->special_ids()) types[id] = kControl;
    for (size_t id = 0; id < bpe->vocab().size(); id++)
      tokens.push_back(types[id] == kControl ? bpe->vocab()[id] : bytes_to_hf(bpe->vocab()[id]));
    std::vector<std::string> merges;
    for (const BpeMerge& m : bpe->merges()) merges.push_back(tokens[m.left] + " " + tokens[m.right]);
    kv.emplace_back("tokenizer.ggml.model", GgufValue::string("gpt2"));
    kv.emplace_back("tokenizer.ggml.pre", GgufValue::string("gpt-2"));
    kv.emplace_back("tokenizer.ggml.tokens", GgufValue::strings(tokens));
    kv.emplace_back("tokenizer.ggml.token_type", GgufValue::i32s(types));
    kv.emplace_back("tokenizer.ggml.merges", GgufValue::strings(merges));
    // llama.cpp's gpt2 vocabularies default BOS and EOS to id 11 (GPT-2's own numbering), so
    // both are always written. We have no BOS: the end-of-text token starts a document, as in
    // GPT-2, and nothing is added in front of a prompt.
    if (bpe->eos_id() >= 0) {
      kv.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(bpe->eos_id()));
      kv.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(bpe->eos_id()));
    }
    kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
    kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
    // A chat model (tokenizer/chat_template.h): its ChatML template, and <|im_end|> as the token
    // that ends a turn, so that llama.cpp's chat front ends stop there.
    if (has_chat_tokens(*bpe)) {
      kv.emplace_back("tokenizer.ggml.eot_token_id", GgufValue::u32(bpe->special_id(kImEnd)));
      kv.emplace_back("tokenizer.chat_template", GgufValue::string(chat_template_jinja()));
    }
    return kv;
  }
  if (auto* sp = dynamic_cast<const Llama2cTokenizer*>(&tokenizer)) {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    for (int id = 0; id < sp->vocab_size(); id++) {
      tokens.push_back(replace_all(sp->piece(id), " ", kSpaceMark));
      scores.push_back(sp->score(id));
      types.push_back(id == 0 ? kUnknown : id <= 2 ? kControl : id <= 258 ? kByte : kNormal);
    }
    kv.emplace_back("tokenizer.ggml.model", GgufValue::string("llama"));
    kv.emplace_back("tokenizer.ggml.pre", GgufValue::string("default"));
    kv.emplace_back("tokenizer.ggml.tokens", GgufValue::strings(tokens));
    kv.emplace_back("tokenizer.ggml.scores", GgufValue::f32s(scores));
    kv.emplace_back("tokenizer.ggml.token_type", GgufValue::i32s(types));
    kv.emplace_back("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
    kv.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(sp->bos_id()));
    kv.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(sp->eos_id()));
    kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
    kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
    return kv;
  }
  throw std::invalid_argument("gguf: a " + tokenizer.kind() + " tokenizer has no GGUF form");
}

std::vector<std::pair<std::string, GgufValue>> gguf_model_metadata(const Model& model, const std::string& name,
                                                                   GgufWeightType type) {
  const ModelConfig& c = model.config;
  std::vector<std::pair<std::string, GgufValue>> kv;
  kv.emplace_back("general.architecture", GgufValue::string("llama"));
  kv.emplace_back("general.name", GgufValue::string(name));
  kv.emplace_back("general.file_type", GgufValue::u32(file_type(type)));
  kv.emplace_back("llama.vocab_size", GgufValue::u32(c.vocab_size));
  kv.emplace_back("llama.context_length", GgufValue::u32(c.max_seq_len));
  kv.emplace_back("llama.embedding_length", GgufValue::u32(c.dim));
  kv.emplace_back("llama.block_count", GgufValue::u32(c.n_layers));
  kv.emplace_back("llama.feed_forward_length", GgufValue::u32(c.hidden_dim));
  kv.emplace_back("llama.attention.head_count", GgufValue::u32(c.n_heads));
  kv.emplace_back("llama.attention.head_count_kv", GgufValue::u32(c.n_kv_heads));
  kv.emplace_back("llama.rope.dimension_count", GgufValue::u32(c.head_size()));
  kv.emplace_back("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(c.norm_eps)));
  kv.emplace_back("llama.rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  return kv;
}

GgmlType gguf_tensor_type(const Shape& shape, GgufWeightType type) {
  if (shape.size() != 2 || type == GgufWeightType::kF32) return GgmlType::kF32;
  if (type == GgufWeightType::kF16) return GgmlType::kF16;
  // Rows (ne[0] = the last dimension) must split into whole blocks; stories260K's w2, with rows
  // of F = 172, cannot, and stays exact.
  if (shape[1] % QK != 0) return GgmlType::kF32;
  return type == GgufWeightType::kQ8_0 ? GgmlType::kQ8_0 : GgmlType::kQ4_0;
}

std::string gguf_tensor_bytes(const Tensor& t, GgmlType type) {
  if (type == GgmlType::kF32) return float32_bytes(t);
  const std::vector<float> x(t.data.begin(), t.data.end());
  if (type == GgmlType::kF16) {
    std::string out(x.size() * 2, '\0');
    for (size_t k = 0; k < x.size(); k++) {
      uint16_t h = fp32_to_fp16(x[k]);
      std::memcpy(&out[2 * k], &h, 2);
    }
    return out;
  }
  const QuantType q = type == GgmlType::kQ8_0 ? QuantType::q8_0 : QuantType::q4_0;
  const int64_t cols = t.shape.back(), rows = static_cast<int64_t>(x.size()) / cols;
  const size_t row_bytes = quant_row_bytes(q, cols);
  std::string out(rows * row_bytes, '\0');
  for (int64_t r = 0; r < rows; r++) quantize_row(q, x.data() + r * cols, &out[r * row_bytes], cols);
  return out;
}

std::vector<GgufTensorOut> gguf_model_tensors(const Model& model, GgufWeightType type) {
  std::vector<GgufTensorOut> out;
  for (size_t k = 0; k < model.entries.size(); k++) {
    const Tensor& t = model.values[k];
    GgufTensorOut o;
    o.name = gguf_tensor_name(model.entries[k].name);
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) o.ne.push_back(static_cast<uint64_t>(*d));
    o.type = gguf_tensor_type(t.shape, type);
    try {
      o.data = gguf_tensor_bytes(t, o.type);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("gguf export: " + model.entries[k].name + ": " + e.what());
    }
    out.push_back(std::move(o));
  }
  return out;
}

void export_gguf(const Model& model, const Tokenizer& tokenizer, const std::string& name, GgufWeightType type,
                 const std::string& path) {
  if (tokenizer.vocab_size() != model.config.vocab_size)
    throw std::invalid_argument("gguf export: the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                                " tokens but the model's vocab_size is " + std::to_string(model.config.vocab_size));
  auto kv = gguf_model_metadata(model, name, type);
  for (auto& e : gguf_tokenizer_metadata(tokenizer)) kv.push_back(std::move(e));
  write_gguf(path, kv, gguf_model_tensors(model, type));
}

ModelConfig gguf_model_config(const GgufFile& f, const std::string& where) {
  const GgufValue& arch = need(f, "general.architecture", where);
  if (arch.type != GgufValueType::kString || arch.s != "llama")
    throw std::invalid_argument(where + ": general.architecture is " + gguf_value_summary(arch) +
                                "; only \"llama\" is supported");
  ModelConfig c;
  auto get = [&](const char* key) { return to_int(need_int(f, std::string("llama.") + key, where), key, where); };
  c.dim = get("embedding_length");
  c.n_layers = get("block_count");
  c.n_heads = get("attention.head_count");
  c.n_kv_heads = f.find("llama.attention.head_count_kv") ? get("attention.head_count_kv") : c.n_heads;
  c.hidden_dim = get("feed_forward_length");
  c.max_seq_len = get("context_length");
  c.norm_eps = shortest_float(need_float(f, "llama.attention.layer_norm_rms_epsilon", where));
  c.rope_theta =
      f.find("llama.rope.freq_base") ? shortest_float(need_float(f, "llama.rope.freq_base", where)) : 10000.0;
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->ne.size() != 2) throw std::invalid_argument(where + ": no 2-D tensor token_embd.weight");
  if (embd->ne[1] > static_cast<uint64_t>(INT32_MAX))
    throw std::invalid_argument(where + ": token_embd.weight has too many rows");
  c.vocab_size = static_cast<int>(embd->ne[1]);
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  if (c.n_heads > 0 && c.dim % c.n_heads == 0 && f.find("llama.rope.dimension_count")) {
    int rot = get("rope.dimension_count");
    if (rot != c.dim / c.n_heads)
      throw std::invalid_argument(where + ": llama.rope.dimension_count = " + std::to_string(rot) +
                                  ", but this engine rotates the whole head (" + std::to_string(c.dim / c.n_heads) +
                                  ")");
  }
  if (const GgufValue* scaling = f.find("llama.rope.scaling.type"); scaling && scaling->s != "none")
    throw std::invalid_argument(where + ": RoPE scaling (" + gguf_value_summary(*scaling) + ") is not supported");
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": the llama.* metadata describe an invalid model: " + e.what());
  }
  return c;
}

std::unique_ptr<Tokenizer> gguf_tokenizer(const GgufFile& f, const std::string& where,
                                          std::vector<std::string>* notes) {
  const GgufValue& model = need(f, "tokenizer.ggml.model", where);
  const auto& tokens = need_array(f, "tokenizer.ggml.tokens", GgufValueType::kString, where);
  std::vector<int32_t> types(tokens.size(), kNormal);
  if (f.find("tokenizer.ggml.token_type")) {
    const auto& t = need_array(f, "tokenizer.ggml.token_type", GgufValueType::kI32, where);
    if (t.size() != tokens.size())
      throw std::invalid_argument(where + ": tokenizer.ggml.token_type has " + std::to_string(t.size()) +
                                  " entries for " + std::to_string(tokens.size()) + " tokens");
    for (size_t k = 0; k < t.size(); k++) types[k] = static_cast<int32_t>(t[k].i);
  }
  if (model.s == "gpt2") {
    if (const GgufValue* pre = f.find("tokenizer.ggml.pre");
        notes && pre && pre->s != "gpt-2" && pre->s != "gpt2" && pre->s != "default")
      notes->push_back("the pre-tokenizer \"" + pre->s +
                       "\" is not GPT-2's; this engine pre-tokenizes with the GPT-2 regex, so some texts may "
                       "split differently");
    std::vector<std::string> vocab;
    std::vector<int> specials;
    std::unordered_map<std::string, int> by_text;
    for (size_t id = 0; id < tokens.size(); id++) {
      const std::string& text = tokens[id].s;
      const bool special = types[id] == kControl || types[id] == kUserDefined;
      vocab.push_back(special ? text : hf_to_bytes(text, where + ": token " + std::to_string(id)));
      if (special) specials.push_back(static_cast<int>(id));
      by_text.emplace(text, static_cast<int>(id));
    }
    std::vector<BpeMerge> merges;
    const auto& m = need_array(f, "tokenizer.ggml.merges", GgufValueType::kString, where);
    for (size_t k = 0; k < m.size(); k++) {
      const std::string& line = m[k].s;
      size_t sp = line.find(' ');
      auto l = by_text.find(line.substr(0, sp == std::string::npos ? 0 : sp));
      auto r = by_text.find(sp == std::string::npos ? std::string() : line.substr(sp + 1));
      auto res = sp == std::string::npos ? by_text.end() : by_text.find(line.substr(0, sp) + line.substr(sp + 1));
      if (sp == std::string::npos || l == by_text.end() || r == by_text.end() || res == by_text.end())
        throw std::invalid_argument(where + ": merge " + std::to_string(k) + " \"" + line.substr(0, 80) +
                                    "\" is not two tokens whose concatenation is a token");
      merges.push_back({l->second, r->second, res->second});
    }
    try {
      return std::make_unique<BpeTokenizer>(std::move(vocab), std::move(merges), std::move(specials));
    } catch (const std::exception& e) {
      throw std::invalid_argument(where + ": the gpt2 vocabulary is inconsistent: " + e.what());
    }
  }
  if (model.s == "llama") {
    const auto& s = need_array(f, "tokenizer.ggml.scores", GgufValueType::kF32, where);
    if (s.size() != tokens.size())
      throw std::invalid_argument(where + ": tokenizer.ggml.scores has " + std::to_string(s.size()) + " entries for " +
                                  std::to_string(tokens.size()) + " tokens");
    std::vector<std::string> pieces;
    std::vector<float> scores;
    uint32_t longest = 0;
    for (size_t id = 0; id < tokens.size(); id++) {
      pieces.push_back(replace_all(tokens[id].s, kSpaceMark, " "));
      scores.push_back(static_cast<float>(s[id].f));
      longest = std::max<uint32_t>(longest, static_cast<uint32_t>(pieces.back().size()));
    }
    const std::pair<const char*, int> fixed_ids[] = {{"tokenizer.ggml.bos_token_id", 1},
                                                     {"tokenizer.ggml.eos_token_id", 2}};
    for (const auto& [key, want] : fixed_ids) {
      if (const GgufValue* v = f.find(key); v && v->i != want)
        throw std::invalid_argument(where + ": " + key + " = " + std::to_string(v->i) + ", but this engine's " +
                                    "SentencePiece-style tokenizer has BOS 1 and EOS 2");
    }
    try {
      return std::make_unique<Llama2cTokenizer>(std::move(pieces), std::move(scores), longest);
    } catch (const std::exception& e) {
      throw std::invalid_argument(where + ": the llama vocabulary is not llama2.c-shaped: " + e.what());
    }
  }
  throw std::invalid_argument(where + ": tokenizer.ggml.model is " + gguf_value_summary(model) +
                              "; only \"gpt2\" and \"llama\" are supported");
}

GgufImport import_gguf(const GgufFile& f, const std::string& where) {
  GgufImport r;
  const ModelConfig c = gguf_model_config(f, where);
  r.tokenizer = gguf_tokenizer(f, where, &r.notes);
  if (r.tokenizer->vocab_size() != c.vocab_size)
    throw std::invalid_argument(where + ": " + std::to_string(r.tokenizer->vocab_size()) +
                                " tokens, but token_embd.weight has " + std::to_string(c.vocab_size) + " rows");
  // Every tensor is found and its shape checked before anything is allocated: the model then
  // takes no more memory than the file's tensors describe.
  auto show = [](const std::vector<uint64_t>& ne) {
    std::string s = "{";
    for (size_t i = 0; i < ne.size(); i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "}";
  };
  std::vector<const GgufTensorInfo*> found;
  for (const auto& [ours, shape] : model_tensor_shapes(c)) {
    const std::string name = gguf_tensor_name(ours);
    const GgufTensorInfo* t = f.find_tensor(name);
    if (!t) throw std::invalid_argument(where + ": tensor " + name + " is missing");
    std::vector<uint64_t> want;
    for (auto d = shape.rbegin(); d != shape.rend(); ++d) want.push_back(static_cast<uint64_t>(*d));
    if (t->ne != want)
      throw std::invalid_argument(where + ": tensor " + name + " has ne " + show(t->ne) + ", expected " + show(want) +
                                  " from the llama.* metadata");
    found.push_back(t);
  }
  r.model = make_model(c);
  size_t used = 0, converted = 0;
  for (size_t k = 0; k < r.model.entries.size(); k++) {
    const GgufTensorInfo* t = found[k];
    Tensor& dst = r.model.values[k];
    const char* src = f.data(*t);
    std::vector<float> x(dst.data.size());
    if (t->type == GgmlType::kF32) {
      std::memcpy(x.data(), src, 4 * x.size());
    } else if (t->type == GgmlType::kF16) {
      for (size_t i = 0; i < x.size(); i++) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        x[i] = fp16_to_fp32(h);
      }
    } else {
      const QuantType q = t->type == GgmlType::kQ8_0 ? QuantType::q8_0 : QuantType::q4_0;
      const int64_t cols = static_cast<int64_t>(t->ne[0]), rows = static_cast<int64_t>(x.size()) / cols;
      const size_t row_bytes = quant_row_bytes(q, cols);
      for (int64_t row = 0; row < rows; row++) dequantize_row(q, src + row * row_bytes, x.data() + row * cols, cols);
    }
    std::copy(x.begin(), x.end(), dst.data.begin());
    if (t->type != GgmlType::kF32) converted++;
    used++;
  }
  if (converted > 0)
    r.notes.push_back(std::to_string(converted) +
                      " tensor(s) stored as F16/Q8_0/Q4_0 were converted to float32 "
                      "(exactly: every such value is a float32 value)");
  if (used != f.tensors.size())
    r.notes.push_back(std::to_string(f.tensors.size() - used) +
                      " tensor(s) of the file are not part of a llama "
                      "model and were ignored");
  return r;
}

}  // namespace foundry
