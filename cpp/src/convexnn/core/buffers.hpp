// Sizes and checked allocations of the operators' work buffers (private to cpp/src).
#pragma once

#include <cstddef>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "convexnn/core/common.hpp"

namespace convexnn::detail {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
inline index_t round_up(index_t a, index_t m) { return ceil_div(a, m) * m; }

// Elements -> bytes with an overflow check; throws std::length_error naming the size ("<who>: <what> would
// need N bytes").
template <class T>
std::size_t checked_bytes(index_t count, const char* who, const char* what) {
  const double bytes = static_cast<double>(count) * sizeof(T);
  if (count < 0 || bytes > static_cast<double>(std::numeric_limits<std::ptrdiff_t>::max() / 2))
    throw std::length_error(std::string(who) + ": " + what + " would need " + std::to_string(bytes) + " bytes");
  return static_cast<std::size_t>(count) * sizeof(T);
}

// A zero-initialised Vector (std::vector or one with another allocator) of `count` elements; a size that
// cannot be allocated throws std::length_error naming it in bytes.
template <class Vector>
Vector make_checked_vector(index_t count, const char* who, const char* what) {
  using T = typename Vector::value_type;
  checked_bytes<T>(count, who, what);
  try {
    return Vector(static_cast<std::size_t>(count), T(0));
  } catch (const std::bad_alloc&) {
    throw std::length_error(std::string(who) + ": cannot allocate " + what + " of " +
                            std::to_string(static_cast<double>(count) * sizeof(T)) + " bytes");
  }
}

// 64-byte aligned storage (one cache line, one AVX-512 vector): aligned vector loads of whole lines.
inline constexpr std::size_t kCacheLine = 64;
template <class T>
struct LineAllocator {
  using value_type = T;
  LineAllocator() = default;
  template <class U>
  LineAllocator(const LineAllocator<U>&) {}
  T* allocate(std::size_t count) {
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(::operator new(count * sizeof(T), std::align_val_t(kCacheLine)));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }
  bool operator==(const LineAllocator&) const { return true; }
  bool operator!=(const LineAllocator&) const { return false; }
};
template <class T>
using AlignedVector = std::vector<T, LineAllocator<T>>;

// A scratch buffer that only grows (callers keep it thread_local: OpenMP threads persist, so it is reused
// across calls): at least `count` elements, zero when first allocated, stale between uses.
template <class Vector>
typename Vector::value_type* grow_scratch(Vector& buf, index_t count, const char* who, const char* what) {
  if (static_cast<index_t>(buf.size()) < count) buf = make_checked_vector<Vector>(count, who, what);
  return buf.data();
}

}  // namespace convexnn::detail
