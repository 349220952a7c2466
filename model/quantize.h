// Quantizing a model's weights into llama.cpp's Q8_0 or Q4_0 blocks (engine/quant.h).
//
// What is quantized: every matrix whose rows are a whole number of 32-value blocks: the
// attention and feed-forward weights, the untied output projection, and the token embedding
// table. The embedding is a choice: a tied model's output projection *is* that table, read in
// full for every generated token, so leaving it in float would leave the largest single read of
// a small model unshrunk (llama.cpp quantizes it too). The RMSNorm gains stay float: they are a
// few thousand numbers, and their errors would scale every value of the residual stream. A matrix
// whose row length is not a multiple of 32 (llama2.c's stories260K has a hidden size of 172)
// stays float as well.
#pragma once

#include <string>
#include <vector>

#include "engine/quant.h"
#include "model/model.h"

namespace foundry {

// Whether entries[k] of the model would be quantized (the rule above).
bool quantizable(const Model& model, size_t k);

// Quantizes the model in place: fills model.quantized and replaces each quantized tensor's
// values by the floats its blocks stand for, so the model computes exactly what a loaded
// quantized model computes. Throws std::invalid_argument when the model is already quantized or
// a weight cannot be quantized (a non-finite value, a scale beyond fp16), naming the tensor.
// Returns the names of the tensors that stayed float.
std::vector<std::string> quantize_model(Model& model, QuantType type);

// Bytes the weights take in memory as stored: blocks for the quantized tensors, 4 per float.
size_t weight_bytes(const Model& model);

}  // namespace foundry
