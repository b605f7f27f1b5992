// Ray Newton: Newton's method on the scales of the nonzero columns of an iterate, their directions fixed, so
// every trial point stays exactly feasible (each column moves along its own ray in its cone).
#include <algorithm>
#include <cmath>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/solvers/exact/run.hpp"

namespace convexnn {

using exact::column_norm;
using exact::kNewtonMaxDim;
using exact::kNewtonMaxEntries;
using exact::kNewtonSteps;
using exact::penalty_of;

// Reduced design E (nc x k, column-major) of ray Newton: column a = +-A_i (v_a / ||v_a||) in output column k_out
// for the nonzero columns `entries` of x (+ for V, - for W).
template <class T>
std::vector<double> ReluSolver<T>::ray_design(const std::vector<RayColumn>& entries, const Point& x) const {
  using Entry = RayColumn;
  const index_t d = d_, nc = n_ * c_, k = static_cast<index_t>(entries.size());
  std::vector<double> dirs(static_cast<std::size_t>(d * k));
  for (index_t a = 0; a < k; ++a) {
    const Entry& e = entries[static_cast<std::size_t>(a)];
    const std::vector<double>& B = e.kind == kSlotV ? x.V : x.W;
    const double* src = B.data() + (e.col / c_) * d * c_ + e.col % c_;
    for (index_t j = 0; j < d; ++j) dirs[j * k + a] = src[j * c_] / e.norm;
  }
  std::vector<double> E(static_cast<std::size_t>(nc * k), 0.0);
  if (masked_outputs_) {
    // A_i = D_i X: the masked rows of X times the directions, in double.
    std::vector<double> XU(static_cast<std::size_t>(n_ * k));
    projector_->multiply_X(dirs.data(), k, XU.data());
    for (index_t a = 0; a < k; ++a) {
      const Entry& e = entries[static_cast<std::size_t>(a)];
      const index_t i = e.col / c_, kout = e.col % c_;
      const double sign = e.kind == kSlotV ? 1.0 : -1.0;
      const PatternSet::Word* mask = op_.patterns().mask(i);  // the masks of D_i X
      double* Ea = E.data() + a * nc;
      for (index_t r = 0; r < n_; ++r)
        if ((mask[r / PatternSet::kWordBits] >> (r % PatternSet::kWordBits)) & 1U)
          Ea[r * c_ + kout] = sign * XU[r * k + a];
    }
  } else {
    // Outputs other than the constraint rows (e.g. pooled patches): column a = +-A_i (u_a in output column
    // kout) through the operator, one single-block forward product per column.
    std::vector<T> Ub(static_cast<std::size_t>(d * c_)), zb(static_cast<std::size_t>(nc));
    for (index_t a = 0; a < k; ++a) {
      const Entry& e = entries[static_cast<std::size_t>(a)];
      const index_t i = e.col / c_, kout = e.col % c_;
      const double sign = e.kind == kSlotV ? 1.0 : -1.0;
      std::fill(Ub.begin(), Ub.end(), T(0));
      for (index_t j = 0; j < d; ++j) Ub[static_cast<std::size_t>(j * c_ + kout)] = static_cast<T>(dirs[j * k + a]);
      op_.forward(Ub.data(), c_, zb.data(), BlockSubset{&i, 1});
      double* Ea = E.data() + a * nc;
      for (index_t r = 0; r < nc; ++r) Ea[r] = sign * static_cast<double>(zb[static_cast<std::size_t>(r)]);
    }
  }

  return E;
}

template <class T>
bool ReluSolver<T>::ray_newton(Point& x, double& penalty, double beta, double mu, Stop* stop) const {
  if (loss_ == Loss::hinge) return false;  // no Hessian on the kinks
  const index_t n_cols = p_ * c_, d = d_, nc = n_ * c_;
  const blas::SingleThreadedScope serial_blas;  // small products: threads cost more than they give
  using Entry = RayColumn;
  std::vector<Entry> entries;
  for (const SlotKind kind : {kSlotV, kSlotW}) {
    const std::vector<double>& B = kind == kSlotV ? x.V : x.W;
    for (index_t col = 0; col < n_cols; ++col) {
      const double cnorm = column_norm(B, col, d, c_);
      if (cnorm > 0.0) entries.push_back({kind, col, cnorm});
    }
  }
  const auto k = static_cast<index_t>(entries.size());
  if (k == 0 || k > kNewtonMaxDim || nc * k > kNewtonMaxEntries) return false;

  const std::vector<double> E = ray_design(entries, x);

  // F(s) = L(E s) + beta * sum s over s >= 0; the gradient of L into `g` when given.
  const auto reduced_objective = [&](const std::vector<double>& sc, std::vector<double>& zz, std::vector<double>* g) {
    blas::gemv<double>(blas::Layout::ColMajor, blas::Op::NoTrans, nc, k, 1.0, E.data(), nc, sc.data(), 1, 0.0,
                       zz.data(), 1);
    const double value = g != nullptr ? loss_value_grad(loss_, zz.data(), y_.data(), n_, c_, g->data(), mu)
                                      : loss_value(loss_, zz.data(), y_.data(), n_, c_, mu);
    double total = 0.0;
    for (double v : sc) total += v;
    return value + beta * total;
  };

  const bool quadratic = loss_ == Loss::squared;  // constant loss Hessian (the identity)
  std::vector<double> scale(static_cast<std::size_t>(k)), z(static_cast<std::size_t>(nc)), zt(z.size()), grad(z.size()),
      gs(scale.size()), dir(scale.size()), trial(scale.size()), eig(scale.size()),
      Hloss(static_cast<std::size_t>(k * k)), H(Hloss.size()), HE;
  for (index_t a = 0; a < k; ++a) scale[a] = entries[static_cast<std::size_t>(a)].norm;
  double F = reduced_objective(scale, z, &grad);
  const double F_start = F;
  bool have_hessian = false;
  for (int step = 0; step < kNewtonSteps; ++step) {
    if (stop != nullptr && stop->poll()) return false;  // x unchanged
    blas::gemv<double>(blas::Layout::ColMajor, blas::Op::Trans, nc, k, 1.0, E.data(), nc, grad.data(), 1, 0.0,
                       gs.data(), 1);
    for (double& g : gs) g += beta;
    if (!quadratic || !have_hessian) {
      // E^T Hess E; the squared loss's Hessian is the identity (and constant: formed once).
      const double* HEp = E.data();
      if (!quadratic) {
        HE.resize(E.size());
        const LossCurvature curvature(loss_, z.data(), y_.data(), n_, c_, mu);
        for (index_t a = 0; a < k; ++a) curvature.apply(E.data() + a * nc, HE.data() + a * nc);
        HEp = HE.data();
      }
      blas::gemm<double>(blas::Layout::ColMajor, blas::Op::Trans, blas::Op::NoTrans, k, k, nc, 1.0, E.data(), nc, HEp,
                         nc, 0.0, Hloss.data(), k);
      have_hessian = true;
    }
    // Newton on the free scales (s > 0); scales at 0 stay there (FISTA may bring their columns back).
    H = Hloss;
    for (index_t a = 0; a < k; ++a) {
      if (scale[a] > 0.0) continue;
      gs[a] = 0.0;
      for (index_t b = 0; b < k; ++b) H[a * k + b] = H[b * k + a] = 0.0;
      H[a * k + a] = 1.0;
    }
    // dir = -H^+ gs (eigen-decomposition: H may be singular, e.g. two columns with proportional products).
    if (blas::syev<double>(k, H.data(), eig.data()) != 0) return false;
    const double cutoff = 1e-12 * std::max(std::abs(eig[static_cast<std::size_t>(k - 1)]), 1e-300);
    std::fill(dir.begin(), dir.end(), 0.0);
    for (index_t j = 0; j < k; ++j) {
      if (!(eig[j] > cutoff)) continue;
      double proj = 0.0;
      for (index_t a = 0; a < k; ++a) proj += H[a * k + j] * gs[a];
      const double w = -proj / eig[j];
      for (index_t a = 0; a < k; ++a) dir[a] += w * H[a * k + j];
    }
    double slope = 0.0;
    for (index_t a = 0; a < k; ++a) {
      if (scale[a] <= 0.0) dir[a] = 0.0;
      slope += gs[a] * dir[a];
    }
    if (!(slope < 0.0)) break;
    // The step stops where the first scale reaches 0 (that column then leaves).
    double alpha = 1.0;
    index_t blocking = -1;
    for (index_t a = 0; a < k; ++a)
      if (dir[a] < 0.0 && -scale[a] / dir[a] < alpha) {
        alpha = -scale[a] / dir[a];
        blocking = a;
      }
    bool accepted = false;
    double F_trial = F;
    for (int halving = 0; halving < 40; ++halving) {
      for (index_t a = 0; a < k; ++a) trial[a] = std::max(0.0, scale[a] + alpha * dir[a]);
      if (blocking >= 0 && halving == 0) trial[blocking] = 0.0;
      F_trial = reduced_objective(trial, zt, nullptr);
      if (std::isfinite(F_trial) && F_trial <= F + 1e-4 * alpha * slope) {
        accepted = true;
        break;
      }
      alpha *= 0.5;
    }
    if (!accepted) break;
    const double decrease = F - F_trial;
    scale = trial;
    F = reduced_objective(scale, z, &grad);
    if (decrease <= 1e-15 * std::abs(F)) break;
  }
  if (!(F < F_start)) return false;

  // Back to the blocks: every column rescaled along its own ray (exactly feasible), then the true objective.
  Point cand;
  cand.V = x.V;
  cand.W = x.W;
  for (index_t a = 0; a < k; ++a) {
    const Entry& e = entries[static_cast<std::size_t>(a)];
    std::vector<double>& B = e.kind == kSlotV ? cand.V : cand.W;
    double* dst = B.data() + (e.col / c_) * d * c_ + e.col % c_;
    const double ratio = scale[a] / e.norm;
    for (index_t j = 0; j < d; ++j) dst[j * c_] *= ratio;
  }
  const index_t m = p_ * d_ * c_;
  std::vector<T> diff(static_cast<std::size_t>(m));
  for (index_t e = 0; e < m; ++e) diff[e] = static_cast<T>(cand.V[e] - cand.W[e]);
  cand.z.resize(static_cast<std::size_t>(nc));
  op_.forward(diff.data(), c_, cand.z.data());
  cand.loss = loss_value(loss_, cand.z.data(), y_.data(), n_, c_, mu);
  const double cand_penalty = penalty_of(cand.V, cand.W, n_cols, d_, c_);
  if (!(cand.loss + beta * cand_penalty < x.loss + beta * penalty)) return false;
  x = std::move(cand);
  penalty = cand_penalty;
  return true;
}

#define CONVEXNN_EXACT_NEWTON(T)                                                                             \
  template std::vector<double> ReluSolver<T>::ray_design(const std::vector<RayColumn>&, const Point&) const; \
  template bool ReluSolver<T>::ray_newton(Point&, double&, double, double, Stop*) const;
CONVEXNN_EXACT_NEWTON(float)
CONVEXNN_EXACT_NEWTON(double)
#undef CONVEXNN_EXACT_NEWTON

}  // namespace convexnn
