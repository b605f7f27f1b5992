// The per-pattern dual-constraint oracle of the exact (cone-constrained) ReLU program, and the Euclidean
// projection onto a pattern's cone it reduces to.
//
// Pattern i has the polyhedral cone  K_i = { u in R^d : (2 D_i - I) X u >= 0 },  i.e. one constraint
// a_k^T u >= 0 per sample with a_k = s_k x_k, s_k = +1 if bit k of the mask is set and -1 otherwise.
// For a closed convex cone, max { g^T u : u in K, ||u|| <= 1 } = ||Pi_K(g)||, attained at
// Pi_K(g) / ||Pi_K(g)|| (any feasible u, e.g. 0, when the projection is 0). With g = X^T D_i r this is the
// dual constraint  max { r^T D_i X u : u in K_i, ||u|| <= 1 }  that the exact solver and the cutting
// planes check against beta.
//
// The projection  min_u 1/2 ||u - g||^2  s.t.  A u >= 0  (A = (2 D_i - I) X, n x d, n >> d) is solved by a
// dual active-set method in the style of Goldfarb & Idnani (1983) with Hessian I: the multipliers stay
// >= 0 on a linearly independent active set S (|S| <= d), the most violated constraint enters, constraints
// whose multiplier would turn negative leave, and a QR factorization of the active rows (orthogonal J,
// triangular R) is updated by Givens rotations. The iterate is u = Pi_null(A_S)(g + lambda_p a_p) (p: the
// entering constraint), computed through J so that it stays accurate to rounding even for thin cones,
// whose multipliers grow like 1 / (angle between nearly opposite rows). The rows a_k are generated from X
// and the mask bits on the fly; a full O(n d) pass (one gemv X u) screens the most violated constraints
// into a small working set, and the steps in between cost O(d^2 + |W| d).
//
// Properties the callers rely on (all arithmetic in double, whatever T is):
//   * every iterate is dual feasible (lambda >= 0), so ||u|| = ||g - w|| with w = -A^T lambda in the polar
//     cone, and ||u|| >= dist(g, polar cone) = ||Pi_K(g)||: the reported norm is an UPPER bound on the oracle
//     value (up to rounding) even when the method stops early, and it does not increase between steps;
//   * on convergence every constraint holds to  -a_k^T u <= tol * ||g|| * ||x_k||  (zero rows never bind).
//     The answer is then exact for data whose cones are not thinner than ~tol (tests: rows at angle eps
//     from opposite/coplanar with eps >= 100 tol agree with an exact rational projection to 1e-9). A cone
//     thinner than tol is resolved only to the tolerance: a nearly-{0} cone may give a nonzero u that
//     violates constraints by <= tol (the value is then still an upper bound).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "convexnn/core/common.hpp"
#include "convexnn/operator/operator.hpp"
#include "convexnn/patterns/pattern_set.hpp"

namespace convexnn {

// Result of one cone projection. All fields are float64 whatever the data type T.
template <class T>
struct ConeProjection {
  std::vector<double> u;       // (d,) the projection Pi_K(g) (approximately; see max_violation)
  double norm = 0.0;           // ||u||: the oracle value max { g^T v : v in K, ||v|| <= 1 } (an upper bound)
  double max_violation = 0.0;  // max_k max(0, -a_k^T u) / ||x_k|| over nonzero rows (0 when feasible)
  index_t iterations = 0;      // active-set steps taken (each add, partial or dual step counts once)
  bool converged = false;      // max_violation <= tol * ||g|| reached within the iteration cap
};

// Summary of one oracle call over a subset of patterns (both signs).
struct ConeOracleInfo {
  index_t total_iterations = 0;         // summed over all projections
  index_t max_iterations = 0;           // largest count of a single projection
  double max_relative_violation = 0.0;  // max over projections of max_violation / ||g|| (0 when g = 0)
  index_t n_unconverged = 0;            // projections that hit the iteration cap or stalled numerically
};

// Default iteration cap (max_iter <= 0): generous compared to the O(d) steps the method usually needs,
// small enough that a cycling instance returns instead of spinning (each step costs O(n d)).
index_t default_cone_max_iter(index_t n, index_t d);

// Projection of g (d,) onto K = { u : s_k x_k^T u >= 0 for all k }, with the signs s_k given by the mask
// bits (bit k % 64 of mask[k / 64]; ceil(n / 64) words). X (n, d) any strides; X is not modified, and it
// is copied to float64 only when T is float or its strides are not BLAS-compatible.
// tol >= 0 is relative: stop when every -a_k^T u <= tol * ||g|| * ||x_k||.
template <class T>
ConeProjection<T> project_onto_sign_cone(MatrixView<T> X, const PatternSet::Word* mask, const double* g,
                                         double tol = 1e-10, index_t max_iter = 0);

// Projection of g (d,) onto the cone K_i of pattern i of `pats` (pats built on this X).
template <class T>
ConeProjection<T> project_onto_pattern_cone(MatrixView<T> X, const PatternSet& pats, index_t i, const double* g,
                                            double tol = 1e-10, index_t max_iter = 0);

// The dual-constraint oracle for every pattern i = subset.block(s), s = 0..S-1 (S = subset.count(P)):
//   values_pos[s] = max { r^T D_i X u : u in K_i, ||u|| <= 1 } = ||Pi_{K_i}(X^T D_i r)||,
//   values_neg[s] = the same with -r,
//   maximizers (S x d row-major, optional: pass nullptr) = the maximizing unit vector for the sign with the
//   larger value (+r on ties), 0 when that value is 0.
// r has n entries. OpenMP over patterns; each pattern's result does not depend on the thread count.
template <class T>
ConeOracleInfo dual_constraint_oracle(MatrixView<T> X, const PatternSet& pats, const T* r, BlockSubset subset,
                                      double tol, double* values_pos, double* values_neg, double* maximizers = nullptr,
                                      index_t max_iter = 0);

// Repeated projections onto the cones of one pattern set, as the exact solver's prox needs every iteration:
// X is viewed in float64 once (copied only for float data or odd strides), the row norms are computed once,
// each OpenMP thread has its own workspace, and every `slot` (e.g. one block column of the solver) keeps the
// active set of its last projection as the warm start of the next one, so a projection close to the previous
// one costs about one O(n d) pass. Calls for different slots may run concurrently from OpenMP threads (at
// most omp_get_max_threads() at construction); calls for the same slot must not.
template <class T>
class PatternConeProjector {
 public:
  PatternConeProjector(MatrixView<T> X, const PatternSet& pats, index_t n_slots);
  ~PatternConeProjector();
  PatternConeProjector(const PatternConeProjector&) = delete;
  PatternConeProjector& operator=(const PatternConeProjector&) = delete;

