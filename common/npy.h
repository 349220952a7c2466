// NumPy's .npy format (version 1.0), writing only: what `foundry eval --logits-out` produces so
// that Python can compare logits with numpy.load.
//
// A file is the header, then the raw array in C order:
//   "\x93NUMPY", version bytes 1 0, a little-endian uint16 header length, then a Python dict
//   literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (N, T, V), } padded with
//   spaces to end in '\n' at a multiple of 64 bytes, so that the data starts aligned.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace foundry {

// The header of a .npy file holding a little-endian float32 array of this shape.
std::string npy_header_float32(const std::vector<size_t>& shape);

// Appends n values as little-endian float32 (the double overload converts each value, so the
// double build writes the same format).
void write_float32(std::ostream& out, const float* values, size_t n);
void write_float32(std::ostream& out, const double* values, size_t n);

}  // namespace foundry
