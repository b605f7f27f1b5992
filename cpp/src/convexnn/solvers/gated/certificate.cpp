// Certificates of the gated solver: the global dual point at the current iterate (theta = -grad L_mu, and
// celer's extrapolated candidate), dual points offered by the polish steps, and the working-set gap.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "convexnn/core/vec_ops.hpp"
#include "convexnn/solvers/gated/run.hpp"

namespace convexnn::gated {

// Dual value of the scaled candidate theta (residual convention): returns -L*(-s theta) for the TRUE loss,
// scale written to *s_out; max_norm: the largest group dual norm of A^T theta (over the blocks considered).
template <class T>
double Run<T>::dual_value(const std::vector<double>& theta, double max_norm, double safety, double* s_out,
                          double conj_mu) const {
  const double nrm = max_norm * safety;
  const double s = nrm <= beta_ ? 1.0 : beta_ / nrm;
  std::vector<double> t(static_cast<std::size_t>(nc_));
  for (index_t k = 0; k < nc_; ++k) t[k] = -s * theta[k];
  if (s_out) *s_out = s;
  return -loss_conjugate(loss_, t.data(), y_.data(), n_, c_, conj_mu, w_);
}

// sum_k theta_k^2 / w_k: the quadratic of the smoothed hinge's conjugate (mu/2 times it; weight-0 samples have
// theta = 0 and add nothing).
template <class T>
double Run<T>::smoothing_norm(const std::vector<double>& theta) const {
  if (!w_) return vec::sqnorm(nc_, theta.data());
  double s = 0.0;
  for (index_t k = 0; k < nc_; ++k)
    if (w_[k / c_] > 0) s += theta[k] * theta[k] / w_[k / c_];
  return s;
}

// Max group dual norm of A^T theta over all blocks (double); per-group norms (P x groups_per_block) into
// `norms` if given.
template <class T>
double Run<T>::full_dual_norm(const std::vector<double>& theta, std::vector<double>* norms) {
  if (p_ == 0) return 0.0;
  PhaseTimes::Scope timed(times_, kAdjoint);
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
template <class T>
void Run<T>::certified_predictions(std::vector<double>& zd) {
  // Only the support contributes: forward on it (refreshes the maintained predictions, removing drift).
  const std::vector<index_t> supp = support();
  std::vector<T> Us;
  gather(supp, Us);
  forward(Us.data(), z_.data(), &supp);
  zd.resize(static_cast<std::size_t>(nc_));
  if (cop_) {
    std::vector<double> Ud(Us.begin(), Us.end());
    if (supp.empty()) {
      std::fill(zd.begin(), zd.end(), 0.0);
    } else {
      PhaseTimes::Scope timed(times_, kForward);
      cop_->forward(Ud.data(), c_, zd.data(), BlockSubset::of(supp));
    }
  } else {
    for (index_t k = 0; k < nc_; ++k) zd[k] = static_cast<double>(z_[k]);
  }
}

// Block scores (max over the block's groups) for the working sets; group scores for the Newton phase.
template <class T>
void Run<T>::update_scores(const std::vector<double>& norms) {
  const index_t ng = groups_per_block();
  group_scores_.assign(norms.size(), 0.0);
  for (std::size_t g = 0; g < norms.size(); ++g) group_scores_[g] = beta_ > 0 ? norms[g] / beta_ : kInf;
  scores_.assign(static_cast<std::size_t>(p_), 0.0);
  for (index_t i = 0; i < p_; ++i)
    for (index_t k = 0; k < ng; ++k) scores_[i] = std::max(scores_[i], group_scores_[i * ng + k]);
}

// Global certificate at the current U (all blocks). Returns the relative gap; updates best dual / primal,
// scores, history. Sets status_ = "diverged" on NaN/Inf.
template <class T>
double Run<T>::global_check() {
  PhaseTimes::Scope timed(times_, kCertificate);
  std::vector<double> zd;
  certified_predictions(zd);
  const double pen = penalty(U_.data(), p_);
  const double primal = loss_value(loss_, zd.data(), y_.data(), n_, c_, 0.0, w_) + beta_ * pen;
  n_active_ = count_active();
  if (!std::isfinite(primal)) {
    status_ = "diverged";
    return kInf;
  }
  const double safety = cop_ ? 1.0 : adjoint_safety<T>(n_);
  // Candidate 1: theta = -grad L_mu(z).
  std::vector<double> theta(static_cast<std::size_t>(nc_));
  const double smooth_loss = loss_value_grad(loss_, zd.data(), y_.data(), n_, c_, theta.data(), mu_, w_);
  for (double& v : theta) v = -v;
  std::vector<double> norms;
  const double mx = full_dual_norm(theta, &norms);
  double s = 1.0;
  double dual = dual_value(theta, mx, safety, &s, 0.0);
  double smooth_dual = mu_ > 0 ? dual - 0.5 * mu_ * s * s * smoothing_norm(theta) : dual;
  update_scores(norms);
  // Candidate 2: dual extrapolation from the last K+1 predictions.
  std::vector<double> th2;
  if (extrapolated_theta(th2)) {
    const double mx2 = full_dual_norm(th2, nullptr);
    double s2 = 1.0;
    const double d2 = dual_value(th2, mx2, safety, &s2, 0.0);
    if (d2 > dual) dual = d2;
    if (mu_ > 0) smooth_dual = std::max(smooth_dual, d2 - 0.5 * mu_ * s2 * s2 * smoothing_norm(th2));
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
  check_precision_floor();
  return last_gap_;
}

// float32 iterates certify gaps only down to a rounding floor (~1e-6, problem dependent); below it FISTA spins
// to max_iter. Stop there ("precision_floor") so that the caller can continue in float64 from this point.
template <class T>
void Run<T>::check_precision_floor() {
  if (!std::is_same<T, float>::value || !status_.empty()) return;
  const double gap = best_gap();
  if (gap <= opt_.tol || !(gap <= kFloorCeiling)) {
    floor_ref_gap_ = gap;
    floor_stalled_ = 0;
    return;
  }
  if (gap <= kFloorProgress * floor_ref_gap_) {
    floor_ref_gap_ = gap;
    floor_stalled_ = 0;
  } else if (++floor_stalled_ >= kFloorChecks) {
    status_ = "precision_floor";
  }
}

// Dual extrapolation (celer) assumes the predictions follow a stationary linear recurrence, as BCD epochs do
// once the support is identified; FISTA's momentum sequence is not one (measured: the extrapolated point was
// never the better dual there), so it is skipped for FISTA, saving an adjoint pass per check.
template <class T>
bool Run<T>::use_dual_extrapolation() const {
  return opt_.extrapolation > 0 && solver_ == "bcd";
}

// The second dual candidate of a check: theta = -grad L at the extrapolation of the last K+1 predictions
// (celer's dual extrapolation). False when there is none or it is not finite.
template <class T>
bool Run<T>::extrapolated_theta(std::vector<double>& th2) const {
  std::vector<double> cw;
  if (!use_dual_extrapolation() || !extrapolation_weights(zhist_, nc_, cw)) return false;
  std::vector<double> zacc(static_cast<std::size_t>(nc_));
  th2.assign(static_cast<std::size_t>(nc_), 0.0);
  combine_snapshots(zhist_, cw, 0, nc_, zacc.data());
  loss_value_grad(loss_, zacc.data(), y_.data(), n_, c_, th2.data(), mu_, w_);
  for (double& v : th2) v = -v;
  return vec::all_finite(nc_, th2.data());
}

// A dual candidate theta (residual convention, already inside dom L*(-.)): scale to feasibility with a full
// adjoint pass and keep it if it improves the bound.
template <class T>
void Run<T>::offer_dual(const std::vector<double>& theta) {
  if (!vec::all_finite(nc_, theta.data())) return;
  PhaseTimes::Scope timed(times_, kCertificate);
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

// Working-set check: relative gap of the restricted problem (smoothed loss) on W.
template <class T>
double Run<T>::ws_check(const std::vector<index_t>& W, double& best_ws_dual) {
  PhaseTimes::Scope timed(times_, kCertificate);
  const double loss_v = loss_value_grad(loss_, z_.data(), y_.data(), n_, c_, g_.data(), mu_, w_);
  std::vector<T> Uw;
  gather(W, Uw);
  const double primal = loss_v + beta_ * penalty(Uw.data(), static_cast<index_t>(W.size()));
  std::vector<double> theta(static_cast<std::size_t>(nc_));
  for (index_t k = 0; k < nc_; ++k) theta[k] = -static_cast<double>(g_[k]);
  auto cand = [&](const std::vector<double>& th) {
    std::vector<T> tt(th.begin(), th.end()), G(W.size() * bs_);
    adjoint(tt.data(), G.data(), &W);
    double mx = 0.0;
    for (std::size_t k = 0; k < W.size(); ++k) mx = std::max(mx, block_dual_norm(G.data() + k * bs_, d_, c_, groups_));
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

// The precision floor of a working-set round (float32): its gap stalls above its target while no global check
// comes. True when it has, and a global check at the current point confirms the solve is above tol (that
// check then sets "precision_floor" or "converged" as it finds).
template <class T>
bool Run<T>::ws_at_precision_floor(double ws_gap) {
  if (!std::is_same<T, float>::value) return false;
  if (!(ws_gap <= kFloorCeiling) || ws_gap <= kFloorProgress * ws_floor_ref_) {
    ws_floor_ref_ = ws_gap;
    ws_floor_stalled_ = 0;
    return false;
  }
  if (++ws_floor_stalled_ < kFloorChecks) return false;
  const double gap = global_check();
  if (status_.empty()) status_ = gap <= opt_.tol ? "converged" : "precision_floor";
  return true;
}

#define CONVEXNN_GATED_CERTIFICATE(T)                                                                          \
  template double Run<T>::dual_value(const std::vector<double>&, double, double, double*, double) const;       \
  template double Run<T>::smoothing_norm(const std::vector<double>&) const;                                    \
  template double Run<T>::full_dual_norm(const std::vector<double>&, std::vector<double>*);                    \
  template void Run<T>::certified_predictions(std::vector<double>&);                                           \
  template void Run<T>::update_scores(const std::vector<double>&);                                             \
  template double Run<T>::global_check();                                                                      \
  template void Run<T>::check_precision_floor();                                                               \
  template bool Run<T>::ws_at_precision_floor(double);                                                                    \
  template bool Run<T>::use_dual_extrapolation() const;                                                        \
  template bool Run<T>::extrapolated_theta(std::vector<double>&) const;                                        \
  template void Run<T>::offer_dual(const std::vector<double>&);                                                \
  template double Run<T>::ws_check(const std::vector<index_t>&, double&);
CONVEXNN_GATED_CERTIFICATE(float)
CONVEXNN_GATED_CERTIFICATE(double)
#undef CONVEXNN_GATED_CERTIFICATE

}  // namespace convexnn::gated
