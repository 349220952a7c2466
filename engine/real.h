// The scalar type of every tensor in the project.
//
// Users run the float build: half the memory and twice the SIMD width of double. The gradient
// checks run the double build (the `_f64` libraries, compiled with FOUNDRY_REAL_DOUBLE=1): a
// float32 finite difference has only about three correct digits, too few to tell a right
// backward from one that drops a small term.
#pragma once

namespace foundry {

#ifdef FOUNDRY_REAL_DOUBLE
using real = double;
#else
using real = float;
#endif

// The name of the scalar type, for messages and file headers.
constexpr const char* real_name() { return sizeof(real) == 8 ? "float64" : "float32"; }

}  // namespace foundry
