// Certified solver of the gated-ReLU convex program (a group lasso over the blocks D_i X; Pilanci & Ergen,
// "Neural Networks are Convex Regularizers", ICML 2020, eq. (8) with fixed gates). Algorithms, certificate,
// hinge continuation and working sets: docs/architecture.md, "The gated-ReLU solver".
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convexnn/problem/losses.hpp"
#include "convexnn/operator/operator.hpp"
#include "convexnn/problem/prox.hpp"

namespace convexnn {

// Progress report passed to the callback every `check_every` iterations.
struct IterInfo {
  index_t iteration = 0;        // FISTA iterations / BCD epochs so far
  double objective = 0.0;       // primal objective (true loss) at the last check
  double dual_objective = 0.0;  // best global dual bound so far (-inf before the first global check)
  double gap = 0.0;             // relative gap of the last check (inf before the first)
  index_t n_active = 0;         // nonzero blocks
  index_t working_set = 0;      // blocks in the current working set
  double time = 0.0;            // seconds since the start of the solve
};

struct HistoryEntry {
  index_t iteration;
  double objective;
  double dual_objective;
  double gap;
  double time;
  index_t n_active;
};

struct GatedOptions {
  double tol = 1e-6;                                            // on the relative duality gap
  index_t max_iter = 10000;                                     // FISTA iterations + BCD epochs (over the working set)
  double time_limit = std::numeric_limits<double>::infinity();  // seconds
  std::string solver = "auto";                                  // "auto", "bcd", "fista"
  index_t check_every = 10;  // callback (and FISTA gap check) frequency, in iterations
  bool working_set = true;   // solve on working sets of blocks (false: always all blocks)
  int extrapolation = 5;     // K of dual extrapolation and of Anderson acceleration (0: off)
  bool anderson = true;      // Anderson acceleration of BCD
  bool newton = true;        // active-set Newton-CG phase once the support is identified (smooth losses)
  double gram_cache_bytes = 1024.0 * 1024.0 * 1024.0;  // budget for the cached block eigenbases (BCD)
  // Called every check_every iterations; returning false stops the solve with status "interrupted".
  std::function<bool(const IterInfo&)> callback;
};

template <class T>
struct GatedResult {
  std::vector<T> U;             // (P x d x c) C-contiguous
  double objective = 0.0;       // primal objective at U (true loss, double)
  double dual_objective = 0.0;  // certified lower bound on the optimum
  double gap = 0.0;             // (objective - dual) / |objective|
  index_t n_iter = 0;
  std::string status;                 // converged, max_iter, time_limit, interrupted, diverged
  double time = 0.0;                  // seconds
  std::string solver;                 // "bcd" or "fista"
  std::vector<HistoryEntry> history;  // one entry per global certificate
  index_t n_active = 0;               // nonzero blocks in U
  // Seconds per phase, exclusive (a nested phase pauses its parent, so they add up to at most "total"):
  // forward, adjoint (operator products, the certificate's included), prox (block updates), certificate,
  // hinge_polish, newton, working_set, gram (block eigenbases), other; and total (= time).
  std::map<std::string, double> timings;
};

// The certificate of a given point (no solve): primal, dual bound and relative gap.
struct Certificate {
  double primal = 0.0;
  double dual = 0.0;
  double gap = 0.0;
  double scale = 1.0;      // the factor s applied to theta
  double dual_norm = 0.0;  // max_i ||A_i^T theta||_* before scaling
};

// (P - D) / |P|; 0 if both are 0; inf if P = 0 != D.
double relative_gap(double primal, double dual);

// One gated problem on one operator; keeps caches (block eigenbases, ||A|| estimate) across solves, so a
// path of betas reuses them. y is (n x c) row-major float64 and is copied. `certify_op` (optional, float64, the
// same blocks as `op`) recomputes the predictions and adjoints of the certificate in double when `op` is float32.
// `sample_weight` (optional, n weights >= 0, copied) weights the samples in the loss, sum_k w_k l(z_k, y_k)
// (losses.hpp): every loss, the certificate included.
template <class T>
class GatedSolver {
 public:
  GatedSolver(const BlockOperator<T>& op, const double* y, index_t n, index_t c, Loss loss, Groups groups,
              const BlockOperator<double>* certify_op = nullptr, const double* sample_weight = nullptr);
  ~GatedSolver();
  GatedSolver(const GatedSolver&) = delete;
  GatedSolver& operator=(const GatedSolver&) = delete;

  // Smallest beta for which U = 0 is optimal: max_i ||A_i^T grad L(0)||_* (exact, one adjoint pass).
  double beta_max() const;

  // Solve for one beta. warm_start: (P x d x c) or null for zeros.
  GatedResult<T> solve(double beta, const GatedOptions& options, const T* warm_start = nullptr);

  // Solve for each beta in order, warm-starting each from the previous solution (the first from warm_start).
  std::vector<GatedResult<T>> solve_path(const std::vector<double>& betas, const GatedOptions& options,
                                         const T* warm_start = nullptr);

  // Certificate of U (P x d x c) for this problem (hinge: theta from the subgradient at z, see the reference).
  Certificate certificate(const T* U, double beta) const;

  index_t n_samples() const { return n_; }
  index_t block_dim() const { return d_; }
  index_t n_blocks() const { return p_; }
  index_t n_outputs() const { return c_; }
  Loss loss() const { return loss_; }
  Groups groups() const { return groups_; }
  const double* sample_weight() const { return w_.empty() ? nullptr : w_.data(); }

  struct Cache;  // block eigenbases and operator norm (defined in solvers/gated/run.hpp)

 private:
  const BlockOperator<T>& op_;
  const BlockOperator<double>* cert_op_;
  std::vector<double> y_;
  std::vector<double> w_;  // sample weights, empty: none
  index_t n_, d_, p_, c_;
  Loss loss_;
  Groups groups_;
  std::unique_ptr<Cache> cache_;
};

// Convenience wrappers (one solve / one path / beta_max without keeping the solver object).
template <class T>
GatedResult<T> solve_gated(const BlockOperator<T>& op, const double* y, index_t c, double beta, Loss loss,
                           Groups groups, const GatedOptions& options, const T* warm_start = nullptr,
                           const BlockOperator<double>* certify_op = nullptr, const double* sample_weight = nullptr);

template <class T>
double gated_beta_max(const BlockOperator<T>& op, const double* y, index_t c, Loss loss, Groups groups);

}  // namespace convexnn
