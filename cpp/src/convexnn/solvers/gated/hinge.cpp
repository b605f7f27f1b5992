// The hinge continuation of the gated solver. The hinge is solved through its Moreau envelope (smoothing mu,
// continuation.hpp); after each smoothed solve the exact optimum is sought by two polish steps that use the
// margin structure of the hinge: a least-squares fit of the dual on the margin (hinge_polish) and an
// active-set Newton solve of the KKT equations (hinge_newton_polish). Both only offer candidates: a primal is
// kept only if it lowers the true objective, a dual is made feasible first, so a wrong guess costs time only.
#include <algorithm>
#include <cmath>

#include "convexnn/core/blas.hpp"
#include "convexnn/core/vec_ops.hpp"
#include "convexnn/solvers/gated/run.hpp"

namespace convexnn::gated {
namespace {

// CGLS on min ||B x - r|| (x of length nm, r of length nr, both double), at most max_it iterations; r is
// overwritten by the residual. applyB(x, out) and applyBt(r, out) are the products; stop() is asked after
// each iteration.
template <class ApplyB, class ApplyBt, class Stop>
std::vector<double> cgls(index_t nm, index_t nr, std::vector<double>& r, index_t max_it, ApplyB&& applyB,
                         ApplyBt&& applyBt, Stop&& stop) {
  std::vector<double> x(static_cast<std::size_t>(nm), 0.0), sv, p, q;
  applyBt(r, sv);
  p = sv;
  double gamma = vec::sqnorm(nm, sv.data());
  const double gamma0 = gamma;
  for (index_t it = 0; it < max_it && gamma > 1e-28 * gamma0 && gamma > 0; ++it) {
    applyB(p, q);
    const double qq = vec::sqnorm(nr, q.data());
    if (!(qq > 0)) break;
    const double alpha = gamma / qq;
    for (index_t j = 0; j < nm; ++j) x[j] += alpha * p[j];
    for (index_t j = 0; j < nr; ++j) r[j] -= alpha * q[j];
    applyBt(r, sv);
    const double gnew = vec::sqnorm(nm, sv.data());
    for (index_t j = 0; j < nm; ++j) p[j] = sv[j] + (gnew / gamma) * p[j];
    gamma = gnew;
    if (stop()) break;
  }
  return x;
}

// The hinge KKT system on (U_act, a_M): residuals F1 = beta u/|u| - C a - g_L per block (ma blocks of d
// entries, nu = ma d), F2 = C^T u - 1, and its symmetric Jacobian K (N x N, N = nu + nm) with blocks
// H_i = beta (I - u u^T / |u|^2) / |u| and C. Returns ||F||^2, or -1 if a block collapsed to zero.
double hinge_kkt_system(index_t ma, index_t d, index_t nm, double beta, const std::vector<double>& C,
                        const std::vector<double>& gl, const std::vector<double>& u, const std::vector<double>& a,
                        std::vector<double>& K, std::vector<double>& F) {
  const index_t nu = ma * d, N = nu + nm;
  std::fill(K.begin(), K.end(), 0.0);
  double fnorm = 0.0;
  for (index_t i = 0; i < ma; ++i) {
    const double* ui = u.data() + i * d;
    double nrm = 0.0;
    for (index_t r = 0; r < d; ++r) nrm += ui[r] * ui[r];
    nrm = std::sqrt(nrm);
    if (!(nrm > 0)) return -1.0;
    for (index_t r = 0; r < d; ++r) {
      double f = beta * ui[r] / nrm - gl[i * d + r];
      for (index_t j = 0; j < nm; ++j) f -= C[(i * d + r) * nm + j] * a[j];
      F[i * d + r] = f;
      fnorm += f * f;
      for (index_t q = 0; q < d; ++q)
        K[(i * d + r) * N + i * d + q] = beta / nrm * ((r == q ? 1.0 : 0.0) - ui[r] * ui[q] / (nrm * nrm));
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
  return fnorm;
}

// step = -K^+ F through the eigendecomposition of the symmetric indefinite K (overwritten by its
// eigenvectors); eigenvalues below 1e-12 of the largest are dropped. False if LAPACK fails.
bool pseudo_inverse_step(index_t N, std::vector<double>& K, const std::vector<double>& F, std::vector<double>& w,
                         std::vector<double>& step) {
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
  return true;
}

}  // namespace

// Hinge dual polishing. The smoothed gradient pins the dual of the samples with margin y z < 1 (a = 1) and
// y z > 1 (a = 0), but the dual of the samples ON the margin (y z = 1 at the optimum) is only resolved at the
// scale of mu. Here those a_k in [0, 1] are fitted by least squares (CGLS, operator calls on the support) to
// the KKT equations of the active blocks, A_i^T theta = beta U_i / ||U_i|| (theta = y * a), then clipped to
// the box; offer_dual() makes the candidate feasible, so the bound is valid whatever the fit. With sample
// weights the dual of sample k is y_k a_k with a_k in [0, w_k] (the box of the weighted conjugate); samples of
// weight 0 have a = 0 and stay off the margin set.
template <class T>
void Run<T>::hinge_polish() {
  if (loss_ != Loss::hinge || last_zd_.empty() || beta_ <= 0) return;
  const std::vector<index_t> act = support();
  if (act.empty()) return;
  const index_t m = static_cast<index_t>(act.size());
  const double band = std::max(2.0 * mu_, 1e-12);
  std::vector<index_t> M;
  std::vector<double> a(static_cast<std::size_t>(n_));
  for (index_t k = 0; k < n_; ++k) {
    const double gap_k = 1.0 - y_[k] * last_zd_[k];
    if (std::abs(gap_k) <= band && weight(k) > 0) M.push_back(k);
    a[k] = mu_ > 0 ? std::clamp(gap_k / mu_, 0.0, 1.0) : (gap_k > 0 ? 1.0 : 0.0);
    if (w_) a[k] *= w_[k];
  }
  if (M.empty()) return;
  // B x = A_act^T (y * x on M);  B^T r = y * (A_act r) on M.
  std::vector<T> v(static_cast<std::size_t>(n_)), G(static_cast<std::size_t>(m * d_)), zt(static_cast<std::size_t>(n_));
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
  const std::vector<double> x = cgls(nm, m * d_, r, std::min<index_t>(nm, 200), applyB, applyBt,
                                     [&] { return poll(); });
  std::vector<double> theta(static_cast<std::size_t>(n_));
  for (index_t k = 0; k < n_; ++k) theta[k] = y_[k] * a[k];
  for (index_t j = 0; j < nm; ++j) theta[M[j]] = y_[M[j]] * std::clamp(a[M[j]] + x[j], 0.0, weight(M[j]));
  offer_dual(theta);
}

// Hinge active-set Newton polish. At a hinge optimum the samples split into L (y z < 1, a = 1), R (y z > 1,
// a = 0) and the margin set M (y z = 1, a in [0, 1]); on the active blocks the optimality conditions are
//   beta U_i / ||U_i|| = A_i^T (y * a)   (a = 1 on L, free on M, 0 on R)   and   y_k (A U)_k = 1 on M,
// smooth equations in (U_act, a_M). Guessing L, M, R from the smoothed solution, a few Newton steps on them
// (dense symmetric KKT system, pseudo-inverse) give the exact optimum when the guess is right: the primal is
// accepted only if it lowers the true objective, and the dual candidate y * clip(a) is made feasible by
// offer_dual(), so a wrong guess costs time, never validity. Only for small systems (kPolishMaxDim unknowns).
// With sample weights a_k lives in [0, w_k] (a = w on L), the equations are unchanged.
// Returns true if U was replaced.
template <class T>
bool Run<T>::hinge_newton_polish(double band) {
  constexpr index_t kPolishMaxDim = 800;
  if (loss_ != Loss::hinge || last_zd_.empty() || beta_ <= 0 || c_ != 1) return false;
  const std::vector<index_t> act = support();
  const index_t ma = static_cast<index_t>(act.size()), nu = ma * d_;
  if (ma == 0) return false;
  std::vector<index_t> M;
  std::vector<double> aL(static_cast<std::size_t>(n_), 0.0);
  for (index_t k = 0; k < n_; ++k) {
    const double slack = 1.0 - y_[k] * last_zd_[k];
    if (std::abs(slack) <= band && weight(k) > 0)
      M.push_back(k);
    else if (slack > 0)
      aL[k] = weight(k);
  }
  const index_t nm = static_cast<index_t>(M.size());
  const index_t N = nu + nm;
  if (nm == 0 || N > kPolishMaxDim) return false;
  // C (nu x nm): column j = A_act^T (y_k e_k), k = M[j]; one adjoint call with nm right-hand sides.
  std::vector<T> R(static_cast<std::size_t>(n_ * nm), T(0)), G(static_cast<std::size_t>(nu * nm));
  for (index_t j = 0; j < nm; ++j) R[M[j] * nm + j] = static_cast<T>(y_[M[j]]);
  {
    PhaseTimes::Scope timed(times_, kAdjoint);
    op_.adjoint(R.data(), nm, G.data(), BlockSubset::of(act));
  }
  const std::vector<double> C(G.begin(), G.end());  // row (i*d + r), column j
  std::vector<T> v(static_cast<std::size_t>(n_)), glt(static_cast<std::size_t>(nu));
  for (index_t k = 0; k < n_; ++k) v[k] = static_cast<T>(y_[k] * aL[k]);
  adjoint(v.data(), glt.data(), &act);
  const std::vector<double> gl(glt.begin(), glt.end());
  std::vector<double> u(static_cast<std::size_t>(nu)), a(static_cast<std::size_t>(nm));
  for (index_t i = 0; i < ma; ++i)
    for (index_t r = 0; r < d_; ++r) u[i * d_ + r] = static_cast<double>(U_[act[i] * bs_ + r]);
  for (index_t j = 0; j < nm; ++j) {
    const double slack = 1.0 - y_[M[j]] * last_zd_[M[j]];
    a[j] = (mu_ > 0 ? std::clamp(slack / mu_, 0.0, 1.0) : 0.5) * weight(M[j]);
  }
  std::vector<double> K(static_cast<std::size_t>(N * N)), F(static_cast<std::size_t>(N)), w(static_cast<std::size_t>(N)),
      step(static_cast<std::size_t>(N));
  for (int it = 0; it < 20; ++it) {
    // Each iteration is an O(N^3) eigendecomposition (N <= kPolishMaxDim; seconds on a loaded machine): not
    // started when its predicted time would overrun the time limit.
    const double n3 = static_cast<double>(N) * static_cast<double>(N) * static_cast<double>(N);
    if (poll() || elapsed() + polish_seconds_per_n3_ * n3 > clock_.limit()) return false;
    const double t_start = elapsed();
    const double fnorm = hinge_kkt_system(ma, d_, nm, beta_, C, gl, u, a, K, F);
    if (fnorm < 0) return false;  // a block collapsed: the guess was wrong
    if (std::sqrt(fnorm) <= 1e-13 * (1.0 + beta_)) break;
    // K [du; db] = -F with da = -db.
    if (!pseudo_inverse_step(N, K, F, w, step)) return false;
    const double rate = (elapsed() - t_start) / n3;
    polish_seconds_per_n3_ = polish_rate_measured_ ? std::max(polish_seconds_per_n3_, rate) : rate;
    polish_rate_measured_ = true;
    for (index_t q = 0; q < nu; ++q) u[q] += step[q];
    for (index_t j = 0; j < nm; ++j) a[j] -= step[nu + j];
  }
  // Dual candidate (valid whatever happened above).
  std::vector<double> theta(static_cast<std::size_t>(n_));
  for (index_t k = 0; k < n_; ++k) theta[k] = y_[k] * aL[k];
  for (index_t j = 0; j < nm; ++j) theta[M[j]] = y_[M[j]] * std::clamp(a[j], 0.0, weight(M[j]));
  // Primal candidate: accepted only if it lowers the true objective.
  bool replaced = false;
  if (vec::all_finite(nu, u.data())) {
    std::vector<T> keep = U_;
    for (index_t i = 0; i < ma; ++i)
      for (index_t r = 0; r < d_; ++r) U_[act[i] * bs_ + r] = static_cast<T>(u[i * d_ + r]);
    std::vector<T> zc(static_cast<std::size_t>(nc_));
    forward(U_.data(), zc.data(), nullptr);
    const double pc = loss_value(loss_, zc.data(), y_.data(), n_, c_, 0.0, w_) + beta_ * penalty(U_.data(), p_);
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
template <class T>
bool Run<T>::maybe_shrink_mu() {
  if (mu_ <= 0) return false;
  if (!kHinge.should_shrink(last_smooth_gap_, last_gap_)) return false;
  PhaseTimes::Scope timed(times_, kHingePolish);
  // The margin set is guessed from |1 - y z| <= band; the right band depends on how well the current point is
  // solved, so try a few (each guess costs one small dense solve; a wrong one is simply not accepted).
  bool replaced = false;
  for (double band : {2.0 * mu_, 10.0 * mu_, 1e-4, 1e-3, 1e-2}) {
    if (band < 1e-10 || (band > 2.0 * mu_ && band < 10.0 * mu_)) continue;
    if (poll()) return replaced;
    replaced = hinge_newton_polish(band) || replaced;
    if (last_gap_ <= opt_.tol) break;
  }
  if (!replaced && !poll()) hinge_polish();
  if (!status_.empty()) return replaced;
  if (last_gap_ <= opt_.tol) {
    status_ = "converged";
    return false;
  }
  if (mu_ <= kHinge.mu_min) return replaced;
  mu_ = kHinge.next(mu_);
  return true;
}

#define CONVEXNN_GATED_HINGE(T)                     \
  template void Run<T>::hinge_polish();             \
  template bool Run<T>::hinge_newton_polish(double); \
  template bool Run<T>::maybe_shrink_mu();
CONVEXNN_GATED_HINGE(float)
CONVEXNN_GATED_HINGE(double)
#undef CONVEXNN_GATED_HINGE

}  // namespace convexnn::gated
