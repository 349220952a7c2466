// The program's own `operator new` (aligned_new.cpp): blocks of 256 bytes or more start on a
// 64-byte boundary. A measuring program may also watch every block it hands out.
#pragma once

#include <cstddef>

namespace foundry {

// Called with the size of every block `new` hands out, from whichever thread allocates, so it
// must be cheap and thread-safe (an atomic counter) and must not allocate itself.
using AllocationObserver = void (*)(std::size_t bytes);

// Installs `observer` (nullptr removes it). Returns false, and installs nothing, in a build
// where the replacement is off (AddressSanitizer brings its own operator new).
bool set_allocation_observer(AllocationObserver observer);

}  // namespace foundry
