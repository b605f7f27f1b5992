// The certified gated-ReLU solver on small problems: optimality against long runs, honest gaps, every
// status path, beta_max, paths, working sets, float32, determinism.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "convexnn/operator/dense_block_operator.hpp"
#include "convexnn/solvers/gated_solver.hpp"
#include "convexnn/operator/masked_operator.hpp"

namespace cnn = convexnn;
using cnn::index_t;
using cnn::Loss;

namespace {

// A random gated problem: X (n x d, last column ones when bias), P Gaussian gates, targets for the loss.
template <class T>
struct Problem {
  index_t n, d, P, c;
  std::vector<T> X;
  std::vector<std::uint64_t> words;
  std::vector<double> y;
  std::unique_ptr<cnn::MaskedOperator<T>> op;

  void build_op() {
    op = std::make_unique<cnn::MaskedOperator<T>>(cnn::MatrixView<T>::c_order(X.data(), n, d),
                                                  cnn::PackedMasks{words.data(), n, P, cnn::PackedMasks::words_for(n)});
  }
  // The same problem (same X values, masks and targets) in another precision.
  template <class S>
  explicit Problem(const Problem<S>& other)
      : n(other.n),
        d(other.d),
        P(other.P),
        c(other.c),
        X(other.X.begin(), other.X.end()),
        words(other.words),
        y(other.y) {
    build_op();
  }

  Problem(index_t n_, index_t d_, index_t P_, index_t c_, Loss loss, unsigned seed, bool bias = true)
      : n(n_), d(d_), P(P_), c(c_) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> g(0.0, 1.0);
    X.resize(n * d);
    for (index_t k = 0; k < n; ++k)
      for (index_t j = 0; j < d; ++j) X[k * d + j] = static_cast<T>(bias && j == d - 1 ? 1.0 : g(rng));
    std::vector<std::uint8_t> dense(n * P);
    std::vector<double> gate(d);
    for (index_t i = 0; i < P; ++i) {
      for (auto& e : gate) e = g(rng);
      for (index_t k = 0; k < n; ++k) {
        double s = 0;
        for (index_t j = 0; j < d; ++j) s += static_cast<double>(X[k * d + j]) * gate[j];
        dense[k * P + i] = s >= 0;
      }
    }
    words = cnn::pack_masks(dense.data(), n, P, P, 1);
    build_op();
    y.assign(n * c, 0.0);
    // Targets from a planted gated network plus noise, so the problem is not trivial.
    std::vector<double> w(d * c);
    for (auto& e : w) e = g(rng);
    for (index_t k = 0; k < n; ++k) {
      for (index_t j = 0; j < c; ++j) {
        double s = 0;
        for (index_t a = 0; a < d; ++a)
          s += static_cast<double>(X[k * d + a]) * w[a * c + j] * (dense[k * P] ? 1 : 0.3);
        s += 0.3 * g(rng);
        if (loss == Loss::squared)
          y[k * c + j] = s;
        else if (cnn::is_binary_loss(loss))
          y[k * c + j] = s >= 0 ? 1.0 : -1.0;
        else
          y[k * c + j] = s;  // argmax below
      }
      if (loss == Loss::cross_entropy) {
        index_t best = 0;
        for (index_t j = 1; j < c; ++j)
          if (y[k * c + j] > y[k * c + best]) best = j;
        for (index_t j = 0; j < c; ++j) y[k * c + j] = j == best ? 1.0 : 0.0;
      }
    }
  }
};

struct Setting {
  Loss loss;
  index_t c;
  cnn::Groups groups;
};

const std::vector<Setting> kSettings = {
    {Loss::squared, 1, cnn::Groups::output},       {Loss::squared, 3, cnn::Groups::output},
    {Loss::squared, 3, cnn::Groups::neuron},       {Loss::logistic, 1, cnn::Groups::output},
    {Loss::squared_hinge, 1, cnn::Groups::output}, {Loss::hinge, 1, cnn::Groups::output},
    {Loss::cross_entropy, 3, cnn::Groups::output}, {Loss::cross_entropy, 3, cnn::Groups::neuron},
};

cnn::GatedOptions opts(double tol, const char* solver, index_t max_iter = 200000) {
  cnn::GatedOptions o;
  o.tol = tol;
  o.solver = solver;
  o.max_iter = max_iter;
  return o;
}

}  // namespace

