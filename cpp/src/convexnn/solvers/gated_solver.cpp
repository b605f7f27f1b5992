// The public gated-ReLU solver: construction, beta_max, solves and paths (one solve's iterations live in
// solvers/gated/, see run.hpp), and the certificate of a given point.
#include "convexnn/solvers/gated_solver.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "convexnn/solvers/gated/run.hpp"

namespace convexnn {

double relative_gap(double primal, double dual) {
  if (primal == 0.0) return dual == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return (primal - dual) / std::abs(primal);
}

template <class T>
GatedSolver<T>::GatedSolver(const BlockOperator<T>& op, const double* y, index_t n, index_t c, Loss loss, Groups groups,
                            const BlockOperator<double>* certify_op, const double* sample_weight)
    : op_(op),
      cert_op_(certify_op),
      n_(op.n_samples()),
      d_(op.block_dim()),
      p_(op.n_blocks()),
      c_(c),
      loss_(loss),
      groups_(groups) {
  CONVEXNN_CHECK(n == n_, "y must have " << n_ << " rows (one per sample of the operator), got " << n);
  CONVEXNN_CHECK(c >= 1, "y must have at least one column, got c = " << c);
  validate_targets(loss, y, n, c);
  if (cert_op_) {
    CONVEXNN_CHECK(cert_op_->n_samples() == n_ && cert_op_->block_dim() == d_ && cert_op_->n_blocks() == p_,
                   "certify_op must have the shape of op (n, d, P) = (" << n_ << ", " << d_ << ", " << p_ << ")");
  }
  const double bytes = static_cast<double>(n) * static_cast<double>(c) * sizeof(double);
  if (bytes > 1e15) throw std::length_error("y copy of " + std::to_string(bytes) + " bytes is too large");
  y_.assign(y, y + n * c);
  if (sample_weight) {
    validate_weights(sample_weight, n);
    w_.assign(sample_weight, sample_weight + n);
  }
  cache_ = std::make_unique<Cache>(p_);
}

template <class T>
GatedSolver<T>::~GatedSolver() = default;

template <class T>
double GatedSolver<T>::beta_max() const {
  if (p_ == 0) return 0.0;
  std::vector<double> g(static_cast<std::size_t>(n_ * c_));
  loss_grad_at_zero(loss_, y_.data(), n_, c_, g.data(), sample_weight());
  // Per-group norms (the max over a block's columns is the "output" dual norm: sqrt is monotone).
  const bool neuron = groups_ == Groups::neuron;
  std::vector<double> norms(static_cast<std::size_t>(neuron ? p_ : p_ * c_));
  if (cert_op_) {
    cert_op_->adjoint_dual_norms(g.data(), c_, neuron, norms.data());
  } else {
    std::vector<T> gt(g.begin(), g.end());
    op_.adjoint_dual_norms(gt.data(), c_, neuron, norms.data());
  }
  return *std::max_element(norms.begin(), norms.end());
}

template <class T>
GatedResult<T> GatedSolver<T>::solve(double beta, const GatedOptions& options, const T* warm_start) {
  gated::Run<T> run(op_, cert_op_, y_, c_, loss_, groups_, *cache_, options, beta, sample_weight());
  return run.run(warm_start);
}

template <class T>
std::vector<GatedResult<T>> GatedSolver<T>::solve_path(const std::vector<double>& betas, const GatedOptions& options,
                                                       const T* warm_start) {
  std::vector<GatedResult<T>> out;
  out.reserve(betas.size());
  const T* ws = warm_start;
  for (double b : betas) {
    out.push_back(solve(b, options, ws));
    ws = out.back().U.data();
    if (out.back().status == "interrupted") break;
  }
  return out;
}

template <class T>
Certificate GatedSolver<T>::certificate(const T* U, double beta) const {
  CONVEXNN_CHECK(std::isfinite(beta) && beta >= 0, "beta must be a finite number >= 0, got " << beta);
  const index_t bs = d_ * c_, nc = n_ * c_;
  std::vector<double> zd(static_cast<std::size_t>(nc)), theta(static_cast<std::size_t>(nc));
  std::vector<double> norms(static_cast<std::size_t>(p_), 0.0);
  double safety = 1.0;
  const BlockOperator<double>* dop = cert_op_;
  if constexpr (std::is_same<T, double>::value) {
    if (!dop) dop = &op_;
  }
  if (dop) {
    std::vector<double> Ud(U, U + p_ * bs), G(static_cast<std::size_t>(p_ * bs));
    const BlockOperator<double>& op = *dop;
    if (p_ > 0) op.forward(Ud.data(), c_, zd.data(), BlockSubset{});
    loss_value_grad(loss_, zd.data(), y_.data(), n_, c_, theta.data(), 0.0, sample_weight());
    for (double& v : theta) v = -v;
    if (p_ > 0) op.adjoint(theta.data(), c_, G.data(), BlockSubset{});
    for (index_t i = 0; i < p_; ++i) norms[i] = block_dual_norm(G.data() + i * bs, d_, c_, groups_);
  } else {
    std::vector<T> zt(static_cast<std::size_t>(nc)), G(static_cast<std::size_t>(p_ * bs));
    if (p_ > 0) op_.forward(U, c_, zt.data(), BlockSubset{});
    for (index_t k = 0; k < nc; ++k) zd[k] = static_cast<double>(zt[k]);
    loss_value_grad(loss_, zd.data(), y_.data(), n_, c_, theta.data(), 0.0, sample_weight());
    for (double& v : theta) v = -v;
    std::vector<T> th(theta.begin(), theta.end());
    if (p_ > 0) op_.adjoint(th.data(), c_, G.data(), BlockSubset{});
    for (index_t i = 0; i < p_; ++i) norms[i] = block_dual_norm(G.data() + i * bs, d_, c_, groups_);
    safety = gated::adjoint_safety<T>(n_);
  }
  double pen = 0.0;
  for (index_t i = 0; i < p_; ++i) pen += block_penalty(U + i * bs, d_, c_, groups_);
  Certificate cert;
  cert.primal = loss_value(loss_, zd.data(), y_.data(), n_, c_, 0.0, sample_weight()) + beta * pen;
  cert.dual_norm = norms.empty() ? 0.0 : *std::max_element(norms.begin(), norms.end());
  const double nrm = cert.dual_norm * safety;
  cert.scale = nrm <= beta ? 1.0 : beta / nrm;
  for (double& v : theta) v = -cert.scale * v;
  cert.dual = -loss_conjugate(loss_, theta.data(), y_.data(), n_, c_, 0.0, sample_weight());
  cert.gap = relative_gap(cert.primal, cert.dual);
  return cert;
}

template <class T>
GatedResult<T> solve_gated(const BlockOperator<T>& op, const double* y, index_t c, double beta, Loss loss,
                           Groups groups, const GatedOptions& options, const T* warm_start,
                           const BlockOperator<double>* certify_op, const double* sample_weight) {
  GatedSolver<T> solver(op, y, op.n_samples(), c, loss, groups, certify_op, sample_weight);
  return solver.solve(beta, options, warm_start);
}

template <class T>
double gated_beta_max(const BlockOperator<T>& op, const double* y, index_t c, Loss loss, Groups groups) {
  GatedSolver<T> solver(op, y, op.n_samples(), c, loss, groups);
  return solver.beta_max();
}

template class GatedSolver<float>;
template class GatedSolver<double>;
template GatedResult<float> solve_gated<float>(const BlockOperator<float>&, const double*, index_t, double, Loss,
                                               Groups, const GatedOptions&, const float*, const BlockOperator<double>*,
                                               const double*);
template GatedResult<double> solve_gated<double>(const BlockOperator<double>&, const double*, index_t, double, Loss,
                                                 Groups, const GatedOptions&, const double*,
                                                 const BlockOperator<double>*, const double*);
template double gated_beta_max<float>(const BlockOperator<float>&, const double*, index_t, Loss, Groups);
template double gated_beta_max<double>(const BlockOperator<double>&, const double*, index_t, Loss, Groups);

}  // namespace convexnn
