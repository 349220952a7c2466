#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace foundry {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); i++) out << (i ? ", " : "") << shape[i];
  out << ")";
  return out.str();
}

size_t shape_numel(const Shape& shape) {
  size_t n = 1;
  for (int d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_str(shape));
    n *= static_cast<size_t>(d);
  }
  return n;
}

Tensor::Tensor(Shape shape_, real fill) : shape(std::move(shape_)), data(shape_numel(shape), fill) {}

Tensor::Tensor(Shape shape_, std::vector<real> values) : shape(std::move(shape_)), data(std::move(values)) {
  if (data.size() != shape_numel(shape)) {
    throw std::invalid_argument("Tensor of shape " + shape_str(shape) + " needs " + std::to_string(shape_numel(shape)) +
                                " values, got " + std::to_string(data.size()));
  }
}

int Tensor::dim(int i) const {
  int r = rank();
  int j = i < 0 ? i + r : i;
  if (j < 0 || j >= r) {
    throw std::out_of_range("dim(" + std::to_string(i) + ") of a tensor of shape " + shape_str(shape));
  }
  return shape[j];
}

// ANCHOR: flat_index
size_t flat_index(const Shape& shape, std::initializer_list<int> index) {
  if (index.size() != shape.size()) {
    throw std::out_of_range("index of rank " + std::to_string(index.size()) + " into a tensor of shape " +
                            shape_str(shape));
  }
  size_t offset = 0;
  size_t k = 0;
  for (int i : index) {
    if (i < 0 || i >= shape[k]) {
      throw std::out_of_range("index " + std::to_string(i) + " out of range for dimension " + std::to_string(k) +
                              " of shape " + shape_str(shape));
    }
    offset = offset * shape[k] + i;
    k++;
  }
  return offset;
}
// ANCHOR_END: flat_index

real& Tensor::at(std::initializer_list<int> index) { return data[flat_index(shape, index)]; }
real Tensor::at(std::initializer_list<int> index) const { return data[flat_index(shape, index)]; }

void Tensor::resize(const Shape& new_shape) {
  size_t n = shape_numel(new_shape);  // first: a bad shape throws before anything changes
  shape = new_shape;
  data.resize(n);  // std::vector keeps its capacity when it shrinks
}

// ANCHOR: reshaped
Tensor Tensor::reshaped(const Shape& new_shape) const {
  if (shape_numel(new_shape) != size()) {
    throw std::invalid_argument("cannot reshape a tensor of shape " + shape_str(shape) + " to " + shape_str(new_shape) +
                                ": element counts differ");
  }
  Tensor out;
  out.shape = new_shape;
  out.data = data;
  return out;
}
// ANCHOR_END: reshaped

void Tensor::fill(real value) { std::fill(data.begin(), data.end(), value); }

void check_shape(const Shape& got, const Shape& expected, const std::string& what) {
  if (got != expected) {
    throw std::invalid_argument(what + ": expected shape " + shape_str(expected) + ", got " + shape_str(got));
  }
}

void check_same_shape(const Tensor& a, const Tensor& b, const std::string& what) {
  if (a.shape != b.shape) {
    throw std::invalid_argument(what + ": shapes differ: " + shape_str(a.shape) + " vs " + shape_str(b.shape));
  }
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  check_same_shape(a, b, "max_abs_diff");
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) {
    double d = std::fabs(double(a[i]) - double(b[i]));
    // subtle: std::max(m, NaN) returns m, which would hide a NaN; report it instead.
    if (std::isnan(d)) return d;
    m = std::max(m, d);
  }
  return m;
}

}  // namespace foundry
