// Losses (values, gradients, conjugates, smoothness) and the group proximal operators.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "convexnn/problem/losses.hpp"
#include "convexnn/problem/prox.hpp"

namespace cnn = convexnn;
using cnn::index_t;
using cnn::Loss;

namespace {

struct Case {
  Loss loss;
  index_t c;
  double mu;  // hinge smoothing
};

std::vector<double> targets(Loss loss, index_t n, index_t c, std::mt19937& rng) {
  std::vector<double> y(static_cast<std::size_t>(n * c), 0.0);
  std::normal_distribution<double> g(0.0, 1.0);
  if (loss == Loss::squared) {
    for (auto& v : y) v = g(rng);
  } else if (loss == Loss::cross_entropy) {
    std::uniform_int_distribution<index_t> cls(0, c - 1);
    for (index_t k = 0; k < n; ++k) y[k * c + cls(rng)] = 1.0;
  } else {
    for (auto& v : y) v = g(rng) > 0 ? 1.0 : -1.0;
  }
  return y;
}

std::vector<double> randn(index_t m, std::mt19937& rng, double scale = 1.0) {
  std::normal_distribution<double> g(0.0, scale);
  std::vector<double> v(static_cast<std::size_t>(m));
  for (auto& e : v) e = g(rng);
  return v;
}

const std::vector<Case> kCases = {
    {Loss::squared, 1, 0.0},       {Loss::squared, 3, 0.0}, {Loss::logistic, 1, 0.0},
    {Loss::squared_hinge, 1, 0.0}, {Loss::hinge, 1, 0.3},   {Loss::cross_entropy, 3, 0.0},
    {Loss::cross_entropy, 2, 0.0},
};

}  // namespace

TEST(Losses, GradientMatchesFiniteDifferences) {
  std::mt19937 rng(1);
  for (const Case& cs : kCases) {
    const index_t n = 23, c = cs.c;
    auto y = targets(cs.loss, n, c, rng);
    auto z = randn(n * c, rng, 1.5);
    std::vector<double> g(z.size());
    const double v = cnn::loss_value_grad(cs.loss, z.data(), y.data(), n, c, g.data(), cs.mu);
    EXPECT_NEAR(v, cnn::loss_value(cs.loss, z.data(), y.data(), n, c, cs.mu), 1e-12 * std::abs(v));
    const double h = 1e-6;
    for (index_t k = 0; k < n * c; ++k) {
      auto zp = z, zm = z;
      zp[k] += h;
      zm[k] -= h;
      const double fd = (cnn::loss_value(cs.loss, zp.data(), y.data(), n, c, cs.mu) -
                         cnn::loss_value(cs.loss, zm.data(), y.data(), n, c, cs.mu)) /
                        (2 * h);
      EXPECT_NEAR(g[k], fd, 1e-6) << cnn::loss_name(cs.loss) << " entry " << k;
    }
  }
}

TEST(Losses, ValuesMatchFormulas) {
  const double z[2] = {0.3, -2.0}, y[2] = {1.0, -1.0};
  EXPECT_NEAR(cnn::loss_value(Loss::squared, z, y, 2, 1), 0.5 * (0.49 + 1.0), 1e-15);
  EXPECT_NEAR(cnn::loss_value(Loss::logistic, z, y, 2, 1), std::log1p(std::exp(-0.3)) + std::log1p(std::exp(-2.0)),
              1e-15);
  EXPECT_NEAR(cnn::loss_value(Loss::hinge, z, y, 2, 1), 0.7, 1e-15);
  EXPECT_NEAR(cnn::loss_value(Loss::squared_hinge, z, y, 2, 1), 0.49, 1e-15);
  // Huber hinge: margin 0.3 -> 1 - m = 0.7 >= mu = 0.5 -> 0.7 - 0.25; margin 2 -> 0.
  EXPECT_NEAR(cnn::loss_value(Loss::hinge, z, y, 2, 1, 0.5), 0.45, 1e-15);
  const double zc[3] = {1.0, 2.0, 0.5}, yc[3] = {0.0, 1.0, 0.0};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5));
  EXPECT_NEAR(cnn::loss_value(Loss::cross_entropy, zc, yc, 1, 3), lse - 2.0, 1e-14);
  // Large logits: no overflow.
  const double zl[2] = {800.0, -800.0}, yl[2] = {-1.0, 1.0};
  EXPECT_NEAR(cnn::loss_value(Loss::logistic, zl, yl, 2, 1), 1600.0, 1e-9);
  const double zcl[2] = {1000.0, -1000.0}, ycl[2] = {0.0, 1.0};
  EXPECT_NEAR(cnn::loss_value(Loss::cross_entropy, zcl, ycl, 1, 2), 2000.0, 1e-9);
}

