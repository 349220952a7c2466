#include "common/npy.h"

#include <algorithm>
#include <cstdint>

namespace foundry {

std::string npy_header_float32(const std::vector<size_t>& shape) {
  // The shape as a Python tuple: (N, T, V); a 1-tuple needs its comma, (n,).
  std::string dims;
  for (size_t i = 0; i < shape.size(); i++) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n' must be a multiple of 64, so
  // the array data starts aligned.
  size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string header = "\x93NUMPY";
  header += '\x01';
  header += '\x00';
  uint16_t len = static_cast<uint16_t>(dict.size());
  header += static_cast<char>(len & 0xFF);
  header += static_cast<char>(len >> 8);
  return header + dict;
}

void write_float32(std::ostream& out, const float* values, size_t n) {
  out.write(reinterpret_cast<const char*>(values), static_cast<std::streamsize>(n * sizeof(float)));
}

void write_float32(std::ostream& out, const double* values, size_t n) {
  // Converted in small blocks, so that no buffer as large as the array is needed.
  float block[1024];
  for (size_t i = 0; i < n; i += 1024) {
    size_t m = std::min<size_t>(1024, n - i);
    for (size_t j = 0; j < m; j++) block[j] = static_cast<float>(values[i + j]);
    out.write(reinterpret_cast<const char*>(block), static_cast<std::streamsize>(m * sizeof(float)));
  }
}

}  // namespace foundry
