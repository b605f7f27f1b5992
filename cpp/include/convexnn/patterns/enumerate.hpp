// Exact enumeration of ALL sign patterns 1[X u >= 0] of a data matrix: one per full-dimensional region of
// the central hyperplane arrangement {u : x_k^T u = 0}, k = 1..n (Pilanci & Ergen,
// "Neural Networks are Convex Regularizers", ICML 2020, Section 2).
//
// Algorithm (no LP needed, exact in exact arithmetic):
//  1. Rank reduction. The columns of X are scaled to unit norm (this changes no pattern) and factored by a
//     column-pivoted QR (LAPACK dgeqp3), X S P = Q R. With r = numerical rank (numpy's rule in the input's
//     precision: |R_ii| > max(n, d) * eps(T) * |R_00|) the patterns of X equal those of Y = Q_r (n x r,
//     orthonormal columns, hence a well-conditioned arrangement), and a direction u in R^r lifts to the gate
//     g = S^{-1} P [R11^{-1} u; 0], for which x_k^T g = y_k^T u. Rows whose part inside the kept space is below
//     1e-6 of their norm are treated like zero rows.
//  2. Distinct hyperplanes. Rows that are positive or negative multiples of each other define one hyperplane
//     (unit normals compared after fixing their sign, to 1e-12); zero rows define none (their mask bit is
//     always 1, since 0 >= 0).
//  3. Regions. After the reduction the arrangement of the n' distinct hyperplanes in R^r is essential, so every
//     region is a pointed cone and has an extreme ray ("vertex") v: the intersection of r-1 independent
//     hyperplanes. The regions incident to v correspond one to one to the regions of the LOCAL arrangement of
//     the hyperplanes through v, restricted to v^perp (rank r-1), so
//       regions(A) = union over vertices +-v of { +-v + t w : w interior to a local region at v },
//     with t = (1/2) min_{k not through v} |h_k^T v| so that no other hyperplane is crossed. The local
//     arrangement is the coordinate (orthant) arrangement when exactly r-1 hyperplanes pass through v (general
//     position: 2^{r-1} local regions from the dual basis), and is enumerated recursively otherwise (each
//     degenerate vertex is visited once, from the lexicographically first basis among its hyperplanes). r = 1
//     has the two regions +-; r = 2 is done directly by sorting the 2n' boundary rays by angle.
//     Candidates are grouped by their sign vector over the distinct hyperplanes (hashing); a region's direction
//     is the normalized mean of its candidates (a convex combination, hence strictly inside, and away from the
//     region's vertices), falling back to its first candidate if rounding spoils the mean.
//  4. The directions are lifted to R^d, normalized, and run through PatternSet::from_gates(X, gates), which
//     deduplicates and drops the all-zero pattern. So from_gates(X, result.gates()) reproduces the result by
//     construction, and every gate lies strictly inside its region (its margins are positive; see the tests).
// Cost: O(C(n', r-1) * n' * r * 2^{r-1}) flops for r >= 3 (parallel over vertices, OpenMP; deterministic for
// any thread count), O(n' log n') for r = 2 (plus the final from_gates, O(n * P * d)).
// Floating point: exact for well-separated data. Hyperplanes whose unit normals (in the reduced, whitened
// coordinates) agree to 1e-12 are merged, a hyperplane within 1e-10 of a vertex is taken to pass through it,
// and candidate directions closer than 1e-13 to a hyperplane are discarded, so regions thinner than about
// 1e-10 (relative angles) may be missed; every returned pattern is nevertheless a true pattern of X (its
// gate produces it).
#pragma once

#include <cstdint>

#include "convexnn/core/common.hpp"
#include "convexnn/patterns/pattern_set.hpp"

namespace convexnn {

// Default refusal threshold of enumerate_patterns.
constexpr std::uint64_t kDefaultMaxPatterns = 1000000;

// What the rank reduction found in X (see the header comment).
struct ArrangementSummary {
  index_t rank = 0;                // numerical rank r of X (0 for X == 0)
  index_t n_hyperplanes = 0;       // distinct hyperplanes n' (zero rows excluded)
  index_t n_zero_rows = 0;         // rows treated as zero (always active)
  std::uint64_t region_bound = 0;  // cover_count(n', r): an upper bound on the number of regions
};

// Cover's count 2 * sum_{k < r} C(n - 1, k): the number of regions of n hyperplanes in general position
// through the origin of R^r, and an upper bound for any n hyperplanes of rank r. 1 when n = 0 or r = 0 (the
// whole space is one region). Saturates at 2^64 - 1.
std::uint64_t cover_count(index_t n_hyperplanes, index_t rank);

template <class T>
ArrangementSummary summarize_arrangement(MatrixView<T> X);

// summarize_arrangement(X).region_bound: the count that enumerate_patterns compares with max_patterns
// (it includes the all-zero pattern, which the enumeration drops).
template <class T>
std::uint64_t estimate_region_count(MatrixView<T> X);

// All patterns of X (n x d; append the bias column beforehand if wanted), deduplicated, all-zero pattern
// dropped, in a deterministic order, each with a unit gate strictly inside its region.
// Throws std::length_error (stating the estimate) when estimate_region_count(X) > max_patterns, and
// std::invalid_argument for n = 0, d = 0 or NaN/Inf in X.
template <class T>
PatternSet enumerate_patterns(MatrixView<T> X, std::uint64_t max_patterns = kDefaultMaxPatterns);

}  // namespace convexnn