TEST(Losses, FenchelYoungEqualityAtTheGradient) {
  // L(z) + L*(grad L(z)) = <grad L(z), z> for differentiable losses (and the smoothed hinge with its conjugate).
  std::mt19937 rng(2);
  for (const Case& cs : kCases) {
    const index_t n = 31, c = cs.c;
    auto y = targets(cs.loss, n, c, rng);
    auto z = randn(n * c, rng, 2.0);
    std::vector<double> g(z.size());
    const double v = cnn::loss_value_grad(cs.loss, z.data(), y.data(), n, c, g.data(), cs.mu);
    double ip = 0.0;
    for (std::size_t k = 0; k < z.size(); ++k) ip += g[k] * z[k];
    const double conj = cnn::loss_conjugate(cs.loss, g.data(), y.data(), n, c, cs.mu);
    EXPECT_NEAR(v + conj, ip, 1e-10 * (1 + std::abs(ip))) << cnn::loss_name(cs.loss);
  }
  // Exact hinge away from the kink: the subgradient is the gradient.
  std::vector<double> z = {-0.5, 2.0, 0.2}, y = {1.0, 1.0, -1.0}, g(3);
  const double v = cnn::loss_value_grad(Loss::hinge, z.data(), y.data(), 3, 1, g.data());
  const double conj = cnn::loss_conjugate(Loss::hinge, g.data(), y.data(), 3, 1);
  EXPECT_NEAR(v + conj, g[0] * z[0] + g[1] * z[1] + g[2] * z[2], 1e-14);
}

TEST(Losses, FenchelYoungInequalityHoldsEverywhereInTheDomain) {
  std::mt19937 rng(3);
  for (const Case& cs : kCases) {
    const index_t n = 17, c = cs.c;
    auto y = targets(cs.loss, n, c, rng);
    for (int rep = 0; rep < 20; ++rep) {
      auto z = randn(n * c, rng, 2.0), z2 = randn(n * c, rng, 2.0);
      std::vector<double> t(z.size());
      cnn::loss_value_grad(cs.loss, z2.data(), y.data(), n, c, t.data(), cs.mu);  // some point of the domain
      const double conj = cnn::loss_conjugate(cs.loss, t.data(), y.data(), n, c, cs.mu);
      ASSERT_TRUE(std::isfinite(conj));
      double ip = 0.0;
      for (std::size_t k = 0; k < z.size(); ++k) ip += t[k] * z[k];
      EXPECT_GE(cnn::loss_value(cs.loss, z.data(), y.data(), n, c, cs.mu) + conj, ip - 1e-10);
    }
  }
}

TEST(Losses, ConjugateIsInfiniteOutsideTheDomain) {
  const double inf = std::numeric_limits<double>::infinity();
  const double y[2] = {1.0, -1.0};
  const double t_log[2] = {0.5, -0.1};  // p = -y t = -0.5 < 0
  EXPECT_EQ(cnn::loss_conjugate(Loss::logistic, t_log, y, 2, 1), inf);
  const double t_hinge[2] = {-1.5, 0.5};  // y t = -1.5 < -1
  EXPECT_EQ(cnn::loss_conjugate(Loss::hinge, t_hinge, y, 2, 1), inf);
  const double t_sh[2] = {0.1, 0.5};  // y t = 0.1 > 0
  EXPECT_EQ(cnn::loss_conjugate(Loss::squared_hinge, t_sh, y, 2, 1), inf);
  const double yc[3] = {0.0, 1.0, 0.0}, tc[3] = {0.2, -0.1, 0.2};  // q = (0.2, 0.9, 0.2): sums to 1.3
  EXPECT_EQ(cnn::loss_conjugate(Loss::cross_entropy, tc, yc, 1, 3), inf);
  // Zero is always in the domain with L*(0) = 0 (every loss is >= 0 with infimum 0).
  const double zero[3] = {0.0, 0.0, 0.0};
  EXPECT_EQ(cnn::loss_conjugate(Loss::logistic, zero, y, 2, 1), 0.0);
  EXPECT_EQ(cnn::loss_conjugate(Loss::hinge, zero, y, 2, 1), 0.0);
  EXPECT_EQ(cnn::loss_conjugate(Loss::squared_hinge, zero, y, 2, 1), 0.0);
  // Boundary within roundoff is accepted.
  const double t_edge[2] = {-1.0 - 1e-13, 1.0};
  EXPECT_NEAR(cnn::loss_conjugate(Loss::logistic, t_edge, y, 2, 1), 0.0, 1e-10);
}