TEST(GatedSolver, BcdAndFistaReachTheSameCertifiedOptimum) {
  for (const Setting& st : kSettings) {
    Problem<double> pb(40, 4, 8, st.c, st.loss, 11);
    cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, pb.c, st.loss, st.groups);
    const double beta = 0.1 * solver.beta_max();
    auto ref = solver.solve(beta, opts(1e-11, "bcd"));
    ASSERT_EQ(ref.status, "converged") << cnn::loss_name(st.loss) << " gap " << ref.gap;
    ASSERT_LE(ref.gap, 1e-11);
    EXPECT_LE(ref.dual_objective, ref.objective * (1 + 1e-14));  // equal up to roundoff at a Newton-polished point
    for (const char* method : {"bcd", "fista"})
      for (bool newton : {true, false}) {
        auto o = opts(1e-7, method);
        o.newton = newton;
        auto res = solver.solve(beta, o);
        EXPECT_EQ(res.status, "converged") << cnn::loss_name(st.loss) << " " << method << " newton " << newton;
        EXPECT_EQ(res.solver, method);
        EXPECT_LE(res.gap, 1e-7);
        // Reported objective is the objective of the returned U.
        auto cert = solver.certificate(res.U.data(), beta);
        EXPECT_NEAR(cert.primal, res.objective, 1e-12 * res.objective);
        // Within the certified gap of the long run's optimum, and the gap is honest.
        const double excess = (res.objective - ref.objective) / res.objective;
        EXPECT_LE(excess, 1e-7 + 1e-11) << cnn::loss_name(st.loss) << " " << method;
        EXPECT_GE(res.gap, excess - 1e-11) << cnn::loss_name(st.loss) << " " << method;
        EXPECT_LE(res.dual_objective, ref.objective * (1 + 1e-11)) << "dual bound above the optimum";
      }
  }
}

TEST(GatedSolver, LooseToleranceGapIsNeverSmallerThanTheTrueExcess) {
  for (const Setting& st : kSettings) {
    Problem<double> pb(50, 5, 12, st.c, st.loss, 12);
    cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, pb.c, st.loss, st.groups);
    const double beta = 0.05 * solver.beta_max();
    auto ref = solver.solve(beta, opts(1e-11, "bcd"));
    ASSERT_EQ(ref.status, "converged");
    for (double tol : {1e-2, 1e-4}) {
      for (const char* method : {"bcd", "fista"}) {
        auto res = solver.solve(beta, opts(tol, method));
        const double excess = (res.objective - ref.objective) / res.objective;
        EXPECT_GE(res.gap, excess - 1e-11) << cnn::loss_name(st.loss) << " " << method << " tol " << tol;
        EXPECT_LE(res.gap, tol);
        for (const auto& h : res.history) {  // every recorded dual is a valid lower bound
          EXPECT_LE(h.dual_objective, ref.objective * (1 + 1e-11));
          EXPECT_GE(h.gap, 0.0);
        }
      }
    }
  }
}

TEST(GatedSolver, BetaMaxIsExact) {
  for (const Setting& st : kSettings) {
    Problem<double> pb(30, 3, 6, st.c, st.loss, 13);
    cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, pb.c, st.loss, st.groups);
    const double bmax = solver.beta_max();
    ASSERT_GT(bmax, 0);
    EXPECT_DOUBLE_EQ(bmax, cnn::gated_beta_max(*pb.op, pb.y.data(), pb.c, st.loss, st.groups));
    auto above = solver.solve(bmax * (1 + 1e-9), opts(1e-9, "bcd"));
    EXPECT_EQ(above.status, "converged");
    EXPECT_EQ(above.n_iter, 0);
    EXPECT_EQ(above.n_active, 0);
    auto below = solver.solve(bmax * 0.98, opts(1e-9, "bcd"));
    EXPECT_EQ(below.status, "converged");
    EXPECT_GE(below.n_active, 1);
  }
}

TEST(GatedSolver, WorkingSetsGiveTheSameAnswer) {
  Problem<double> pb(120, 5, 80, 1, Loss::squared, 14);
  cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, 1, Loss::squared, cnn::Groups::output);
  const double beta = 0.3 * solver.beta_max();
  auto full_opts = opts(1e-10, "bcd");
  full_opts.working_set = false;
  auto full = solver.solve(beta, full_opts);
  ASSERT_EQ(full.status, "converged");
  for (const char* method : {"bcd", "fista"}) {
    auto ws = solver.solve(beta, opts(1e-10, method));
    ASSERT_EQ(ws.status, "converged") << method;
    EXPECT_NEAR(ws.objective, full.objective, 2e-10 * full.objective) << method;
    EXPECT_LT(ws.n_active, 80);  // the solution is sparse, which is what working sets exploit
  }
}

