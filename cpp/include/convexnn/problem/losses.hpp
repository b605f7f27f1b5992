// Losses of the convex programs, their gradients, smoothness constants and Fenchel conjugates.
//
// All losses are SUMS over samples (no 1/n). Predictions z and targets y are (n x c)
// row-major; y is always float64, z may be float or double; every sum is accumulated in double.
//
//   squared        L(z) = 1/2 sum_k ||z_k - y_k||^2                  smoothness 1
//   logistic       L(z) = sum_k log(1 + exp(-y_k z_k)),  y in {-1,+1}, c = 1   smoothness 1/4
//   hinge          L(z) = sum_k max(0, 1 - y_k z_k)                  non-smooth (see HingeSmoothing)
//   squared_hinge  L(z) = sum_k max(0, 1 - y_k z_k)^2                smoothness 2
//   cross_entropy  L(z) = sum_k -log softmax(z_k)[class of k], y one-hot (n x c), c >= 2
//                  smoothness 1/2: the Hessian of one row is diag(p) - p p^T <= 1/2 (I - 11^T/c) <= 1/2 I
//                  (Boehning's bound); a valid upper bound, tight only for c = 2.
//
// Conjugates L*(t) = sup_z <t, z> - L(z) (t of the shape of z), with m = y * t for the binary losses:
//   squared        1/2 ||t||^2 + <t, y>
//   logistic       sum p log p + (1-p) log(1-p),  p = -m in [0, 1]
//   hinge          sum m,                         m in [-1, 0]
//   squared_hinge  sum m + m^2 / 4,               m <= 0
//   cross_entropy  sum q log q,                   q = t + y, every row in the probability simplex
// and +inf outside the domain (entries within kDomainTol of the boundary are clipped onto it).
//
// Hinge smoothing: with mu > 0 the hinge is replaced by its Moreau envelope (a Huber-type hinge)
//   h_mu(m) = 0 (m >= 1),  (1-m)^2/(2 mu) (1-mu <= m < 1),  1 - m - mu/2 (m < 1-mu),
// whose gradient is -y clip((1 - m)/mu, 0, 1), smoothness 1/mu, conjugate hinge*(t) + mu/2 ||t||^2.
// Its gradient always lies in the box domain of the TRUE hinge conjugate, which is what makes the hinge
// certificate valid (the solver certifies the true hinge objective with it).
//
// Sample weights: every function takes an optional `w` (n weights >= 0, one per sample i.e. per row; null: all
// ones) for the weighted loss L_w(z) = sum_k w_k l(z_k, y_k). Its gradient and Hessian are those of l times w_k,
// its smoothness max_k w_k times that of l, and its conjugate is the perspective
//   L_w*(t) = sum_k w_k l*(t_k / w_k, y_k)   (w_k > 0),   0 if t_k = 0 else +inf   (w_k = 0),
// i.e. the domain of the binary conjugates scales with w (hinge: y t in [-w, 0]; logistic: -y t in [0, w];
// cross_entropy: t + w y in w times the simplex). With w = null the unweighted code runs (bitwise unchanged).
#pragma once

#include <string>
#include <vector>

#include "convexnn/core/common.hpp"

namespace convexnn {

enum class Loss { squared, logistic, hinge, squared_hinge, cross_entropy };

// Roundoff tolerated at the boundary of dom L* (same as the Python reference).
inline constexpr double kDomainTol = 1e-12;

// "squared", "logistic", ... -> Loss; throws std::invalid_argument naming `loss` otherwise.
Loss parse_loss(const std::string& name);
const char* loss_name(Loss loss);
// logistic, hinge, squared_hinge: c = 1 and y in {-1, +1}.
bool is_binary_loss(Loss loss);
// Lipschitz constant of the gradient of L as a function of z (per sample, hence of the sum);
// +inf for the exact hinge. `hinge_mu` > 0 gives that of the smoothed hinge, 1/mu.
double loss_smoothness(Loss loss, double hinge_mu = 0.0);
// max_k w_k (1 for w = null): the factor of the weighted loss's smoothness constant.
double max_weight(const double* w, index_t n);

// Checks that w (n) holds finite weights >= 0. Throws std::invalid_argument naming `sample_weight`.
void validate_weights(const double* w, index_t n);

// Checks that y (n x c) suits the loss (finite; binary: c = 1 and +-1; cross_entropy: one-hot, c >= 2).
// Throws std::invalid_argument naming `y`.
void validate_targets(Loss loss, const double* y, index_t n, index_t c);

// L(z, y). For the hinge, `hinge_mu` > 0 evaluates the smoothed hinge instead.
template <class T>
double loss_value(Loss loss, const T* z, const double* y, index_t n, index_t c, double hinge_mu = 0.0,
                  const double* w = nullptr);

// Writes grad L(z) (n x c) into `grad` (any float type) and returns L(z). Hinge with hinge_mu = 0: the
// subgradient -y 1[y z < 1] (0 at y z = 1, as the reference).
template <class T, class G>
double loss_value_grad(Loss loss, const T* z, const double* y, index_t n, index_t c, G* grad, double hinge_mu = 0.0,
                       const double* w = nullptr);

// L*(t) (+inf outside the domain, see above). For the hinge with hinge_mu > 0: the smoothed hinge's conjugate.
double loss_conjugate(Loss loss, const double* t, const double* y, index_t n, index_t c, double hinge_mu = 0.0,
                      const double* w = nullptr);

// The Hessian of L at z (block diagonal over samples), for Newton-type steps:
//   squared 1, logistic sigma(m)(1 - sigma(m)), squared_hinge 2 * 1[m < 1], smoothed hinge 1/mu on 0 < 1 - m < mu
//   (the exact hinge has none: 0), cross_entropy diag(p) - p p^T per row (p = softmax(z_k)).
class LossCurvature {
 public:
  template <class T>
  LossCurvature(Loss loss, const T* z, const double* y, index_t n, index_t c, double hinge_mu = 0.0,
                const double* w = nullptr);
  // out = Hess * v, v and out (n x c) row-major (may alias).
  void apply(const double* v, double* out) const;
  // Mean of the diagonal of the Hessian (a scalar stand-in for it, e.g. in preconditioners).
  double mean_diagonal() const { return mean_diag_; }

 private:
  Loss loss_;
  index_t n_, c_;
  std::vector<double> w_;  // diagonal weights, or the softmax probabilities for cross_entropy
  std::vector<double> rw_;  // cross_entropy with sample weights: the weight of each row (else empty)
  double mean_diag_ = 0.0;
};

// grad L(0): the dual direction at the zero solution (used by beta_max), written into g (n x c).
void loss_grad_at_zero(Loss loss, const double* y, index_t n, index_t c, double* g, const double* w = nullptr);

}  // namespace convexnn
