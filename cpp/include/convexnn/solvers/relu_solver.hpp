// Certified solver of the exact (cone-constrained) ReLU convex program of Pilanci & Ergen, "Neural Networks
// are Convex Regularizers", ICML 2020, eq. (3)-(4) / (39): FISTA with the exact cone-norm prox, certificate by
// the cone oracle, ray Newton. Method and certificate: docs/architecture.md, "The exact ReLU solver".
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convexnn/cones/cone_oracle.hpp"
#include "convexnn/operator/cone_operator.hpp"
#include "convexnn/operator/operator.hpp"
#include "convexnn/patterns/pattern_set.hpp"
#include "convexnn/problem/losses.hpp"
#include "convexnn/solvers/gated_solver.hpp"

namespace convexnn {

namespace exact {
class StopControl;  // time limit, interrupt and callback polling of one solve (solvers/exact/stop_control.hpp)
}

struct ReluOptions {
  double tol = 1e-6;         // on the relative gap and on the relative violation
  index_t max_iter = 10000;  // FISTA iterations
  double time_limit = std::numeric_limits<double>::infinity();
  index_t check_every = 5;  // certificate / callback frequency (iterations)
  double cone_tol = 1e-12;  // relative accuracy of each cone projection
  bool ray_newton = true;   // Newton on the scales of the nonzero columns (see the header comment)
  // At every check and, between checks, about every 0.5 s of wall time (then with the last check's objective,
  // dual bound and gap); false -> status "interrupted". Runs on the thread that called solve().
  std::function<bool(const IterInfo&)> callback;
  // Polled about every 0.05 s, also inside long iterations (the cone projections); true -> status
  // "interrupted" (e.g. Ctrl-C). Runs on the thread that called solve().
  std::function<bool()> interrupt;
  // float32 only: stop with status "precision_floor" once the best certified gap (<= 1e-3, above tol) has not
  // shrunk by 0.7 over 10 checks (the gated solver's rule), so that a caller can continue in float64. Off by
  // default: a direct float32 solve keeps iterating as before.
  bool precision_floor = false;
};

template <class T>
struct ReluResult {
  std::vector<T> V, W;  // (P x d x c) each, C-contiguous
  double objective = 0.0;
  double dual_objective = 0.0;
  double gap = 0.0;
  double kkt_residual = 0.0;         // = max(gap, 0) (see above)
  double max_violation = 0.0;        // relative cone violation of (V, W)
  double max_dual_constraint = 0.0;  // max_i,k oracle value at the final point (<= beta(1+tol) at optimum)
  index_t n_iter = 0;
  std::string status;  // converged, max_iter, time_limit, interrupted, diverged, precision_floor (float32)
  double time = 0.0;
  std::vector<HistoryEntry> history;
  index_t n_active = 0;  // nonzero columns of V and W
  index_t n_newton = 0;  // accepted ray-Newton steps
  // Wall seconds per phase: setup, gradient, prox, forward, certificate_products, certificate_oracle, ray_newton,
  // other, and total (= time).
  std::map<std::string, double> timings;
};

struct ReluCertificate {
  double primal = 0.0;
  double dual = 0.0;
  double gap = 0.0;
  double max_dual_constraint = 0.0;
  double max_violation = 0.0;
};

// One exact problem. `op` computes the products A(U) = sum_i A_i U_i (any backend, n outputs) and exposes the
// rows of the cone constraints (2 D_i - I) X v >= 0 (cone_operator.hpp): X (m x d) and its patterns (m rows,
// one per block), on which the cone projections run, and the cone violation. With masked outputs (m = n,
// A_i = D_i X, e.g. MaskedOperator) the ray-Newton design is formed from X and the masks; otherwise (e.g. a
// pooled convolutional operator: n images, m = n K patch rows, A_i U = the sum over each image's K patches of
// D_i X U, wrapped in a CompositeConeOperator) from single-block forward products. op must outlive the solver.
// y (n x c) float64 is copied. `certify_op` (optional, float64, the same blocks) recomputes predictions and
// adjoints of every certificate in double when `op` runs in float32.
template <class T>
class ReluSolver {
 public:
  ReluSolver(const ConeOperator<T>& op, const double* y, index_t c, Loss loss,
             const BlockOperator<double>* certify_op = nullptr);

  ReluResult<T> solve(double beta, const ReluOptions& options, const T* V0 = nullptr, const T* W0 = nullptr);
  ReluCertificate certificate(const T* V, const T* W, double beta, double cone_tol = 1e-12) const;
  // Relative violation max_i,k max_rows ((2 D_i - I) X v)_- / (||X||_2 ||v||) over the nonzero columns.
  double relative_violation(const T* V, const T* W) const;
  double spectral_norm_X() const { return x_norm_; }

 private:
  struct Point;
  class Run;  // the state of one solve() call (solvers/exact/run.hpp)
  using Stop = exact::StopControl;
  // Warm-start slots of the projector: one per block column for V, for W, and for the two signs of the
  // dual-constraint projections of the certificate.
  enum SlotKind : index_t { kSlotV = 0, kSlotW = 1, kSlotDualPlus = 2, kSlotDualMinus = 3 };
  // The functions given a `stop` return early (with an unusable result) once stop->poll() says so.
  double prox_columns(const std::vector<double>& x_in, double thresh, double cone_tol, SlotKind kind,
                      std::vector<double>& out, Stop* stop = nullptr) const;
  double dual_constraint_max(const std::vector<double>& G, double cone_tol, double floor, Stop* stop = nullptr) const;
  // Newton on the scales of x's nonzero columns (directions fixed); true (x, its prediction and `penalty`
  // replaced) when the objective decreased.
  bool ray_newton(Point& x, double& penalty, double beta, double mu, Stop* stop = nullptr) const;
  // A nonzero column of V (kind kSlotV) or W (kSlotW) in ray Newton, with its norm (the starting scale).
  struct RayColumn {
    SlotKind kind;
    index_t col;
    double norm;
  };
  std::vector<double> ray_design(const std::vector<RayColumn>& entries, const Point& x) const;
  double dual_value_bound(const std::vector<double>& V, const std::vector<double>& W, const std::vector<double>& grad,
                          const std::vector<double>& G, double beta) const;
  // L(z) at z = A(V - W) (smoothed hinge when mu > 0), grad L(z) into `grad` and G = A^T grad into `G`,
  // all in double: through certify_op when given, else through op in T.
  double loss_gradient_adjoint(const std::vector<double>& V, const std::vector<double>& W, double mu,
                               std::vector<double>& grad, std::vector<double>& G,
                               std::vector<double>* z = nullptr) const;

  const ConeOperator<T>& op_;
  const BlockOperator<double>* cert_op_;
  MatrixView<T> X_;
  const PatternSet& pats_;
  std::vector<double> y_;
  index_t n_, d_, p_, c_;
  Loss loss_;
  bool masked_outputs_ = true;  // op_.masked_outputs(): A_i = D_i X (see the constructor's comment)
  double x_norm_ = 0.0;
  std::unique_ptr<PatternConeProjector<T>> projector_;  // warm-started across iterations (mutable state)
};

}  // namespace convexnn