TEST(GatedSolver, PathWarmStartsMatchColdSolves) {
  Problem<double> pb(60, 4, 15, 1, Loss::logistic, 15);
  cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, 1, Loss::logistic, cnn::Groups::output);
  const double bmax = solver.beta_max();
  std::vector<double> betas = {bmax, 0.5 * bmax, 0.1 * bmax, 0.02 * bmax};
  auto path = solver.solve_path(betas, opts(1e-9, "bcd"));
  ASSERT_EQ(path.size(), betas.size());
  for (std::size_t k = 0; k < betas.size(); ++k) {
    auto cold = solver.solve(betas[k], opts(1e-9, "bcd"));
    EXPECT_EQ(path[k].status, "converged");
    EXPECT_NEAR(path[k].objective, cold.objective, 3e-9 * cold.objective);
  }
}

TEST(GatedSolver, StatusPaths) {
  Problem<double> pb(50, 4, 10, 1, Loss::squared, 16);
  cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, 1, Loss::squared, cnn::Groups::output);
  const double beta = 0.01 * solver.beta_max();
  auto o = opts(1e-14, "fista", 3);
  auto r = solver.solve(beta, o);
  EXPECT_EQ(r.status, "max_iter");
  EXPECT_EQ(r.n_iter, 3);
  EXPECT_GT(r.gap, 1e-14);
  EXPECT_TRUE(std::isfinite(r.objective));
  o = opts(1e-14, "bcd");
  o.time_limit = 0.0;
  r = solver.solve(beta, o);
  EXPECT_EQ(r.status, "time_limit");
  // The callback stops the solve: "interrupted", the best point so far is still certified.
  int calls = 0;
  index_t last_iter = -1;
  o = opts(1e-14, "bcd");
  o.check_every = 2;
  o.callback = [&](const cnn::IterInfo& info) {
    EXPECT_GT(info.iteration, last_iter);
    last_iter = info.iteration;
    EXPECT_GT(info.time, 0.0);
    return ++calls < 3;
  };
  r = solver.solve(beta, o);
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.n_iter, 6);
  auto cert = solver.certificate(r.U.data(), beta);
  EXPECT_NEAR(cert.primal, r.objective, 1e-12 * r.objective);
  EXPECT_LE(r.dual_objective, r.objective);
  // Bad arguments.
  EXPECT_THROW(solver.solve(-1.0, opts(1e-6, "bcd")), std::invalid_argument);
  EXPECT_THROW(solver.solve(beta, opts(1e-6, "newton")), std::invalid_argument);
  EXPECT_THROW(solver.solve(beta, opts(-1.0, "bcd")), std::invalid_argument);
  std::vector<double> bad_warm(pb.P * pb.d, std::nan(""));
  EXPECT_THROW(solver.solve(beta, opts(1e-6, "bcd"), bad_warm.data()), std::invalid_argument);
  std::vector<double> bad_y(pb.n, 0.5);
  EXPECT_THROW(cnn::GatedSolver<double>(*pb.op, bad_y.data(), pb.n, 1, Loss::logistic, cnn::Groups::output),
               std::invalid_argument);
  EXPECT_THROW(cnn::GatedSolver<double>(*pb.op, pb.y.data(), pb.n - 1, 1, Loss::squared, cnn::Groups::output),
               std::invalid_argument);
}

namespace {
// An operator whose forward products turn into NaN after `healthy` calls (to exercise "diverged").
class PoisonedOperator final : public cnn::BlockOperator<double> {
 public:
  PoisonedOperator(const cnn::BlockOperator<double>& inner, int healthy) : inner_(inner), healthy_(healthy) {}
  index_t n_samples() const override { return inner_.n_samples(); }
  index_t block_dim() const override { return inner_.block_dim(); }
  index_t n_blocks() const override { return inner_.n_blocks(); }
  void forward(const double* U, index_t c, double* z, cnn::BlockSubset s = {}) const override {
    inner_.forward(U, c, z, s);
    if (calls_++ >= healthy_) z[0] = std::nan("");
  }
  void adjoint(const double* R, index_t c, double* G, cnn::BlockSubset s = {}) const override {
    inner_.adjoint(R, c, G, s);
  }
  void block_gram(index_t i, double* gram) const override { inner_.block_gram(i, gram); }

 private:
  const cnn::BlockOperator<double>& inner_;
  int healthy_;
  mutable std::atomic<int> calls_{0};
};
}  // namespace