TEST(Losses, SmoothnessBoundsTheGradientLipschitzConstant) {
  std::mt19937 rng(4);
  for (const Case& cs : kCases) {
    const index_t n = 1, c = cs.c;
    auto y = targets(cs.loss, n, c, rng);
    const double L = cnn::loss_smoothness(cs.loss, cs.mu);
    double worst = 0.0;
    for (int rep = 0; rep < 4000; ++rep) {
      auto z1 = randn(c, rng, 2.0), z2 = z1;
      auto dz = randn(c, rng, 1e-3);
      for (index_t j = 0; j < c; ++j) z2[j] += dz[j];
      std::vector<double> g1(c), g2(c);
      cnn::loss_value_grad(cs.loss, z1.data(), y.data(), n, c, g1.data(), cs.mu);
      cnn::loss_value_grad(cs.loss, z2.data(), y.data(), n, c, g2.data(), cs.mu);
      double num = 0, den = 0;
      for (index_t j = 0; j < c; ++j) {
        num += (g1[j] - g2[j]) * (g1[j] - g2[j]);
        den += dz[j] * dz[j];
      }
      worst = std::max(worst, std::sqrt(num / den));
    }
    EXPECT_LE(worst, L * (1 + 1e-6)) << cnn::loss_name(cs.loss);
    EXPECT_GE(worst, 0.2 * L) << cnn::loss_name(cs.loss) << " (bound should not be wildly loose)";
  }
  EXPECT_TRUE(std::isinf(cnn::loss_smoothness(Loss::hinge)));
}

TEST(Losses, GradientAtZeroAndTargetValidation) {
  const double y[3] = {1.0, -1.0, 1.0};
  double g[3];
  cnn::loss_grad_at_zero(Loss::squared, y, 3, 1, g);
  EXPECT_EQ(g[1], 1.0);
  cnn::loss_grad_at_zero(Loss::logistic, y, 3, 1, g);
  EXPECT_DOUBLE_EQ(g[0], -0.5);
  cnn::loss_grad_at_zero(Loss::hinge, y, 3, 1, g);
  EXPECT_EQ(g[1], 1.0);
  cnn::loss_grad_at_zero(Loss::squared_hinge, y, 3, 1, g);
  EXPECT_EQ(g[2], -2.0);
  const double bad[2] = {1.0, 0.5};
  EXPECT_THROW(cnn::validate_targets(Loss::logistic, bad, 2, 1), std::invalid_argument);
  EXPECT_THROW(cnn::validate_targets(Loss::hinge, y, 1, 3), std::invalid_argument);  // c = 3
  const double onehot_bad[4] = {1.0, 1.0, 0.0, 1.0};
  EXPECT_THROW(cnn::validate_targets(Loss::cross_entropy, onehot_bad, 2, 2), std::invalid_argument);
  EXPECT_THROW(cnn::validate_targets(Loss::cross_entropy, y, 3, 1), std::invalid_argument);
  const double nan[1] = {std::nan("")};
  EXPECT_THROW(cnn::validate_targets(Loss::squared, nan, 1, 1), std::invalid_argument);
  EXPECT_THROW(cnn::parse_loss("hubber"), std::invalid_argument);
  EXPECT_EQ(cnn::parse_loss("squared_hinge"), Loss::squared_hinge);
  EXPECT_THROW(cnn::parse_groups("rows"), std::invalid_argument);
}

// ---- group norms and proximal operators ----

