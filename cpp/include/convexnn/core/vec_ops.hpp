// Small host vector kernels used by the solvers (one place, so a device backend can swap them out).
//
// Reductions are accumulated in double over fixed-size chunks that are summed in chunk order, so the
// result does not depend on the number of OpenMP threads (determinism across thread counts).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "convexnn/core/common.hpp"

namespace convexnn::vec {

// Chunk size of the deterministic reductions and the threshold under which loops stay serial.
inline constexpr index_t kChunk = 16384;

// sum_{k<n} f(k) in double, deterministic for any thread count.
template <class F>
double chunked_sum(index_t n, F&& f) {
  if (n <= kChunk) {
    double s = 0.0;
    for (index_t k = 0; k < n; ++k) s += f(k);
    return s;
  }
  const index_t n_chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<std::size_t>(n_chunks), 0.0);
#pragma omp parallel for schedule(static)
  for (index_t ch = 0; ch < n_chunks; ++ch) {
    const index_t lo = ch * kChunk, hi = std::min(n, lo + kChunk);
    double s = 0.0;
    for (index_t k = lo; k < hi; ++k) s += f(k);
    part[static_cast<std::size_t>(ch)] = s;
  }
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

// for k < n: f(k), in parallel when n is large (f must write disjoint entries).
template <class F>
void parallel_for(index_t n, F&& f) {
  if (n <= kChunk) {
    for (index_t k = 0; k < n; ++k) f(k);
    return;
  }
#pragma omp parallel for schedule(static)
  for (index_t k = 0; k < n; ++k) f(k);
}

template <class A, class B>
double dot(index_t n, const A* a, const B* b) {
  return chunked_sum(n, [&](index_t k) { return static_cast<double>(a[k]) * static_cast<double>(b[k]); });
}

template <class A>
double sqnorm(index_t n, const A* a) {
  return chunked_sum(n, [&](index_t k) {
    const double v = static_cast<double>(a[k]);
    return v * v;
  });
}

// y += alpha * x
template <class X, class Y>
void axpy(index_t n, double alpha, const X* x, Y* y) {
  parallel_for(
      n, [&](index_t k) { y[k] = static_cast<Y>(static_cast<double>(y[k]) + alpha * static_cast<double>(x[k])); });
}

// out = a + alpha * (a - b)   (momentum / extrapolation step)
template <class T>
void extrapolate(index_t n, const T* a, const T* b, double alpha, T* out) {
  parallel_for(n, [&](index_t k) {
    out[k] =
        static_cast<T>(static_cast<double>(a[k]) + alpha * (static_cast<double>(a[k]) - static_cast<double>(b[k])));
  });
}

template <class X, class Y>
void copy(index_t n, const X* x, Y* y) {
  parallel_for(n, [&](index_t k) { y[k] = static_cast<Y>(x[k]); });
}

template <class T>
void fill(index_t n, T* x, T v) {
  std::fill(x, x + n, v);
}

template <class T>
bool all_finite(index_t n, const T* x) {
  for (index_t k = 0; k < n; ++k)
    if (!std::isfinite(static_cast<double>(x[k]))) return false;
  return true;
}

}  // namespace convexnn::vec
