// The inner solvers of the gated solver on one working set W -- block coordinate descent in the eigenbasis of
// each block (with Anderson acceleration) and FISTA with backtracking and adaptive restart -- and the caches
// they need: block eigenbases and the ||A||^2 estimate.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "convexnn/core/blas.hpp"
#include "convexnn/core/fista_momentum.hpp"
#include "convexnn/core/power_iteration.hpp"
#include "convexnn/core/vec_ops.hpp"
#include "convexnn/solvers/gated/run.hpp"

namespace convexnn::gated {
namespace {

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

}  // namespace

// ---- block metric cache ----
template <class T>
void Run<T>::ensure_cache(const std::vector<index_t>& W) {
  std::vector<index_t> missing;
  for (index_t i : W)
    if (!cache_.have[i]) missing.push_back(i);
  if (missing.empty()) return;
  PhaseTimes::Scope timed(times_, kGram);
  const index_t dd = d_ * d_;
  const double block_bytes = static_cast<double>(dd + d_) * sizeof(double);
  const index_t batch = 64;
  std::vector<T> gram_t(static_cast<std::size_t>(batch * dd));
  std::vector<double> gram(static_cast<std::size_t>(batch * dd)), w(static_cast<std::size_t>(batch * d_));
  for (std::size_t b0 = 0; b0 < missing.size(); b0 += batch) {
    if (b0 > 0 && poll()) return;  // the caller's loop stops on status_; blocks not analysed keep have = 0
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
      CONVEXNN_CHECK(info[k] == 0, "eigendecomposition of block Gram " << i << " failed (LAPACK info " << info[k] << ")");
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

// ||A||^2 for FISTA's first step. Each power step is a full forward + adjoint (seconds at n = 1e5, P = 2000):
// the time limit is honoured, and a truncated estimate (a lower bound, which backtracking corrects) is not cached.
template <class T>
double Run<T>::op_norm_sq() {
  if (cache_.op_norm_sq >= 0) return cache_.op_norm_sq;
  const PowerIterationResult est = power_iteration_norm_sq<T>(
      p_ * bs_, nc_, kPowerIterations, [&](const T* v, T* z) { forward(v, z, nullptr); },
      [&](const T* z, T* v) { adjoint(z, v, nullptr); }, [&] { return clock_.out_of_time(); });
  if (est.complete) cache_.op_norm_sq = est.norm_sq;
  return est.norm_sq;
}

// z += dz, and update the gradient where the predictions changed.
template <class T>
void Run<T>::apply_prediction_change(const T* dz) {
  if (loss_ == Loss::squared && !w_) {
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
    if (changed)
      loss_value_grad(loss_, z_.data() + r * c_, y_.data() + r * c_, 1, c_, g_.data() + r * c_, mu_,
                      w_ ? w_ + r : nullptr);
  });
}

// ---- working sets (celer): the support plus the blocks of largest dual score, at least doubling ----
template <class T>
std::vector<index_t> Run<T>::build_working_set() {
  PhaseTimes::Scope timed(times_, kWorkingSet);
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

// Inner check, shared by both inner solvers. Returns true when this round is done.
template <class T>
bool Run<T>::inner_check(const std::vector<index_t>& W, double tol_in, bool global, double& best_ws_dual,
                         bool& mu_changed) {
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
  return gap <= tol_in || ws_at_precision_floor(gap);
}

// One BCD step on block i (gbuf: d x c scratch, dz: n x c scratch, work: eigen-space scratch).
template <class T>
void Run<T>::bcd_block_step(index_t i, std::vector<T>& gbuf, std::vector<T>& dz, std::vector<double>& work) {
  const std::vector<index_t> one{i};
  adjoint(g_.data(), gbuf.data(), &one);
  PhaseTimes::Scope timed(times_, kProx);
  T* u = block(i);
  const double s = smooth();
  const double lmax = cache_.lam_max[i];
  work.resize(static_cast<std::size_t>(4 * bs_));
  double* unew = work.data();  // new block (original coordinates)
  if (!(lmax > 0)) {           // D_i X = 0: the block cannot change the loss; the penalty wants 0
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
    double* vt = work.data() + 3 * bs_;
    // Flat directions (h <= h_floor) do not move the loss; metric_group_solve zeroes them, as the penalty wants.
    const bool nonzero_new = metric_group_solve(bt, h, d_, c_, groups_, s, beta_, 1e-12 * lmax, vt);
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
    block_soft_threshold(unew, d_, c_, groups_, beta_ / L);
  }
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

// Anderson acceleration of BCD: snapshot (U_W, z); every K epochs, move to the extrapolated point if it has a
// lower (smoothed) objective. Returns true if it moved.
template <class T>
bool Run<T>::anderson_step(const std::vector<index_t>& W, SnapshotRing<T>& ring, std::vector<T>& snap, index_t epochs) {
  const index_t m = static_cast<index_t>(W.size());
  const int K = opt_.extrapolation;
  for (index_t k = 0; k < m; ++k) std::copy(U_.data() + W[k] * bs_, U_.data() + (W[k] + 1) * bs_, snap.data() + k * bs_);
  std::copy(z_.begin(), z_.end(), snap.data() + m * bs_);
  ring.push(snap.data());
  std::vector<double> cw;
  if (!(ring.full() && epochs % K == 0 && extrapolation_weights(ring, m * bs_, cw))) return false;
  std::vector<T> Uacc(static_cast<std::size_t>(m * bs_)), zacc(static_cast<std::size_t>(nc_));
  combine_snapshots(ring, cw, 0, m * bs_, Uacc.data());
  combine_snapshots(ring, cw, m * bs_, nc_, zacc.data());
  const double f_cur = loss_value(loss_, z_.data(), y_.data(), n_, c_, mu_, w_) + beta_ * penalty(snap.data(), m);
  const double f_acc = loss_value(loss_, zacc.data(), y_.data(), n_, c_, mu_, w_) + beta_ * penalty(Uacc.data(), m);
  if (!(f_acc < f_cur)) return false;
  scatter(W, Uacc);
  z_ = zacc;
  refresh_grad();
  return true;
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
  ws_floor_ref_ = kInf;
  ws_floor_stalled_ = 0;
  index_t epochs = 0;
  while (true) {
    if (should_stop()) return false;
    for (index_t i : W) bcd_block_step(i, gbuf, dz, work);
    ++iter_;
    ++epochs;
    last_check_current_ = false;
    zhist_.push(z_.data());
    if (use_anderson) anderson_step(W, ring, snap, epochs);
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

namespace {

// One backtracking proximal-gradient step of FISTA from yv (predictions zy, gradient G on W): xn, zn and the
// accepted step constant L (from 0.9 L_prev, doubling). Sufficient decrease is tested in the cancellation-free
// form s ||A dx||^2 <= L ||dx||^2: it implies L(z_n) <= L(z_y) + <grad, dx> + L/2 ||dx||^2 (s = smoothness of
// the loss), is exact for the squared loss, and unlike the function-value test it is not fooled by roundoff
// (float32) once steps are tiny.
template <class T, class Prox, class Forward>
double fista_backtrack(index_t len, index_t nc, double L_prev, double s, const std::vector<T>& yv,
                       const std::vector<T>& G, const std::vector<T>& zy, std::vector<T>& xn, std::vector<T>& zn,
                       Prox&& prox, Forward&& forward) {
  double L = std::max(L_prev * 0.9, 1e-300);  // let the step grow back every iteration
  for (int bt = 0; bt < 60; ++bt) {
    for (index_t j = 0; j < len; ++j) xn[j] = static_cast<T>(static_cast<double>(yv[j]) - static_cast<double>(G[j]) / L);
    prox(L);
    forward();
    const double dz2 = vec::chunked_sum(nc, [&](index_t k) {
      const double e = static_cast<double>(zn[k]) - static_cast<double>(zy[k]);
      return e * e;
    });
    const double dx2 = vec::chunked_sum(len, [&](index_t j) {
      const double e = static_cast<double>(xn[j]) - static_cast<double>(yv[j]);
      return e * e;
    });
    if (s * dz2 <= L * dx2 * (1.0 + 1e-12) || dx2 == 0.0) break;
    L *= 2.0;
  }
  return L;
}

}  // namespace

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
  FistaMomentum momentum;
  double best_ws_dual = -kInf;
  ws_floor_ref_ = kInf;
  ws_floor_stalled_ = 0;
  index_t local = 0;
  auto prox = [&](double L) {
    PhaseTimes::Scope timed(times_, kProx);
    for (index_t k = 0; k < m; ++k) block_soft_threshold(xn.data() + k * bs_, d_, c_, groups_, beta_ / L);
  };
  while (true) {
    if (should_stop()) break;
    loss_value_grad(loss_, zy.data(), y_.data(), n_, c_, gy.data(), mu_, w_);
    adjoint(gy.data(), G.data(), &W);
    fista_L_ = fista_backtrack(len, nc_, fista_L_, smooth(), yv, G, zy, xn, zn, prox,
                               [&] { forward(xn.data(), zn.data(), &W); });
    const double mom = momentum.advance(FistaMomentum::opposes(len, yv.data(), xn.data(), x.data()));
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
    if (local % std::max<index_t>(1, opt_.check_every) != 0) continue;
    scatter(W, x);
    z_ = zx;
    const double mu_before = mu_;
    bool mu_changed = false;
    if (inner_check(W, tol_in, global, best_ws_dual, mu_changed)) break;
    if (mu_changed) {  // new smoothing and/or a polished U: restart from U_
      if (mu_ != mu_before && mu_ > 0) fista_L_ *= mu_before / mu_;
      momentum.reset();
      gather(W, x);
      xprev = x;
      yv = x;
      zx = z_;
      zprev = zx;
      zy = zx;
      best_ws_dual = -kInf;
    }
  }
  scatter(W, x);
  z_ = zx;
  return status_.empty() || status_ == "converged";
}

#define CONVEXNN_GATED_ROUNDS(T)                                                                                 \
  template void Run<T>::ensure_cache(const std::vector<index_t>&);                                               \
  template double Run<T>::op_norm_sq();                                                                          \
  template void Run<T>::apply_prediction_change(const T*);                                                       \
  template std::vector<index_t> Run<T>::build_working_set();                                                     \
  template bool Run<T>::inner_check(const std::vector<index_t>&, double, bool, double&, bool&);                  \
  template void Run<T>::bcd_block_step(index_t, std::vector<T>&, std::vector<T>&, std::vector<double>&);         \
  template bool Run<T>::anderson_step(const std::vector<index_t>&, SnapshotRing<T>&, std::vector<T>&, index_t); \
  template bool Run<T>::bcd_round(const std::vector<index_t>&, double, bool);                                    \
  template bool Run<T>::fista_round(const std::vector<index_t>&, double, bool);
CONVEXNN_GATED_ROUNDS(float)
CONVEXNN_GATED_ROUNDS(double)
#undef CONVEXNN_GATED_ROUNDS

}  // namespace convexnn::gated