TEST(Prox, PenaltyDualNormAndSoftThreshold) {
  // Block 2 x 2: columns (3, 4) and (0, 1).
  std::vector<double> u = {3.0, 0.0, 4.0, 1.0};
  EXPECT_DOUBLE_EQ(cnn::block_penalty(u.data(), 2, 2, cnn::Groups::output), 6.0);
  EXPECT_DOUBLE_EQ(cnn::block_penalty(u.data(), 2, 2, cnn::Groups::neuron), std::sqrt(26.0));
  EXPECT_DOUBLE_EQ(cnn::block_dual_norm(u.data(), 2, 2, cnn::Groups::output), 5.0);
  EXPECT_DOUBLE_EQ(cnn::block_dual_norm(u.data(), 2, 2, cnn::Groups::neuron), std::sqrt(26.0));
  auto v = u;
  EXPECT_TRUE(cnn::block_soft_threshold(v.data(), 2, 2, cnn::Groups::output, 2.0));
  EXPECT_NEAR(v[0], 3.0 * 0.6, 1e-15);
  EXPECT_NEAR(v[2], 4.0 * 0.6, 1e-15);
  EXPECT_EQ(v[1], 0.0);  // column (0, 1) has norm 1 <= 2
  EXPECT_EQ(v[3], 0.0);
  v = u;
  EXPECT_TRUE(cnn::block_soft_threshold(v.data(), 2, 2, cnn::Groups::neuron, 1.0));
  const double f = 1.0 - 1.0 / std::sqrt(26.0);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(v[k], f * u[k], 1e-15);
  v = u;
  EXPECT_FALSE(cnn::block_soft_threshold(v.data(), 2, 2, cnn::Groups::neuron, 6.0));
  for (double e : v) EXPECT_EQ(e, 0.0);
  std::vector<float> uf = {3.0f, 4.0f};
  EXPECT_TRUE(cnn::block_soft_threshold(uf.data(), 2, 1, cnn::Groups::output, 2.5));
  EXPECT_NEAR(uf[0], 1.5f, 1e-6);
}

namespace {
// Objective of the metric model in eigen coordinates.
double metric_model(const std::vector<double>& V, const std::vector<double>& B, const std::vector<double>& h, index_t d,
                    index_t c, cnn::Groups g, double s, double beta) {
  double q = 0.0, lin = 0.0;
  for (index_t j = 0; j < d; ++j)
    for (index_t k = 0; k < c; ++k) {
      q += 0.5 * s * h[j] * V[j * c + k] * V[j * c + k];
      lin += B[j * c + k] * V[j * c + k];
    }
  return q - lin + beta * cnn::block_penalty(V.data(), d, c, g);
}
}  // namespace

TEST(Prox, MetricGroupSolveIsTheMinimiser) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uni(0.0, 3.0);
  for (int rep = 0; rep < 200; ++rep) {
    const index_t d = 1 + rep % 6, c = 1 + rep % 3;
    const cnn::Groups g = rep % 2 ? cnn::Groups::neuron : cnn::Groups::output;
    std::vector<double> h(d);
    for (auto& e : h) e = uni(rng);
    if (rep % 5 == 0) h[0] = 1e-3;  // badly conditioned
    const double s = 0.5 + uni(rng);
    auto B = randn(d * c, rng, 2.0);
    const double beta = uni(rng);
    std::vector<double> V(d * c);
    cnn::metric_group_solve(B.data(), h.data(), d, c, g, s, beta, 0.0, V.data());
    const double f0 = metric_model(V, B, h, d, c, g, s, beta);
    // No random perturbation improves the (strongly convex) model.
    for (int t = 0; t < 50; ++t) {
      auto W = V;
      auto e = randn(d * c, rng, t < 25 ? 1e-3 : 0.3);
      for (index_t k = 0; k < d * c; ++k) W[k] += e[k];
      EXPECT_GE(metric_model(W, B, h, d, c, g, s, beta), f0 - 1e-12 * (1 + std::abs(f0)));
    }
    // Zero groups are exactly those with ||B_group|| <= beta.
    if (g == cnn::Groups::output) {
      for (index_t k = 0; k < c; ++k) {
        double bn = 0, vn = 0;
        for (index_t j = 0; j < d; ++j) {
          bn += B[j * c + k] * B[j * c + k];
          vn += V[j * c + k] * V[j * c + k];
        }
        EXPECT_EQ(vn == 0.0, std::sqrt(bn) <= beta);
      }
    }
  }
}

TEST(Prox, MetricGroupSolveHandlesFlatDirectionsAndZeroBeta) {
  // h = (2, 0): the flat direction gets 0; beta = 0 gives B / (s h).
  const std::vector<double> h = {2.0, 0.0}, B = {4.0, 1e-17};
  std::vector<double> V(2);
  EXPECT_TRUE(cnn::metric_group_solve(B.data(), h.data(), 2, 1, cnn::Groups::output, 1.0, 0.0, 1e-12, V.data()));
  EXPECT_DOUBLE_EQ(V[0], 2.0);
  EXPECT_EQ(V[1], 0.0);
  // beta = 1: V = 4 / (2 + 1/|V|) -> |V| = 1.5.
  cnn::metric_group_solve(B.data(), h.data(), 2, 1, cnn::Groups::output, 1.0, 1.0, 1e-12, V.data());
  EXPECT_NEAR(V[0], 1.5, 1e-14);
  EXPECT_EQ(V[1], 0.0);
}

