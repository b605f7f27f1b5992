// Active-set Newton phase of the gated solver (smooth losses).
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
#include <algorithm>
#include <cmath>
#include <optional>

#include "convexnn/core/vec_ops.hpp"
#include "convexnn/solvers/gated/run.hpp"

namespace convexnn::gated {
namespace {

// The Newton system of one step on the support S: groups, gradient, Hessian products, preconditioner, CG and
// the projected line search.
template <class T>
class NewtonSystem {
 public:
  NewtonSystem(Run<T>& run, std::vector<index_t> S)
      : r_(run),
        S_(std::move(S)),
        m_(static_cast<index_t>(S_.size())),
        bs_(run.bs_),
        len_(m_ * run.bs_),
        ng_(run.groups_per_block()) {
    r_.gather(S_, Us_);
    measure_groups();
  }

  // KKT residual R on the free entries (and the smooth loss at the current point); returns ||R||.
  double gradient();
  std::vector<double> solve_cg(double eta);
  // Returns true if a step along x was accepted (U, z updated).
  bool line_search(const std::vector<double>& x, bool* full_step);
  double slope(const std::vector<double>& x) const { return vec::dot(len_, R_.data(), x.data()); }

 private:
  // Apply f(entry index) over the entries of group (b, k).
  template <class F>
  void group_entries(index_t b, index_t k, F&& f) const {
    if (ng_ == 1)
      for (index_t j = 0; j < bs_; ++j) f(b * bs_ + j);
    else
      for (index_t j = 0; j < r_.d_; ++j) f(b * bs_ + j * r_.c_ + k);
  }
  void measure_groups();
  void hess(const std::vector<double>& v, std::vector<double>& out);
  void precondition(const std::vector<double>& r, std::vector<double>& out);
  void block_inverse(index_t i, index_t k, double cg, const double* v, double* x);
  bool zero_opposed_groups(std::vector<T>& Utry, std::vector<T>& Vz) const;

