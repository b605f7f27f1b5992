// Exact ReLU solver (relu_solver.hpp): the toy optimum of Pilanci & Ergen (ICML 2020, Fig. 2), honest
// certificates, feasible iterates, the cone operator it reads rows and masks through, the float32 floor.
#include "convexnn/solvers/relu_solver.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "convexnn/patterns/enumerate.hpp"
#include "convexnn/operator/cone_operator.hpp"
#include "convexnn/operator/masked_operator.hpp"

namespace convexnn {
namespace {

struct Toy {
  // Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, Fig. 2: x = -2..2 with a bias column, y =
  // [1, -1, 1, 1, -1].
  std::vector<double> X = {-2, 1, -1, 1, 0, 1, 1, 1, 2, 1};
  std::vector<double> y = {1, -1, 1, 1, -1};
  MatrixView<double> view() const { return MatrixView<double>::c_order(X.data(), 5, 2); }
};

TEST(ReluSolver, SeedToyReachesThePaperOptimumWithAnHonestCertificate) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  ASSERT_EQ(pats.n_patterns(), 9);  // Cover's 10 regions minus the all-zero one
  const MaskedOperator<double> op(toy.view(), pats);
  ReluSolver<double> solver(op, toy.y.data(), 1, Loss::squared);
  ReluOptions options;
  options.tol = 1e-7;
  options.max_iter = 200000;
  const ReluResult<double> res = solver.solve(1e-4, options);
  EXPECT_EQ(res.status, "converged");
  EXPECT_NEAR(res.objective, 0.0010128, 0.002 * 0.0010128);
  EXPECT_LE(res.dual_objective, res.objective);
  EXPECT_LE(res.gap, 1e-7);
  EXPECT_LE(res.max_violation, 1e-9);
  // The stand-alone certificate of the returned point agrees with the solver's.
  const ReluCertificate cert = solver.certificate(res.V.data(), res.W.data(), 1e-4);
  EXPECT_NEAR(cert.primal, res.objective, 1e-12);
  EXPECT_LE(cert.dual, cert.primal);
}

TEST(ReluSolver, LargeBetaGivesTheZeroNetworkAndHalfTheSquaredNorm) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  const MaskedOperator<double> op(toy.view(), pats);
  ReluSolver<double> solver(op, toy.y.data(), 1, Loss::squared);
  ReluOptions options;
  const ReluResult<double> res = solver.solve(10.0, options);  // beta_max = 4 / sqrt(5) for the relu toy
  EXPECT_EQ(res.status, "converged");
  EXPECT_NEAR(res.objective, 2.5, 1e-12);
  EXPECT_EQ(res.n_active, 0);
  EXPECT_NEAR(res.dual_objective, 2.5, 1e-9);
}

TEST(ReluSolver, IterationCapIsReportedAndTheBoundStaysValid) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  const MaskedOperator<double> op(toy.view(), pats);
  ReluSolver<double> solver(op, toy.y.data(), 1, Loss::squared);
  ReluOptions options;
  options.max_iter = 5;
  options.tol = 1e-12;
  const ReluResult<double> res = solver.solve(1e-4, options);
  EXPECT_EQ(res.status, "max_iter");
  EXPECT_EQ(res.n_iter, 5);
  EXPECT_LE(res.dual_objective, 0.0010128 * 1.002);  // below the optimum, wherever the primal is
  EXPECT_LE(res.max_violation, 1e-9);                // iterates are feasible by construction
}

// Ray Newton (on by default) and plain FISTA certify the same optimum, honestly, on random problems of about a
// hundred samples (n not a multiple of 64), for a quadratic and a non-quadratic loss; Newton actually runs and
// its iterates stay feasible (rescaled columns).
TEST(ReluSolver, RayNewtonAndPlainFistaCertifyTheSameOptimum) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  const index_t n = 130, d = 5;
  std::vector<double> X(n * d), teacher(d * 3), y(n), labels(n);
  for (auto& x : X) x = normal(rng);
  for (auto& t : teacher) t = normal(rng);
  for (index_t r = 0; r < n; ++r) {
    double out = 0.0;
    for (index_t h = 0; h < 3; ++h) {
      double pre = 0.0;
      for (index_t j = 0; j < d; ++j) pre += X[r * d + j] * teacher[j * 3 + h];
      out += (h == 1 ? -1.0 : 1.0) * std::max(0.0, pre);
    }
    y[r] = out + 0.1 * normal(rng);
    labels[r] = y[r] > 0.3 ? 1.0 : -1.0;
  }
  const auto view = MatrixView<double>::c_order(X.data(), n, d);
  const PatternSet pats = PatternSet::sample(view, 10, 5, false);
  const MaskedOperator<double> op(view, pats);
  for (const Loss loss : {Loss::squared, Loss::logistic}) {
    ReluSolver<double> solver(op, loss == Loss::squared ? y.data() : labels.data(), 1, loss);
    ReluOptions options;
    options.tol = 1e-8;
    options.max_iter = 100000;
    const double beta = loss == Loss::squared ? 2.0 : 1.0;
    const ReluResult<double> newton = solver.solve(beta, options);
    options.ray_newton = false;
    const ReluResult<double> plain = solver.solve(beta, options);
    SCOPED_TRACE(loss_name(loss));
    EXPECT_EQ(newton.status, "converged");
    EXPECT_EQ(plain.status, "converged");
    EXPECT_GE(newton.n_newton, 1);
    EXPECT_EQ(plain.n_newton, 0);
    EXPECT_NEAR(newton.objective, plain.objective, 1e-8 * plain.objective);
    // Each dual bound is below the other run's primal value (both are bounds on one optimum).
    EXPECT_LE(newton.dual_objective, plain.objective * (1 + 1e-12));
    EXPECT_LE(plain.dual_objective, newton.objective * (1 + 1e-12));
    EXPECT_LE(newton.max_violation, 1e-9);
    EXPECT_GT(newton.n_active, 0);
    // The reported certificate is the stand-alone certificate of the returned point.
    const ReluCertificate cert = solver.certificate(newton.V.data(), newton.W.data(), beta);
    EXPECT_NEAR(cert.primal, newton.objective, 1e-10 * newton.objective);
    EXPECT_LE(cert.dual, plain.objective * (1 + 1e-12));
  }
}

