#include "convexnn/problem/losses.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "convexnn/core/vec_ops.hpp"

namespace convexnn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(1 + exp(x)) without overflow.
inline double log1pexp(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
// 1 / (1 + exp(-x)) without overflow.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}
// x log x with 0 log 0 = 0.
inline double xlogx(double x) { return x > 0 ? x * std::log(x) : 0.0; }

// Value and derivative (w.r.t. the margin m = y z) of the scalar binary losses; dphi may be null.
inline double binary_phi(Loss loss, double m, double mu, double* dphi) {
  switch (loss) {
    case Loss::logistic:
      if (dphi) *dphi = -sigmoid(-m);
      return log1pexp(-m);
    case Loss::squared_hinge: {
      const double h = std::max(0.0, 1.0 - m);
      if (dphi) *dphi = -2.0 * h;
      return h * h;
    }
    case Loss::hinge: {
      const double h = 1.0 - m;
      if (mu > 0) {  // Moreau envelope of the hinge
        if (h <= 0) {
          if (dphi) *dphi = 0.0;
          return 0.0;
        }
        if (h < mu) {
          if (dphi) *dphi = -h / mu;
          return 0.5 * h * h / mu;
        }
        if (dphi) *dphi = -1.0;
        return h - 0.5 * mu;
      }
      if (dphi) *dphi = h > 0 ? -1.0 : 0.0;
      return h > 0 ? h : 0.0;
    }
    default: return 0.0;
  }
}

// One row of cross entropy: value, and optionally the gradient softmax(z) - y.
template <class T, class G>
inline double ce_row(const T* z, const double* y, index_t c, G* grad) {
  double zmax = -kInf;
  for (index_t j = 0; j < c; ++j) zmax = std::max(zmax, static_cast<double>(z[j]));
  double sum = 0.0;
  for (index_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(z[j]) - zmax);
  const double lse = zmax + std::log(sum);
  double v = 0.0;
  for (index_t j = 0; j < c; ++j) {
    const double zj = static_cast<double>(z[j]);
    if (y[j] != 0.0) v += y[j] * (lse - zj);
    if (grad) grad[j] = static_cast<G>(std::exp(zj - lse) - y[j]);
  }
  return v;
}

}  // namespace

Loss parse_loss(const std::string& name) {
  if (name == "squared") return Loss::squared;
  if (name == "logistic") return Loss::logistic;
  if (name == "hinge") return Loss::hinge;
  if (name == "squared_hinge") return Loss::squared_hinge;
  if (name == "cross_entropy") return Loss::cross_entropy;
  fail_precondition("loss must be one of 'squared', 'logistic', 'hinge', 'squared_hinge', 'cross_entropy', got '" +
                    name + "'");
}

const char* loss_name(Loss loss) {
  switch (loss) {
    case Loss::squared: return "squared";
    case Loss::logistic: return "logistic";
    case Loss::hinge: return "hinge";
    case Loss::squared_hinge: return "squared_hinge";
    case Loss::cross_entropy: return "cross_entropy";
  }
  return "?";
}

bool is_binary_loss(Loss loss) { return loss == Loss::logistic || loss == Loss::hinge || loss == Loss::squared_hinge; }

double loss_smoothness(Loss loss, double hinge_mu) {
  switch (loss) {
    case Loss::squared: return 1.0;
    case Loss::logistic: return 0.25;
    case Loss::squared_hinge: return 2.0;
    case Loss::cross_entropy: return 0.5;
    case Loss::hinge: return hinge_mu > 0 ? 1.0 / hinge_mu : kInf;
  }
  return kInf;
}

double max_weight(const double* w, index_t n) {
  if (!w) return 1.0;
  double m = 0.0;
  for (index_t k = 0; k < n; ++k) m = std::max(m, w[k]);
  return m;
}

void validate_weights(const double* w, index_t n) {
  if (!w) return;
  for (index_t k = 0; k < n; ++k)
    CONVEXNN_CHECK(std::isfinite(w[k]) && w[k] >= 0,
                   "sample_weight must hold finite numbers >= 0 (found " << w[k] << " at index " << k << ")");
}