TEST(GatedSolver, NanProductsGiveDiverged) {
  Problem<double> pb(50, 4, 10, 1, Loss::squared, 17);
  for (const char* method : {"bcd", "fista"}) {
    PoisonedOperator op(*pb.op, 40);
    cnn::GatedSolver<double> solver(op, pb.y.data(), pb.n, 1, Loss::squared, cnn::Groups::output);
    auto r = solver.solve(0.01 * solver.beta_max(), opts(1e-14, method));
    EXPECT_EQ(r.status, "diverged") << method;
    EXPECT_TRUE(std::isfinite(r.objective)) << "returns the best finite point";
  }
}

TEST(GatedSolver, Float32OperatorWithAndWithoutFloat64Certificates) {
  Problem<float> pf(80, 5, 12, 1, Loss::squared, 18);
  Problem<double> pd(pf);  // float64 copy of exactly the float32 problem
  cnn::GatedSolver<double> sd(*pd.op, pd.y.data(), pd.n, 1, Loss::squared, cnn::Groups::output);
  const double beta = 0.05 * sd.beta_max();
  auto ref = sd.solve(beta, opts(1e-11, "bcd"));
  {
    cnn::GatedSolver<float> sf(*pf.op, pf.y.data(), pf.n, 1, Loss::squared, cnn::Groups::output);
    EXPECT_NEAR(sf.beta_max(), sd.beta_max(), 1e-5 * sd.beta_max());
    auto r = sf.solve(beta, opts(1e-4, "bcd"));
    EXPECT_EQ(r.status, "converged");
    EXPECT_NEAR(r.objective, ref.objective, 1e-4 * ref.objective);
    EXPECT_LE(r.dual_objective, ref.objective * (1 + 1e-9));
  }
  {
    cnn::GatedSolver<float> sf(*pf.op, pf.y.data(), pf.n, 1, Loss::squared, cnn::Groups::output, pd.op.get());
    auto r = sf.solve(beta, opts(1e-5, "fista"));
    EXPECT_EQ(r.status, "converged");
    // Certificates were computed with the float64 operator: the objective is that of the float U in double.
    std::vector<double> Ud(r.U.begin(), r.U.end());
    auto cert = sd.certificate(Ud.data(), beta);
    EXPECT_NEAR(cert.primal, r.objective, 1e-12 * r.objective);
    EXPECT_LE(r.dual_objective, ref.objective * (1 + 1e-11));
    EXPECT_GE(r.gap, (r.objective - ref.objective) / r.objective - 1e-11);
  }
}

TEST(GatedSolver, DeterministicAndCertificateMatchesADenseOperator) {
  Problem<double> pb(70, 4, 9, 2, Loss::squared, 19);
  cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, 2, Loss::squared, cnn::Groups::neuron);
  const double beta = 0.05 * solver.beta_max();
  auto a = solver.solve(beta, opts(1e-9, "bcd"));
  auto b = solver.solve(beta, opts(1e-9, "bcd"));
  ASSERT_EQ(a.U.size(), b.U.size());
  for (std::size_t k = 0; k < a.U.size(); ++k) ASSERT_EQ(a.U[k], b.U[k]);
  EXPECT_EQ(a.n_iter, b.n_iter);
  // Same problem through explicit dense blocks: same certified optimum.
  auto dense = cnn::DenseBlockOperator<double>::from_masks(
      cnn::MatrixView<double>::c_order(pb.X.data(), pb.n, pb.d),
      cnn::PackedMasks{pb.words.data(), pb.n, pb.P, cnn::PackedMasks::words_for(pb.n)});
  cnn::GatedSolver<double> sdense(dense, pb.y.data(), pb.n, 2, Loss::squared, cnn::Groups::neuron);
  auto c = sdense.solve(beta, opts(1e-9, "fista"));
  EXPECT_NEAR(c.objective, a.objective, 2e-9 * a.objective);
  auto ca = solver.certificate(a.U.data(), beta), cd = sdense.certificate(a.U.data(), beta);
  EXPECT_NEAR(ca.primal, cd.primal, 1e-12 * ca.primal);
  EXPECT_NEAR(ca.dual, cd.dual, 1e-12 * std::abs(ca.primal));
}

