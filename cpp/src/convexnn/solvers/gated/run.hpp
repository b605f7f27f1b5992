// One solve of the gated-ReLU program: the state of the iterations shared by the parts of the solver, each in
// its own file (docs/architecture.md, "The gated-ReLU solver"):
//   certificate.cpp  global dual points (gradient and extrapolated), the working-set gap, offered duals
//   hinge.cpp        the hinge continuation and its primal / dual polish
//   newton.cpp       the active-set Newton-CG phase of the smooth losses
//   rounds.cpp       the inner solvers (BCD with Anderson acceleration, FISTA) and their caches
//   run.cpp          the outer loop over working sets, stop rules and the result
// Internal: not part of the installed headers.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "convexnn/core/stop_clock.hpp"
#include "convexnn/solvers/continuation.hpp"
#include "convexnn/solvers/gated_solver.hpp"
#include "convexnn/solvers/gated/extrapolation.hpp"

namespace convexnn {

// Per-block eigendecomposition of H_i = X^T D_i X (lazily, for the blocks a BCD working set or the Newton
// preconditioner touches), lambda_max(H_i), and the ||A||^2 estimate for FISTA; kept across solves.
template <class T>
struct GatedSolver<T>::Cache {
  std::vector<char> have;                  // block analysed
  std::vector<double> lam_max;             // lambda_max(H_i)
  std::vector<std::vector<double>> eig_h;  // eigenvalues (ascending), empty if not stored
  std::vector<std::vector<double>> eig_q;  // eigenvectors (row-major, column j = vector j), empty if not stored
  double stored_bytes = 0.0;
  double op_norm_sq = -1.0;

  explicit Cache(index_t p)
      : have(static_cast<std::size_t>(p), 0),
        lam_max(static_cast<std::size_t>(p), 0.0),
        eig_h(static_cast<std::size_t>(p)),
        eig_q(static_cast<std::size_t>(p)) {}
};

namespace gated {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Internal constants (their measurements: docs/tuning.md).
constexpr index_t kInitialWorkingSet = 10;  // p0 of celer
constexpr index_t kBcdCheckEvery = 5;       // BCD epochs between gap checks
constexpr double kInnerFraction = 0.3;      // working-set problem solved to this fraction of the global gap
inline constexpr const HingeContinuation& kHinge = kGatedHingeContinuation;  // continuation.hpp
constexpr int kPowerIterations = 15;
constexpr double kNewtonGap = 1e-2;         // Newton phase only below this relative gap ...
constexpr int kNewtonMaxSteps = 20;         // ... at most this many steps in a row ...
constexpr index_t kNewtonMaxCg = 200;       // ... of at most this many CG iterations
constexpr index_t kNewtonCooldown = 20;     // iterations of first-order steps after an unsuccessful Newton step
constexpr double kNewtonMinForcing = 1e-8;  // smallest relative CG residual asked for
// float32 precision floor: a float32 solve whose best certified gap (<= kFloorCeiling, above tol) has not
// shrunk by the factor kFloorProgress over kFloorChecks global checks stops with status "precision_floor".
constexpr int kFloorChecks = 10;
constexpr double kFloorProgress = 0.7;
constexpr double kFloorCeiling = 1e-3;
constexpr double kCallbackPollSeconds = 0.5;
// Hinge polish budget, in flops (deterministic, unlike seconds): its dense solves (9 N^3 each) may use at most
// kPolishFlopAllowance plus kPolishShare times the flops of the iterations so far (4 n P d c per iteration, an
// upper bound). Measured: without it a polish that never succeeds took 80 of 87 s (n = 600, P = 200, docs/tuning.md).
constexpr double kPolishFlopAllowance = 2e9;
constexpr double kPolishShare = 1.0;  // callback at least this often inside loops that count no iterations

// Relative error allowance of float32 adjoints when a certificate has no float64 operator: the dual norm is
// inflated by (1 + 4 eps_f32 sqrt(n)) so that the scaled dual point stays feasible despite float roundoff.
template <class T>
double adjoint_safety(index_t n) {
  if (sizeof(T) >= sizeof(double)) return 1.0;
  return 1.0 + 4.0 * std::numeric_limits<float>::epsilon() * std::sqrt(static_cast<double>(n));
}

// The timed phases of a solve (GatedResult::timings); exclusive: a nested phase pauses its parent.
enum Phase : int {
  kOther = 0,
  kForward,
  kAdjoint,
  kProx,
  kCertificate,
  kHingePolish,
  kNewton,
  kWorkingSet,
  kGram,
};
inline std::vector<std::string> phase_names() {
  return {"other", "forward", "adjoint", "prox", "certificate", "hinge_polish", "newton", "working_set", "gram"};
}

template <class T>
class Run {
 public:
  using Cache = typename GatedSolver<T>::Cache;