TEST(Prox, SecularNormSolvesTheEquation) {
  std::mt19937 rng(6);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  for (int rep = 0; rep < 500; ++rep) {
    const index_t m = 1 + rep % 20;
    std::vector<double> w(m), a(m);
    double tot = 0;
    for (index_t j = 0; j < m; ++j) {
      w[j] = std::pow(10.0, 4 * uni(rng) - 2);
      a[j] = std::pow(10.0, 8 * uni(rng) - 4);
      tot += w[j];
    }
    const double beta = std::sqrt(tot) * (rep % 7 == 0 ? 1e-6 : 0.9 * uni(rng) + 0.01);
    const double nu = cnn::secular_norm(w.data(), a.data(), m, beta);
    double S = 0.0;
    for (index_t j = 0; j < m; ++j) S += w[j] / ((a[j] * nu + beta) * (a[j] * nu + beta));
    EXPECT_NEAR(S, 1.0, 1e-12) << "rep " << rep;
  }
}

TEST(Losses, SampleWeightsScaleEveryTermAndKeepFenchelYoung) {
  // L_w = sum_k w_k l_k: value, gradient and curvature are the unweighted ones times w (per row); the weighted
  // conjugate is the perspective, so Fenchel-Young holds with equality at the gradient; weight 0 takes no dual.
  std::mt19937 rng(7);
  for (const Case& cs : kCases) {
    const index_t n = 19, c = cs.c;
    auto y = targets(cs.loss, n, c, rng);
    auto z = randn(n * c, rng, 1.5);
    std::vector<double> w(static_cast<std::size_t>(n));
    std::uniform_real_distribution<double> u(0.1, 3.0);
    for (auto& e : w) e = u(rng);
    w[4] = 0.0;
    std::vector<double> g(z.size()), gw(z.size());
    cnn::loss_value_grad(cs.loss, z.data(), y.data(), n, c, g.data(), cs.mu);
    const double vw = cnn::loss_value_grad(cs.loss, z.data(), y.data(), n, c, gw.data(), cs.mu, w.data());
    double expect = 0.0;
    for (index_t k = 0; k < n; ++k) expect += w[k] * cnn::loss_value(cs.loss, z.data() + k * c, y.data() + k * c, 1, c, cs.mu);
    EXPECT_NEAR(vw, expect, 1e-12 * (1 + std::abs(expect))) << cnn::loss_name(cs.loss);
    EXPECT_EQ(vw, cnn::loss_value(cs.loss, z.data(), y.data(), n, c, cs.mu, w.data()));
    double ip = 0.0;
    for (std::size_t e = 0; e < z.size(); ++e) {
      EXPECT_NEAR(gw[e], w[e / c] * g[e], 1e-15 * (1 + std::abs(g[e])));
      ip += gw[e] * z[e];
    }
    const double conj = cnn::loss_conjugate(cs.loss, gw.data(), y.data(), n, c, cs.mu, w.data());
    EXPECT_NEAR(vw + conj, ip, 1e-10 * (1 + std::abs(ip))) << cnn::loss_name(cs.loss);
    auto t = gw;
    t[4 * c] = 0.25;  // a dual on the weight-0 sample
    EXPECT_EQ(cnn::loss_conjugate(cs.loss, t.data(), y.data(), n, c, cs.mu, w.data()),
              std::numeric_limits<double>::infinity());
    // Curvature: the unweighted Hessian-vector product times the row weight.
    const cnn::LossCurvature h(cs.loss, z.data(), y.data(), n, c, cs.mu), hw(cs.loss, z.data(), y.data(), n, c, cs.mu,
                                                                              w.data());
    auto v = randn(n * c, rng);
    std::vector<double> hv(v.size()), hwv(v.size());
    h.apply(v.data(), hv.data());
    hw.apply(v.data(), hwv.data());
    for (std::size_t e = 0; e < v.size(); ++e) EXPECT_NEAR(hwv[e], w[e / c] * hv[e], 1e-15 * (1 + std::abs(hv[e])));
  }
  EXPECT_EQ(cnn::max_weight(nullptr, 3), 1.0);
  const double bad[2] = {1.0, -0.5};
  EXPECT_THROW(cnn::validate_weights(bad, 2), std::invalid_argument);
}
