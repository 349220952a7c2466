// Every block of 256 bytes or more that `new` hands out starts on a 64-byte boundary (a cache
// line, and the width of one AVX-512 register).
//
// Why: glibc's malloc returns addresses that are only 16-byte aligned, and a block big enough
// to be mapped on its own (128 KiB and up) always starts 16 bytes past a page boundary. Then
// every 64-byte load or store of a vectorized loop straddles two cache lines, which costs a
// second access each time. For the smaller blocks the offset depends on what was allocated
// before, so the same program ran at a speed that depended on its heap's history: decoding the
// tiny model swung by 15% between two builds that differed in unrelated code (BENCHMARKS.md,
// "Aligned memory"). Aligning all of them makes the speed both higher and repeatable.
//
// Every tensor, Eigen temporary and std::vector<float> gets its memory through the global
// `operator new`, so replacing it (the C++ standard allows a program to) reaches them all
// without changing a type. aligned_alloc's blocks are freed by free(), like malloc's, so delete
// does not need to know which kind it is given. Blocks under 256 bytes (strings, small nodes)
// keep malloc's 16: padding them to 64 would waste memory and no vector loop runs over them.
//
// A program that wants to count allocations (lesson 17 does, to show that a training step
// allocates nothing large once it is warm) installs an observer instead of a second
// replacement, which the linker would refuse.
//
// Not under AddressSanitizer: it replaces `operator new` itself to track every block, and a
// second replacement would hide its checks.
#include "common/aligned_new.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FOUNDRY_NO_ALIGNED_NEW 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FOUNDRY_NO_ALIGNED_NEW 1
#endif

#ifdef FOUNDRY_NO_ALIGNED_NEW

bool foundry::set_allocation_observer(AllocationObserver) { return false; }

#else

namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kAlignFrom = 256;

std::atomic<foundry::AllocationObserver> g_observer{nullptr};

void* allocate(std::size_t n) {
  if (foundry::AllocationObserver watch = g_observer.load(std::memory_order_relaxed)) watch(n);
  // aligned_alloc wants a size that is a multiple of the alignment; round up (never overflows
  // to a small number: a request that close to SIZE_MAX fails below as it would in malloc).
  void* p = n >= kAlignFrom && n <= SIZE_MAX - kAlignment
                ? std::aligned_alloc(kAlignment, (n + kAlignment - 1) & ~(kAlignment - 1))
                : std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

bool foundry::set_allocation_observer(AllocationObserver observer) {
  g_observer.store(observer, std::memory_order_relaxed);
  return true;
}

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept { return operator new(n, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

#endif
