// The one random generator of the project: xoshiro256** seeded through splitmix64.
//
// Every random choice (weight initialization, batch sampling, token sampling, gradient-check
// probes) draws from an Rng that was seeded explicitly, so a run at one thread is reproducible
// bit for bit. The state is four 64-bit words plus the Box-Muller spare, all of it public so a
// checkpoint can save and restore it exactly.
//
// We write the generator and the normal distribution ourselves instead of using <random>'s
// distributions, because the standard leaves their algorithms to the library: the same seed
// could give other numbers with another compiler.
#pragma once

#include <cstdint>

namespace foundry {

struct Rng {
  uint64_t s[4];           // xoshiro256** state; never all zero
  bool has_spare = false;  // Box-Muller makes normals in pairs; the second waits here
  double spare = 0.0;

  Rng() : Rng(1337) {}  // not explicit, so a struct holding an Rng can still be built with {}
  explicit Rng(uint64_t seed);

  uint64_t next_u64();
  double uniform();            // [0, 1), 53 random bits
  double normal();             // mean 0, standard deviation 1
  uint64_t below(uint64_t n);  // uniform integer in [0, n), without modulo bias; n > 0
};

}  // namespace foundry
