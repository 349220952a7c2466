// Tensor: contiguous row-major storage plus a shape. Nothing else.
//
// A Tensor owns its numbers (value semantics: copying a Tensor copies the data), never
// broadcasts and never aliases another tensor. Ops take raw pointers plus explicit sizes, in the
// style of llm.c, so the math in each forward/backward pair reads without any tensor machinery.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/real.h"

namespace foundry {

// A shape: the size of each dimension, outermost first. A scalar has the empty shape {}.
using Shape = std::vector<int>;

// "(2, 3, 4)" for {2, 3, 4}; "()" for a scalar.
std::string shape_str(const Shape& shape);

// Number of elements a shape holds (1 for a scalar).
size_t shape_numel(const Shape& shape);

// ANCHOR: tensor_struct
struct Tensor {
  Shape shape;             // sizes, outermost first
  std::vector<real> data;  // shape_numel(shape) numbers, last dimension contiguous

  Tensor() = default;
  explicit Tensor(Shape shape_, real fill = 0);
  Tensor(Shape shape_, std::vector<real> values);  // throws if the counts differ

  size_t size() const { return data.size(); }
  int rank() const { return static_cast<int>(shape.size()); }
  int dim(int i) const;  // negative i counts from the end: dim(-1) is the last dimension

  real* ptr() { return data.data(); }
  const real* ptr() const { return data.data(); }
  real& operator[](size_t i) { return data[i]; }
  real operator[](size_t i) const { return data[i]; }
  // ANCHOR_END: tensor_struct

  // Element at a multi-index, bounds-checked: t.at({b, t, c}). Slow; for tests and lessons.
  real& at(std::initializer_list<int> index);
  real at(std::initializer_list<int> index) const;

  // Changes the shape and size in place. Keeps the allocation when the new size fits in the
  // old capacity, which is how the tape reuses its buffers from one training step to the next.
  void resize(const Shape& new_shape);

  // A copy with another shape of the same element count (throws otherwise).
  Tensor reshaped(const Shape& new_shape) const;

  void fill(real value);
};

// Offset of a multi-index in row-major storage, with bounds checks.
size_t flat_index(const Shape& shape, std::initializer_list<int> index);

// Throws std::invalid_argument naming `what` and printing both shapes when they differ.
void check_shape(const Shape& got, const Shape& expected, const std::string& what);
void check_same_shape(const Tensor& a, const Tensor& b, const std::string& what);

// Largest |a - b| over all elements (shapes must match). NaN if any difference is NaN.
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace foundry
