// The program's `operator new` (common/aligned_new.cpp) gives every block of 256 bytes or more a
// 64-byte aligned address, so vector loops over tensors never split a load across cache lines.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/aligned_new.h"
#include "engine/tensor.h"

namespace {

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

}  // namespace

TEST_CASE("large blocks from new are cache-line aligned", "[alloc]") {
  // The replacement is off under AddressSanitizer, whose own operator new is in charge there;
  // set_allocation_observer says which (nullptr: no observer either way).
  if (!foundry::set_allocation_observer(nullptr)) return;
  // Sizes on both sides of malloc's own mmap threshold (128 KiB), odd ones included, and many
  // at once, so the heap is in a state where malloc alone would hand out 16-byte offsets.
  std::vector<std::vector<float>> keep;
  for (size_t n : {64, 65, 100, 1000, 4097, 33000, 40000, 1 << 20}) {
    for (int k = 0; k < 5; k++) {
      keep.emplace_back(n + k);
      CHECK(aligned64(keep.back().data()));
    }
  }
  std::unique_ptr<double[]> arr(new double[333]);
  CHECK(aligned64(arr.get()));
  foundry::Tensor t({7, 13});
  CHECK(aligned64(t.ptr()));
  // Small blocks stay with malloc's alignment: nothing asks more of them.
  std::unique_ptr<char[]> small(new char[24]);
  CHECK(reinterpret_cast<std::uintptr_t>(small.get()) % alignof(std::max_align_t) == 0);
}