void validate_targets(Loss loss, const double* y, index_t n, index_t c) {
  CONVEXNN_CHECK(n >= 1, "y must have at least one row, got n = " << n);
  CONVEXNN_CHECK(c >= 1, "y must have at least one column, got c = " << c);
  for (index_t k = 0; k < n * c; ++k)
    CONVEXNN_CHECK(std::isfinite(y[k]), "y must be finite (found " << y[k] << " at flat index " << k << ")");
  if (is_binary_loss(loss)) {
    CONVEXNN_CHECK(c == 1,
                   "y must have a single column for the binary loss '" << loss_name(loss) << "', got c = " << c);
    for (index_t k = 0; k < n; ++k)
      CONVEXNN_CHECK(y[k] == 1.0 || y[k] == -1.0,
                     "y must contain only -1 and +1 for loss '" << loss_name(loss) << "' (found " << y[k] << ")");
  } else if (loss == Loss::cross_entropy) {
    CONVEXNN_CHECK(c >= 2, "y must be one-hot of shape (n, c) with c >= 2 for cross_entropy, got c = " << c);
    for (index_t k = 0; k < n; ++k) {
      double s = 0.0;
      for (index_t j = 0; j < c; ++j) {
        const double v = y[k * c + j];
        CONVEXNN_CHECK(v == 0.0 || v == 1.0,
                       "y must be one-hot for cross_entropy (found " << v << " in row " << k << ")");
        s += v;
      }
      CONVEXNN_CHECK(s == 1.0, "y must be one-hot for cross_entropy (row " << k << " has " << s << " ones)");
    }
  }
}

template <class T>
double loss_value(Loss loss, const T* z, const double* y, index_t n, index_t c, double hinge_mu, const double* w) {
  if (w) {  // weighted: every sample's term times its weight (the rows of squared / cross_entropy)
    switch (loss) {
      case Loss::squared:
        return 0.5 * vec::chunked_sum(n * c, [&](index_t k) {
                 const double r = static_cast<double>(z[k]) - y[k];
                 return w[k / c] * (r * r);
               });
      case Loss::cross_entropy:
        return vec::chunked_sum(
            n, [&](index_t k) { return w[k] * ce_row<T, double>(z + k * c, y + k * c, c, nullptr); });
      default:
        return vec::chunked_sum(n * c, [&](index_t k) {
          return w[k] * binary_phi(loss, y[k] * static_cast<double>(z[k]), hinge_mu, nullptr);
        });
    }
  }
  switch (loss) {
    case Loss::squared:
      return 0.5 * vec::chunked_sum(n * c, [&](index_t k) {
               const double r = static_cast<double>(z[k]) - y[k];
               return r * r;
             });
    case Loss::cross_entropy:
      return vec::chunked_sum(n, [&](index_t k) { return ce_row<T, double>(z + k * c, y + k * c, c, nullptr); });
    default:
      return vec::chunked_sum(
          n * c, [&](index_t k) { return binary_phi(loss, y[k] * static_cast<double>(z[k]), hinge_mu, nullptr); });
  }
}

