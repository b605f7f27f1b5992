// One solve of the exact (cone-constrained) ReLU program: the constants, the helpers and the state of the
// iterations shared by the parts of the solver, each in its own file (docs/architecture.md, "The exact ReLU
// solver"):
//   solver.cpp       the problem (ReluSolver): construction, the certificate, the cone violation
//   prox.cpp         the exact cone-norm prox of all block columns and the dual-constraint oracle
//   ray_newton.cpp   Newton on the scales of the nonzero columns
//   run.cpp          FISTA with backtracking and adaptive restart, the Lipschitz estimate, the iteration loop
//   certificate.cpp  the checks: ray Newton's schedule, the certificate, the precision floor, the result
// Internal: not part of the installed headers.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "convexnn/core/fista_momentum.hpp"
#include "convexnn/core/stop_clock.hpp"
#include "convexnn/solvers/continuation.hpp"
#include "convexnn/solvers/exact/stop_control.hpp"
#include "convexnn/solvers/relu_solver.hpp"

namespace convexnn {
namespace exact {

// A solve stopped by its time limit (interrupt) certifies its last iterate only when the last full certificate
// took at most this share of the time limit (these seconds); otherwise it returns the point of the last check
// with that check's certificate, so the stop is prompt.
constexpr double kFinalCertificateShare = 0.05;
constexpr double kInterruptCertificateSeconds = 0.25;
// FISTA step-size control: multiplicative backtracking and the optimistic growth after a step that
// needed none (as in scnn's R-FISTA / Lassplore), so the step tracks the local curvature.
constexpr double kBacktrack = 0.5;
constexpr double kStepGrowth = 1.25;
// Sufficient-decrease slack: relative roundoff tolerated in the quadratic upper-bound test. float32 predictions
// round at ~6e-8 relative, so their losses need a slack above that: with 1e-12 backtracking halved the step on
// rounding noise and FISTA stalled at relative gaps ~1e-2 (measured, n = 150, d = 5, P = 16: 20000 iterations
// at gap 0.018 where float64 certifies 1e-6 in 1270; with 1e-6 float32 reaches ~4e-4 in 1320; docs/tuning.md).
constexpr double kDecreaseSlack = 1e-12;
constexpr double kDecreaseSlackF32 = 1e-6;
template <class T>
constexpr double decrease_slack() {
  return sizeof(T) == sizeof(float) ? kDecreaseSlackF32 : kDecreaseSlack;
}
// Smallest step tried, relative to 1/L (L the initial Lipschitz estimate): below it backtracking stops.
constexpr double kMinStepRatio = 1e-16;
// Largest step, relative to 1/L (and absolutely): the growth after steps without backtracking stops there.
// Without a cap a run whose gradient vanishes (an exactly interpolating iterate) grows the step to inf, and
// halving inf never ends. A step this large never occurs in a run that still makes progress.
constexpr double kMaxStepRatio = 1e30;
constexpr double kMaxStep = 1e300;
// Backtracking halvings per iteration at most (more than from the largest to the smallest double).
constexpr int kMaxBacktracks = 2200;
// Hinge smoothing continuation (continuation.hpp): the exact solver's preset.
inline constexpr const HingeContinuation& kHinge = kExactHingeContinuation;
// Ray Newton: largest number of nonzero columns (the reduced Hessian is eigen-decomposed: O(k^3)), largest
// n * c * k of the reduced design (two such float64 matrices are stored), Newton steps per attempt.
constexpr index_t kNewtonMaxDim = 400;
constexpr index_t kNewtonMaxEntries = index_t{1} << 23;
constexpr int kNewtonSteps = 20;
// At least one check in this many runs the full certificate (so a dual bound exists even while screening says a
// single certificate cannot reach tol: the ray-Newton acceptance rule and the history need it).
constexpr index_t kFullCertificateEvery = 4;
// Block columns per batched prox call (one GEMM for the first constraint pass of their projections).
constexpr index_t kProxChunk = 16;
// Power iterations for the initial Lipschitz estimate of the operator (the step is corrected by backtracking).
constexpr int kPowerIterations = 15;
// float32 precision floor (ReluOptions::precision_floor): the gated solver's rule (gated/run.hpp), counted
// in checks.
constexpr int kFloorChecks = 10;
constexpr double kFloorProgress = 0.7;
constexpr double kFloorCeiling = 1e-3;

// The timed phases of a solve (ReluResult::timings), charged lap by lap.
enum Phase : int { kSetup, kGradient, kProx, kForward, kCertifyProducts, kCertifyOracle, kNewton, kOther };
inline std::vector<std::string> phase_names() {
  return {"setup",  "gradient", "prox",       "forward", "certificate_products", "certificate_oracle",
          "ray_newton", "other"};
}

// ||B_i[:, k]|| of block column col = i * c + k of a (P x d x c) C-contiguous array.
inline double column_norm(const std::vector<double>& B, index_t col, index_t d, index_t c) {
  const double* src = B.data() + (col / c) * d * c + col % c;
  double s = 0.0;
  for (index_t j = 0; j < d; ++j) s += src[j * c] * src[j * c];
  return std::sqrt(s);
}

// Copies block column col = i * c + k of a (P x d x c) array into g (d); returns its squared norm.
inline double gather_column(const std::vector<double>& B, index_t col, index_t d, index_t c, std::vector<double>& g) {
  const double* src = B.data() + (col / c) * d * c + col % c;
  double s = 0.0;
  for (index_t j = 0; j < d; ++j) {
    g[static_cast<std::size_t>(j)] = src[j * c];
    s += src[j * c] * src[j * c];
  }
  return s;
}

// sum of the column norms of V and W: the group penalty of the exact program (without beta).
inline double penalty_of(const std::vector<double>& V, const std::vector<double>& W, index_t n_cols, index_t d,
                         index_t c) {
  double total = 0.0;
  for (index_t col = 0; col < n_cols; ++col) total += column_norm(V, col, d, c) + column_norm(W, col, d, c);
  return total;
}

}  // namespace exact

template <class T>
struct ReluSolver<T>::Point {
  std::vector<double> V, W;  // (P x d x c)
  std::vector<T> z;          // prediction A(V - W), (n x c)
  double loss = 0.0;         // L(z) (smoothed for the hinge while mu > 0)
};

// The state of one solve(): FISTA with the exact cone prox (run.cpp), the checks and the final certificate
// (certificate.cpp).
template <class T>
class ReluSolver<T>::Run {
 public:
  Run(const ReluSolver& solver, double beta, const ReluOptions& options)
      : s_(solver),
        beta_(beta),
        opt_(options),
        stop_(options),
        m_(solver.p_ * solver.d_ * solver.c_),
        nc_(solver.n_ * solver.c_),
        hinge_(solver.loss_ == Loss::hinge),
        mu_(hinge_ ? exact::kHinge.mu_start : 0.0),
        times_(exact::phase_names()),
        diffT_(static_cast<std::size_t>(m_)),
        gradT_(static_cast<std::size_t>(nc_)),
        GT_(static_cast<std::size_t>(m_)),
        grad_(static_cast<std::size_t>(nc_)),
        G_(static_cast<std::size_t>(m_)) {}

