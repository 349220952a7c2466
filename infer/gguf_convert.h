// A LLaMA model and its tokenizer as a GGUF file for llama.cpp, and back.
//
// What llama.cpp's `llama` architecture reads (learned from its loader, and proven by the test
// that runs our exported file in llama.cpp itself, tests/interop/llama_cpp.sh):
//
//   general.architecture "llama", general.name, general.file_type
//   llama.context_length            max_seq_len        llama.embedding_length      C (dim)
//   llama.block_count               L                  llama.feed_forward_length   F (hidden_dim)
//   llama.attention.head_count      NH                 llama.attention.head_count_kv  NKV
//   llama.rope.dimension_count      HS (all of the head rotates)
//   llama.attention.layer_norm_rms_epsilon  norm_eps   llama.rope.freq_base        rope_theta
//   llama.vocab_size                V
//
//   ours                              llama.cpp               GGUF ne (fastest first)
//   tok_embeddings.weight  (V, C)     token_embd.weight       {C, V}
//   layers.i.attention_norm (C)       blk.i.attn_norm.weight  {C}
//   layers.i.attention.wq  (NH·HS, C) blk.i.attn_q.weight     {C, NH·HS}
//   ...wk, wv (NKV·HS, C)             blk.i.attn_k / attn_v   {C, NKV·HS}
//   ...wo (C, NH·HS)                  blk.i.attn_output       {NH·HS, C}
//   layers.i.ffn_norm (C)             blk.i.ffn_norm.weight   {C}
//   w1 (F, C), w3 (F, C), w2 (C, F)   blk.i.ffn_gate, ffn_up, ffn_down
//   norm.weight (C)                   output_norm.weight      {C}
//   output.weight (V, C)              output.weight           {C, V}; absent when tied (llama.cpp
//                                                             then reuses token_embd)
//
// A row-major (out, in) matrix is already laid out as ggml's {in, out}: the bytes are copied as
// they are. RoPE: llama.cpp's `llama` architecture rotates adjacent pairs (x[2i], x[2i+1]), as we
// do (model/rope.h) and as Meta's checkpoints and llama2.c do, so wq and wk are written unpermuted.
// (Hugging Face's LLaMA checkpoints rotate the two halves of each head instead; their converter
// permutes wq/wk rows to undo that. We have nothing to undo.)
//
// Tokenizers: our byte-level BPE becomes tokenizer.ggml.model "gpt2" (tokens in GPT-2's
// byte-level spelling, merges as "left right", special tokens of type control, pre-tokenizer
// "gpt-2": llama.cpp's name for the GPT-2 regex that tokenizer/pretokenize.h implements; it refuses
// to load "gpt2", which is the tokenizer model's name, not the regex's); the llama2.c vocabulary becomes
// "llama" (SentencePiece: spaces spelled U+2581 '▁', pieces with their scores, <0xXX> pieces of
// type byte, <unk>/<s>/</s> as unknown/control). A BPE vocabulary with the chat tokens also gets
// tokenizer.chat_template (the ChatML template of tokenizer/chat_template.h, as Jinja) and
// <|im_end|> as tokenizer.ggml.eot_token_id.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace foundry {

// The tensor type of the exported matrices (all of them, the embedding and the output projection
// included, as llama.cpp's own q8_0 conversion does). Gains (1-D) always stay F32; a matrix whose
// rows do not split into whole blocks of 32 stays F32 in the quantized exports. Blocks are made
// by engine/quant.h, whose rules are llama.cpp's reference ones: the same floats give the same
// bytes as llama.cpp's quantizer.
enum class GgufWeightType { kF32, kF16, kQ8_0, kQ4_0 };
// "f32" | "f16" | "q8_0" | "q4_0"; throws std::invalid_argument on anything else.
GgufWeightType parse_gguf_weight_type(const std::string& name);

// Our tensor name -> llama.cpp's ("layers.3.feed_forward.w1.weight" -> "blk.3.ffn_gate.weight").
std::string gguf_tensor_name(const std::string& ours);

// The tokenizer's GGUF metadata (tokenizer.ggml.*). Throws std::invalid_argument for a tokenizer
// kind that has no GGUF form.
std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const Tokenizer& tokenizer);

// Every metadata entry and tensor of the exported file. `name` goes to general.name.
std::vector<std::pair<std::string, GgufValue>> gguf_model_metadata(const Model& model, const std::string& name,
                                                                   GgufWeightType type);
std::vector<GgufTensorOut> gguf_model_tensors(const Model& model, GgufWeightType type);
// The GGML type a tensor of this shape gets, and its bytes in that type.
GgmlType gguf_tensor_type(const Shape& shape, GgufWeightType type);
std::string gguf_tensor_bytes(const Tensor& t, GgmlType type);

// Writes the model and its tokenizer as one GGUF file, atomically.
void export_gguf(const Model& model, const Tokenizer& tokenizer, const std::string& name, GgufWeightType type,
                 const std::string& path);

// A model read from a GGUF file of the `llama` architecture, with its tokenizer (gpt2 or llama).
struct GgufImport {
  Model model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<std::string> notes;  // what the import changed or could not keep, for the user
};

// The ModelConfig a GGUF file's llama.* metadata describes. Throws std::invalid_argument naming
// the key when the architecture is not llama, a key is missing or out of range, or RoPE covers
// only part of the head.
ModelConfig gguf_model_config(const GgufFile& file, const std::string& where);
// The tokenizer of a GGUF file. Throws std::invalid_argument naming the key on a missing or
// inconsistent vocabulary, or a tokenizer model other than gpt2 and llama.
std::unique_ptr<Tokenizer> gguf_tokenizer(const GgufFile& file, const std::string& where,
                                          std::vector<std::string>* notes = nullptr);
// The whole model, every tensor checked against the config (F32 copied exactly; F16, Q8_0 and
// Q4_0 converted to float32, which is exact: every value they stand for is a float32. Exporting
// the result in the same type gives the same blocks again). Throws std::invalid_argument naming
// the tensor.
GgufImport import_gguf(const GgufFile& file, const std::string& where);

}  // namespace foundry