  Run(const BlockOperator<T>& op, const BlockOperator<double>* cop, const std::vector<double>& y, index_t c, Loss loss,
      Groups groups, Cache& cache, const GatedOptions& opt, double beta, const double* w = nullptr)
      : op_(op),
        cop_(cop),
        y_(y),
        w_(w),
        wmax_(max_weight(w, op.n_samples())),
        n_(op.n_samples()),
        d_(op.block_dim()),
        p_(op.n_blocks()),
        c_(c),
        bs_(op.block_dim() * c),
        nc_(op.n_samples() * c),
        loss_(loss),
        groups_(groups),
        cache_(cache),
        opt_(opt),
        beta_(beta),
        cadence_(opt.check_every, kCallbackPollSeconds),
        times_(phase_names()) {}

  GatedResult<T> run(const T* warm_start);

  // ---- problem ----
  const BlockOperator<T>& op_;
  const BlockOperator<double>* cop_;
  const std::vector<double>& y_;
  const double* w_;  // sample weights (n), or null: all ones
  double wmax_;      // their maximum (1 without weights): the factor of the loss's smoothness
  index_t n_, d_, p_, c_, bs_, nc_;
  Loss loss_;
  Groups groups_;
  Cache& cache_;
  const GatedOptions& opt_;
  double beta_;
  double mu_ = 0.0;  // hinge smoothing (0 for the other losses)
  StopClock clock_;
  CallbackCadence cadence_;
  PhaseTimes times_;

  // ---- iterate ----
  std::vector<T> U_;  // P x d x c
  std::vector<T> z_;  // n x c, A U (maintained incrementally, refreshed at global checks)
  std::vector<T> g_;  // n x c, grad L_mu(z)
  index_t iter_ = 0;
  std::string status_;
  std::string solver_;

  // ---- certificates ----
  double best_dual_ = -kInf;
  double best_primal_ = kInf;
  std::vector<T> best_U_;
  double last_primal_ = kInf, last_gap_ = kInf, last_smooth_gap_ = kInf;
  std::vector<double> last_zd_;          // certified predictions of the last global check
  bool last_check_current_ = false;      // the last global check was at the current U
  std::vector<double> scores_;           // ||A_i^T theta||_* / beta at the last global check
  std::vector<double> group_scores_;     // the same per group (P x groups_per_block)
  std::vector<index_t> newton_support_;  // support of the last Newton attempt
  index_t newton_retry_at_ = 0;          // no Newton attempt before this iteration (after a failed one)
  SnapshotRing<T> zhist_;                // predictions, for dual extrapolation
  std::vector<HistoryEntry> history_;
  index_t n_active_ = 0;
  index_t ws_size_ = 0;
  double fista_L_ = -1.0;
  double polish_flops_ = 0.0;    // flops of the hinge polish's dense solves so far
  double floor_ref_gap_ = kInf;  // best gap when progress was last made (precision floor)
  int floor_stalled_ = 0;        // global checks since then
  double ws_floor_ref_ = kInf;   // the same for the working-set gap of the current round
  int ws_floor_stalled_ = 0;

  // ---- small helpers ----
  double elapsed() const { return clock_.elapsed(); }
  double smooth() const { return w_ ? loss_smoothness(loss_, mu_) * wmax_ : loss_smoothness(loss_, mu_); }
  double weight(index_t k) const { return w_ ? w_[k] : 1.0; }
  T* block(index_t i) { return U_.data() + i * bs_; }
  index_t groups_per_block() const { return groups_ == Groups::neuron ? 1 : c_; }  // c (output) or 1 (neuron)
  bool block_is_zero(const T* u) const {
    for (index_t j = 0; j < bs_; ++j)
      if (u[j] != T(0)) return false;
    return true;
  }
  index_t count_active() const {
    index_t a = 0;
    for (index_t i = 0; i < p_; ++i) a += block_is_zero(U_.data() + i * bs_) ? 0 : 1;
    return a;
  }
  std::vector<index_t> support() const {
    std::vector<index_t> s;
    for (index_t i = 0; i < p_; ++i)
      if (!block_is_zero(U_.data() + i * bs_)) s.push_back(i);
    return s;
  }
  double penalty(const T* U, index_t nblocks) const {
    double s = 0.0;
    for (index_t i = 0; i < nblocks; ++i) s += block_penalty(U + i * bs_, d_, c_, groups_);
    return s;
  }
  // Pack / unpack the blocks of a subset.
  void gather(const std::vector<index_t>& W, std::vector<T>& out) const {
    out.resize(W.size() * bs_);
    for (std::size_t k = 0; k < W.size(); ++k)
      std::copy(U_.data() + W[k] * bs_, U_.data() + (W[k] + 1) * bs_, out.data() + k * bs_);
  }
  void scatter(const std::vector<index_t>& W, const std::vector<T>& in) {
    for (std::size_t k = 0; k < W.size(); ++k)
      std::copy(in.data() + k * bs_, in.data() + (k + 1) * bs_, U_.data() + W[k] * bs_);
  }

