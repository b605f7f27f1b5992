// The outer loop of the gated solver: working sets (celer), the inner solver on each, global certificates,
// hinge continuation and Newton phases between rounds, stop rules, and the certified result.
#include <algorithm>
#include <cmath>

#include "convexnn/core/vec_ops.hpp"
#include "convexnn/solvers/gated/run.hpp"

namespace convexnn::gated {

template <class T>
void Run<T>::call_back() {
  cadence_.called(iter_, elapsed());
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

// Stop conditions checked after every iteration; sets status_ and returns true to stop.
template <class T>
bool Run<T>::should_stop() {
  if (!status_.empty()) return true;
  if (iter_ >= opt_.max_iter)
    status_ = "max_iter";
  else if (clock_.out_of_time())
    status_ = "time_limit";
  else if (opt_.callback && cadence_.due_at_iteration(iter_))
    call_back();
  return !status_.empty();
}

// Stop conditions inside loops that advance no iteration (the hinge polish): the time limit, and the callback
// once kCallbackPollSeconds have passed since the last one.
template <class T>
bool Run<T>::poll() {
  if (!status_.empty()) return true;
  const double now = elapsed();
  if (now >= clock_.limit())
    status_ = "time_limit";
  else if (opt_.callback && cadence_.due_by_time(now))
    call_back();
  return !status_.empty();
}

template <class T>
void Run<T>::check_options() const {
  CONVEXNN_CHECK(std::isfinite(beta_) && beta_ >= 0, "beta must be a finite number >= 0, got " << beta_);
  CONVEXNN_CHECK(opt_.tol >= 0, "tol must be >= 0, got " << opt_.tol);
  CONVEXNN_CHECK(opt_.max_iter >= 0, "max_iter must be >= 0, got " << opt_.max_iter);
  CONVEXNN_CHECK(!(opt_.time_limit < 0), "time_limit must be >= 0, got " << opt_.time_limit);
  CONVEXNN_CHECK(opt_.extrapolation >= 0 && opt_.extrapolation <= 64,
                 "extrapolation must be in [0, 64], got " << opt_.extrapolation);
  CONVEXNN_CHECK(opt_.solver == "auto" || opt_.solver == "bcd" || opt_.solver == "fista",
                 "solver must be 'auto', 'bcd' or 'fista', got '" << opt_.solver << "'");
}

// Rounds over working sets until a stop rule or the global gap ends the solve.
template <class T>
void Run<T>::outer_loop() {
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
}

// The returned point is always certified: check the final iterate if it has not been.
template <class T>
void Run<T>::finish() {
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
}

template <class T>
GatedResult<T> Run<T>::result() {
  GatedResult<T> res;
  if (best_U_.empty()) best_U_ = U_;
  res.U = std::move(best_U_);
  res.objective = best_primal_;
  res.dual_objective = best_dual_;
  res.gap = best_gap();
  res.n_iter = iter_;
  res.status = status_;
  res.solver = solver_;
  res.history = std::move(history_);
  index_t act = 0;
  for (index_t i = 0; i < p_; ++i) act += block_is_zero(res.U.data() + i * bs_) ? 0 : 1;
  res.n_active = act;
  res.timings = times_.snapshot();
  res.time = elapsed();
  res.timings["total"] = res.time;
  return res;
}

template <class T>
GatedResult<T> Run<T>::run(const T* warm_start) {
  clock_.start(opt_.time_limit);
  times_.restart();
  check_options();
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
  outer_loop();
  finish();
  return result();
}

#define CONVEXNN_GATED_RUN(T)                         \
  template void Run<T>::call_back();                  \
  template bool Run<T>::should_stop();                \
  template bool Run<T>::poll();                       \
  template void Run<T>::check_options() const;        \
  template void Run<T>::outer_loop();                 \
  template void Run<T>::finish();                     \
  template GatedResult<T> Run<T>::result();           \
  template GatedResult<T> Run<T>::run(const T*);
CONVEXNN_GATED_RUN(float)
CONVEXNN_GATED_RUN(double)
#undef CONVEXNN_GATED_RUN

}  // namespace convexnn::gated
