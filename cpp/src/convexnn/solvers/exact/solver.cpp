// The exact problem (ReluSolver): construction from a cone operator, solve(), the certificate of a given point,
// the relative cone violation, and the products and dual bounds the certificate is built from.
#include <algorithm>
#include <cmath>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/solvers/exact/run.hpp"

namespace convexnn {

template <class T>
ReluSolver<T>::ReluSolver(const ConeOperator<T>& op, const double* y, index_t c, Loss loss,
                          const BlockOperator<double>* certify_op)
    : op_(op),
      cert_op_(certify_op),
      X_(op.constraint_rows()),
      pats_(op.patterns()),
      n_(op.n_samples()),
      d_(op.block_dim()),
      p_(op.n_blocks()),
      c_(c),
      loss_(loss),
      masked_outputs_(op.masked_outputs()) {
  CONVEXNN_CHECK(c >= 1, "c (number of outputs) must be >= 1, got " << c);
  CONVEXNN_CHECK(X_.cols == d_, "X has " << X_.cols << " columns but the operator's blocks have dimension " << d_);
  CONVEXNN_CHECK(pats_.n_samples() == X_.rows && pats_.dim() == d_ && pats_.n_patterns() == p_,
                 "patterns (" << pats_.n_samples() << " rows x " << pats_.n_patterns()
                              << " patterns) do not match the constraint rows X (" << X_.rows
                              << " rows) and the operator's " << p_ << " blocks");
  CONVEXNN_CHECK(!masked_outputs_ || X_.rows == n_,
                 "an operator with masked outputs needs its n = " << n_ << " outputs as constraint rows, got "
                                                                   << X_.rows);
  CONVEXNN_CHECK(y != nullptr, "y must not be null");
  CONVEXNN_CHECK(certify_op == nullptr ||
                     (certify_op->n_samples() == n_ && certify_op->block_dim() == d_ && certify_op->n_blocks() == p_),
                 "certify_op must have the blocks of op (" << n_ << " x " << d_ << " x " << p_ << ")");
  validate_targets(loss, y, n_, c_);
  y_.assign(y, y + n_ * c_);
  // ||X||_2 from the d x d Gram matrix (accumulated in double; d is small).
  std::vector<double> gram(static_cast<std::size_t>(d_ * d_), 0.0), eig(static_cast<std::size_t>(d_));
  for (index_t k = 0; k < X_.rows; ++k)
    for (index_t a = 0; a < d_; ++a) {
      const double xa = static_cast<double>(X_(k, a));
      if (xa == 0.0) continue;
      for (index_t b = a; b < d_; ++b) gram[a * d_ + b] += xa * static_cast<double>(X_(k, b));
    }
  for (index_t a = 0; a < d_; ++a)
    for (index_t b = 0; b < a; ++b) gram[a * d_ + b] = gram[b * d_ + a];
  CONVEXNN_CHECK(blas::syev<double>(d_, gram.data(), eig.data()) == 0, "eigen-decomposition of X^T X failed");
  x_norm_ = std::sqrt(std::max(0.0, eig[static_cast<std::size_t>(d_ - 1)]));
  projector_ = std::make_unique<PatternConeProjector<T>>(X_, pats_, 4 * p_ * c_);
}

template <class T>
ReluResult<T> ReluSolver<T>::solve(double beta, const ReluOptions& options, const T* V0, const T* W0) {
  CONVEXNN_CHECK(std::isfinite(beta) && beta >= 0.0, "beta must be finite and >= 0, got " << beta);
  CONVEXNN_CHECK(options.tol > 0.0, "tol must be > 0, got " << options.tol);
  CONVEXNN_CHECK(options.max_iter >= 1, "max_iter must be >= 1, got " << options.max_iter);
  CONVEXNN_CHECK(options.check_every >= 1, "check_every must be >= 1, got " << options.check_every);
  projector_->reset_stats();
  Run run(*this, beta, options);
  return run.execute(V0, W0);
}

// For the certificate's screening: an upper bound (up to the ternary search's resolution) on the dual value
// any certificate built from theta = -grad can reach. The oracle value of pattern i is at least
// <-G_i[:, k], v / ||v||> for every nonzero column v of V in K_i (a feasible unit direction; <+G, w / ||w||> for
// W), so the certificate's scale is at most s_max = min(1, beta / that), and the dual -L*(s grad) is concave in
// s: its maximum over [0, s_max] bounds the certificate's value. Costs O(P d c + n c) instead of the oracle's
// projections. Only used to skip a certificate that cannot succeed, never as a reported bound.
template <class T>
double ReluSolver<T>::dual_value_bound(const std::vector<double>& V, const std::vector<double>& W,
                                       const std::vector<double>& grad, const std::vector<double>& G,
                                       double beta) const {
  double oracle_lower = 0.0;
  for (index_t col = 0; col < p_ * c_; ++col) {
    const std::size_t base = static_cast<std::size_t>((col / c_) * d_ * c_ + col % c_);
    double vn = 0.0, wn = 0.0, gv = 0.0, gw = 0.0;
    for (index_t j = 0; j < d_; ++j) {
      const std::size_t e = base + static_cast<std::size_t>(j * c_);
      vn += V[e] * V[e];
      wn += W[e] * W[e];
      gv += G[e] * V[e];
      gw += G[e] * W[e];
    }
    if (vn > 0.0) oracle_lower = std::max(oracle_lower, -gv / std::sqrt(vn));
    if (wn > 0.0) oracle_lower = std::max(oracle_lower, gw / std::sqrt(wn));
  }
  const double s_max = oracle_lower > beta ? beta / oracle_lower : 1.0;
  std::vector<double> t(grad.size());
  const auto dual_at = [&](double s) {
    for (std::size_t e = 0; e < grad.size(); ++e) t[e] = s * grad[e];
    const double v = -loss_conjugate(loss_, t.data(), y_.data(), n_, c_);
    return std::isfinite(v) ? v : -std::numeric_limits<double>::infinity();
  };
  double lo = 0.0, hi = s_max;
  for (int iter = 0; iter < 60; ++iter) {
    const double m1 = lo + (hi - lo) / 3.0, m2 = hi - (hi - lo) / 3.0;
    if (dual_at(m1) < dual_at(m2))
      lo = m1;
    else
      hi = m2;
  }
  return std::max({dual_at(lo), dual_at(hi), dual_at(0.5 * (lo + hi))});
}

// The operator's cone violation of the blocks with a nonzero column (ConeOperator::cone_violation, the same bits
// for every implementation), each column's divided by ||X||_2 ||v||.
template <class T>
double ReluSolver<T>::relative_violation(const T* V, const T* W) const {
  if (x_norm_ == 0.0) return 0.0;
  const index_t bs = d_ * c_;
  double worst = 0.0;
  std::vector<double> norms(static_cast<std::size_t>(p_ * c_)), viol;
  std::vector<index_t> blocks;
  std::vector<T> packed;
  for (const T* B : {V, W}) {
    blocks.clear();
    packed.clear();
    for (index_t i = 0; i < p_; ++i) {
      bool nonzero = false;
      for (index_t k = 0; k < c_; ++k) {
        double nrm = 0.0;
        for (index_t j = 0; j < d_; ++j) {
          const double v = static_cast<double>(B[(i * d_ + j) * c_ + k]);
          nrm += v * v;
        }
        norms[static_cast<std::size_t>(i * c_ + k)] = nrm;
        nonzero = nonzero || nrm != 0.0;
      }
      if (!nonzero) continue;
      blocks.push_back(i);
      packed.insert(packed.end(), B + i * bs, B + (i + 1) * bs);
    }
    if (blocks.empty()) continue;
    viol.resize(blocks.size() * static_cast<std::size_t>(c_));
    op_.cone_violation(packed.data(), c_, viol.data(), BlockSubset::of(blocks));
    for (std::size_t s = 0; s < blocks.size(); ++s)
      for (index_t k = 0; k < c_; ++k) {
        const double nrm = norms[static_cast<std::size_t>(blocks[s] * c_ + k)];
        if (nrm == 0.0) continue;
        worst = std::max(worst, viol[s * static_cast<std::size_t>(c_) + k] / (x_norm_ * std::sqrt(nrm)));
      }
  }
  return worst;
}

template <class T>
double ReluSolver<T>::loss_gradient_adjoint(const std::vector<double>& V, const std::vector<double>& W, double mu,
                                            std::vector<double>& grad, std::vector<double>& G,
                                            std::vector<double>* z_out) const {
  const index_t m = p_ * d_ * c_;
  grad.resize(static_cast<std::size_t>(n_ * c_));
  G.resize(static_cast<std::size_t>(m));
  double value = 0.0;
  if (cert_op_ != nullptr) {
    std::vector<double> diff(static_cast<std::size_t>(m)), z(static_cast<std::size_t>(n_ * c_));
    for (index_t e = 0; e < m; ++e) diff[e] = V[e] - W[e];
    cert_op_->forward(diff.data(), c_, z.data());
    value = loss_value_grad(loss_, z.data(), y_.data(), n_, c_, grad.data(), mu);
    cert_op_->adjoint(grad.data(), c_, G.data());
    if (z_out != nullptr) *z_out = std::move(z);
  } else {
    std::vector<T> diff(static_cast<std::size_t>(m)), z(static_cast<std::size_t>(n_ * c_)), gradT(z.size()),
        GT(static_cast<std::size_t>(m));
    for (index_t e = 0; e < m; ++e) diff[e] = static_cast<T>(V[e] - W[e]);
    op_.forward(diff.data(), c_, z.data());
    value = loss_value_grad(loss_, z.data(), y_.data(), n_, c_, grad.data(), mu);
    for (std::size_t e = 0; e < grad.size(); ++e) gradT[e] = static_cast<T>(grad[e]);
    op_.adjoint(gradT.data(), c_, GT.data());
    for (index_t e = 0; e < m; ++e) G[e] = static_cast<double>(GT[e]);
    if (z_out != nullptr) z_out->assign(z.begin(), z.end());
  }
  return value;
}

template <class T>
ReluCertificate ReluSolver<T>::certificate(const T* V, const T* W, double beta, double cone_tol) const {
  const index_t m = p_ * d_ * c_;
  std::vector<double> v(V, V + m), w(W, W + m), grad, G;
  const double penalty = exact::penalty_of(v, w, p_ * c_, d_, c_);
  const double value = loss_gradient_adjoint(v, w, 0.0, grad, G);
  ReluCertificate cert;
  cert.primal = value + beta * penalty;
  cert.max_dual_constraint = dual_constraint_max(G, cone_tol, beta);
  const double scale = cert.max_dual_constraint > beta ? beta / cert.max_dual_constraint : 1.0;
  for (double& g : grad) g *= scale;
  cert.dual = -loss_conjugate(loss_, grad.data(), y_.data(), n_, c_);
  cert.gap = relative_gap(cert.primal, cert.dual);
  cert.max_violation = relative_violation(V, W);
  return cert;
}

#define CONVEXNN_EXACT_SOLVER(T)                                                                                   \
  template ReluSolver<T>::ReluSolver(const ConeOperator<T>&, const double*, index_t, Loss,                         \
                                     const BlockOperator<double>*);                                                \
  template ReluResult<T> ReluSolver<T>::solve(double, const ReluOptions&, const T*, const T*);                     \
  template double ReluSolver<T>::dual_value_bound(const std::vector<double>&, const std::vector<double>&,          \
                                                  const std::vector<double>&, const std::vector<double>&, double)  \
      const;                                                                                                       \
  template double ReluSolver<T>::relative_violation(const T*, const T*) const;                                     \
  template double ReluSolver<T>::loss_gradient_adjoint(const std::vector<double>&, const std::vector<double>&,     \
                                                       double, std::vector<double>&, std::vector<double>&,         \
                                                       std::vector<double>*) const;                                \
  template ReluCertificate ReluSolver<T>::certificate(const T*, const T*, double, double) const;
CONVEXNN_EXACT_SOLVER(float)
CONVEXNN_EXACT_SOLVER(double)
#undef CONVEXNN_EXACT_SOLVER

}  // namespace convexnn