  // u (d) = Pi_{K_pattern}(g) to relative accuracy tol; returns ||u|| (an upper bound on the oracle value).
  // `converged` (optional) tells whether the accuracy was reached within the iteration cap; `iterations`
  // (optional) receives the active-set steps taken. With stop_below >= 0 the method may stop as soon as it
  // proves ||Pi_K(g)|| <= stop_below and then returns a value <= stop_below with u NOT the projection: callers
  // that only need "is it below the threshold" (the prox of a zero column, the dual constraint vs beta) save
  // most of the steps.
  // `interrupt` (optional, any thread) is polled once per constraint pass; when it returns true the projection
  // stops with u and the returned value NOT the projection (the caller discards them; the warm start stays valid).
  double project(index_t slot, index_t pattern, const double* g, double tol, double* u, bool* converged = nullptr,
                 index_t* iterations = nullptr, double stop_below = -1.0,
                 const std::function<bool()>* interrupt = nullptr);
  // `count` projections at once (as project(), one per (slots[s], patterns[s], g = G + s * d, u = U + s * d,
  // stop_below[s] or none when stop_below is null)), norms into norms[s]: the first O(n d) pass of all of
  // them is one GEMM instead of `count` gemvs. The slots must be distinct. Results equal project()'s up to
  // rounding (the GEMM rounds differently from the gemv); they do not depend on the thread count.
  // `interrupt` as in project(): once it fires, the remaining projections are skipped (norms 0, U unset).
  void project_batch(index_t count, const index_t* slots, const index_t* patterns, const double* G, double tol,
                     double* U, double* norms, const double* stop_below = nullptr,
                     const std::function<bool()>* interrupt = nullptr);
  // Safe screening of the constraint passes: with n >= min_rows (0: never), each slot also keeps the
  // `near_rows` rows (0: n / 16) of smallest normalized margin s_k x_k^T u / ||x_k|| at the point u_ref of its
  // last full pass; while a later iterate u stays within the next margin (the radius) of u_ref every other
  // row provably holds (Cauchy-Schwarz), so the pass checks only the near rows. The projections found are
  // those without screening (the violated constraints are the same; only the rounding of the near rows'
  // values differs). Default: off (it did not pay on the digits CNN's patch rows; docs/tuning.md); near_rows n / 16
  // on top of the rows at margin ~0. Drops the slots' near sets.
  void set_screening(index_t min_rows, index_t near_rows = 0);
  // Drops the warm start of a slot (e.g. when its column became zero).
  void forget(index_t slot);
  // Gives slot `to` the warm start of slot `from` (both for the same pattern; a no-op when `from` has none):
  // projections of related vectors onto one cone (e.g. the prox of a block column and the dual constraint of
  // the same block) share most of their active sets.
  void copy_warm_start(index_t from, index_t to);
  index_t n_slots() const;

  // out (n x k, row-major) = X B for B (d x k, row-major), in float64 (X's float64 view).
  void multiply_X(const double* B, index_t k, double* out) const;

  // Work counters summed over all threads since construction (or the last reset_stats): projections that made
  // at least one pass over the constraints, full O(n d) passes, screened passes (near rows only), active-set
  // steps. Read them between calls.
  struct Stats {
    index_t projections = 0;
    index_t passes = 0;
    index_t steps = 0;
    index_t screened_passes = 0;
  };
  Stats stats() const;
  void reset_stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convexnn
