// Exact ReLU solver (relu_solver.hpp): the seed-003 toy optimum, honest certificates, feasible iterates.
#include "convexnn/relu_solver.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "convexnn/enumerate.hpp"
#include "convexnn/masked_operator.hpp"

namespace convexnn {
namespace {

struct Toy {
  // Seed 003, Fig. 2: x = -2..2 with a bias column, y = [1, -1, 1, 1, -1].
  std::vector<double> X = {-2, 1, -1, 1, 0, 1, 1, 1, 2, 1};
  std::vector<double> y = {1, -1, 1, 1, -1};
  MatrixView<double> view() const { return MatrixView<double>::c_order(X.data(), 5, 2); }
};

TEST(ReluSolver, SeedToyReachesThePaperOptimumWithAnHonestCertificate) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  ASSERT_EQ(pats.n_patterns(), 9);  // Cover's 10 regions minus the all-zero one
  const MaskedOperator<double> op(toy.view(), pats);
  ReluSolver<double> solver(op, toy.view(), pats, toy.y.data(), 1, Loss::squared);
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
  ReluSolver<double> solver(op, toy.view(), pats, toy.y.data(), 1, Loss::squared);
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
  ReluSolver<double> solver(op, toy.view(), pats, toy.y.data(), 1, Loss::squared);
  ReluOptions options;
  options.max_iter = 5;
  options.tol = 1e-12;
  const ReluResult<double> res = solver.solve(1e-4, options);
  EXPECT_EQ(res.status, "max_iter");
  EXPECT_EQ(res.n_iter, 5);
  EXPECT_LE(res.dual_objective, 0.0010128 * 1.002);  // below the optimum, wherever the primal is
  EXPECT_LE(res.max_violation, 1e-9);                // iterates are feasible by construction
}

TEST(ReluSolver, RejectsBadArguments) {
  Toy toy;
  const PatternSet pats = enumerate_patterns<double>(toy.view(), 1000);
  const MaskedOperator<double> op(toy.view(), pats);
  ReluSolver<double> solver(op, toy.view(), pats, toy.y.data(), 1, Loss::squared);
  ReluOptions options;
  EXPECT_THROW(solver.solve(-1.0, options), std::invalid_argument);
  options.tol = 0.0;
  EXPECT_THROW(solver.solve(1.0, options), std::invalid_argument);
  std::vector<double> bad_y = {1, 2, 3, 4, 5};  // not +-1 for a binary loss
  EXPECT_THROW(ReluSolver<double>(op, toy.view(), pats, bad_y.data(), 1, Loss::logistic), std::invalid_argument);
}

}  // namespace
}  // namespace convexnn
