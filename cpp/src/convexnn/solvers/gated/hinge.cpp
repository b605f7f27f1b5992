// The hinge continuation of the gated solver. The hinge is solved through its Moreau envelope (smoothing mu,
// continuation.hpp); after each smoothed solve the exact optimum is sought by two polish steps that use the
// margin structure of the hinge: a least-squares fit of the dual on the margin (hinge_polish) and an
// active-set Newton solve of the KKT equations (hinge_newton_polish). Both only offer candidates: a primal is
// kept only if it lowers the true objective, a dual is made feasible first, so a wrong guess costs time only.
#include <algorithm>
#include <cmath>
#include <limits>

#include "convexnn/core/blas.hpp"
#include "convexnn/core/vec_ops.hpp"
#include "convexnn/solvers/gated/dense_solve.hpp"
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

// Newton on the hinge KKT equations of one partition (margin set M, dual aL of the other samples, see
// hinge_newton_polish) for the active blocks `act`, from (u, a): at most kSteps steps, each a MINRES solve of the
// dense symmetric KKT system by pseudo-inverse (polled: a stop or the time limit abandons it). Returns 1 when the equations are
// solved, 0 when the steps ran out (an inconsistent guess: (u, a) is the last least-squares point), -1 when it
// was abandoned or a block collapsed to zero.
template <class T>
int Run<T>::hinge_kkt_newton(const std::vector<index_t>& act, const std::vector<index_t>& M,
                             const std::vector<double>& aL, std::vector<double>& u, std::vector<double>& a) {
  constexpr int kSteps = 20;
  const index_t ma = static_cast<index_t>(act.size()), nu = ma * d_, nm = static_cast<index_t>(M.size());
  const index_t N = nu + nm;
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
  std::vector<double> K(static_cast<std::size_t>(N * N)), F(static_cast<std::size_t>(N)),
      step(static_cast<std::size_t>(N));
  double fnorm = hinge_kkt_system(ma, d_, nm, beta_, C, gl, u, a, K, F);
  std::vector<double> ut(u.size()), at(a.size()), Kt(K.size()), Ft(F.size());
  for (int it = 0; it < kSteps; ++it) {
    if (poll()) return -1;
    if (fnorm < 0) return -1;  // a block collapsed: the guess was wrong
    if (std::sqrt(fnorm) <= 1e-13 * (1.0 + beta_)) return 1;
    // K [du; db] = -F with da = -db; the full step first, halved while it does not reduce ||F|| (a full Newton
    // step from a rough guess can overshoot into a collapsed block or away from the solution).
    if (!polish_affordable(N)) return -1;  // over the polish budget (run.hpp)
    polish_flops_ += 9.0 * static_cast<double>(N) * static_cast<double>(N) * static_cast<double>(N);
    if (!gated::pseudo_inverse_step(N, std::move(K), F, step, [&] { return poll(); })) return -1;
    K.assign(static_cast<std::size_t>(N * N), 0.0);
    bool accepted = false;
    for (double t = 1.0; t >= 1.0 / 64; t *= 0.5) {
      for (index_t q = 0; q < nu; ++q) ut[q] = u[q] + t * step[q];
      for (index_t j = 0; j < nm; ++j) at[j] = a[j] - t * step[nu + j];
      const double ft = hinge_kkt_system(ma, d_, nm, beta_, C, gl, ut, at, Kt, Ft);
      if (ft >= 0 && ft < fnorm) {
        u.swap(ut);
        a.swap(at);
        K.swap(Kt);
        F.swap(Ft);
        fnorm = ft;
        accepted = true;
        break;
      }
    }
    if (!accepted) return 0;  // a least-squares point of an inconsistent guess
  }
  return 0;
}

