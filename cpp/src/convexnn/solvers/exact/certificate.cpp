// The checks of the exact solver: ray Newton's schedule, the certificate (screened by a dual bound, else the cone
// oracle on every pattern and both signs), the callback, the float32 precision floor, checkpoints for prompt
// stops, and the certified result.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "convexnn/solvers/exact/run.hpp"

namespace convexnn {

using namespace exact;  // the constants and helpers of run.hpp

// Ray Newton before a check's certificate. Accepting restarts FISTA's momentum, which ill-conditioned
// problems (thousands of iterations) pay for dearly when it happens every check, so every second accepted
// step that the certificate does not declare converged doubles the number of checks between attempts (see
// check). Two rejected attempts on one support (set of nonzero columns): wait for a new one.
template <class T>
bool ReluSolver<T>::Run::maybe_ray_newton() {
  const index_t n_cols = s_.p_ * s_.c_;
  std::vector<char> support(static_cast<std::size_t>(2 * n_cols));
  for (index_t col = 0; col < n_cols; ++col) {
    support[static_cast<std::size_t>(col)] = column_norm(x_.V, col, s_.d_, s_.c_) > 0.0;
    support[static_cast<std::size_t>(n_cols + col)] = column_norm(x_.W, col, s_.d_, s_.c_) > 0.0;
  }
  if (support != last_support_) newton_rejections_ = 0;
  ++checks_since_newton_;
  bool accepted = false;
  if (newton_rejections_ < 2 && checks_since_newton_ >= newton_interval_) {
    times_.lap(kOther);
    accepted = s_.ray_newton(x_, penalty_x_, beta_, mu_, &stop_);
    times_.lap(kNewton);
    if (accepted) {
      ++result_.n_newton;
      y_pt_ = x_;
      momentum_.reset();
      checks_since_newton_ = 0;
    } else if (!stop_.stopped()) {
      ++newton_rejections_;
    }
  }
  last_support_ = std::move(support);
  return accepted;
}

// A check at iteration `it`: ray Newton, the certificate, the callback. True: stop (status set).
template <class T>
bool ReluSolver<T>::Run::check(index_t it) {
  const bool newton_accepted = opt_.ray_newton && !hinge_ && maybe_ray_newton();
  const CertifyOutcome outcome = stop_.stopped() ? CertifyOutcome::kStopped : certify(x_, penalty_x_, it, true);
  if (outcome == CertifyOutcome::kStopped) {
    result_.status = stop_.status();
    return true;
  }
  if (!std::isfinite(result_.objective)) {  // NaN / Inf objective (e.g. overflowing data): no certificate
    result_.status = "diverged";
    return true;
  }
  const bool done = outcome == CertifyOutcome::kDone;
  if (newton_accepted && !done && ++newton_misses_ % 2 == 0) newton_interval_ *= 2;
  save_checkpoint(it);
  if (opt_.callback) {
    IterInfo info;
    info.iteration = it;
    info.objective = result_.objective;
    info.dual_objective = result_.dual_objective;
    info.gap = result_.gap;
    info.time = stop_.elapsed();
    info.n_active = count_active();
    info.working_set = 2 * s_.p_ * s_.c_;  // every column is projected each iteration (no working sets yet)
    if (!stop_.call_callback(info)) {
      result_.status = "interrupted";
      return true;
    }
  }
  if (done) {
    result_.status = "converged";
    return true;
  }
  if (opt_.precision_floor && at_precision_floor()) {
    result_.status = "precision_floor";
    return true;
  }
  return false;
}

// float32 iterates certify gaps only down to a rounding floor (~1e-5 here, problem dependent); below it FISTA
// spins to max_iter. True once the best gap of the checks (<= kFloorCeiling, above tol) has not shrunk by
// kFloorProgress over kFloorChecks checks (the gated solver's rule), so that the caller can continue in float64.
template <class T>
bool ReluSolver<T>::Run::at_precision_floor() {
  if (!std::is_same_v<T, float>) return false;
  floor_best_gap_ = std::min(floor_best_gap_, result_.gap);
  const double gap = floor_best_gap_;
  if (gap <= opt_.tol || !(gap <= kFloorCeiling) || gap <= kFloorProgress * floor_ref_gap_) {
    floor_ref_gap_ = gap;
    floor_stalled_ = 0;
    return false;
  }
  return ++floor_stalled_ >= kFloorChecks;
}

template <class T>
index_t ReluSolver<T>::Run::count_active() const {
  index_t active = 0;
  for (index_t col = 0; col < s_.p_ * s_.c_; ++col)
    active += (column_norm(x_.V, col, s_.d_, s_.c_) > 0.0) + (column_norm(x_.W, col, s_.d_, s_.c_) > 0.0);
  return active;
}

// The certificate at pt (its history entry and the result's objective, bound and gap). allow_screen: the
// cone projections (the oracle: every pattern, both signs) are skipped when this theta provably cannot
// certify tol (see dual_value_bound); the history then keeps the best dual bound found so far, which stays
// valid. With `stoppable` the oracle returns early on a stop (kStopped, nothing recorded).
template <class T>
typename ReluSolver<T>::Run::CertifyOutcome ReluSolver<T>::Run::certify(const Point& pt, double penalty,
                                                                        index_t iteration, bool allow_screen,
                                                                        bool stoppable) {
  // True-loss certificate at pt, in double (hinge: the smoothed gradient lies in the hinge conjugate's
  // domain, so it still gives a valid dual point of the true problem).
  const double started = stop_.elapsed();
  times_.lap(kOther);
  const double smoothed_loss = s_.loss_gradient_adjoint(pt.V, pt.W, mu_, cert_grad_, cert_G_, &cert_z_);
  const double true_loss = hinge_ ? loss_value(s_.loss_, cert_z_.data(), s_.y_.data(), s_.n_, s_.c_) : smoothed_loss;
  const double primal = true_loss + beta_ * penalty;
  times_.lap(kCertifyProducts);
  if (allow_screen && !hinge_ && screened_in_a_row_ + 1 < kFullCertificateEvery) {
    const double bound = s_.dual_value_bound(pt.V, pt.W, cert_grad_, cert_G_, beta_);
    if (relative_gap(primal, std::max(best_dual_, bound)) > opt_.tol) {
      record(iteration, primal, relative_gap(primal, best_dual_));
      last_certificate_full_ = false;
      ++screened_in_a_row_;
      return CertifyOutcome::kContinue;
    }
  }
  const double worst = s_.dual_constraint_max(cert_G_, opt_.cone_tol, beta_, stoppable ? &stop_ : nullptr);
  times_.lap(kCertifyOracle);
  if (stoppable && stop_.stopped()) return CertifyOutcome::kStopped;
  last_certificate_full_ = true;
  screened_in_a_row_ = 0;
  const double scale = worst > beta_ ? beta_ / worst : 1.0;
  std::vector<double> t(cert_grad_);
  for (double& v : t) v *= scale;
  const double dual = -loss_conjugate(s_.loss_, t.data(), s_.y_.data(), s_.n_, s_.c_);
  best_dual_ = std::max(best_dual_, dual);
  const double gap = relative_gap(primal, best_dual_);
  record(iteration, primal, gap);
  result_.max_dual_constraint = worst;
  full_certificate_seconds_ = stop_.elapsed() - started;
  // The certificate is of the true problem: once it holds, stop (shrinking mu further only loses it).
  if (gap <= opt_.tol) return CertifyOutcome::kDone;
  if (hinge_ && mu_ > 0.0) {
    const double smoothed_primal = smoothed_loss + beta_ * penalty;
    const double smoothed_dual = -loss_conjugate(s_.loss_, t.data(), s_.y_.data(), s_.n_, s_.c_, mu_);
    if (kHinge.should_shrink(relative_gap(smoothed_primal, smoothed_dual), gap)) {
      mu_ = kHinge.next(mu_);
      return CertifyOutcome::kContinue;  // keep going on the sharper problem
    }
  }
  return CertifyOutcome::kContinue;
}

template <class T>
void ReluSolver<T>::Run::record(index_t iteration, double primal, double gap) {
  result_.history.push_back({iteration, primal, best_dual_, gap, stop_.elapsed(), 0});
  result_.objective = primal;
  result_.dual_objective = best_dual_;
  result_.gap = gap;
}

template <class T>
void ReluSolver<T>::Run::save_checkpoint(index_t it) {
  checkpoint_.valid = true;
  checkpoint_.iteration = it;
  checkpoint_.V = x_.V;
  checkpoint_.W = x_.W;
  checkpoint_.penalty = penalty_x_;
  checkpoint_.objective = result_.objective;
  checkpoint_.dual = result_.dual_objective;
  checkpoint_.gap = result_.gap;
  // The oracle's value belongs to this point only when this check ran it.
  checkpoint_.max_dual_constraint =
      last_certificate_full_ ? result_.max_dual_constraint : std::numeric_limits<double>::quiet_NaN();
  stop_.set_iteration(it);
}

// The final certificate at x (also for stops between checks); a stop by the time limit or an interrupt
// returns the last checkpoint instead when certifying x would take long (kFinalCertificateShare).
template <class T>
void ReluSolver<T>::Run::finish(index_t& it) {
  if (result_.history.empty() || result_.history.back().iteration != it || !last_certificate_full_) {
    const bool limited = result_.status == "time_limit" || result_.status == "interrupted";
    const double allowed = result_.status == "time_limit" ? kFinalCertificateShare * opt_.time_limit
                                                          : kInterruptCertificateSeconds;
    if (limited && checkpoint_.valid && full_certificate_seconds_ > allowed) {
      restore_checkpoint(it);
    } else {
      certify(x_, penalty_x_, it, false, false);
    }
  }
  result_.V.assign(static_cast<std::size_t>(m_), T(0));
  result_.W.assign(static_cast<std::size_t>(m_), T(0));
  for (index_t e = 0; e < m_; ++e) {
    result_.V[e] = static_cast<T>(x_.V[e]);
    result_.W[e] = static_cast<T>(x_.W[e]);
  }
  result_.max_violation = s_.relative_violation(result_.V.data(), result_.W.data());
  result_.kkt_residual = std::max(0.0, result_.gap);
  if (result_.status == "converged" && result_.max_violation > opt_.tol) result_.status = "max_iter";
  if (result_.status == "max_iter" && result_.gap <= opt_.tol && result_.max_violation <= opt_.tol)
    result_.status = "converged";
  if (!std::isfinite(result_.objective)) result_.status = "diverged";  // no certificate holds
  result_.n_active = count_active();
  result_.n_iter = it;
  result_.time = stop_.elapsed();
  times_.lap(kOther);
  result_.timings = times_.snapshot();
  result_.timings["total"] = result_.time;
}

template <class T>
void ReluSolver<T>::Run::restore_checkpoint(index_t& it) {
  x_.V = std::move(checkpoint_.V);
  x_.W = std::move(checkpoint_.W);
  penalty_x_ = checkpoint_.penalty;
  it = checkpoint_.iteration;
  result_.objective = checkpoint_.objective;
  result_.dual_objective = checkpoint_.dual;
  result_.gap = checkpoint_.gap;
  result_.max_dual_constraint = checkpoint_.max_dual_constraint;
  while (!result_.history.empty() && result_.history.back().iteration > it) result_.history.pop_back();
}

#define CONVEXNN_EXACT_CHECKS(T)                                                                              \
  template bool ReluSolver<T>::Run::maybe_ray_newton();                                                       \
  template bool ReluSolver<T>::Run::check(index_t);                                                           \
  template bool ReluSolver<T>::Run::at_precision_floor();                                                     \
  template index_t ReluSolver<T>::Run::count_active() const;                                                  \
  template ReluSolver<T>::Run::CertifyOutcome ReluSolver<T>::Run::certify(const Point&, double, index_t, bool, \
                                                                          bool);                               \
  template void ReluSolver<T>::Run::record(index_t, double, double);                                          \
  template void ReluSolver<T>::Run::save_checkpoint(index_t);                                                 \
  template void ReluSolver<T>::Run::finish(index_t&);                                                         \
  template void ReluSolver<T>::Run::restore_checkpoint(index_t&);
CONVEXNN_EXACT_CHECKS(float)
CONVEXNN_EXACT_CHECKS(double)
#undef CONVEXNN_EXACT_CHECKS

}  // namespace convexnn
