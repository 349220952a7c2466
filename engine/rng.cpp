#include "engine/rng.h"

#include <cmath>
#include <stdexcept>

namespace foundry {

namespace {
uint64_t splitmix64(uint64_t& x) {
  // Spreads a small seed (0, 1, 2, ...) over all 64 bits so nearby seeds give unrelated streams.
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& word : s) word = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double Rng::uniform() { return (next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  if (has_spare) {
    has_spare = false;
    return spare;
  }
  // Box-Muller: two uniforms give two independent standard normals. 1 - u keeps log away from 0.
  double u1 = 1.0 - uniform();
  double u2 = uniform();
  double radius = std::sqrt(-2.0 * std::log(u1));
  double angle = 2.0 * M_PI * u2;
  spare = radius * std::sin(angle);
  has_spare = true;
  return radius * std::cos(angle);
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw std::invalid_argument("Rng::below(0): the range [0, 0) is empty");
  // Rejection sampling: drop the top sliver of the 64-bit range that does not divide evenly by n.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % n;
}

}  // namespace foundry
