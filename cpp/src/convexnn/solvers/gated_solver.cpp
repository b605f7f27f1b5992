#include "convexnn/solvers/gated_solver.hpp"
#include "convexnn/solvers/continuation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>

#include "convexnn/core/blas.hpp"
#include "convexnn/core/vec_ops.hpp"

namespace convexnn {

double relative_gap(double primal, double dual) {
  if (primal == 0.0) return dual == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return (primal - dual) / std::abs(primal);
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
using Clock = std::chrono::steady_clock;

// Internal constants (their measurements: docs/tuning.md).
constexpr index_t kInitialWorkingSet = 10;  // p0 of celer
constexpr index_t kBcdCheckEvery = 5;       // BCD epochs between gap checks
constexpr double kInnerFraction = 0.3;      // working-set problem solved to this fraction of the global gap
constexpr const HingeContinuation& kHinge = kGatedHingeContinuation;  // continuation.hpp
constexpr int kPowerIterations = 15;
constexpr double kNewtonGap = 1e-2;         // Newton phase only below this relative gap ...
constexpr int kNewtonMaxSteps = 20;         // ... at most this many steps in a row ...
constexpr index_t kNewtonMaxCg = 200;       // ... of at most this many CG iterations
constexpr index_t kNewtonCooldown = 20;     // iterations of first-order steps after an unsuccessful Newton step
constexpr double kNewtonMinForcing = 1e-8;  // smallest relative CG residual asked for

// Relative error allowance of float32 adjoints when a certificate has no float64 operator: the dual norm is
// inflated by (1 + 4 eps_f32 sqrt(n)) so that the scaled dual point stays feasible despite float roundoff.
template <class T>
double adjoint_safety(index_t n) {
  if (sizeof(T) >= sizeof(double)) return 1.0;
  return 1.0 + 4.0 * std::numeric_limits<float>::epsilon() * std::sqrt(static_cast<double>(n));
}

// Pins the (pthreads) OpenBLAS to one thread around an OpenMP region (process-wide setting: the "_local"
// variant is not exported by scipy-openblas32); restores the previous count.
struct SerialBlas {
  int previous;
  SerialBlas() : previous(blas::get_num_threads()) {
    if (previous != 1) blas::set_num_threads(1);
  }
  ~SerialBlas() {
    if (previous != 1) blas::set_num_threads(previous);
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
};

// A ring of the last `slots` snapshots of a vector (oldest first through at()).
template <class V>
class SnapshotRing {
 public:
  void reset(int slots, index_t len) {
    slots_ = slots;
    len_ = len;
    buf_.assign(static_cast<std::size_t>(std::max(slots, 0)) * static_cast<std::size_t>(len), V(0));
    count_ = head_ = 0;
  }
  void push(const V* x) {
    if (slots_ <= 0) return;
    std::copy(x, x + len_, buf_.data() + static_cast<std::size_t>(head_) * len_);
    head_ = (head_ + 1) % slots_;
    count_ = std::min(count_ + 1, slots_);
  }
  void clear() { count_ = head_ = 0; }
  bool full() const { return slots_ > 1 && count_ == slots_; }
  int slots() const { return slots_; }
  index_t len() const { return len_; }
  const V* at(int k) const {  // k = 0 oldest, slots-1 newest
    const int idx = (head_ + k) % slots_;
    return buf_.data() + static_cast<std::size_t>(idx) * len_;
  }

 private:
  int slots_ = 0, count_ = 0, head_ = 0;
  index_t len_ = 0;
  std::vector<V> buf_;
};

// Anderson / dual-extrapolation weights from a full ring s_0..s_K: with u_k = s_{k+1} - s_k (first `len`
// entries), solve (U^T U) w = 1 and return c = w / sum(w) (K weights for s_1..s_K). False if degenerate.
template <class V>
bool extrapolation_weights(const SnapshotRing<V>& ring, index_t len, std::vector<double>& cw) {
  const int K = ring.slots() - 1;
  if (K < 1 || !ring.full()) return false;
  std::vector<double> C(static_cast<std::size_t>(K * K));
  for (int a = 0; a < K; ++a)
    for (int b = a; b < K; ++b) {
      const V *a0 = ring.at(a), *a1 = ring.at(a + 1), *b0 = ring.at(b), *b1 = ring.at(b + 1);
      const double v = vec::chunked_sum(len, [&](index_t j) {
        return (static_cast<double>(a1[j]) - static_cast<double>(a0[j])) *
               (static_cast<double>(b1[j]) - static_cast<double>(b0[j]));
      });
      C[a * K + b] = C[b * K + a] = v;
    }
  double trace = 0.0;
  for (int a = 0; a < K; ++a) trace += C[a * K + a];
  if (!(trace > 0) || !std::isfinite(trace)) return false;
  for (int a = 0; a < K; ++a) C[a * K + a] += 1e-12 * trace;  // tiny ridge: the differences are nearly collinear
  // Gaussian elimination with partial pivoting on (C | 1).
  std::vector<double> w(static_cast<std::size_t>(K), 1.0);
  for (int col = 0; col < K; ++col) {
    int piv = col;
    for (int r = col + 1; r < K; ++r)
      if (std::abs(C[r * K + col]) > std::abs(C[piv * K + col])) piv = r;
    if (std::abs(C[piv * K + col]) <= 1e-300) return false;
    if (piv != col) {
      for (int j = 0; j < K; ++j) std::swap(C[col * K + j], C[piv * K + j]);
      std::swap(w[col], w[piv]);
    }
    for (int r = col + 1; r < K; ++r) {
      const double f = C[r * K + col] / C[col * K + col];
      for (int j = col; j < K; ++j) C[r * K + j] -= f * C[col * K + j];
      w[r] -= f * w[col];
    }
  }
  for (int r = K - 1; r >= 0; --r) {
    double s = w[r];
    for (int j = r + 1; j < K; ++j) s -= C[r * K + j] * w[j];
    w[r] = s / C[r * K + r];
  }
  double total = 0.0;
  for (double v : w) total += v;
  if (!std::isfinite(total) || std::abs(total) < 1e-300) return false;
  cw.resize(static_cast<std::size_t>(K));
  for (int k = 0; k < K; ++k) cw[k] = w[k] / total;
  for (double v : cw)
    if (!std::isfinite(v)) return false;
  return true;
}

// out[j] = sum_k cw[k] * ring.at(k+1)[offset + j] for j < len.
template <class V, class O>
void combine_snapshots(const SnapshotRing<V>& ring, const std::vector<double>& cw, index_t offset, index_t len,
                       O* out) {
  const int K = static_cast<int>(cw.size());
  vec::parallel_for(len, [&](index_t j) {
    double s = 0.0;
    for (int k = 0; k < K; ++k) s += cw[k] * static_cast<double>(ring.at(k + 1)[offset + j]);
    out[j] = static_cast<O>(s);
  });
}

}  // namespace

// ------------------------------------------------------------------------------------------------------------
// Cache: per-block eigendecomposition of H_i = X^T D_i X (lazily, for the blocks a BCD working set touches),
// lambda_max(H_i), and the ||A||^2 estimate for FISTA.
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

template <class T>
GatedSolver<T>::GatedSolver(const BlockOperator<T>& op, const double* y, index_t n, index_t c, Loss loss, Groups groups,
                            const BlockOperator<double>* certify_op)
    : op_(op),
      cert_op_(certify_op),
      n_(op.n_samples()),
      d_(op.block_dim()),
      p_(op.n_blocks()),
      c_(c),
      loss_(loss),
      groups_(groups) {
  CONVEXNN_CHECK(n == n_, "y must have " << n_ << " rows (one per sample of the operator), got " << n);
  CONVEXNN_CHECK(c >= 1, "y must have at least one column, got c = " << c);
  validate_targets(loss, y, n, c);
  if (cert_op_) {
    CONVEXNN_CHECK(cert_op_->n_samples() == n_ && cert_op_->block_dim() == d_ && cert_op_->n_blocks() == p_,
                   "certify_op must have the shape of op (n, d, P) = (" << n_ << ", " << d_ << ", " << p_ << ")");
  }
  const double bytes = static_cast<double>(n) * static_cast<double>(c) * sizeof(double);
  if (bytes > 1e15) throw std::length_error("y copy of " + std::to_string(bytes) + " bytes is too large");
  y_.assign(y, y + n * c);
  cache_ = std::make_unique<Cache>(p_);
}

template <class T>
GatedSolver<T>::~GatedSolver() = default;

// ------------------------------------------------------------------------------------------------------------
// One solve: all the state of the iterations.
namespace {

template <class T>
class Run {
 public:
  using Cache = typename GatedSolver<T>::Cache;

  Run(const BlockOperator<T>& op, const BlockOperator<double>* cop, const std::vector<double>& y, index_t c, Loss loss,
      Groups groups, Cache& cache, const GatedOptions& opt, double beta)
      : op_(op),
        cop_(cop),
        y_(y),
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
        beta_(beta) {}

  GatedResult<T> run(const T* warm_start);

 private:
  // ---- problem ----
  const BlockOperator<T>& op_;
  const BlockOperator<double>* cop_;
  const std::vector<double>& y_;
  index_t n_, d_, p_, c_, bs_, nc_;
  Loss loss_;
  Groups groups_;
  Cache& cache_;
  const GatedOptions& opt_;
  double beta_;
  double mu_ = 0.0;  // hinge smoothing (0 for the other losses)
  Clock::time_point t0_;

  // ---- iterate ----
  std::vector<T> U_;  // P x d x c
  std::vector<T> z_;  // n x c, A U (maintained incrementally, refreshed at global checks)
  std::vector<T> g_;  // n x c, grad L_mu(z)
  index_t iter_ = 0;
  index_t last_callback_ = 0;  // iteration of the last callback (never twice for one iteration, never at 0)
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

  // ------------------------------------------------------------------------------------------------------
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }
  double smooth() const { return loss_smoothness(loss_, mu_); }
  T* block(index_t i) { return U_.data() + i * bs_; }

  index_t count_active() const {
    index_t a = 0;
    for (index_t i = 0; i < p_; ++i) {
      const T* u = U_.data() + i * bs_;
      for (index_t j = 0; j < bs_; ++j)
        if (u[j] != T(0)) {
          ++a;
          break;
        }
    }
    return a;
  }
  std::vector<index_t> support() const {
    std::vector<index_t> s;
    for (index_t i = 0; i < p_; ++i) {
      const T* u = U_.data() + i * bs_;
      for (index_t j = 0; j < bs_; ++j)
        if (u[j] != T(0)) {
          s.push_back(i);
          break;
        }
    }
    return s;
  }
  double penalty(const T* U, index_t nblocks) const {
    double s = 0.0;
    for (index_t i = 0; i < nblocks; ++i) s += block_penalty(U + i * bs_, d_, c_, groups_);
    return s;
  }

  // Stop conditions checked after every iteration; sets status_ and returns true to stop.
  bool should_stop() {
    if (!status_.empty()) return true;
    if (iter_ >= opt_.max_iter)
      status_ = "max_iter";
    else if (elapsed() >= opt_.time_limit)
      status_ = "time_limit";
    else if (opt_.callback && opt_.check_every > 0 && iter_ > last_callback_ && iter_ % opt_.check_every == 0) {
      last_callback_ = iter_;
      IterInfo info;
      info.iteration = iter_;
      info.objective = last_primal_;
      info.dual_objective = best_dual_;
      info.gap = last_gap_;
      info.n_active = n_active_;
      info.working_set = ws_size_;
      info.time = elapsed();
      if (!opt_.callback(info)) status_ = "interrupted";
    }
    return !status_.empty();
  }

  // ---- operator helpers ----
  void forward(const T* U, T* z, const std::vector<index_t>* subset) const {
    if (subset && subset->empty()) {
      std::fill(z, z + nc_, T(0));
      return;
    }
    op_.forward(U, c_, z, subset ? BlockSubset::of(*subset) : BlockSubset{});
  }
  void adjoint(const T* R, T* G, const std::vector<index_t>* subset) const {
    if (subset && subset->empty()) return;
    op_.adjoint(R, c_, G, subset ? BlockSubset::of(*subset) : BlockSubset{});
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

  // Dual value of the scaled candidate theta (residual convention): returns -L*(-s theta) for the TRUE loss,
  // scale written to *s. norms: per-block dual norms of A^T theta (for the blocks considered).
  double dual_value(const std::vector<double>& theta, double max_norm, double safety, double* s_out,
                    double conj_mu) const {
    const double nrm = max_norm * safety;
    const double s = nrm <= beta_ ? 1.0 : beta_ / nrm;
    std::vector<double> t(static_cast<std::size_t>(nc_));
    for (index_t k = 0; k < nc_; ++k) t[k] = -s * theta[k];
    if (s_out) *s_out = s;
    return -loss_conjugate(loss_, t.data(), y_.data(), n_, c_, conj_mu);
  }

  // Groups per block: c (output) or 1 (neuron).
  index_t groups_per_block() const { return groups_ == Groups::neuron ? 1 : c_; }

  // Max group dual norm of A^T theta over all blocks (double); per-group norms (P x groups_per_block) into
  // `norms` if given.
  double full_dual_norm(const std::vector<double>& theta, std::vector<double>* norms) const {
    if (p_ == 0) return 0.0;
    std::vector<double> nr(static_cast<std::size_t>(p_ * groups_per_block()));
    const bool neuron = groups_ == Groups::neuron;
    if (cop_) {
      cop_->adjoint_dual_norms(theta.data(), c_, neuron, nr.data());
    } else if constexpr (std::is_same<T, double>::value) {
      op_.adjoint_dual_norms(theta.data(), c_, neuron, nr.data());
    } else {
      std::vector<T> th(theta.begin(), theta.end());
      op_.adjoint_dual_norms(th.data(), c_, neuron, nr.data());
    }
    double m = 0.0;
    for (double v : nr) m = std::max(m, v);
    if (norms) *norms = std::move(nr);
    return m;
  }

  // Predictions of U in double for the certificate (and refresh of z_).
  void certified_predictions(std::vector<double>& zd) {
    // Only the support contributes: forward on it (refreshes the maintained predictions, removing drift).
    const std::vector<index_t> supp = support();
    std::vector<T> Us;
    gather(supp, Us);
    forward(Us.data(), z_.data(), &supp);
    zd.resize(static_cast<std::size_t>(nc_));
    if (cop_) {
      std::vector<double> Ud(Us.begin(), Us.end());
      if (supp.empty())
        std::fill(zd.begin(), zd.end(), 0.0);
      else
        cop_->forward(Ud.data(), c_, zd.data(), BlockSubset::of(supp));
    } else {
      for (index_t k = 0; k < nc_; ++k) zd[k] = static_cast<double>(z_[k]);
    }
  }

  // Global certificate at the current U (all blocks). Returns the relative gap; updates best dual / primal,
  // scores, history. Sets status_ = "diverged" on NaN/Inf.
  double global_check() {
    std::vector<double> zd;
    certified_predictions(zd);
    const double pen = penalty(U_.data(), p_);
    const double primal = loss_value(loss_, zd.data(), y_.data(), n_, c_, 0.0) + beta_ * pen;
    n_active_ = count_active();
    if (!std::isfinite(primal)) {
      status_ = "diverged";
      return kInf;
    }
    const double safety = cop_ ? 1.0 : adjoint_safety<T>(n_);
    // Candidate 1: theta = -grad L_mu(z).
    std::vector<double> theta(static_cast<std::size_t>(nc_));
    const double smooth_loss = loss_value_grad(loss_, zd.data(), y_.data(), n_, c_, theta.data(), mu_);
    for (double& v : theta) v = -v;
    std::vector<double> norms;
    const double mx = full_dual_norm(theta, &norms);
    double s = 1.0;
    double dual = dual_value(theta, mx, safety, &s, 0.0);
    double smooth_dual = mu_ > 0 ? dual - 0.5 * mu_ * s * s * vec::sqnorm(nc_, theta.data()) : dual;
    // Block scores (max over the block's groups) for the working sets; group scores for the Newton phase.
    const index_t ng = groups_per_block();
    group_scores_.assign(norms.size(), 0.0);
    for (std::size_t g = 0; g < norms.size(); ++g) group_scores_[g] = beta_ > 0 ? norms[g] / beta_ : kInf;
    scores_.assign(static_cast<std::size_t>(p_), 0.0);
    for (index_t i = 0; i < p_; ++i)
      for (index_t k = 0; k < ng; ++k) scores_[i] = std::max(scores_[i], group_scores_[i * ng + k]);
    // Candidate 2: dual extrapolation from the last K+1 predictions.
    std::vector<double> th2;
    if (extrapolated_theta(th2)) {
      const double mx2 = full_dual_norm(th2, nullptr);
      double s2 = 1.0;
      const double d2 = dual_value(th2, mx2, safety, &s2, 0.0);
      if (d2 > dual) dual = d2;
      if (mu_ > 0) smooth_dual = std::max(smooth_dual, d2 - 0.5 * mu_ * s2 * s2 * vec::sqnorm(nc_, th2.data()));
    }
    if (std::isfinite(dual)) best_dual_ = std::max(best_dual_, dual);
    last_zd_ = std::move(zd);
    last_primal_ = primal;
    last_gap_ = relative_gap(primal, best_dual_);
    if (mu_ > 0) last_smooth_gap_ = relative_gap(smooth_loss + beta_ * pen, smooth_dual);
    if (primal < best_primal_) {
      best_primal_ = primal;
      best_U_ = U_;
    }
    last_check_current_ = true;
    history_.push_back({iter_, primal, best_dual_, last_gap_, elapsed(), n_active_});
    return last_gap_;
  }

  // Dual extrapolation (celer) assumes the predictions follow a stationary linear recurrence, as BCD epochs do
  // once the support is identified; FISTA's momentum sequence is not one (measured: the extrapolated point was
  // never the better dual there), so it is skipped for FISTA, saving an adjoint pass per check.
  bool use_dual_extrapolation() const { return opt_.extrapolation > 0 && solver_ == "bcd"; }

  // The second dual candidate of a check: theta = -grad L at the extrapolation of the last K+1 predictions
  // (celer's dual extrapolation). False when there is none or it is not finite.
  bool extrapolated_theta(std::vector<double>& th2) const {
    std::vector<double> cw;
    if (!use_dual_extrapolation() || !extrapolation_weights(zhist_, nc_, cw)) return false;
    std::vector<double> zacc(static_cast<std::size_t>(nc_));
    th2.assign(static_cast<std::size_t>(nc_), 0.0);
    combine_snapshots(zhist_, cw, 0, nc_, zacc.data());
    loss_value_grad(loss_, zacc.data(), y_.data(), n_, c_, th2.data(), mu_);
    for (double& v : th2) v = -v;
    return vec::all_finite(nc_, th2.data());
  }

  // Global relative gap of the best point (the one returned).
  double best_gap() const { return relative_gap(best_primal_, best_dual_); }

  // A dual candidate theta (residual convention, already inside dom L*(-.)): scale to feasibility with a full
  // adjoint pass and keep it if it improves the bound.
  void offer_dual(const std::vector<double>& theta) {
    if (!vec::all_finite(nc_, theta.data())) return;
    const double mx = full_dual_norm(theta, nullptr);
    const double dual = dual_value(theta, mx, cop_ ? 1.0 : adjoint_safety<T>(n_), nullptr, 0.0);
    if (std::isfinite(dual) && dual > best_dual_) {
      best_dual_ = dual;
      last_gap_ = relative_gap(last_primal_, best_dual_);
      if (!history_.empty()) {
        history_.back().dual_objective = best_dual_;
        history_.back().gap = last_gap_;
      }
    }
  }

  // Hinge dual polishing. The smoothed gradient pins the dual of the samples with margin y z < 1 (a = 1) and
  // y z > 1 (a = 0), but the dual of the samples ON the margin (y z = 1 at the optimum) is only resolved at the
  // scale of mu. Here those a_k in [0, 1] are fitted by least squares (CGLS, operator calls on the support) to
  // the KKT equations of the active blocks, A_i^T theta = beta U_i / ||U_i|| (theta = y * a), then clipped to
  // the box; offer_dual() makes the candidate feasible, so the bound is valid whatever the fit.
  void hinge_polish() {
    if (loss_ != Loss::hinge || last_zd_.empty() || beta_ <= 0) return;
    const std::vector<index_t> act = support();
    if (act.empty()) return;
    const index_t m = static_cast<index_t>(act.size());
    const double band = std::max(2.0 * mu_, 1e-12);
    std::vector<index_t> M;
    std::vector<double> a(static_cast<std::size_t>(n_));
    for (index_t k = 0; k < n_; ++k) {
      const double gap_k = 1.0 - y_[k] * last_zd_[k];
      if (std::abs(gap_k) <= band) M.push_back(k);
      a[k] = mu_ > 0 ? std::clamp(gap_k / mu_, 0.0, 1.0) : (gap_k > 0 ? 1.0 : 0.0);
    }
    if (M.empty()) return;
    // B x = A_act^T (y * x on M);  B^T r = y * (A_act r) on M.
    std::vector<T> v(static_cast<std::size_t>(n_)), G(static_cast<std::size_t>(m * d_)),
        zt(static_cast<std::size_t>(n_));
    auto applyB = [&](const std::vector<double>& x, std::vector<double>& out) {  // x on M -> (m*d)
      std::fill(v.begin(), v.end(), T(0));
      for (std::size_t j = 0; j < M.size(); ++j) v[M[j]] = static_cast<T>(y_[M[j]] * x[j]);
      adjoint(v.data(), G.data(), &act);
      out.assign(G.begin(), G.end());
    };
    auto applyBt = [&](const std::vector<double>& r, std::vector<double>& out) {  // (m*d) -> on M
      std::vector<T> rt(r.begin(), r.end());
      forward(rt.data(), zt.data(), &act);
      out.resize(M.size());
      for (std::size_t j = 0; j < M.size(); ++j) out[j] = y_[M[j]] * static_cast<double>(zt[M[j]]);
    };
    // Right-hand side: beta * U_i/||U_i|| - A_act^T (y * a) with a fixed off M, plus the current a on M (x0).
    std::vector<double> rhs(static_cast<std::size_t>(m * d_));
    for (index_t k = 0; k < m; ++k) {
      const T* u = U_.data() + act[k] * bs_;
      const double nrm = block_penalty(u, d_, c_, groups_);
      for (index_t j = 0; j < d_; ++j) rhs[k * d_ + j] = beta_ * static_cast<double>(u[j]) / nrm;
    }
    for (index_t k = 0; k < n_; ++k) v[k] = static_cast<T>(y_[k] * a[k]);
    adjoint(v.data(), G.data(), &act);
    std::vector<double> r(static_cast<std::size_t>(m * d_));
    for (index_t j = 0; j < m * d_; ++j) r[j] = rhs[j] - static_cast<double>(G[j]);
    // CGLS on min ||B dx - r||: dx is the correction of a on M.
    const index_t nm = static_cast<index_t>(M.size());
    std::vector<double> x(static_cast<std::size_t>(nm), 0.0), sv, p, q;
    applyBt(r, sv);
    p = sv;
    double gamma = vec::sqnorm(nm, sv.data());
    const double gamma0 = gamma;
    const index_t max_it = std::min<index_t>(nm, 200);
    for (index_t it = 0; it < max_it && gamma > 1e-28 * gamma0 && gamma > 0; ++it) {
      applyB(p, q);
      const double qq = vec::sqnorm(m * d_, q.data());
      if (!(qq > 0)) break;
      const double alpha = gamma / qq;
      for (index_t j = 0; j < nm; ++j) x[j] += alpha * p[j];
      for (index_t j = 0; j < m * d_; ++j) r[j] -= alpha * q[j];
      applyBt(r, sv);
      const double gnew = vec::sqnorm(nm, sv.data());
      for (index_t j = 0; j < nm; ++j) p[j] = sv[j] + (gnew / gamma) * p[j];
      gamma = gnew;
    }
    std::vector<double> theta(static_cast<std::size_t>(n_));
    for (index_t k = 0; k < n_; ++k) theta[k] = y_[k] * a[k];
    for (index_t j = 0; j < nm; ++j) theta[M[j]] = y_[M[j]] * std::clamp(a[M[j]] + x[j], 0.0, 1.0);
    offer_dual(theta);
  }

  // Hinge active-set Newton polish. At a hinge optimum the samples split into L (y z < 1, a = 1), R (y z > 1,
  // a = 0) and the margin set M (y z = 1, a in [0, 1]); on the active blocks the optimality conditions are
  //   beta U_i / ||U_i|| = A_i^T (y * a)   (a = 1 on L, free on M, 0 on R)   and   y_k (A U)_k = 1 on M,
  // smooth equations in (U_act, a_M). Guessing L, M, R from the smoothed solution, a few Newton steps on them
  // (dense symmetric KKT system, pseudo-inverse) give the exact optimum when the guess is right: the primal is
  // accepted only if it lowers the true objective, and the dual candidate y * clip(a) is made feasible by
  // offer_dual(), so a wrong guess costs time, never validity. Only for small systems (kPolishMaxDim unknowns).
  // Returns true if U was replaced.
  bool hinge_newton_polish(double band) {
    constexpr index_t kPolishMaxDim = 800;
    if (loss_ != Loss::hinge || last_zd_.empty() || beta_ <= 0 || c_ != 1) return false;
    const std::vector<index_t> act = support();
    const index_t ma = static_cast<index_t>(act.size()), nu = ma * d_;
    if (ma == 0) return false;
    std::vector<index_t> M;
    std::vector<double> aL(static_cast<std::size_t>(n_), 0.0);
    for (index_t k = 0; k < n_; ++k) {
      const double slack = 1.0 - y_[k] * last_zd_[k];
      if (std::abs(slack) <= band)
        M.push_back(k);
      else if (slack > 0)
        aL[k] = 1.0;
    }
    const index_t nm = static_cast<index_t>(M.size());
    const index_t N = nu + nm;
    if (nm == 0 || N > kPolishMaxDim) return false;
    // C (nu x nm): column j = A_act^T (y_k e_k), k = M[j]; one adjoint call with nm right-hand sides.
    std::vector<T> R(static_cast<std::size_t>(n_ * nm), T(0)), G(static_cast<std::size_t>(nu * nm));
    for (index_t j = 0; j < nm; ++j) R[M[j] * nm + j] = static_cast<T>(y_[M[j]]);
    op_.adjoint(R.data(), nm, G.data(), BlockSubset::of(act));
    std::vector<double> C(G.begin(), G.end());  // row (i*d + r), column j
    std::vector<T> v(static_cast<std::size_t>(n_)), gl(static_cast<std::size_t>(nu));
    for (index_t k = 0; k < n_; ++k) v[k] = static_cast<T>(y_[k] * aL[k]);
    adjoint(v.data(), gl.data(), &act);
    std::vector<double> u(static_cast<std::size_t>(nu)), a(static_cast<std::size_t>(nm));
    for (index_t i = 0; i < ma; ++i)
      for (index_t r = 0; r < d_; ++r) u[i * d_ + r] = static_cast<double>(U_[act[i] * bs_ + r]);
    for (index_t j = 0; j < nm; ++j) {
      const double slack = 1.0 - y_[M[j]] * last_zd_[M[j]];
      a[j] = mu_ > 0 ? std::clamp(slack / mu_, 0.0, 1.0) : 0.5;
    }
    std::vector<double> K(static_cast<std::size_t>(N * N)), F(static_cast<std::size_t>(N)),
        w(static_cast<std::size_t>(N)), step(static_cast<std::size_t>(N));
    for (int it = 0; it < 20; ++it) {
      // Residuals F1 = beta u/|u| - C a - g_L (per block), F2 = C^T u - 1.
      std::fill(K.begin(), K.end(), 0.0);
      double fnorm = 0.0;
      for (index_t i = 0; i < ma; ++i) {
        const double* ui = u.data() + i * d_;
        double nrm = 0.0;
        for (index_t r = 0; r < d_; ++r) nrm += ui[r] * ui[r];
        nrm = std::sqrt(nrm);
        if (!(nrm > 0)) return false;  // a block collapsed: the guess was wrong
        for (index_t r = 0; r < d_; ++r) {
          double f = beta_ * ui[r] / nrm - static_cast<double>(gl[i * d_ + r]);
          for (index_t j = 0; j < nm; ++j) f -= C[(i * d_ + r) * nm + j] * a[j];
          F[i * d_ + r] = f;
          fnorm += f * f;
          for (index_t q = 0; q < d_; ++q)  // H_i = beta (I - u u^T / |u|^2) / |u|
            K[(i * d_ + r) * N + i * d_ + q] = beta_ / nrm * ((r == q ? 1.0 : 0.0) - ui[r] * ui[q] / (nrm * nrm));
        }
      }
      for (index_t j = 0; j < nm; ++j) {
        double f = -1.0;
        for (index_t q = 0; q < nu; ++q) f += C[q * nm + j] * u[q];
        F[nu + j] = f;
        fnorm += f * f;
      }
      for (index_t q = 0; q < nu; ++q)
        for (index_t j = 0; j < nm; ++j) K[q * N + nu + j] = K[(nu + j) * N + q] = C[q * nm + j];
      if (std::sqrt(fnorm) <= 1e-13 * (1.0 + beta_)) break;
      // K [du; db] = -F with da = -db; pseudo-inverse through the eigendecomposition (K is symmetric indefinite).
      if (blas::syev<double>(N, K.data(), w.data()) != 0) return false;
      double wmax = 0.0;
      for (double e : w) wmax = std::max(wmax, std::abs(e));
      std::fill(step.begin(), step.end(), 0.0);
      for (index_t e = 0; e < N; ++e) {
        if (std::abs(w[e]) <= 1e-12 * wmax) continue;
        double proj = 0.0;
        for (index_t q = 0; q < N; ++q) proj += K[q * N + e] * F[q];
        const double coef = -proj / w[e];
        for (index_t q = 0; q < N; ++q) step[q] += coef * K[q * N + e];
      }
      for (index_t q = 0; q < nu; ++q) u[q] += step[q];
      for (index_t j = 0; j < nm; ++j) a[j] -= step[nu + j];
    }
    // Dual candidate (valid whatever happened above).
    std::vector<double> theta(static_cast<std::size_t>(n_));
    for (index_t k = 0; k < n_; ++k) theta[k] = y_[k] * aL[k];
    for (index_t j = 0; j < nm; ++j) theta[M[j]] = y_[M[j]] * std::clamp(a[j], 0.0, 1.0);
    // Primal candidate: accepted only if it lowers the true objective.
    bool replaced = false;
    if (vec::all_finite(nu, u.data())) {
      std::vector<T> keep = U_;
      for (index_t i = 0; i < ma; ++i)
        for (index_t r = 0; r < d_; ++r) U_[act[i] * bs_ + r] = static_cast<T>(u[i * d_ + r]);
      std::vector<T> zc(static_cast<std::size_t>(nc_));
      forward(U_.data(), zc.data(), nullptr);
      const double pc = loss_value(loss_, zc.data(), y_.data(), n_, c_, 0.0) + beta_ * penalty(U_.data(), p_);
      if (pc < last_primal_) {
        global_check();
        replaced = true;
      } else {
        U_.swap(keep);
      }
    }
    offer_dual(theta);
    return replaced;
  }

  // Hinge continuation after a global check: when the smoothed problem is solved to a fraction of the true gap,
  // polish (primal and dual) and, unless that certifies the point, shrink mu. Returns true if mu or U changed.
  bool maybe_shrink_mu() {
    if (mu_ <= 0) return false;
    if (kHinge.should_shrink(last_smooth_gap_, last_gap_)) {
      // The margin set is guessed from |1 - y z| <= band; the right band depends on how well the current point
      // is solved, so try a few (each guess costs one small dense solve; a wrong one is simply not accepted).
      bool replaced = false;
      for (double band : {2.0 * mu_, 10.0 * mu_, 1e-4, 1e-3, 1e-2}) {
        if (band < 1e-10 || (band > 2.0 * mu_ && band < 10.0 * mu_)) continue;
        replaced = hinge_newton_polish(band) || replaced;
        if (last_gap_ <= opt_.tol) break;
      }
      if (!replaced) hinge_polish();
      if (last_gap_ <= opt_.tol) {
        status_ = "converged";
        return false;
      }
      if (mu_ <= kHinge.mu_min) return replaced;
      mu_ = kHinge.next(mu_);
      return true;
    }
    return false;
  }

  // Working-set check: relative gap of the restricted problem (smoothed loss) on W.
  double ws_check(const std::vector<index_t>& W, double& best_ws_dual) {
    const double loss_v = loss_value_grad(loss_, z_.data(), y_.data(), n_, c_, g_.data(), mu_);
    std::vector<T> Uw;
    gather(W, Uw);
    const double primal = loss_v + beta_ * penalty(Uw.data(), static_cast<index_t>(W.size()));
    std::vector<double> theta(static_cast<std::size_t>(nc_));
    for (index_t k = 0; k < nc_; ++k) theta[k] = -static_cast<double>(g_[k]);
    auto cand = [&](const std::vector<double>& th) {
      std::vector<T> tt(th.begin(), th.end()), G(W.size() * bs_);
      adjoint(tt.data(), G.data(), &W);
      double mx = 0.0;
      for (std::size_t k = 0; k < W.size(); ++k)
        mx = std::max(mx, block_dual_norm(G.data() + k * bs_, d_, c_, groups_));
      return dual_value(th, mx, adjoint_safety<T>(n_), nullptr, mu_);
    };
    best_ws_dual = std::max(best_ws_dual, cand(theta));
    std::vector<double> th2;
    if (extrapolated_theta(th2)) best_ws_dual = std::max(best_ws_dual, cand(th2));
    if (!std::isfinite(primal)) {
      status_ = "diverged";
      return kInf;
    }
    return relative_gap(primal, best_ws_dual);
  }

  // ---- active-set Newton phase (smooth losses) ----
  //
  // Once the support is identified (every zero group strictly dual feasible at the last global check) the
  // objective is smooth on the nonzero groups U_g: F = L(A U) + beta sum_g ||U_g||. Its Newton system
  //   (A_S^T Hess_L A_S + C) dU = -(A_S^T grad L + beta U_g / ||U_g||),  C_g = beta/||U_g|| (I - u_g u_g^T)
  // is solved inexactly by preconditioned CG (one forward and one adjoint on the support per CG iteration, like
  // one FISTA iteration), block-Jacobi preconditioner (w H_i + C_g)^{-1} from the cached eigenbasis of
  // H_i = X^T D_i X (w = mean loss curvature) with a Sherman-Morrison correction for the rank-one part of C_g,
  // followed by a backtracking (Armijo) line search on the true objective. It converges superlinearly where
  // first-order methods crawl, and -- more important for the certificate -- drives the KKT residual of every
  // active group to zero, which is what the dual point's feasibility (hence the gap) depends on: a FISTA point
  // with objective excess e has dual violations ~ sqrt(e), a Newton point has violations ~ its CG residual.
  bool group_is_zero(const T* u, index_t k) const {
    if (groups_ == Groups::neuron) {
      for (index_t j = 0; j < bs_; ++j)
        if (u[j] != T(0)) return false;
      return true;
    }
    for (index_t j = 0; j < d_; ++j)
      if (u[j * c_ + k] != T(0)) return false;
    return true;
  }

  bool newton_eligible() const {
    if (!opt_.newton || loss_ == Loss::hinge || beta_ <= 0 || iter_ < newton_retry_at_) return false;
    if (!(last_gap_ <= kNewtonGap) || group_scores_.empty()) return false;
    const index_t ng = groups_per_block();
    for (index_t i = 0; i < p_; ++i)
      for (index_t k = 0; k < ng; ++k)
        if (group_is_zero(U_.data() + i * bs_, k) && !(group_scores_[i * ng + k] < 1.0)) return false;
    return true;
  }

  // One inexact damped Newton step on the nonzero groups; returns true if it was accepted (U_, z_ updated).
  bool newton_step(double eta, bool* full_step) {
    *full_step = false;
    const std::vector<index_t> S = support();
    if (S.empty()) return false;
    const index_t m = static_cast<index_t>(S.size()), len = m * bs_, ng = groups_per_block();
    ensure_cache(S);
    std::vector<T> Us;
    gather(S, Us);
    // Groups: norm and "free" flag per (block position, group).
    std::vector<double> gnorm(static_cast<std::size_t>(m * ng), 0.0);
    std::vector<char> free_entry(static_cast<std::size_t>(len), 0);
    for (index_t b = 0; b < m; ++b)
      for (index_t k = 0; k < ng; ++k) {
        const T* u = Us.data() + b * bs_;
        double acc = 0.0;
        if (ng == 1) {
          for (index_t j = 0; j < bs_; ++j) acc += static_cast<double>(u[j]) * static_cast<double>(u[j]);
        } else {
          for (index_t j = 0; j < d_; ++j)
            acc += static_cast<double>(u[j * c_ + k]) * static_cast<double>(u[j * c_ + k]);
        }
        gnorm[b * ng + k] = std::sqrt(acc);
        if (acc > 0) {
          if (ng == 1)
            std::fill(free_entry.begin() + b * bs_, free_entry.begin() + (b + 1) * bs_, 1);
          else
            for (index_t j = 0; j < d_; ++j) free_entry[b * bs_ + j * c_ + k] = 1;
        }
      }
    // Apply f(b, k, entry-index list) over the entries of group (b, k).
    auto group_entries = [&](index_t b, index_t k, auto&& f) {
      if (ng == 1)
        for (index_t j = 0; j < bs_; ++j) f(b * bs_ + j);
      else
        for (index_t j = 0; j < d_; ++j) f(b * bs_ + j * c_ + k);
    };
    // Gradient (KKT residual) on the free entries.
    std::vector<T> gl(static_cast<std::size_t>(nc_)), Gt(static_cast<std::size_t>(len));
    const double f0_loss = loss_value_grad(loss_, z_.data(), y_.data(), n_, c_, gl.data(), mu_);
    adjoint(gl.data(), Gt.data(), &S);
    std::vector<double> R(static_cast<std::size_t>(len), 0.0);
    for (index_t b = 0; b < m; ++b)
      for (index_t k = 0; k < ng; ++k) {
        const double nu = gnorm[b * ng + k];
        if (!(nu > 0)) continue;
        group_entries(b, k,
                      [&](index_t e) { R[e] = static_cast<double>(Gt[e]) + beta_ * static_cast<double>(Us[e]) / nu; });
      }
    const double r0 = std::sqrt(vec::sqnorm(len, R.data()));
    if (!(r0 > 0)) return false;
    const LossCurvature curv(loss_, z_.data(), y_.data(), n_, c_, mu_);
    const double omega = std::max(curv.mean_diagonal(), 1e-12);
    // Hessian-vector product on the free entries.
    std::vector<T> vt(static_cast<std::size_t>(len)), zt(static_cast<std::size_t>(nc_));
    std::vector<double> zv(static_cast<std::size_t>(nc_));
    auto hess = [&](const std::vector<double>& v, std::vector<double>& out) {
      for (index_t e = 0; e < len; ++e) vt[e] = static_cast<T>(v[e]);
      forward(vt.data(), zt.data(), &S);
      for (index_t k = 0; k < nc_; ++k) zv[k] = static_cast<double>(zt[k]);
      curv.apply(zv.data(), zv.data());
      for (index_t k = 0; k < nc_; ++k) zt[k] = static_cast<T>(zv[k]);
      adjoint(zt.data(), vt.data(), &S);
      out.resize(static_cast<std::size_t>(len));
      for (index_t e = 0; e < len; ++e) out[e] = free_entry[e] ? static_cast<double>(vt[e]) : 0.0;
      for (index_t b = 0; b < m; ++b)
        for (index_t k = 0; k < ng; ++k) {
          const double nu = gnorm[b * ng + k];
          if (!(nu > 0)) continue;
          double uv = 0.0;
          group_entries(b, k, [&](index_t e) { uv += static_cast<double>(Us[e]) * v[e]; });
          uv /= nu;
          const double cg = beta_ / nu;
          group_entries(b, k, [&](index_t e) { out[e] += cg * (v[e] - static_cast<double>(Us[e]) / nu * uv); });
        }
    };
    // Block-Jacobi preconditioner: (omega H_i + c_g I - c_g u u^T)^{-1} per group (Sherman-Morrison).
    std::vector<double> t1(static_cast<std::size_t>(bs_)), t2(static_cast<std::size_t>(bs_)),
        t3(static_cast<std::size_t>(bs_));
    auto prec = [&](const std::vector<double>& r, std::vector<double>& out) {
      out.assign(static_cast<std::size_t>(len), 0.0);
      for (index_t b = 0; b < m; ++b) {
        const index_t i = S[b];
        const bool eig = !cache_.eig_q[i].empty();
        const double* Q = eig ? cache_.eig_q[i].data() : nullptr;
        const double* h = eig ? cache_.eig_h[i].data() : nullptr;
        for (index_t k = 0; k < ng; ++k) {
          const double nu = gnorm[b * ng + k];
          if (!(nu > 0)) continue;
          const double cg = beta_ / nu;
          const index_t k0 = ng == 1 ? 0 : k, k1 = ng == 1 ? c_ : k + 1;
          // x = B^{-1} v for B = omega H + cg I acting on the group's columns k0..k1 (d x (k1-k0)).
          auto binv = [&](const double* v, double* x) {
            for (index_t col = k0; col < k1; ++col) {
              if (eig) {
                for (index_t a = 0; a < d_; ++a) {
                  double acc = 0.0;
                  for (index_t j = 0; j < d_; ++j) acc += Q[j * d_ + a] * v[j * c_ + col];
                  t3[a] = acc / (omega * std::max(h[a], 0.0) + cg);
                }
                for (index_t j = 0; j < d_; ++j) {
                  double acc = 0.0;
                  for (index_t a = 0; a < d_; ++a) acc += Q[j * d_ + a] * t3[a];
                  x[j * c_ + col] = acc;
                }
              } else {
                const double sc = 1.0 / (omega * cache_.lam_max[i] + cg);
                for (index_t j = 0; j < d_; ++j) x[j * c_ + col] = sc * v[j * c_ + col];
              }
            }
          };
          // Local (d x c) views of r and u for this block.
          std::fill(t1.begin(), t1.end(), 0.0);
          std::fill(t2.begin(), t2.end(), 0.0);
          std::vector<double> rloc(static_cast<std::size_t>(bs_), 0.0), uloc(static_cast<std::size_t>(bs_), 0.0);
          group_entries(b, k, [&](index_t e) {
            rloc[e - b * bs_] = r[e];
            uloc[e - b * bs_] = static_cast<double>(Us[e]) / nu;
          });
          binv(rloc.data(), t1.data());  // B^{-1} r
          binv(uloc.data(), t2.data());  // B^{-1} u
          double ut1 = 0.0, ut2 = 0.0;
          group_entries(b, k, [&](index_t e) {
            ut1 += uloc[e - b * bs_] * t1[e - b * bs_];
            ut2 += uloc[e - b * bs_] * t2[e - b * bs_];
          });
          const double coef = cg * ut1 / std::max(1.0 - cg * ut2, 1e-300);
          group_entries(b, k, [&](index_t e) { out[e] = t1[e - b * bs_] + coef * t2[e - b * bs_]; });
        }
      }
    };
    // Preconditioned CG on H dx = -R.
    std::vector<double> x(static_cast<std::size_t>(len), 0.0), res(static_cast<std::size_t>(len)), zr, p, Hp;
    for (index_t e = 0; e < len; ++e) res[e] = -R[e];
    prec(res, zr);
    p = zr;
    double rz = vec::dot(len, res.data(), zr.data());
    for (index_t it = 0; it < kNewtonMaxCg; ++it) {
      if (should_stop()) break;
      hess(p, Hp);
      const double pHp = vec::dot(len, p.data(), Hp.data());
      if (!(pHp > 0) || !(rz > 0)) break;
      const double a = rz / pHp;
      for (index_t e = 0; e < len; ++e) {
        x[e] += a * p[e];
        res[e] -= a * Hp[e];
      }
      ++iter_;
      if (std::sqrt(vec::sqnorm(len, res.data())) <= eta * r0) break;
      prec(res, zr);
      const double rzn = vec::dot(len, res.data(), zr.data());
      for (index_t e = 0; e < len; ++e) p[e] = zr[e] + (rzn / rz) * p[e];
      rz = rzn;
    }
    const double slope = vec::dot(len, R.data(), x.data());
    if (!(slope < 0)) return false;
    // Projected line search on the true objective: U(t) = P(U + t x), where P zeroes every group whose new value
    // points against its current one (the group wants to leave the support; zeroing it is what the penalty does
    // at a kink), so Newton steps also shrink the support. Predictions move along A_S x, minus A of the zeroed
    // groups (one extra forward only when some group is zeroed).
    for (index_t e = 0; e < len; ++e) vt[e] = static_cast<T>(x[e]);
    std::vector<T> zdir(static_cast<std::size_t>(nc_)), ztry(static_cast<std::size_t>(nc_)),
        Utry(static_cast<std::size_t>(len)), Vz(static_cast<std::size_t>(len)), zcorr(static_cast<std::size_t>(nc_));
    forward(vt.data(), zdir.data(), &S);
    const double F0 = f0_loss + beta_ * penalty(Us.data(), m);
    double t = 1.0;
    for (int ls = 0; ls < 30; ++ls, t *= 0.5) {
      for (index_t e = 0; e < len; ++e) Utry[e] = static_cast<T>(static_cast<double>(Us[e]) + t * x[e]);
      bool any_zeroed = false;
      std::fill(Vz.begin(), Vz.end(), T(0));
      for (index_t b = 0; b < m; ++b)
        for (index_t k = 0; k < ng; ++k) {
          if (!(gnorm[b * ng + k] > 0)) continue;
          double ip = 0.0;
          group_entries(b, k, [&](index_t e) { ip += static_cast<double>(Utry[e]) * static_cast<double>(Us[e]); });
          if (ip > 0) continue;
          any_zeroed = true;
          group_entries(b, k, [&](index_t e) {
            Vz[e] = Utry[e];
            Utry[e] = T(0);
          });
        }
      if (any_zeroed) forward(Vz.data(), zcorr.data(), &S);
      for (index_t k = 0; k < nc_; ++k)
        ztry[k] = static_cast<T>(static_cast<double>(z_[k]) + t * static_cast<double>(zdir[k]) -
                                 (any_zeroed ? static_cast<double>(zcorr[k]) : 0.0));
      const double Ft = loss_value(loss_, ztry.data(), y_.data(), n_, c_, mu_) + beta_ * penalty(Utry.data(), m);
      if (std::isfinite(Ft) && Ft <= F0 + 1e-4 * t * slope) {
        scatter(S, Utry);
        z_ = ztry;
        last_check_current_ = false;
        *full_step = ls == 0 && !any_zeroed;
        return true;
      }
    }
    return false;
  }

  // Newton steps while they pay off (each followed by a global certificate). Returns true if U_ changed.
  bool newton_phase() {
    bool changed = false;
    for (int rep = 0; rep < kNewtonMaxSteps && status_.empty(); ++rep) {
      if (!newton_eligible()) break;
      const double gap_before = last_gap_;
      // Forcing term (relative CG residual) 0.1 sqrt(gap) (superlinear, loose while far away); close to tol ask
      // for what reaches it in this step (the gap after a step is about eta * gap_before, measured).
      double eta = 0.1 * std::sqrt(gap_before);
      if (gap_before <= 1e3 * opt_.tol) eta = 0.3 * opt_.tol / gap_before;
      eta = std::clamp(eta, kNewtonMinForcing, 0.1);
      bool full_step = false;
      if (!newton_step(eta, &full_step)) {
        newton_retry_at_ = iter_ + kNewtonCooldown;
        break;
      }
      changed = true;
      const double gap = global_check();
      if (!status_.empty()) break;
      if (gap <= opt_.tol) {
        status_ = "converged";
        break;
      }
      // Keep going while Newton pays off: the gap halves, or the step was a full one on an unchanged support (the
      // local regime, where the dual may lag one step behind). Otherwise first-order steps for a while.
      if (!(gap < 0.5 * gap_before) && !full_step) {
        newton_retry_at_ = iter_ + kNewtonCooldown;
        break;
      }
    }
    return changed;
  }

  // ---- block metric cache ----
  void ensure_cache(const std::vector<index_t>& W) {
    std::vector<index_t> missing;
    for (index_t i : W)
      if (!cache_.have[i]) missing.push_back(i);
    if (missing.empty()) return;
    const index_t dd = d_ * d_;
    const double block_bytes = static_cast<double>(dd + d_) * sizeof(double);
    const index_t batch = 64;
    std::vector<T> gram_t(static_cast<std::size_t>(batch * dd));
    std::vector<double> gram(static_cast<std::size_t>(batch * dd)), w(static_cast<std::size_t>(batch * d_));
    for (std::size_t b0 = 0; b0 < missing.size(); b0 += batch) {
      const index_t nb = std::min<index_t>(batch, static_cast<index_t>(missing.size() - b0));
      for (index_t k = 0; k < nb; ++k) op_.block_gram(missing[b0 + k], gram_t.data() + k * dd);
      vec::copy(nb * dd, gram_t.data(), gram.data());
      std::vector<int> info(static_cast<std::size_t>(nb), 0);
      {
        SerialBlas serial;
#pragma omp parallel for schedule(dynamic, 1)
        for (index_t k = 0; k < nb; ++k) info[k] = blas::syev<double>(d_, gram.data() + k * dd, w.data() + k * d_);
      }
      for (index_t k = 0; k < nb; ++k) {
        const index_t i = missing[b0 + k];
        CONVEXNN_CHECK(info[k] == 0,
                       "eigendecomposition of block Gram " << i << " failed (LAPACK info " << info[k] << ")");
        const double* h = w.data() + k * d_;
        cache_.lam_max[i] = std::max(0.0, h[d_ - 1]);
        if (cache_.stored_bytes + block_bytes <= opt_.gram_cache_bytes) {
          cache_.eig_h[i].assign(h, h + d_);
          cache_.eig_q[i].assign(gram.data() + k * dd, gram.data() + (k + 1) * dd);
          cache_.stored_bytes += block_bytes;
        }
        cache_.have[i] = 1;
      }
    }
  }

  double op_norm_sq() {
    if (cache_.op_norm_sq >= 0) return cache_.op_norm_sq;
    const index_t len = p_ * bs_;
    std::vector<T> v(static_cast<std::size_t>(len)), zt(static_cast<std::size_t>(nc_));
    // Deterministic pseudo-random start (an LCG), so the estimate does not depend on anything else.
    std::uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (index_t k = 0; k < len; ++k) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      v[k] = static_cast<T>(static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5);
    }
    double est = 0.0;
    for (int it = 0; it < kPowerIterations; ++it) {
      const double nv = std::sqrt(vec::sqnorm(len, v.data()));
      if (!(nv > 0)) break;
      for (auto& e : v) e = static_cast<T>(static_cast<double>(e) / nv);
      forward(v.data(), zt.data(), nullptr);
      est = vec::sqnorm(nc_, zt.data());
      adjoint(zt.data(), v.data(), nullptr);
      // Each step is a full forward + adjoint (seconds at n = 1e5, P = 2000): honour the time limit. A
      // truncated estimate is a lower bound, which FISTA's backtracking corrects; it is not cached.
      if (elapsed() >= opt_.time_limit) return est;
    }
    cache_.op_norm_sq = est;
    return est;
  }

  // ---- gradient bookkeeping ----
  void refresh_grad() { loss_value_grad(loss_, z_.data(), y_.data(), n_, c_, g_.data(), mu_); }
  // z += dz, and update the gradient where the predictions changed.
  void apply_prediction_change(const T* dz) {
    if (loss_ == Loss::squared) {
      vec::parallel_for(nc_, [&](index_t k) {
        if (dz[k] != T(0)) {
          z_[k] += dz[k];
          g_[k] = static_cast<T>(static_cast<double>(z_[k]) - y_[k]);
        }
      });
      return;
    }
    vec::parallel_for(n_, [&](index_t r) {
      bool changed = false;
      for (index_t j = 0; j < c_; ++j)
        if (dz[r * c_ + j] != T(0)) {
          z_[r * c_ + j] += dz[r * c_ + j];
          changed = true;
        }
      if (changed) loss_value_grad(loss_, z_.data() + r * c_, y_.data() + r * c_, 1, c_, g_.data() + r * c_, mu_);
    });
  }

  // ---- working sets ----
  std::vector<index_t> build_working_set() {
    std::vector<index_t> all(static_cast<std::size_t>(p_));
    std::iota(all.begin(), all.end(), index_t(0));
    if (!opt_.working_set || p_ <= kInitialWorkingSet) return all;
    std::vector<char> in(static_cast<std::size_t>(p_), 0);
    std::vector<index_t> W = support();
    for (index_t i : W) in[i] = 1;
    const index_t target = std::min(p_, std::max({kInitialWorkingSet, 2 * static_cast<index_t>(W.size()), ws_size_}));
    std::vector<index_t> rest;
    for (index_t i = 0; i < p_; ++i)
      if (!in[i]) rest.push_back(i);
    const std::size_t need = static_cast<std::size_t>(std::max<index_t>(0, target - static_cast<index_t>(W.size())));
    if (need < rest.size()) {
      // Largest scores first; ties by index (deterministic).
      std::partial_sort(rest.begin(), rest.begin() + need, rest.end(), [&](index_t a, index_t b) {
        return scores_[a] > scores_[b] || (scores_[a] == scores_[b] && a < b);
      });
      rest.resize(need);
    }
    W.insert(W.end(), rest.begin(), rest.end());
    std::sort(W.begin(), W.end());
    return W;
  }

  // ---- inner solvers; return true when the (working-set) target gap was reached ----
  bool bcd_round(const std::vector<index_t>& W, double tol_in, bool global);
  bool fista_round(const std::vector<index_t>& W, double tol_in, bool global);
  void bcd_block_step(index_t i, std::vector<T>& gbuf, std::vector<T>& dz, std::vector<double>& work);

  // Inner check, shared by both inner solvers. Returns true when this round is done.
  bool inner_check(const std::vector<index_t>& W, double tol_in, bool global, double& best_ws_dual, bool& mu_changed) {
    mu_changed = false;
    if (global) {
      const double gap = global_check();
      if (!status_.empty()) return true;
      if (gap <= opt_.tol) {
        status_ = "converged";
        return true;
      }
      mu_changed = maybe_shrink_mu();
      if (!status_.empty()) return true;
      if (newton_phase()) mu_changed = true;  // U_ moved: the inner solver restarts from it
      return !status_.empty();
    }
    last_check_current_ = false;
    const double gap = ws_check(W, best_ws_dual);
    if (!status_.empty()) return true;
    return gap <= tol_in;
  }
};

// One BCD step on block i (gbuf: d x c scratch, dz: n x c scratch, work: eigen-space scratch).
template <class T>
void Run<T>::bcd_block_step(index_t i, std::vector<T>& gbuf, std::vector<T>& dz, std::vector<double>& work) {
  const std::vector<index_t> one{i};
  adjoint(g_.data(), gbuf.data(), &one);
  T* u = block(i);
  const double s = smooth();
  const double lmax = cache_.lam_max[i];
  work.resize(static_cast<std::size_t>(4 * bs_));
  double* unew = work.data();  // new block (original coordinates)
  bool nonzero_new = false;
  if (!(lmax > 0)) {  // D_i X = 0: the block cannot change the loss; the penalty wants 0
    std::fill(unew, unew + bs_, 0.0);
  } else if (!cache_.eig_q[i].empty()) {
    const double* Q = cache_.eig_q[i].data();
    const double* h = cache_.eig_h[i].data();
    double* ut = work.data() + bs_;      // Q^T U_i
    double* bt = work.data() + 2 * bs_;  // s h Q^T U_i - Q^T g
    for (index_t a = 0; a < d_; ++a)
      for (index_t k = 0; k < c_; ++k) {
        double su = 0.0, sg = 0.0;
        for (index_t j = 0; j < d_; ++j) {
          const double q = Q[j * d_ + a];
          su += q * static_cast<double>(u[j * c_ + k]);
          sg += q * static_cast<double>(gbuf[j * c_ + k]);
        }
        ut[a * c_ + k] = su;
        bt[a * c_ + k] = s * h[a] * su - sg;
      }
    const double h_floor = 1e-12 * lmax;
    double* vt = work.data() + 3 * bs_;
    nonzero_new = metric_group_solve(bt, h, d_, c_, groups_, s, beta_, h_floor, vt);
    // Flat directions (h <= h_floor) do not move the loss; metric_group_solve zeroed them, as the penalty wants.
    for (index_t j = 0; j < d_; ++j)
      for (index_t k = 0; k < c_; ++k) {
        double acc = 0.0;
        if (nonzero_new)
          for (index_t a = 0; a < d_; ++a) acc += Q[j * d_ + a] * vt[a * c_ + k];
        unew[j * c_ + k] = acc;
      }
  } else {
    const double L = s * lmax;
    for (index_t j = 0; j < bs_; ++j) unew[j] = static_cast<double>(u[j]) - static_cast<double>(gbuf[j]) / L;
    nonzero_new = block_soft_threshold(unew, d_, c_, groups_, beta_ / L);
  }
  (void)nonzero_new;
  bool changed = false;
  for (index_t j = 0; j < bs_; ++j) {
    const T un = static_cast<T>(unew[j]);
    gbuf[j] = un - u[j];  // the change actually applied to U (in T), so z stays A U
    if (gbuf[j] != T(0)) changed = true;
    u[j] = un;
  }
  if (!changed) return;
  forward(gbuf.data(), dz.data(), &one);
  apply_prediction_change(dz.data());
}

template <class T>
bool Run<T>::bcd_round(const std::vector<index_t>& W, double tol_in, bool global) {
  ensure_cache(W);
  refresh_grad();
  const index_t m = static_cast<index_t>(W.size());
  const int K = opt_.extrapolation;
  const bool use_anderson = opt_.anderson && K > 0;
  SnapshotRing<T> ring;  // (U_W, z) snapshots for Anderson
  if (use_anderson) ring.reset(K + 1, m * bs_ + nc_);
  std::vector<T> snap(static_cast<std::size_t>(m * bs_ + nc_));
  std::vector<T> gbuf(static_cast<std::size_t>(bs_)), dz(static_cast<std::size_t>(nc_));
  std::vector<double> work;
  double best_ws_dual = -kInf;
  index_t epochs = 0;
  while (true) {
    if (should_stop()) return false;
    for (index_t i : W) bcd_block_step(i, gbuf, dz, work);
    ++iter_;
    ++epochs;
    last_check_current_ = false;
    zhist_.push(z_.data());
    if (use_anderson) {
      for (index_t k = 0; k < m; ++k)
        std::copy(U_.data() + W[k] * bs_, U_.data() + (W[k] + 1) * bs_, snap.data() + k * bs_);
      std::copy(z_.begin(), z_.end(), snap.data() + m * bs_);
      ring.push(snap.data());
      std::vector<double> cw;
      if (ring.full() && epochs % K == 0 && extrapolation_weights(ring, m * bs_, cw)) {
        std::vector<T> Uacc(static_cast<std::size_t>(m * bs_)), zacc(static_cast<std::size_t>(nc_));
        combine_snapshots(ring, cw, 0, m * bs_, Uacc.data());
        combine_snapshots(ring, cw, m * bs_, nc_, zacc.data());
        const double f_cur = loss_value(loss_, z_.data(), y_.data(), n_, c_, mu_) + beta_ * penalty(snap.data(), m);
        const double f_acc = loss_value(loss_, zacc.data(), y_.data(), n_, c_, mu_) + beta_ * penalty(Uacc.data(), m);
        if (f_acc < f_cur) {
          scatter(W, Uacc);
          z_ = zacc;
          refresh_grad();
        }
      }
    }
    if (epochs % kBcdCheckEvery == 0) {
      bool mu_changed = false;
      if (inner_check(W, tol_in, global, best_ws_dual, mu_changed)) return status_.empty() || status_ == "converged";
      if (mu_changed) {
        refresh_grad();
        ring.clear();
        best_ws_dual = -kInf;
      }
    }
  }
}

template <class T>
bool Run<T>::fista_round(const std::vector<index_t>& W, double tol_in, bool global) {
  const index_t m = static_cast<index_t>(W.size());
  const index_t len = m * bs_;
  if (fista_L_ <= 0) fista_L_ = std::max(smooth() * op_norm_sq(), 1e-300);
  std::vector<T> x, xprev, yv(static_cast<std::size_t>(len)), xn(static_cast<std::size_t>(len)),
      G(static_cast<std::size_t>(len));
  gather(W, x);
  xprev = x;
  yv = x;
  std::vector<T> zx = z_, zprev = z_, zy = z_, zn(static_cast<std::size_t>(nc_)), gy(static_cast<std::size_t>(nc_));
  double t = 1.0;
  double best_ws_dual = -kInf;
  index_t local = 0;
  const double L_floor = 1e-300;
  while (true) {
    if (should_stop()) break;
    loss_value_grad(loss_, zy.data(), y_.data(), n_, c_, gy.data(), mu_);
    adjoint(gy.data(), G.data(), &W);
    double L = std::max(fista_L_ * 0.9, L_floor);  // let the step grow back every iteration
    for (int bt = 0; bt < 60; ++bt) {
      for (index_t j = 0; j < len; ++j)
        xn[j] = static_cast<T>(static_cast<double>(yv[j]) - static_cast<double>(G[j]) / L);
      for (index_t k = 0; k < m; ++k) block_soft_threshold(xn.data() + k * bs_, d_, c_, groups_, beta_ / L);
      forward(xn.data(), zn.data(), &W);
      // Sufficient decrease, in the cancellation-free form s ||A dx||^2 <= L ||dx||^2: it implies
      // L(z_n) <= L(z_y) + <grad, dx> + L/2 ||dx||^2 (s = smoothness of the loss), is exact for the squared
      // loss, and unlike the function-value test it is not fooled by roundoff (float32) once steps are tiny.
      const double dz2 = vec::chunked_sum(nc_, [&](index_t k) {
        const double e = static_cast<double>(zn[k]) - static_cast<double>(zy[k]);
        return e * e;
      });
      const double dx2 = vec::chunked_sum(len, [&](index_t j) {
        const double e = static_cast<double>(xn[j]) - static_cast<double>(yv[j]);
        return e * e;
      });
      if (smooth() * dz2 <= L * dx2 * (1.0 + 1e-12) || dx2 == 0.0) break;
      L *= 2.0;
    }
    fista_L_ = L;
    // Gradient-based adaptive restart (O'Donoghue & Candes): restart if the step opposes the momentum.
    double dir = 0.0;
    for (index_t j = 0; j < len; ++j)
      dir += (static_cast<double>(yv[j]) - static_cast<double>(xn[j])) *
             (static_cast<double>(xn[j]) - static_cast<double>(x[j]));
    if (dir > 0) t = 1.0;
    const double tn = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
    const double mom = (t - 1.0) / tn;
    t = tn;
    xprev.swap(x);
    x.swap(xn);
    zprev.swap(zx);
    zx.swap(zn);
    vec::extrapolate(len, x.data(), xprev.data(), mom, yv.data());
    vec::extrapolate(nc_, zx.data(), zprev.data(), mom, zy.data());
    ++iter_;
    ++local;
    last_check_current_ = false;
    if (use_dual_extrapolation()) zhist_.push(zx.data());
    if (!vec::all_finite(nc_, zx.data())) {
      status_ = "diverged";
      break;
    }
    if (local % std::max<index_t>(1, opt_.check_every) == 0) {
      scatter(W, x);
      z_ = zx;
      const double mu_before = mu_;
      bool mu_changed = false;
      if (inner_check(W, tol_in, global, best_ws_dual, mu_changed)) break;
      if (mu_changed) {  // new smoothing and/or a polished U: restart from U_
        if (mu_ != mu_before && mu_ > 0) fista_L_ *= mu_before / mu_;
        t = 1.0;
        gather(W, x);
        xprev = x;
        yv = x;
        zx = z_;
        zprev = zx;
        zy = zx;
        best_ws_dual = -kInf;
      }
    }
  }
  scatter(W, x);
  z_ = zx;
  return status_.empty() || status_ == "converged";
}

template <class T>
GatedResult<T> Run<T>::run(const T* warm_start) {
  t0_ = Clock::now();
  CONVEXNN_CHECK(std::isfinite(beta_) && beta_ >= 0, "beta must be a finite number >= 0, got " << beta_);
  CONVEXNN_CHECK(opt_.tol >= 0, "tol must be >= 0, got " << opt_.tol);
  CONVEXNN_CHECK(opt_.max_iter >= 0, "max_iter must be >= 0, got " << opt_.max_iter);
  CONVEXNN_CHECK(!(opt_.time_limit < 0), "time_limit must be >= 0, got " << opt_.time_limit);
  CONVEXNN_CHECK(opt_.extrapolation >= 0 && opt_.extrapolation <= 64,
                 "extrapolation must be in [0, 64], got " << opt_.extrapolation);
  CONVEXNN_CHECK(opt_.solver == "auto" || opt_.solver == "bcd" || opt_.solver == "fista",
                 "solver must be 'auto', 'bcd' or 'fista', got '" << opt_.solver << "'");
  solver_ = opt_.solver == "bcd" ? "bcd" : "fista";  // "auto": FISTA (+ Newton), measured faster, see the header
  const double ubytes = static_cast<double>(p_) * static_cast<double>(bs_) * sizeof(T);
  if (ubytes > 1e13) throw std::length_error("coefficients of " + std::to_string(ubytes) + " bytes are too large");
  U_.assign(static_cast<std::size_t>(p_ * bs_), T(0));
  if (warm_start) {
    CONVEXNN_CHECK(vec::all_finite(p_ * bs_, warm_start), "warm_start must be finite");
    std::copy(warm_start, warm_start + p_ * bs_, U_.begin());
  }
  z_.assign(static_cast<std::size_t>(nc_), T(0));
  g_.assign(static_cast<std::size_t>(nc_), T(0));
  if (loss_ == Loss::hinge) mu_ = kHinge.mu_start;
  zhist_.reset(opt_.extrapolation > 0 ? opt_.extrapolation + 1 : 0, nc_);

  double gap = global_check();
  if (status_.empty() && gap <= opt_.tol) status_ = "converged";
  while (status_.empty()) {
    if (should_stop()) break;
    const std::vector<index_t> W = build_working_set();
    ws_size_ = static_cast<index_t>(W.size());
    const bool global = ws_size_ == p_;
    const double tol_in = global ? opt_.tol : std::max(kInnerFraction * last_gap_, 0.5 * opt_.tol);
    if (solver_ == "bcd")
      bcd_round(W, tol_in, global);
    else
      fista_round(W, tol_in, global);
    if (!status_.empty()) break;
    if (!global) {
      gap = global_check();
      if (!status_.empty()) break;
      if (gap <= opt_.tol) {
        status_ = "converged";
        break;
      }
      maybe_shrink_mu();
      if (status_.empty()) newton_phase();
    }
  }
  // The returned point is always certified: check the final iterate if it has not been.
  if (!last_check_current_ && status_ != "diverged") {
    const std::string keep = status_;
    global_check();
    if (status_.empty())
      status_ = keep;
    else if (keep != "diverged" && status_ == "diverged")
      status_ = "diverged";
  }
  // Stopped by a budget but the best point is certified anyway.
  if ((status_ == "max_iter" || status_ == "time_limit") && best_gap() <= opt_.tol) status_ = "converged";

  GatedResult<T> res;
  if (best_U_.empty()) best_U_ = U_;
  res.U = std::move(best_U_);
  res.objective = best_primal_;
  res.dual_objective = best_dual_;
  res.gap = best_gap();
  res.n_iter = iter_;
  res.status = status_;
  res.time = elapsed();
  res.solver = solver_;
  res.history = std::move(history_);
  index_t act = 0;
  for (index_t i = 0; i < p_; ++i)
    for (index_t j = 0; j < bs_; ++j)
      if (res.U[i * bs_ + j] != T(0)) {
        ++act;
        break;
      }
  res.n_active = act;
  return res;
}

}  // namespace

// ------------------------------------------------------------------------------------------------------------
template <class T>
double GatedSolver<T>::beta_max() const {
  if (p_ == 0) return 0.0;
  std::vector<double> g(static_cast<std::size_t>(n_ * c_));
  loss_grad_at_zero(loss_, y_.data(), n_, c_, g.data());
  // Per-group norms (the max over a block's columns is the "output" dual norm: sqrt is monotone).
  const bool neuron = groups_ == Groups::neuron;
  std::vector<double> norms(static_cast<std::size_t>(neuron ? p_ : p_ * c_));
  if (cert_op_) {
    cert_op_->adjoint_dual_norms(g.data(), c_, neuron, norms.data());
  } else {
    std::vector<T> gt(g.begin(), g.end());
    op_.adjoint_dual_norms(gt.data(), c_, neuron, norms.data());
  }
  return *std::max_element(norms.begin(), norms.end());
}

template <class T>
GatedResult<T> GatedSolver<T>::solve(double beta, const GatedOptions& options, const T* warm_start) {
  Run<T> run(op_, cert_op_, y_, c_, loss_, groups_, *cache_, options, beta);
  return run.run(warm_start);
}

template <class T>
std::vector<GatedResult<T>> GatedSolver<T>::solve_path(const std::vector<double>& betas, const GatedOptions& options,
                                                       const T* warm_start) {
  std::vector<GatedResult<T>> out;
  out.reserve(betas.size());
  const T* ws = warm_start;
  for (double b : betas) {
    out.push_back(solve(b, options, ws));
    ws = out.back().U.data();
    if (out.back().status == "interrupted") break;
  }
  return out;
}

template <class T>
Certificate GatedSolver<T>::certificate(const T* U, double beta) const {
  CONVEXNN_CHECK(std::isfinite(beta) && beta >= 0, "beta must be a finite number >= 0, got " << beta);
  const index_t bs = d_ * c_, nc = n_ * c_;
  std::vector<double> zd(static_cast<std::size_t>(nc)), theta(static_cast<std::size_t>(nc));
  std::vector<double> norms(static_cast<std::size_t>(p_), 0.0);
  double safety = 1.0;
  const BlockOperator<double>* dop = cert_op_;
  if constexpr (std::is_same<T, double>::value) {
    if (!dop) dop = &op_;
  }
  if (dop) {
    std::vector<double> Ud(U, U + p_ * bs), G(static_cast<std::size_t>(p_ * bs));
    const BlockOperator<double>& op = *dop;
    if (p_ > 0) op.forward(Ud.data(), c_, zd.data(), BlockSubset{});
    loss_value_grad(loss_, zd.data(), y_.data(), n_, c_, theta.data(), 0.0);
    for (double& v : theta) v = -v;
    if (p_ > 0) op.adjoint(theta.data(), c_, G.data(), BlockSubset{});
    for (index_t i = 0; i < p_; ++i) norms[i] = block_dual_norm(G.data() + i * bs, d_, c_, groups_);
  } else {
    std::vector<T> zt(static_cast<std::size_t>(nc)), G(static_cast<std::size_t>(p_ * bs));
    if (p_ > 0) op_.forward(U, c_, zt.data(), BlockSubset{});
    for (index_t k = 0; k < nc; ++k) zd[k] = static_cast<double>(zt[k]);
    loss_value_grad(loss_, zd.data(), y_.data(), n_, c_, theta.data(), 0.0);
    for (double& v : theta) v = -v;
    std::vector<T> th(theta.begin(), theta.end());
    if (p_ > 0) op_.adjoint(th.data(), c_, G.data(), BlockSubset{});
    for (index_t i = 0; i < p_; ++i) norms[i] = block_dual_norm(G.data() + i * bs, d_, c_, groups_);
    safety = adjoint_safety<T>(n_);
  }
  double pen = 0.0;
  for (index_t i = 0; i < p_; ++i) pen += block_penalty(U + i * bs, d_, c_, groups_);
  Certificate cert;
  cert.primal = loss_value(loss_, zd.data(), y_.data(), n_, c_, 0.0) + beta * pen;
  cert.dual_norm = norms.empty() ? 0.0 : *std::max_element(norms.begin(), norms.end());
  const double nrm = cert.dual_norm * safety;
  cert.scale = nrm <= beta ? 1.0 : beta / nrm;
  for (double& v : theta) v = -cert.scale * v;
  cert.dual = -loss_conjugate(loss_, theta.data(), y_.data(), n_, c_, 0.0);
  cert.gap = relative_gap(cert.primal, cert.dual);
  return cert;
}

template <class T>
GatedResult<T> solve_gated(const BlockOperator<T>& op, const double* y, index_t c, double beta, Loss loss,
                           Groups groups, const GatedOptions& options, const T* warm_start,
                           const BlockOperator<double>* certify_op) {
  GatedSolver<T> solver(op, y, op.n_samples(), c, loss, groups, certify_op);
  return solver.solve(beta, options, warm_start);
}

template <class T>
double gated_beta_max(const BlockOperator<T>& op, const double* y, index_t c, Loss loss, Groups groups) {
  GatedSolver<T> solver(op, y, op.n_samples(), c, loss, groups);
  return solver.beta_max();
}

template class GatedSolver<float>;
template class GatedSolver<double>;
template GatedResult<float> solve_gated<float>(const BlockOperator<float>&, const double*, index_t, double, Loss,
                                               Groups, const GatedOptions&, const float*, const BlockOperator<double>*);
template GatedResult<double> solve_gated<double>(const BlockOperator<double>&, const double*, index_t, double, Loss,
                                                 Groups, const GatedOptions&, const double*,
                                                 const BlockOperator<double>*);
template double gated_beta_max<float>(const BlockOperator<float>&, const double*, index_t, Loss, Groups);
template double gated_beta_max<double>(const BlockOperator<double>&, const double*, index_t, Loss, Groups);

}  // namespace convexnn