namespace {

// The weighted value and gradient (w not null): those of the unweighted loss times the sample's weight.
template <class T, class G>
double weighted_value_grad(Loss loss, const T* z, const double* y, index_t n, index_t c, G* grad, double hinge_mu,
                           const double* w) {
  switch (loss) {
    case Loss::squared:
      return 0.5 * vec::chunked_sum(n * c, [&](index_t k) {
               const double r = static_cast<double>(z[k]) - y[k];
               grad[k] = static_cast<G>(w[k / c] * r);
               return w[k / c] * (r * r);
             });
    case Loss::cross_entropy:
      return vec::chunked_sum(n, [&](index_t k) {
        double g[64];  // rows of up to 64 classes on the stack, wider ones through a vector
        std::vector<double> big;
        double* gk = g;
        if (c > 64) {
          big.resize(static_cast<std::size_t>(c));
          gk = big.data();
        }
        const double v = ce_row<T, double>(z + k * c, y + k * c, c, gk);
        for (index_t j = 0; j < c; ++j) grad[k * c + j] = static_cast<G>(w[k] * gk[j]);
        return w[k] * v;
      });
    default:
      return vec::chunked_sum(n * c, [&](index_t k) {
        double d = 0.0;
        const double v = binary_phi(loss, y[k] * static_cast<double>(z[k]), hinge_mu, &d);
        grad[k] = static_cast<G>(w[k] * (y[k] * d));
        return w[k] * v;
      });
  }
}

// The perspective w l*(t / w) of the weighted conjugate (w not null); +inf outside its domain.
double weighted_conjugate(Loss loss, const double* t, const double* y, index_t n, index_t c, double hinge_mu,
                          const double* w) {
  const double tol = kDomainTol;
  // A sample of weight 0 takes no dual: its t must vanish (then it adds 0).
  for (index_t k = 0; k < n; ++k)
    if (w[k] == 0.0)
      for (index_t j = 0; j < c; ++j)
        if (!(std::abs(t[k * c + j]) <= tol)) return kInf;
  switch (loss) {
    case Loss::squared:
      return vec::chunked_sum(n * c, [&](index_t k) {
        const double wk = w[k / c];
        return wk > 0 ? 0.5 * t[k] * t[k] / wk + t[k] * y[k] : 0.0;
      });
    case Loss::logistic: {
      for (index_t k = 0; k < n; ++k) {
        if (w[k] == 0.0) continue;
        const double p = -y[k] * t[k] / w[k];
        if (!(p >= -tol && p <= 1.0 + tol)) return kInf;
      }
      return vec::chunked_sum(n, [&](index_t k) {
        if (w[k] == 0.0) return 0.0;
        const double p = std::clamp(-y[k] * t[k] / w[k], 0.0, 1.0);
        return w[k] * (xlogx(p) + xlogx(1.0 - p));
      });
    }
    case Loss::hinge: {
      for (index_t k = 0; k < n; ++k) {
        if (w[k] == 0.0) continue;
        const double m = y[k] * t[k] / w[k];
        if (!(m >= -1.0 - tol && m <= tol)) return kInf;
      }
      return vec::chunked_sum(n, [&](index_t k) {
        if (w[k] == 0.0) return 0.0;
        return std::clamp(y[k] * t[k], -w[k], 0.0) + (hinge_mu > 0 ? 0.5 * hinge_mu * t[k] * t[k] / w[k] : 0.0);
      });
    }
    case Loss::squared_hinge: {
      for (index_t k = 0; k < n; ++k)
        if (w[k] > 0.0 && !(y[k] * t[k] / w[k] <= tol)) return kInf;
      return vec::chunked_sum(n, [&](index_t k) {
        if (w[k] == 0.0) return 0.0;
        const double m = std::min(0.0, y[k] * t[k]);
        return m + 0.25 * m * m / w[k];
      });
    }
    case Loss::cross_entropy: {
      for (index_t k = 0; k < n; ++k) {
        if (w[k] == 0.0) continue;
        double s = 0.0;
        for (index_t j = 0; j < c; ++j) {
          const double q = t[k * c + j] / w[k] + y[k * c + j];
          if (!(q >= -tol)) return kInf;
          s += q;
        }
        if (!(std::abs(s - 1.0) <= tol * static_cast<double>(c))) return kInf;
      }
      return vec::chunked_sum(n, [&](index_t k) {
        if (w[k] == 0.0) return 0.0;
        double s = 0.0;
        for (index_t j = 0; j < c; ++j) s += xlogx(std::max(0.0, t[k * c + j] / w[k] + y[k * c + j]));
        return w[k] * s;
      });
    }
  }
  return kInf;
}

}  // namespace

template <class T, class G>
double loss_value_grad(Loss loss, const T* z, const double* y, index_t n, index_t c, G* grad, double hinge_mu,
                       const double* w) {
  if (w) return weighted_value_grad(loss, z, y, n, c, grad, hinge_mu, w);
  switch (loss) {
    case Loss::squared:
      return 0.5 * vec::chunked_sum(n * c, [&](index_t k) {
               const double r = static_cast<double>(z[k]) - y[k];
               grad[k] = static_cast<G>(r);
               return r * r;
             });
    case Loss::cross_entropy:
      return vec::chunked_sum(n, [&](index_t k) { return ce_row<T, G>(z + k * c, y + k * c, c, grad + k * c); });
    default:
      return vec::chunked_sum(n * c, [&](index_t k) {
        double d = 0.0;
        const double v = binary_phi(loss, y[k] * static_cast<double>(z[k]), hinge_mu, &d);
        grad[k] = static_cast<G>(y[k] * d);
        return v;
      });
  }
}

double loss_conjugate(Loss loss, const double* t, const double* y, index_t n, index_t c, double hinge_mu,
                      const double* w) {
  if (w) return weighted_conjugate(loss, t, y, n, c, hinge_mu, w);
  const double tol = kDomainTol;
  switch (loss) {
    case Loss::squared: return vec::chunked_sum(n * c, [&](index_t k) { return 0.5 * t[k] * t[k] + t[k] * y[k]; });
    case Loss::logistic: {
      for (index_t k = 0; k < n; ++k) {
        const double p = -y[k] * t[k];
        if (!(p >= -tol && p <= 1.0 + tol)) return kInf;
      }
      return vec::chunked_sum(n, [&](index_t k) {
        const double p = std::clamp(-y[k] * t[k], 0.0, 1.0);
        return xlogx(p) + xlogx(1.0 - p);
      });
    }
    case Loss::hinge: {
      for (index_t k = 0; k < n; ++k) {
        const double m = y[k] * t[k];
        if (!(m >= -1.0 - tol && m <= tol)) return kInf;
      }
      return vec::chunked_sum(n, [&](index_t k) {
        return std::clamp(y[k] * t[k], -1.0, 0.0) + (hinge_mu > 0 ? 0.5 * hinge_mu * t[k] * t[k] : 0.0);
      });
    }
    case Loss::squared_hinge: {
      for (index_t k = 0; k < n; ++k)
        if (!(y[k] * t[k] <= tol)) return kInf;
      return vec::chunked_sum(n, [&](index_t k) {
        const double m = std::min(0.0, y[k] * t[k]);
        return m + 0.25 * m * m;
      });
    }
    case Loss::cross_entropy: {
      for (index_t k = 0; k < n; ++k) {
        double s = 0.0;
        for (index_t j = 0; j < c; ++j) {
          const double q = t[k * c + j] + y[k * c + j];
          if (!(q >= -tol)) return kInf;
          s += q;
        }
        if (!(std::abs(s - 1.0) <= tol * static_cast<double>(c))) return kInf;
      }
      return vec::chunked_sum(n, [&](index_t k) {
        double s = 0.0;
        for (index_t j = 0; j < c; ++j) s += xlogx(std::max(0.0, t[k * c + j] + y[k * c + j]));
        return s;
      });
    }
  }
  return kInf;
}