TEST(ReluSolver, RejectsBadArguments) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  const MaskedOperator<double> op(toy.view(), pats);
  ReluSolver<double> solver(op, toy.y.data(), 1, Loss::squared);
  ReluOptions options;
  EXPECT_THROW(solver.solve(-1.0, options), std::invalid_argument);
  options.tol = 0.0;
  EXPECT_THROW(solver.solve(1.0, options), std::invalid_argument);
  std::vector<double> bad_y = {1, 2, 3, 4, 5};  // not +-1 for a binary loss
  EXPECT_THROW(ReluSolver<double>(op, bad_y.data(), 1, Loss::logistic), std::invalid_argument);
}

// The solver reads rows, masks and violations through the cone operator: a CompositeConeOperator around the
// MaskedOperator (default row-loop violation, the same products) gives the same solve bit for bit; an operator
// without a PatternSet is rejected.
TEST(ReluSolver, CompositeOperatorGivesTheMaskedOperatorsSolveBitwise) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  const MaskedOperator<double> op(toy.view(), pats);
  const CompositeConeOperator<double> cone(op, toy.view(), pats);
  ReluOptions options;
  options.tol = 1e-9;
  options.max_iter = 3000;
  ReluSolver<double> a(op, toy.y.data(), 1, Loss::squared), b(cone, toy.y.data(), 1, Loss::squared);
  const ReluResult<double> ra = a.solve(0.05, options), rb = b.solve(0.05, options);
  EXPECT_EQ(ra.V, rb.V);
  EXPECT_EQ(ra.W, rb.W);
  EXPECT_EQ(ra.objective, rb.objective);
  EXPECT_EQ(ra.gap, rb.gap);
  EXPECT_EQ(ra.max_violation, rb.max_violation);
  EXPECT_EQ(ra.n_iter, rb.n_iter);
  std::vector<std::uint8_t> dense(5 * 2, 1);
  const MaskedOperator<double> packed(toy.view(), pack_masks(dense.data(), 5, 2, 2, 1), 2);
  EXPECT_THROW(ReluSolver<double>(packed, toy.y.data(), 1, Loss::squared), std::invalid_argument);
}

// float32 iterates stall above a tight tol; with precision_floor the solve says so early ("precision_floor",
// for a float64 continuation) instead of spinning to max_iter, and without it nothing changes. float64 never
// reports it (its solve is bitwise the same with the option).
TEST(ReluSolver, Float32PrecisionFloorIsDetectedOnlyWhenAsked) {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> normal;
  const index_t n = 150, d = 5;
  std::vector<double> X64(n * d), teacher(4 * 3), y(n);
  for (auto& t : teacher) t = normal(rng);
  for (index_t r = 0; r < n; ++r) {
    for (index_t j = 0; j < 4; ++j) X64[r * d + j] = normal(rng);
    X64[r * d + 4] = 1.0;  // bias column
    double out = 0.0;
    for (index_t h = 0; h < 3; ++h) {
      double pre = 0.0;
      for (index_t j = 0; j < 4; ++j) pre += X64[r * d + j] * teacher[j * 3 + h];
      out += (h == 1 ? -1.0 : 1.0) * std::max(0.0, pre);
    }
    y[r] = out + 0.1 * normal(rng);
  }
  std::vector<float> X(X64.begin(), X64.end());
  const auto view = MatrixView<float>::c_order(X.data(), n, d);
  const auto view64 = MatrixView<double>::c_order(X64.data(), n, d);
  const PatternSet pats = PatternSet::sample(view64, 16, 3, true);
  const MaskedOperator<float> op(view, pats);
  const MaskedOperator<double> op64(view64, pats);
  ReluSolver<float> solver(op, y.data(), 1, Loss::squared, &op64);
  ReluOptions options;
  options.tol = 1e-9;  // below float32's floor
  options.max_iter = 2000;
  const ReluResult<float> plain = solver.solve(0.5, options);
  options.precision_floor = true;
  const ReluResult<float> floored = solver.solve(0.5, options);
  EXPECT_NE(plain.status, "precision_floor");
  EXPECT_EQ(floored.status, "precision_floor");
  EXPECT_LT(floored.n_iter, plain.n_iter);
  EXPECT_GT(floored.gap, options.tol);
  EXPECT_LE(floored.dual_objective, plain.objective * (1 + 1e-9));  // still an honest bound
  // (Fresh solvers: the projector's warm starts carry over between solves of one solver.)
  ReluSolver<double> solver64a(op64, y.data(), 1, Loss::squared), solver64b(op64, y.data(), 1, Loss::squared);
  const ReluResult<double> a = solver64a.solve(0.5, options);
  options.precision_floor = false;
  const ReluResult<double> b = solver64b.solve(0.5, options);
  EXPECT_EQ(a.status, "converged");
  EXPECT_EQ(a.V, b.V);
  EXPECT_EQ(a.n_iter, b.n_iter);
}

}  // namespace
}  // namespace convexnn
