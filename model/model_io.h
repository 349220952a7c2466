// Model files: a model is a directory.
//
//   my-model/
//     config.json        the ModelConfig (model/config.h), every field spelled out
//     model.safetensors  every weight as F32, under the original LLaMA names (model/model.h)
//     tokenizer.json     the tokenizer, when there is one (or tokenizer.bin)
//
// This file reads and writes the first two. The model layer knows nothing of tokenizers: whoever
// saves a model together with its tokenizer (training, `foundry import`) writes the tokenizer
// next to it with Tokenizer::save_to_dir, and load_tokenizer(dir) reads it back.
//
// A quantized model (model/quantize.h) is the same directory: model.safetensors stores each
// quantized matrix (N, K) as a U8 tensor of shape (N, K / 32 · block bytes), its rows of
// llama.cpp blocks byte for byte (engine/quant.h), and the file's metadata names the block type
// ("quantization": "q8_0" or "q4_0"); the gains, and any matrix whose rows are not whole blocks,
// stay F32. Loading gives a Model whose `quantized` holds the blocks.
//
// Each file is written atomically. Loading checks the config on its own, then every tensor
// against it, and only returns a Model when everything agrees: there is no half-loaded state.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "model/config.h"
#include "model/model.h"

namespace foundry {

// The tensors a model with this config stores, in file order, with their shapes (the parameter
// table, model/params.h, expanded for the config):
//   tok_embeddings.weight (V, C); per layer i: layers.i.attention_norm.weight (C),
//   layers.i.attention.{wq (NH·HS, C), wk (NKV·HS, C), wv (NKV·HS, C), wo (C, NH·HS)}.weight,
//   layers.i.ffn_norm.weight (C), layers.i.feed_forward.{w1 (F, C), w3 (F, C), w2 (C, F)}.weight;
//   norm.weight (C); output.weight (V, C) unless tie_embeddings.
std::vector<std::pair<std::string, Shape>> model_tensor_shapes(const ModelConfig& config,
                                                               const ParamTable& table = llama_param_table());

// Creates `dir` (and its parents) if needed and writes config.json and model.safetensors. Throws
// std::runtime_error naming the file that could not be written; std::invalid_argument if a
// weight's shape contradicts the config.
void save_model(const Model& model, const std::string& dir);

// Reads dir/config.json and dir/model.safetensors. Throws std::invalid_argument naming the file
// and the tensor on an invalid config, a corrupt safetensors file, a missing or unexpected
// tensor, or a shape that contradicts the config; std::runtime_error when a file cannot be read.
// Gradients come back zero and the RoPE tables computed, exactly as make_model leaves them.
// `table` describes the tensors to expect (the LLaMA table unless a test extends it).
Model load_model(const std::string& dir, const ParamTable& table = llama_param_table());

}  // namespace foundry
