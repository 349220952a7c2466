// Quantizing a model's weights: see quantize.h for what is quantized and why.
#include "model/quantize.h"

#include <stdexcept>

namespace foundry {

bool quantizable(const Model& model, size_t k) {
  const Shape& shape = model.entries.at(k).shape;
  return shape.size() == 2 && shape[1] % QK == 0 && shape[0] > 0;
}

std::vector<std::string> quantize_model(Model& model, QuantType type) {
  if (!model.quantized.empty()) throw std::invalid_argument("quantize_model: the model is already quantized");
  std::vector<QuantMatrix> quantized(model.entries.size());
  std::vector<std::string> kept;
  std::vector<float> row_floats;
  for (size_t k = 0; k < model.entries.size(); ++k) {
    if (!quantizable(model, k)) {
      kept.push_back(model.entries[k].name);
      continue;
    }
    const Tensor& value = model.values[k];
    const int N = value.shape[0], K = value.shape[1];
    row_floats.assign(value.data.begin(), value.data.end());  // real -> float (a copy in the float build too)
    try {
      quantized[k] = quantize_matrix(type, row_floats.data(), N, K);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("quantize_model: tensor '" + model.entries[k].name + "': " + e.what());
    }
  }
  // Only now, with every tensor quantized, change the model: no half-quantized state.
  for (size_t k = 0; k < quantized.size(); ++k) {
    if (quantized[k].rows == 0) continue;
    row_floats.resize(model.values[k].data.size());
    dequantize_matrix(quantized[k], row_floats.data());
    for (size_t i = 0; i < row_floats.size(); ++i) model.values[k].data[i] = static_cast<real>(row_floats[i]);
  }
  model.quantized = std::move(quantized);
  return kept;
}

size_t weight_bytes(const Model& model) {
  size_t total = 0;
  for (size_t k = 0; k < model.values.size(); ++k) {
    const QuantMatrix* q = model.quantized_of(&model.values[k]);
    total += q ? q->blocks.size() : model.values[k].data.size() * 4;
  }
  return total;
}

}  // namespace foundry