  // ---- operator products (timed) ----
  void forward(const T* U, T* z, const std::vector<index_t>* subset) {
    PhaseTimes::Scope timed(times_, kForward);
    if (subset && subset->empty()) {
      std::fill(z, z + nc_, T(0));
      return;
    }
    op_.forward(U, c_, z, subset ? BlockSubset::of(*subset) : BlockSubset{});
  }
  void adjoint(const T* R, T* G, const std::vector<index_t>* subset) {
    PhaseTimes::Scope timed(times_, kAdjoint);
    if (subset && subset->empty()) return;
    op_.adjoint(R, c_, G, subset ? BlockSubset::of(*subset) : BlockSubset{});
  }

  // ---- stop rules (run.cpp) ----
  bool should_stop();  // after every iteration: max_iter, time limit, callback; sets status_
  bool poll();         // inside loops that count no iterations: time limit, callback on a time budget
  void call_back();

  // ---- certificates (certificate.cpp) ----
  double dual_value(const std::vector<double>& theta, double max_norm, double safety, double* s_out,
                    double conj_mu) const;
  double full_dual_norm(const std::vector<double>& theta, std::vector<double>* norms);
  double smoothing_norm(const std::vector<double>& theta) const;
  void certified_predictions(std::vector<double>& zd);
  double global_check();
  void check_precision_floor();
  bool ws_at_precision_floor(double ws_gap);
  void update_scores(const std::vector<double>& norms);
  bool use_dual_extrapolation() const;
  bool extrapolated_theta(std::vector<double>& th2) const;
  double best_gap() const { return relative_gap(best_primal_, best_dual_); }
  void offer_dual(const std::vector<double>& theta);
  double ws_check(const std::vector<index_t>& W, double& best_ws_dual);

  // ---- hinge continuation (hinge.cpp) ----
  void hinge_polish();
  bool hinge_newton_polish(double band);
  int hinge_kkt_newton(const std::vector<index_t>& act, const std::vector<index_t>& M, const std::vector<double>& aL,
                       std::vector<double>& u, std::vector<double>& a);
  bool hinge_polish_candidate(const std::vector<index_t>& act, const std::vector<double>& u,
                              const std::vector<char>& side, const std::vector<double>& dual);
  bool maybe_shrink_mu();
  bool polish_affordable(index_t N) const {
    const double iteration_flops = 4.0 * static_cast<double>(n_) * static_cast<double>(p_) * static_cast<double>(bs_) *
                                   static_cast<double>(iter_);
    const double n3 = static_cast<double>(N) * static_cast<double>(N) * static_cast<double>(N);
    return polish_flops_ + 9.0 * n3 <= kPolishFlopAllowance + kPolishShare * iteration_flops;
  }

  // ---- active-set Newton phase (newton.cpp) ----
  bool group_is_zero(const T* u, index_t k) const;
  bool newton_eligible() const;
  bool newton_step(double eta, bool* full_step);
  bool newton_phase();

  // ---- inner solvers and their caches (rounds.cpp) ----
  void ensure_cache(const std::vector<index_t>& W);
  double op_norm_sq();
  void refresh_grad() { loss_value_grad(loss_, z_.data(), y_.data(), n_, c_, g_.data(), mu_, w_); }
  void apply_prediction_change(const T* dz);
  std::vector<index_t> build_working_set();
  bool inner_check(const std::vector<index_t>& W, double tol_in, bool global, double& best_ws_dual, bool& mu_changed);
  void bcd_block_step(index_t i, std::vector<T>& gbuf, std::vector<T>& dz, std::vector<double>& work);
  bool anderson_step(const std::vector<index_t>& W, SnapshotRing<T>& ring, std::vector<T>& snap, index_t epochs);
  bool bcd_round(const std::vector<index_t>& W, double tol_in, bool global);
  bool fista_round(const std::vector<index_t>& W, double tol_in, bool global);

  // ---- outer loop (run.cpp) ----
  void check_options() const;
  void outer_loop();
  void finish();
  GatedResult<T> result();
};

}  // namespace gated
}  // namespace convexnn