  ReluResult<T> execute(const T* V0, const T* W0);  // run.cpp

 private:
  enum class StepOutcome { kAccepted, kDiverged, kStopped };
  enum class CertifyOutcome { kContinue, kDone, kStopped };

  // ---- FISTA (run.cpp) ----
  void predict(Point& pt);
  double gradient(const Point& pt);
  void estimate_lipschitz();
  void start(const T* V0, const T* W0);
  StepOutcome fista_step();
  void extrapolate();

  // ---- checks, certificates and the result (certificate.cpp) ----
  bool maybe_ray_newton();
  bool check(index_t it);
  bool at_precision_floor();
  index_t count_active() const;
  CertifyOutcome certify(const Point& pt, double penalty, index_t iteration, bool allow_screen,
                         bool stoppable = true);
  void record(index_t iteration, double primal, double gap);
  void save_checkpoint(index_t it);
  void finish(index_t& it);
  void restore_checkpoint(index_t& it);

  // The point of the last check with its certificate: what a prompt stop returns (see finish).
  struct Checkpoint {
    bool valid = false;
    index_t iteration = 0;
    std::vector<double> V, W;
    double penalty = 0.0, objective = 0.0, dual = 0.0, gap = 0.0, max_dual_constraint = 0.0;
  };

  const ReluSolver& s_;
  const double beta_;
  const ReluOptions& opt_;
  exact::StopControl stop_;
  const index_t m_, nc_;
  const bool hinge_;
  double mu_;
  PhaseTimes times_;
  ReluResult<T> result_;
  double lipschitz_ = 1.0, step_ = 1.0, max_step_ = exact::kMaxStep, penalty_x_ = 0.0;
  FistaMomentum momentum_;
  double best_dual_ = -std::numeric_limits<double>::infinity();
  Point x_, y_pt_, x_new_, y_next_;
  std::vector<T> diffT_, gradT_, GT_;
  std::vector<double> grad_, G_, xv_, xw_;
  std::vector<double> cert_grad_, cert_G_, cert_z_;
  bool last_certificate_full_ = false;
  index_t screened_in_a_row_ = 0;
  double full_certificate_seconds_ = 0.0;
  Checkpoint checkpoint_;
  // Ray Newton's schedule (maybe_ray_newton).
  std::vector<char> last_support_;
  int newton_rejections_ = 0;
  index_t newton_interval_ = 1, checks_since_newton_ = 0, newton_misses_ = 0;
  // The precision floor (at_precision_floor).
  double floor_best_gap_ = std::numeric_limits<double>::infinity();
  double floor_ref_gap_ = std::numeric_limits<double>::infinity();
  int floor_stalled_ = 0;
};

}  // namespace convexnn