  Run<T>& r_;
  const std::vector<index_t> S_;
  const index_t m_, bs_, len_, ng_;
  std::vector<T> Us_;             // the support's blocks
  std::vector<double> gnorm_;     // norm per (block position, group)
  std::vector<char> free_entry_;  // entry of a nonzero group
  std::vector<double> R_;         // KKT residual on the free entries
  double f0_loss_ = 0.0;
  double omega_ = 0.0;
  std::optional<LossCurvature> curv_;
  std::vector<T> vt_, zt_;
  std::vector<double> zv_, t1_, t2_, t3_;
};

template <class T>
void NewtonSystem<T>::measure_groups() {
  gnorm_.assign(static_cast<std::size_t>(m_ * ng_), 0.0);
  free_entry_.assign(static_cast<std::size_t>(len_), 0);
  const index_t d = r_.d_, c = r_.c_;
  for (index_t b = 0; b < m_; ++b)
    for (index_t k = 0; k < ng_; ++k) {
      const T* u = Us_.data() + b * bs_;
      double acc = 0.0;
      if (ng_ == 1) {
        for (index_t j = 0; j < bs_; ++j) acc += static_cast<double>(u[j]) * static_cast<double>(u[j]);
      } else {
        for (index_t j = 0; j < d; ++j) acc += static_cast<double>(u[j * c + k]) * static_cast<double>(u[j * c + k]);
      }
      gnorm_[b * ng_ + k] = std::sqrt(acc);
      if (acc > 0) {
        if (ng_ == 1)
          std::fill(free_entry_.begin() + b * bs_, free_entry_.begin() + (b + 1) * bs_, 1);
        else
          for (index_t j = 0; j < d; ++j) free_entry_[b * bs_ + j * c + k] = 1;
      }
    }
}

template <class T>
double NewtonSystem<T>::gradient() {
  const index_t nc = r_.nc_;
  std::vector<T> gl(static_cast<std::size_t>(nc)), Gt(static_cast<std::size_t>(len_));
  f0_loss_ = loss_value_grad(r_.loss_, r_.z_.data(), r_.y_.data(), r_.n_, r_.c_, gl.data(), r_.mu_, r_.w_);
  r_.adjoint(gl.data(), Gt.data(), &S_);
  R_.assign(static_cast<std::size_t>(len_), 0.0);
  for (index_t b = 0; b < m_; ++b)
    for (index_t k = 0; k < ng_; ++k) {
      const double nu = gnorm_[b * ng_ + k];
      if (!(nu > 0)) continue;
      group_entries(b, k, [&](index_t e) {
        R_[e] = static_cast<double>(Gt[e]) + r_.beta_ * static_cast<double>(Us_[e]) / nu;
      });
    }
  const double r0 = std::sqrt(vec::sqnorm(len_, R_.data()));
  if (r0 > 0) {
    curv_.emplace(r_.loss_, r_.z_.data(), r_.y_.data(), r_.n_, r_.c_, r_.mu_, r_.w_);
    omega_ = std::max(curv_->mean_diagonal(), 1e-12);
  }
  return r0;
}

// Hessian-vector product on the free entries: A_S^T Hess_L A_S v + C v.
template <class T>
void NewtonSystem<T>::hess(const std::vector<double>& v, std::vector<double>& out) {
  const index_t nc = r_.nc_;
  vt_.resize(static_cast<std::size_t>(len_));
  zt_.resize(static_cast<std::size_t>(nc));
  zv_.resize(static_cast<std::size_t>(nc));
  for (index_t e = 0; e < len_; ++e) vt_[e] = static_cast<T>(v[e]);
  r_.forward(vt_.data(), zt_.data(), &S_);
  for (index_t k = 0; k < nc; ++k) zv_[k] = static_cast<double>(zt_[k]);
  curv_->apply(zv_.data(), zv_.data());
  for (index_t k = 0; k < nc; ++k) zt_[k] = static_cast<T>(zv_[k]);
  r_.adjoint(zt_.data(), vt_.data(), &S_);
  out.resize(static_cast<std::size_t>(len_));
  for (index_t e = 0; e < len_; ++e) out[e] = free_entry_[e] ? static_cast<double>(vt_[e]) : 0.0;
  for (index_t b = 0; b < m_; ++b)
    for (index_t k = 0; k < ng_; ++k) {
      const double nu = gnorm_[b * ng_ + k];
      if (!(nu > 0)) continue;
      double uv = 0.0;
      group_entries(b, k, [&](index_t e) { uv += static_cast<double>(Us_[e]) * v[e]; });
      uv /= nu;
      const double cg = r_.beta_ / nu;
      group_entries(b, k, [&](index_t e) { out[e] += cg * (v[e] - static_cast<double>(Us_[e]) / nu * uv); });
    }
}

// x = B^{-1} v for B = omega H_i + cg I on the group's columns (all c for neuron groups, column k otherwise);
// v and x are the block's (d x c) local views.
template <class T>
void NewtonSystem<T>::block_inverse(index_t i, index_t k, double cg, const double* v, double* x) {
  const index_t d = r_.d_, c = r_.c_;
  const auto& cache = r_.cache_;
  const bool eig = !cache.eig_q[i].empty();
  const double* Q = eig ? cache.eig_q[i].data() : nullptr;
  const double* h = eig ? cache.eig_h[i].data() : nullptr;
  const index_t k0 = ng_ == 1 ? 0 : k, k1 = ng_ == 1 ? c : k + 1;
  for (index_t col = k0; col < k1; ++col) {
    if (eig) {
      for (index_t a = 0; a < d; ++a) {
        double acc = 0.0;
        for (index_t j = 0; j < d; ++j) acc += Q[j * d + a] * v[j * c + col];
        t3_[a] = acc / (omega_ * std::max(h[a], 0.0) + cg);
      }
      for (index_t j = 0; j < d; ++j) {
        double acc = 0.0;
        for (index_t a = 0; a < d; ++a) acc += Q[j * d + a] * t3_[a];
        x[j * c + col] = acc;
      }
    } else {
      const double sc = 1.0 / (omega_ * cache.lam_max[i] + cg);
      for (index_t j = 0; j < d; ++j) x[j * c + col] = sc * v[j * c + col];
    }
  }
}

// Block-Jacobi preconditioner: (omega H_i + c_g I - c_g u u^T)^{-1} per group (Sherman-Morrison).
template <class T>
void NewtonSystem<T>::precondition(const std::vector<double>& r, std::vector<double>& out) {
  t1_.resize(static_cast<std::size_t>(bs_));
  t2_.resize(static_cast<std::size_t>(bs_));
  t3_.resize(static_cast<std::size_t>(bs_));
  out.assign(static_cast<std::size_t>(len_), 0.0);
  std::vector<double> rloc(static_cast<std::size_t>(bs_)), uloc(static_cast<std::size_t>(bs_));
  for (index_t b = 0; b < m_; ++b) {
    for (index_t k = 0; k < ng_; ++k) {
      const double nu = gnorm_[b * ng_ + k];
      if (!(nu > 0)) continue;
      const double cg = r_.beta_ / nu;
      std::fill(t1_.begin(), t1_.end(), 0.0);
      std::fill(t2_.begin(), t2_.end(), 0.0);
      std::fill(rloc.begin(), rloc.end(), 0.0);
      std::fill(uloc.begin(), uloc.end(), 0.0);
      group_entries(b, k, [&](index_t e) {
        rloc[e - b * bs_] = r[e];
        uloc[e - b * bs_] = static_cast<double>(Us_[e]) / nu;
      });
      block_inverse(S_[b], k, cg, rloc.data(), t1_.data());  // B^{-1} r
      block_inverse(S_[b], k, cg, uloc.data(), t2_.data());  // B^{-1} u
      double ut1 = 0.0, ut2 = 0.0;
      group_entries(b, k, [&](index_t e) {
        ut1 += uloc[e - b * bs_] * t1_[e - b * bs_];
        ut2 += uloc[e - b * bs_] * t2_[e - b * bs_];
      });
      const double coef = cg * ut1 / std::max(1.0 - cg * ut2, 1e-300);
      group_entries(b, k, [&](index_t e) { out[e] = t1_[e - b * bs_] + coef * t2_[e - b * bs_]; });
    }
  }
}

// Preconditioned CG on H dx = -R to the relative residual eta (each iteration counts as one).
template <class T>
std::vector<double> NewtonSystem<T>::solve_cg(double eta) {
  const double r0 = std::sqrt(vec::sqnorm(len_, R_.data()));
  std::vector<double> x(static_cast<std::size_t>(len_), 0.0), res(static_cast<std::size_t>(len_)), zr, p, Hp;
  for (index_t e = 0; e < len_; ++e) res[e] = -R_[e];
  precondition(res, zr);
  p = zr;
  double rz = vec::dot(len_, res.data(), zr.data());
  for (index_t it = 0; it < kNewtonMaxCg; ++it) {
    if (r_.should_stop()) break;
    hess(p, Hp);
    const double pHp = vec::dot(len_, p.data(), Hp.data());
    if (!(pHp > 0) || !(rz > 0)) break;
    const double a = rz / pHp;
    for (index_t e = 0; e < len_; ++e) {
      x[e] += a * p[e];
      res[e] -= a * Hp[e];
    }
    ++r_.iter_;
    if (std::sqrt(vec::sqnorm(len_, res.data())) <= eta * r0) break;
    precondition(res, zr);
    const double rzn = vec::dot(len_, res.data(), zr.data());
    for (index_t e = 0; e < len_; ++e) p[e] = zr[e] + (rzn / rz) * p[e];
    rz = rzn;
  }
  return x;
}

// Zeroes (in Utry) every group whose trial value points against its current one, moving it to Vz; true if any.
template <class T>
bool NewtonSystem<T>::zero_opposed_groups(std::vector<T>& Utry, std::vector<T>& Vz) const {
  bool any_zeroed = false;
  std::fill(Vz.begin(), Vz.end(), T(0));
  for (index_t b = 0; b < m_; ++b)
    for (index_t k = 0; k < ng_; ++k) {
      if (!(gnorm_[b * ng_ + k] > 0)) continue;
      double ip = 0.0;
      group_entries(b, k, [&](index_t e) { ip += static_cast<double>(Utry[e]) * static_cast<double>(Us_[e]); });
      if (ip > 0) continue;
      any_zeroed = true;
      group_entries(b, k, [&](index_t e) {
        Vz[e] = Utry[e];
        Utry[e] = T(0);
      });
    }
  return any_zeroed;
}

// Projected line search on the true objective: U(t) = P(U + t x), where P zeroes every group whose new value
// points against its current one (the group wants to leave the support; zeroing it is what the penalty does
// at a kink), so Newton steps also shrink the support. Predictions move along A_S x, minus A of the zeroed
// groups (one extra forward only when some group is zeroed).
template <class T>
bool NewtonSystem<T>::line_search(const std::vector<double>& x, bool* full_step) {
  const index_t nc = r_.nc_;
  const double sl = slope(x);
  vt_.resize(static_cast<std::size_t>(len_));
  for (index_t e = 0; e < len_; ++e) vt_[e] = static_cast<T>(x[e]);
  std::vector<T> zdir(static_cast<std::size_t>(nc)), ztry(static_cast<std::size_t>(nc)),
      Utry(static_cast<std::size_t>(len_)), Vz(static_cast<std::size_t>(len_)), zcorr(static_cast<std::size_t>(nc));
  r_.forward(vt_.data(), zdir.data(), &S_);
  const double F0 = f0_loss_ + r_.beta_ * r_.penalty(Us_.data(), m_);
  double t = 1.0;
  for (int ls = 0; ls < 30; ++ls, t *= 0.5) {
    for (index_t e = 0; e < len_; ++e) Utry[e] = static_cast<T>(static_cast<double>(Us_[e]) + t * x[e]);
    const bool any_zeroed = zero_opposed_groups(Utry, Vz);
    if (any_zeroed) r_.forward(Vz.data(), zcorr.data(), &S_);
    for (index_t k = 0; k < nc; ++k)
      ztry[k] = static_cast<T>(static_cast<double>(r_.z_[k]) + t * static_cast<double>(zdir[k]) -
                               (any_zeroed ? static_cast<double>(zcorr[k]) : 0.0));
    const double Ft = loss_value(r_.loss_, ztry.data(), r_.y_.data(), r_.n_, r_.c_, r_.mu_, r_.w_) +
                      r_.beta_ * r_.penalty(Utry.data(), m_);
    if (std::isfinite(Ft) && Ft <= F0 + 1e-4 * t * sl) {
      r_.scatter(S_, Utry);
      r_.z_ = ztry;
      r_.last_check_current_ = false;
      *full_step = ls == 0 && !any_zeroed;
      return true;
    }
  }
  return false;
}

}  // namespace

template <class T>
bool Run<T>::group_is_zero(const T* u, index_t k) const {
  if (groups_ == Groups::neuron) return block_is_zero(u);
  for (index_t j = 0; j < d_; ++j)
    if (u[j * c_ + k] != T(0)) return false;
  return true;
}

template <class T>
bool Run<T>::newton_eligible() const {
  if (!opt_.newton || loss_ == Loss::hinge || beta_ <= 0 || iter_ < newton_retry_at_) return false;
  if (!(last_gap_ <= kNewtonGap) || group_scores_.empty()) return false;
  const index_t ng = groups_per_block();
  for (index_t i = 0; i < p_; ++i)
    for (index_t k = 0; k < ng; ++k)
      if (group_is_zero(U_.data() + i * bs_, k) && !(group_scores_[i * ng + k] < 1.0)) return false;
  return true;
}

// One inexact damped Newton step on the nonzero groups; returns true if it was accepted (U_, z_ updated).
template <class T>
bool Run<T>::newton_step(double eta, bool* full_step) {
  *full_step = false;
  std::vector<index_t> S = support();
  if (S.empty()) return false;
  ensure_cache(S);
  NewtonSystem<T> sys(*this, std::move(S));
  if (!(sys.gradient() > 0)) return false;
  const std::vector<double> x = sys.solve_cg(eta);
  if (!(sys.slope(x) < 0)) return false;
  return sys.line_search(x, full_step);
}

// Newton steps while they pay off (each followed by a global certificate). Returns true if U_ changed.
template <class T>
bool Run<T>::newton_phase() {
  PhaseTimes::Scope timed(times_, kNewton);
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

#define CONVEXNN_GATED_NEWTON(T)                                     \
  template bool Run<T>::group_is_zero(const T*, index_t) const;      \
  template bool Run<T>::newton_eligible() const;                     \
  template bool Run<T>::newton_step(double, bool*);                  \
  template bool Run<T>::newton_phase();
CONVEXNN_GATED_NEWTON(float)
CONVEXNN_GATED_NEWTON(double)
#undef CONVEXNN_GATED_NEWTON

}  // namespace convexnn::gated
