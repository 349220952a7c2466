// The .npy writer (common/npy.h): the header's bytes, and float32 data from float and double.
#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "common/npy.h"

using namespace foundry;

TEST_CASE("npy header: magic, version, dict, padded to 64 bytes", "[npy]") {
  std::string h = npy_header_float32({2, 3, 4});
  REQUIRE(h.size() % 64 == 0);
  CHECK(h.compare(0, 6, "\x93NUMPY") == 0);
  CHECK(h[6] == 1);
  CHECK(h[7] == 0);
  size_t len = (unsigned char)h[8] | ((unsigned char)h[9] << 8);
  CHECK(len + 10 == h.size());
  CHECK(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }") == 10);
  CHECK(h.back() == '\n');
  CHECK(npy_header_float32({5}).find("'shape': (5,)") != std::string::npos);
}

TEST_CASE("npy data: float32 from float and from double, the same bytes", "[npy]") {
  // 2500 values: more than one of the double writer's conversion blocks.
  std::vector<float> f(2500);
  std::vector<double> d(2500);
  for (size_t i = 0; i < f.size(); i++) {
    f[i] = 0.25f * static_cast<float>(i) - 300.0f;
    d[i] = f[i];
  }
  std::ostringstream from_float, from_double;
  write_float32(from_float, f.data(), f.size());
  write_float32(from_double, d.data(), d.size());
  const std::string bytes = from_float.str();
  REQUIRE(bytes.size() == 4 * f.size());
  REQUIRE(from_double.str() == bytes);
  float x;
  std::memcpy(&x, bytes.data() + 4 * 2047, 4);
  CHECK(x == 0.25f * 2047 - 300.0f);
  // a double that is not a float is rounded to the nearest float
  const double third = 1.0 / 3.0;
  std::ostringstream one;
  write_float32(one, &third, 1);
  std::memcpy(&x, one.str().data(), 4);
  CHECK(x == static_cast<float>(third));
}