TEST(GatedSolver, ZeroBetaAndWarmStartAtTheOptimum) {
  Problem<double> pb(60, 3, 5, 1, Loss::squared, 20, false);
  cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, 1, Loss::squared, cnn::Groups::output);
  // beta = 0: least squares; the dual bound is only 0 unless the fit is exact, so no certificate below tol.
  auto r0 = solver.solve(0.0, opts(1e-6, "bcd", 200));
  EXPECT_TRUE(std::isfinite(r0.objective));
  EXPECT_GE(r0.dual_objective, 0.0);
  const double beta = 0.1 * solver.beta_max();
  auto r = solver.solve(beta, opts(1e-10, "bcd"));
  ASSERT_EQ(r.status, "converged");
  auto again = solver.solve(beta, opts(1e-8, "bcd"), r.U.data());
  EXPECT_EQ(again.status, "converged");
  EXPECT_EQ(again.n_iter, 0);
}

TEST(GatedSolver, NewtonPhaseGivesATightCertificateQuickly) {
  // More parameters (P d = 240) than samples (n = 150): the regime where first-order methods crawl.
  for (const Setting& st :
       {Setting{Loss::squared, 1, cnn::Groups::output}, Setting{Loss::logistic, 1, cnn::Groups::output},
        Setting{Loss::cross_entropy, 3, cnn::Groups::neuron}}) {
    Problem<double> pb(150, 6, 40, st.c, st.loss, 21);
    cnn::GatedSolver<double> solver(*pb.op, pb.y.data(), pb.n, pb.c, st.loss, st.groups);
    const double beta = 0.05 * solver.beta_max();
    auto ref = solver.solve(beta, opts(1e-13, "fista"));
    ASSERT_EQ(ref.status, "converged") << cnn::loss_name(st.loss);
    auto o = opts(1e-9, "fista");
    auto with = solver.solve(beta, o);
    o.newton = false;
    o.max_iter = with.n_iter;  // the same budget without Newton
    auto without = solver.solve(beta, o);
    EXPECT_EQ(with.status, "converged") << cnn::loss_name(st.loss);
    EXPECT_LT(with.gap, without.gap) << cnn::loss_name(st.loss);
    const double excess = (with.objective - ref.objective) / with.objective;
    EXPECT_GE(with.gap, excess - 1e-13);
    EXPECT_LE(with.dual_objective, ref.objective * (1 + 1e-13));
  }
}

// The hinge polish's dense pseudo-inverse solve: the threaded (pollable) path gives the same step bitwise, and a
// stop inside a long LAPACK call returns at the next poll instead of at the end of the call.
#include <chrono>

#include "../../cpp/src/convexnn/solvers/gated/dense_solve.hpp"

namespace {
std::vector<double> random_symmetric(index_t N, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> K(static_cast<std::size_t>(N * N));
  for (index_t i = 0; i < N; ++i)
    for (index_t j = 0; j <= i; ++j) K[i * N + j] = K[j * N + i] = g(rng);
  return K;
}
}  // namespace

TEST(GatedHingePolish, ThreadedPseudoInverseStepIsBitwiseTheDirectOne) {
  const index_t N = 120;
  std::vector<double> F(static_cast<std::size_t>(N));
  for (index_t q = 0; q < N; ++q) F[q] = std::sin(1.0 + q);
  std::vector<double> direct(F.size()), threaded(F.size());
  auto never = [] { return false; };
  ASSERT_TRUE(cnn::gated::pseudo_inverse_step(N, random_symmetric(N, 3), F, direct, never, N + 1));
  ASSERT_TRUE(cnn::gated::pseudo_inverse_step(N, random_symmetric(N, 3), F, threaded, never, 1));
  EXPECT_EQ(direct, threaded);
  // It solves the system: K step = -F (K is nonsingular with probability one).
  const std::vector<double> K = random_symmetric(N, 3);
  for (index_t q = 0; q < N; ++q) {
    double r = F[q];
    for (index_t e = 0; e < N; ++e) r += K[q * N + e] * direct[e];
    EXPECT_NEAR(r, 0.0, 1e-8);
  }
}

TEST(GatedHingePolish, AStopInsideTheDenseSolveReturnsAtTheNextPoll) {
  const index_t N = 1600;  // an eigendecomposition of seconds
  std::vector<double> F(static_cast<std::size_t>(N), 1.0), step(F.size());
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const bool done = cnn::gated::pseudo_inverse_step(N, random_symmetric(N, 4), F, step, [&] { return seconds() > 0.05; });
  const double took = seconds();
  if (done) GTEST_SKIP() << "the eigendecomposition finished within 50 ms (" << took << " s): nothing to interrupt";
  EXPECT_LT(took, 0.5);  // the poll period is 20 ms
}