// Hinge active-set Newton polish. At a hinge optimum the samples split into L (y z < 1, a = 1), R (y z > 1,
// a = 0) and the margin set M (y z = 1, a in [0, 1]); on the active blocks the optimality conditions are
//   beta U_i / ||U_i|| = A_i^T (y * a)   (a = 1 on L, free on M, 0 on R)   and   y_k (A U)_k = 1 on M,
// smooth equations in (U_act, a_M). The partition is guessed from the smoothed solution (|1 - y z| <= band: M)
// and refined as an active set: after Newton on it (hinge_kkt_newton), a margin sample whose a left [0, 1] moves
// to L or R, and a sample of L or R that crossed the margin moves to M, until no sample moves (then the point
// satisfies every KKT condition on the active blocks). A primal is accepted only if it lowers the true
// objective, and each dual candidate y * clip(a) is made feasible by offer_dual(), so a wrong guess costs time,
// never validity. Only for small systems (kPolishMaxDim unknowns). With sample weights a_k lives in [0, w_k]
// (a = w on L), the equations are unchanged. Returns true if U was replaced.
template <class T>
bool Run<T>::hinge_newton_polish(double band) {
  constexpr index_t kPolishMaxDim = 800;
  constexpr int kActiveSetRounds = 8;
  constexpr double kMoveTol = 1e-9;  // slack / dual excursion that moves a sample between L, M and R
  if (loss_ != Loss::hinge || last_zd_.empty() || beta_ <= 0 || c_ != 1) return false;
  const std::vector<index_t> act = support();
  const index_t ma = static_cast<index_t>(act.size()), nu = ma * d_;
  if (ma == 0) return false;
  enum Side : char { kR = 0, kM = 1, kL = 2 };
  std::vector<char> side(static_cast<std::size_t>(n_), kR);
  std::vector<double> dual(static_cast<std::size_t>(n_), 0.0);  // a_k, in [0, w_k] at the optimum
  for (index_t k = 0; k < n_; ++k) {
    const double slack = 1.0 - y_[k] * last_zd_[k];
    if (std::abs(slack) <= band && weight(k) > 0) {
      side[k] = kM;
      dual[k] = (mu_ > 0 ? std::clamp(slack / mu_, 0.0, 1.0) : 0.5) * weight(k);
    } else if (slack > 0) {
      side[k] = kL;
      dual[k] = weight(k);
    }
  }
  std::vector<double> u(static_cast<std::size_t>(nu));
  for (index_t i = 0; i < ma; ++i)
    for (index_t r = 0; r < d_; ++r) u[i * d_ + r] = static_cast<double>(U_[act[i] * bs_ + r]);
  bool replaced = false;
  std::vector<T> ut(static_cast<std::size_t>(nu)), zt(static_cast<std::size_t>(n_));
  for (int round = 0; round < kActiveSetRounds; ++round) {
    std::vector<index_t> M;
    std::vector<double> aL(static_cast<std::size_t>(n_), 0.0);
    for (index_t k = 0; k < n_; ++k) {
      if (side[k] == kM) M.push_back(k);
      if (side[k] == kL) aL[k] = weight(k);
    }
    const index_t nm = static_cast<index_t>(M.size());
    if (nm == 0 || nu + nm > kPolishMaxDim) break;
    std::vector<double> a(static_cast<std::size_t>(nm));
    for (index_t j = 0; j < nm; ++j) a[j] = dual[M[j]];
    const int solved = hinge_kkt_newton(act, M, aL, u, a);
    if (solved < 0) break;
    for (index_t j = 0; j < nm; ++j) dual[M[j]] = a[j];
    replaced = hinge_polish_candidate(act, u, side, dual) || replaced;
    if (!vec::all_finite(nu, u.data())) break;  // (an unsolved guess still moves samples: it may be one off)
    // Move the samples that violate their side's conditions at the new point.
    for (index_t q = 0; q < nu; ++q) ut[q] = static_cast<T>(u[q]);
    forward(ut.data(), zt.data(), &act);
    bool moved = false;
    for (index_t k = 0; k < n_; ++k) {
      const double slack = 1.0 - y_[k] * static_cast<double>(zt[k]), wk = weight(k);
      char to = side[k];
      if (side[k] == kM && dual[k] < -kMoveTol * wk) to = kR;
      if (side[k] == kM && dual[k] > (1.0 + kMoveTol) * wk) to = kL;
      if ((side[k] == kL && slack < -kMoveTol) || (side[k] == kR && slack > kMoveTol && wk > 0)) to = kM;
      if (to == side[k]) continue;
      moved = true;
      side[k] = to;
      dual[k] = to == kR ? 0.0 : (to == kL ? wk : std::clamp(dual[k], 0.0, wk));
    }
    if (!moved) break;
  }
  return replaced;
}

// The candidates of one polish round: the dual y * clip(a) (offered, valid whatever happened) and the primal
// U_act = u, kept only if it lowers the true objective. Returns true if U was replaced.
template <class T>
bool Run<T>::hinge_polish_candidate(const std::vector<index_t>& act, const std::vector<double>& u,
                                    const std::vector<char>& side, const std::vector<double>& dual) {
  std::vector<double> theta(static_cast<std::size_t>(n_));
  for (index_t k = 0; k < n_; ++k) theta[k] = side[k] == 0 ? 0.0 : y_[k] * std::clamp(dual[k], 0.0, weight(k));
  bool replaced = false;
  const index_t ma = static_cast<index_t>(act.size());
  if (vec::all_finite(ma * d_, u.data())) {
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

#define CONVEXNN_GATED_HINGE(T)                                                                               \
  template void Run<T>::hinge_polish();                                                                         \
  template int Run<T>::hinge_kkt_newton(const std::vector<index_t>&, const std::vector<index_t>&,                \
                                        const std::vector<double>&, std::vector<double>&, std::vector<double>&); \
  template bool Run<T>::hinge_newton_polish(double);                                                            \
  template bool Run<T>::hinge_polish_candidate(const std::vector<index_t>&, const std::vector<double>&,          \
                                               const std::vector<char>&, const std::vector<double>&);            \
  template bool Run<T>::maybe_shrink_mu();
CONVEXNN_GATED_HINGE(float)
CONVEXNN_GATED_HINGE(double)
#undef CONVEXNN_GATED_HINGE

}  // namespace convexnn::gated
