// The iterations of the exact solver: FISTA (Beck & Teboulle 2009) with the exact cone-norm prox, backtracking
// and gradient-based adaptive restart, from a power-iteration Lipschitz estimate; the loop that runs them and
// the checks (certificate.cpp).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "convexnn/core/power_iteration.hpp"
#include "convexnn/solvers/exact/run.hpp"

namespace convexnn {

using namespace exact;  // the constants and helpers of run.hpp

template <class T>
ReluResult<T> ReluSolver<T>::Run::execute(const T* V0, const T* W0) {
  estimate_lipschitz();
  start(V0, W0);
  index_t it = 0;
  for (it = 1; it <= opt_.max_iter; ++it) {
    stop_.set_iteration(it - 1);
    const StepOutcome outcome = fista_step();
    if (outcome == StepOutcome::kDiverged) {
      result_.status = "diverged";
      break;
    }
    if (outcome == StepOutcome::kStopped) {  // iteration `it` abandoned: x is the iterate of it - 1
      result_.status = stop_.status();
      --it;
      break;
    }
    const bool is_check = (it % opt_.check_every == 0) || it == opt_.max_iter;
    if (is_check && check(it)) break;
    if (stop_.past_time_limit() || stop_.poll()) {
      result_.status = stop_.past_time_limit() ? "time_limit" : stop_.status();
      break;
    }
  }
  if (it > opt_.max_iter) it = opt_.max_iter;
  finish(it);
  stop_.rethrow();
  return std::move(result_);
}

template <class T>
void ReluSolver<T>::Run::predict(Point& pt) {
  for (index_t e = 0; e < m_; ++e) diffT_[e] = static_cast<T>(pt.V[e] - pt.W[e]);
  pt.z.resize(static_cast<std::size_t>(nc_));
  s_.op_.forward(diffT_.data(), s_.c_, pt.z.data());
  pt.loss = loss_value(s_.loss_, pt.z.data(), s_.y_.data(), s_.n_, s_.c_, mu_);
}

// G = A^T grad L(z) in double; also leaves grad L(z) in `grad_`. Returns L(z).
template <class T>
double ReluSolver<T>::Run::gradient(const Point& pt) {
  const double value = loss_value_grad(s_.loss_, pt.z.data(), s_.y_.data(), s_.n_, s_.c_, grad_.data(), mu_);
  for (std::size_t e = 0; e < grad_.size(); ++e) gradT_[e] = static_cast<T>(grad_[e]);
  s_.op_.adjoint(gradT_.data(), s_.c_, GT_.data());
  for (index_t e = 0; e < m_; ++e) G_[e] = static_cast<double>(GT_[e]);
  return value;
}

// Lipschitz estimate of z -> A(V - W): 2 lambda_max(A^T A), by power iteration (the shared one, in the variant
// this solver's step control was tuned with: ||A^T A u|| from a fixed ramp, norms summed in order).
template <class T>
void ReluSolver<T>::Run::estimate_lipschitz() {
  std::vector<T> u(static_cast<std::size_t>(m_));
  for (index_t e = 0; e < m_; ++e) u[e] = static_cast<T>(1.0 + 0.001 * static_cast<double>(e % 97));
  PowerIterationOptions how;
  how.gram_norm = true;
  how.in_order = true;
  const double lam =
      power_iteration_from<T>(
          std::move(u), nc_, kPowerIterations, [&](const T* v, T* z) { s_.op_.forward(v, s_.c_, z); },
          [&](const T* z, T* v) { s_.op_.adjoint(z, s_.c_, v); }, [] { return false; }, how)
          .norm_sq;
  const double smooth = hinge_ ? 1.0 / mu_ : loss_smoothness(s_.loss_);
  lipschitz_ = std::max(1e-300, 2.0 * lam * smooth);
  step_ = 1.0 / lipschitz_;
  max_step_ = std::min(kMaxStep, kMaxStepRatio / lipschitz_);
  times_.lap(kSetup);
}

template <class T>
void ReluSolver<T>::Run::start(const T* V0, const T* W0) {
  x_.V.assign(static_cast<std::size_t>(m_), 0.0);
  x_.W.assign(static_cast<std::size_t>(m_), 0.0);
  if (V0 != nullptr && W0 != nullptr) {
    // A warm start is made feasible by projecting every column onto its cone (threshold 0).
    std::vector<double> v0(V0, V0 + m_), w0(W0, W0 + m_);
    s_.prox_columns(v0, 0.0, opt_.cone_tol, kSlotV, x_.V);
    s_.prox_columns(w0, 0.0, opt_.cone_tol, kSlotW, x_.W);
  }
  predict(x_);
  y_pt_ = x_;
  result_.status = "max_iter";
  penalty_x_ = penalty_of(x_.V, x_.W, s_.p_ * s_.c_, s_.d_, s_.c_);
}

// One FISTA iteration: the prox-gradient step from y with backtracking, then the momentum update.
template <class T>
typename ReluSolver<T>::Run::StepOutcome ReluSolver<T>::Run::fista_step() {
  times_.lap(kOther);
  const double fy = gradient(y_pt_);
  // Absolute rounding scale of L(z) ~ sum_k |grad_k| |z_k|: the loss is often tiny next to the predictions
  // (a near-interpolating fit), so a slack relative to the loss alone is below its rounding.
  double loss_rounding = 0.0;
  for (std::size_t e = 0; e < grad_.size(); ++e)
    loss_rounding += std::abs(grad_[e]) * std::abs(static_cast<double>(y_pt_.z[e]));
  times_.lap(kGradient);
  xv_.resize(static_cast<std::size_t>(m_));
  xw_.resize(static_cast<std::size_t>(m_));
  double penalty_new = 0.0;
  bool backtracked = false;
  for (int backtracks = 0;; ++backtracks) {
    for (index_t e = 0; e < m_; ++e) {
      xv_[e] = y_pt_.V[e] - step_ * G_[e];
      xw_[e] = y_pt_.W[e] + step_ * G_[e];
    }
    penalty_new = s_.prox_columns(xv_, step_ * beta_, opt_.cone_tol, kSlotV, x_new_.V, &stop_);
    if (!stop_.stopped()) penalty_new += s_.prox_columns(xw_, step_ * beta_, opt_.cone_tol, kSlotW, x_new_.W, &stop_);
    times_.lap(kProx);
    if (stop_.stopped()) return StepOutcome::kStopped;
    predict(x_new_);
    times_.lap(kForward);
    double lin = 0.0, quad = 0.0;
    for (index_t e = 0; e < m_; ++e) {
      const double dv = x_new_.V[e] - y_pt_.V[e], dw = x_new_.W[e] - y_pt_.W[e];
      lin += G_[e] * (dv - dw);
      quad += dv * dv + dw * dw;
    }
    const double bound = fy + lin + quad / (2.0 * step_);
    if (!std::isfinite(x_new_.loss)) {
      step_ *= kBacktrack;
      backtracked = true;
      if (step_ < 1e-300 || backtracks >= kMaxBacktracks) break;
      continue;
    }
    if (x_new_.loss <= bound + decrease_slack<T>() * (std::abs(bound) + loss_rounding)) break;
    // A step this far below 1/L is never needed (1/L satisfies the bound exactly): only rounding is left,
    // so accept the (feasible) prox point instead of halving forever.
    if (step_ < kMinStepRatio / lipschitz_ || backtracks >= kMaxBacktracks) break;
    step_ *= kBacktrack;
    backtracked = true;
  }
  if (!std::isfinite(x_new_.loss)) return StepOutcome::kDiverged;
  extrapolate();
  x_ = x_new_;
  penalty_x_ = penalty_new;
  y_pt_ = std::move(y_next_);
  if (!backtracked) step_ = std::min(step_ * kStepGrowth, max_step_);
  return StepOutcome::kAccepted;
}

// The next extrapolation point y_next_ from x_ (previous iterate) and x_new_, with the adaptive restart
// (O'Donoghue & Candes): momentum is dropped when it points uphill.
template <class T>
void ReluSolver<T>::Run::extrapolate() {
  if (FistaMomentum::opposes_pair(m_, y_pt_.V.data(), x_new_.V.data(), x_.V.data(), y_pt_.W.data(),
                                  x_new_.W.data(), x_.W.data())) {
    momentum_.reset();
    y_next_ = x_new_;
    return;
  }
  const double beta_k = momentum_.advance(false);
  y_next_.V.resize(static_cast<std::size_t>(m_));
  y_next_.W.resize(static_cast<std::size_t>(m_));
  for (index_t e = 0; e < m_; ++e) {
    y_next_.V[e] = x_new_.V[e] + beta_k * (x_new_.V[e] - x_.V[e]);
    y_next_.W[e] = x_new_.W[e] + beta_k * (x_new_.W[e] - x_.W[e]);
  }
  // The extrapolated point may leave the cones; that is fine for FISTA (the prox restores feasibility).
  // In double its prediction is the same combination of the two fresh ones (the operator is linear): one
  // forward product less per iteration, and no drift since both are recomputed every iteration. In float32
  // the combination's rounding (~1e-7) would make L(y) disagree with the forward products that the
  // backtracking test compares it with, so y is predicted afresh there.
  if constexpr (std::is_same_v<T, double>) {
    y_next_.z.resize(x_new_.z.size());
    for (std::size_t e = 0; e < x_new_.z.size(); ++e) y_next_.z[e] = x_new_.z[e] + beta_k * (x_new_.z[e] - x_.z[e]);
    y_next_.loss = loss_value(s_.loss_, y_next_.z.data(), s_.y_.data(), s_.n_, s_.c_, mu_);
  } else {
    times_.lap(kOther);
    predict(y_next_);
    times_.lap(kForward);
  }
}

template class ReluSolver<float>::Run;
template class ReluSolver<double>::Run;

}  // namespace convexnn
