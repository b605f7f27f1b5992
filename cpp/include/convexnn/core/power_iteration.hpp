// ||A||^2 by power iteration on A^T A, for the step size (Lipschitz constant) of first-order methods.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "convexnn/core/common.hpp"
#include "convexnn/core/vec_ops.hpp"

namespace convexnn {

struct PowerIterationResult {
  double norm_sq = 0.0;  // the estimate: a lower bound on ||A||^2
  bool complete = false;  // false when `stop` cut it short (a cruder lower bound; callers should not cache it)
};

// What a power step reports, and how its norms are summed. The defaults are the gated solver's; the exact
// solver's step sizes were tuned with the other variant (both estimate ||A||^2 from below).
struct PowerIterationOptions {
  bool gram_norm = false;  // ||A^T A v|| (||v|| = 1) instead of the Rayleigh quotient ||A v||^2
  bool in_order = false;   // norms summed in index order instead of vec::sqnorm's chunks
};

// `iterations` steps from the start v (length `len` = v.size()). forward(v, z) computes z = A v (z of length
// `out_len`), adjoint(z, v) v = A^T z; stop() is asked after each step (each is a full forward + adjoint:
// seconds on large problems).
template <class T, class Forward, class Adjoint, class Stop>
PowerIterationResult power_iteration_from(std::vector<T> v, index_t out_len, int iterations, Forward&& forward,
                                          Adjoint&& adjoint, Stop&& stop, PowerIterationOptions opt = {}) {
  const auto len = static_cast<index_t>(v.size());
  const auto sqnorm = [&opt](index_t n, const T* a) {
    if (!opt.in_order) return vec::sqnorm(n, a);
    double s = 0.0;
    for (index_t k = 0; k < n; ++k) s += static_cast<double>(a[k]) * static_cast<double>(a[k]);
    return s;
  };
  std::vector<T> z(static_cast<std::size_t>(out_len));
  PowerIterationResult res;
  for (int it = 0; it < iterations; ++it) {
    const double nv = std::sqrt(sqnorm(len, v.data()));
    if (!(nv > 0)) break;
    for (auto& e : v) e = static_cast<T>(static_cast<double>(e) / nv);
    forward(v.data(), z.data());
    if (!opt.gram_norm) res.norm_sq = sqnorm(out_len, z.data());
    adjoint(z.data(), v.data());
    if (opt.gram_norm) res.norm_sq = std::sqrt(sqnorm(len, v.data()));
    if (stop()) return res;
  }
  res.complete = true;
  return res;
}

// power_iteration_from a deterministic pseudo-random start (an LCG, so the estimate depends on nothing else).
template <class T, class Forward, class Adjoint, class Stop>
PowerIterationResult power_iteration_norm_sq(index_t len, index_t out_len, int iterations, Forward&& forward,
                                             Adjoint&& adjoint, Stop&& stop, PowerIterationOptions opt = {}) {
  std::vector<T> v(static_cast<std::size_t>(len));
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  for (index_t k = 0; k < len; ++k) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v[k] = static_cast<T>(static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5);
  }
  return power_iteration_from<T>(std::move(v), out_len, iterations, forward, adjoint, stop, opt);
}

}  // namespace convexnn