template <class T>
LossCurvature::LossCurvature(Loss loss, const T* z, const double* y, index_t n, index_t c, double hinge_mu,
                             const double* w)
    : loss_(loss), n_(n), c_(c), w_(static_cast<std::size_t>(n * c), 0.0) {
  double total = 0.0;
  if (loss == Loss::cross_entropy) {
    for (index_t k = 0; k < n; ++k) {
      double zmax = -kInf;
      for (index_t j = 0; j < c; ++j) zmax = std::max(zmax, static_cast<double>(z[k * c + j]));
      double sum = 0.0;
      for (index_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(z[k * c + j]) - zmax);
      for (index_t j = 0; j < c; ++j) {
        const double p = std::exp(static_cast<double>(z[k * c + j]) - zmax) / sum;
        w_[k * c + j] = p;
        total += (w ? w[k] : 1.0) * (p * (1.0 - p));
      }
    }
    if (w) rw_.assign(w, w + n);
  } else {
    for (index_t k = 0; k < n * c; ++k) {
      double h = 1.0;
      const double m = y[k] * static_cast<double>(z[k]);
      switch (loss) {
        case Loss::logistic: {
          const double s = sigmoid(m);
          h = s * (1.0 - s);
          break;
        }
        case Loss::squared_hinge: h = m < 1.0 ? 2.0 : 0.0; break;
        case Loss::hinge: h = (hinge_mu > 0 && 1.0 - m > 0 && 1.0 - m < hinge_mu) ? 1.0 / hinge_mu : 0.0; break;
        default: h = 1.0;
      }
      if (w) h *= w[k / c];
      w_[k] = h;
      total += h;
    }
  }
  mean_diag_ = n * c > 0 ? total / static_cast<double>(n * c) : 0.0;
}

void LossCurvature::apply(const double* v, double* out) const {
  if (loss_ == Loss::cross_entropy) {
    vec::parallel_for(n_, [&](index_t k) {
      const double* p = w_.data() + k * c_;
      double pv = 0.0;
      for (index_t j = 0; j < c_; ++j) pv += p[j] * v[k * c_ + j];
      const double rw = rw_.empty() ? 1.0 : rw_[k];
      for (index_t j = 0; j < c_; ++j) out[k * c_ + j] = rw * (p[j] * (v[k * c_ + j] - pv));
    });
    return;
  }
  vec::parallel_for(n_ * c_, [&](index_t k) { out[k] = w_[k] * v[k]; });
}

template LossCurvature::LossCurvature(Loss, const float*, const double*, index_t, index_t, double, const double*);
template LossCurvature::LossCurvature(Loss, const double*, const double*, index_t, index_t, double, const double*);

void loss_grad_at_zero(Loss loss, const double* y, index_t n, index_t c, double* g, const double* w) {
  std::vector<double> zero(static_cast<std::size_t>(n * c), 0.0);
  loss_value_grad<double, double>(loss, zero.data(), y, n, c, g, 0.0, w);
}

template double loss_value<float>(Loss, const float*, const double*, index_t, index_t, double, const double*);
template double loss_value<double>(Loss, const double*, const double*, index_t, index_t, double, const double*);
template double loss_value_grad<float, float>(Loss, const float*, const double*, index_t, index_t, float*, double,
                                              const double*);
template double loss_value_grad<float, double>(Loss, const float*, const double*, index_t, index_t, double*, double,
                                               const double*);
template double loss_value_grad<double, float>(Loss, const double*, const double*, index_t, index_t, float*, double,
                                               const double*);
template double loss_value_grad<double, double>(Loss, const double*, const double*, index_t, index_t, double*, double,
                                                const double*);

}  // namespace convexnn
