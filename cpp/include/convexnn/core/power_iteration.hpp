// ||A||^2 by power iteration on A^T A, for the step size (Lipschitz constant) of first-order methods.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "convexnn/core/common.hpp"
#include "convexnn/core/vec_ops.hpp"

namespace convexnn {

struct PowerIterationResult {
  double norm_sq = 0.0;  // the estimate: a lower bound on ||A||^2
  bool complete = false;  // false when `stop` cut it short (a cruder lower bound; callers should not cache it)
};

// `iterations` steps from a deterministic pseudo-random start (an LCG, so the estimate depends on nothing
// else). forward(v, z) computes z = A v (v of length `len`, z of length `out_len`), adjoint(z, v) v = A^T z;
// stop() is asked after each step (each is a full forward + adjoint: seconds on large problems).
template <class T, class Forward, class Adjoint, class Stop>
PowerIterationResult power_iteration_norm_sq(index_t len, index_t out_len, int iterations, Forward&& forward,
                                             Adjoint&& adjoint, Stop&& stop) {
  std::vector<T> v(static_cast<std::size_t>(len)), z(static_cast<std::size_t>(out_len));
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  for (index_t k = 0; k < len; ++k) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v[k] = static_cast<T>(static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5);
  }
  PowerIterationResult res;
  for (int it = 0; it < iterations; ++it) {
    const double nv = std::sqrt(vec::sqnorm(len, v.data()));
    if (!(nv > 0)) break;
    for (auto& e : v) e = static_cast<T>(static_cast<double>(e) / nv);
    forward(v.data(), z.data());
    res.norm_sq = vec::sqnorm(out_len, z.data());
    adjoint(z.data(), v.data());
    if (stop()) return res;
  }
  res.complete = true;
  return res;
}

}  // namespace convexnn
