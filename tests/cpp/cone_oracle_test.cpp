// Cone projection and dual-constraint oracle vs a brute-force projection (enumerate active subsets).
#include "convexnn/cones/cone_oracle.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace convexnn {
namespace {

using Word = PatternSet::Word;

// Row-major (n x d) matrix in double, the common currency of these tests.
struct Dense {
  index_t n = 0, d = 0;
  std::vector<double> a;
  double& operator()(index_t k, index_t j) { return a[k * d + j]; }
  double operator()(index_t k, index_t j) const { return a[k * d + j]; }
};

Dense random_matrix(index_t n, index_t d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Dense X{n, d, std::vector<double>(n * d)};
  for (auto& x : X.a) x = normal(rng);
  return X;
}

std::vector<Word> mask_of_bits(const std::vector<int>& bits) {
  const index_t n = static_cast<index_t>(bits.size());
  std::vector<Word> m((n + 63) / 64, 0);
  for (index_t k = 0; k < n; ++k)
    if (bits[k]) m[k / 64] |= Word{1} << (k % 64);
  return m;
}

std::vector<int> bits_of_gate(const Dense& X, const std::vector<double>& gate) {
  std::vector<int> bits(X.n);
  for (index_t k = 0; k < X.n; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < X.d; ++j) s += X(k, j) * gate[j];
    bits[k] = s >= 0.0;
  }
  return bits;
}

std::vector<double> random_vector(index_t d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> v(d);
  for (auto& x : v) x = normal(rng);
  return v;
}

double norm(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// Solves the (m x m) system G y = b by Gaussian elimination with partial pivoting; false when singular.
bool solve_small(std::vector<double> G, std::vector<double> b, index_t m, std::vector<double>& y) {
  double scale = 0.0;
  for (double x : G) scale = std::max(scale, std::abs(x));
  for (index_t c = 0; c < m; ++c) {
    index_t piv = c;
    for (index_t r = c + 1; r < m; ++r)
      if (std::abs(G[r * m + c]) > std::abs(G[piv * m + c])) piv = r;
    if (std::abs(G[piv * m + c]) <= 1e-10 * scale) return false;
    for (index_t j = 0; j < m; ++j) std::swap(G[c * m + j], G[piv * m + j]);
    std::swap(b[c], b[piv]);
    for (index_t r = c + 1; r < m; ++r) {
      const double f = G[r * m + c] / G[c * m + c];
      for (index_t j = c; j < m; ++j) G[r * m + j] -= f * G[c * m + j];
      b[r] -= f * b[c];
    }
  }
  y.assign(m, 0.0);
  for (index_t r = m - 1; r >= 0; --r) {
    double s = b[r];
    for (index_t j = r + 1; j < m; ++j) s -= G[r * m + j] * y[j];
    y[r] = s / G[r * m + r];
  }
  return true;
}

// The projection of g onto {u : s_k x_k^T u >= 0}: for every linearly independent subset S of rows with
// |S| <= d, project g onto the null space of A_S; among the feasible candidates the closest to g is the
// projection (the true face's span is the null space of one such S, and every candidate lies in K).
std::vector<double> brute_force_projection(const Dense& X, const std::vector<int>& bits, const std::vector<double>& g) {
  const index_t n = X.n, d = X.d;
  const double gnorm = norm(g);
  std::vector<double> best = g;
  double best_dist = std::numeric_limits<double>::infinity();
  auto a = [&](index_t k, index_t j) { return bits[k] ? X(k, j) : -X(k, j); };
  std::vector<double> row_norm(n);
  for (index_t k = 0; k < n; ++k) {
    double s = 0.0;
    for (index_t j = 0; j < d; ++j) s += X(k, j) * X(k, j);
    row_norm[k] = std::sqrt(s);
  }
  for (std::uint64_t subset = 0; subset < (std::uint64_t{1} << n); ++subset) {
    std::vector<index_t> S;
    for (index_t k = 0; k < n; ++k)
      if ((subset >> k) & 1U) S.push_back(k);
    const index_t m = static_cast<index_t>(S.size());
    if (m > d) continue;
    std::vector<double> u = g;
    if (m > 0) {
      std::vector<double> G(m * m), b(m), y;
      for (index_t p = 0; p < m; ++p) {
        for (index_t q = 0; q < m; ++q) {
          double s = 0.0;
          for (index_t j = 0; j < d; ++j) s += a(S[p], j) * a(S[q], j);
          G[p * m + q] = s;
        }
        double s = 0.0;
        for (index_t j = 0; j < d; ++j) s += a(S[p], j) * g[j];
        b[p] = s;
      }
      if (!solve_small(G, b, m, y)) continue;
      for (index_t p = 0; p < m; ++p)
        for (index_t j = 0; j < d; ++j) u[j] -= y[p] * a(S[p], j);
    }
    bool feasible = true;
    for (index_t k = 0; k < n && feasible; ++k) {
      double c = 0.0;
      for (index_t j = 0; j < d; ++j) c += a(k, j) * u[j];
      feasible = c >= -1e-12 * row_norm[k] * gnorm;
    }
    if (!feasible) continue;
    double dist = 0.0;
    for (index_t j = 0; j < d; ++j) dist += (u[j] - g[j]) * (u[j] - g[j]);
    if (dist < best_dist) {
      best_dist = dist;
      best = u;
    }
  }
  return best;
}

// Largest row-normalized violation max_k (-s_k x_k^T u)_+ / ||x_k||, recomputed independently.
double violation(const Dense& X, const std::vector<int>& bits, const std::vector<double>& u) {
  double worst = 0.0;
  for (index_t k = 0; k < X.n; ++k) {
    double c = 0.0, x2 = 0.0;
    for (index_t j = 0; j < X.d; ++j) {
      c += X(k, j) * u[j];
      x2 += X(k, j) * X(k, j);
    }
    if (!bits[k]) c = -c;
    if (x2 > 0.0) worst = std::max(worst, -c / std::sqrt(x2));
  }
  return worst;
}

template <class T>
ConeProjection<T> project_dense(const Dense& X, const std::vector<int>& bits, const std::vector<double>& g,
                                std::vector<T>& storage, double tol = 1e-10, index_t max_iter = 0) {
  storage.assign(X.a.begin(), X.a.end());
  const auto mask = mask_of_bits(bits);
  return project_onto_sign_cone(MatrixView<T>::c_order(storage.data(), X.n, X.d), mask.data(), g.data(), tol, max_iter);
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  double diff = 0.0;
  for (std::size_t j = 0; j < a.size(); ++j) diff = std::max(diff, std::abs(a[j] - b[j]));
  EXPECT_LE(diff, tol) << what;
}

// The projection of an instance. Always checked: converged, feasible to the tolerance, ||u||^2 = g^T u,
// ||u|| <= ||g||. With `compare_brute_force` (well-conditioned data) also u within 1e-8 of the brute-force
// projection. Thin cones (nearly opposite or nearly coplanar rows) make a double-precision brute force
// unreliable (its Gram systems have condition 1/angle^2); they are compared with an exact rational brute
// force in tests/python/test_cone_oracle.py instead.
template <class T>
void check_instance(const Dense& X, const std::vector<int>& bits, const std::vector<double>& g, const char* what,
                    bool compare_brute_force = true) {
  std::vector<T> storage;
  const auto res = project_dense<T>(X, bits, g, storage);
  Dense Xt = X;  // the data actually seen (rounded to T)
  for (index_t k = 0; k < X.n * X.d; ++k) Xt.a[k] = static_cast<double>(storage[k]);
  const double gnorm = norm(g);
  const double scale = std::max(1.0, gnorm);
  ASSERT_TRUE(res.converged) << what;
  EXPECT_LE(violation(Xt, bits, res.u), 1e-10 * gnorm + 1e-15) << what;
  EXPECT_NEAR(res.max_violation, violation(Xt, bits, res.u), 1e-12 * scale) << what;
  EXPECT_NEAR(res.norm, norm(res.u), 1e-12 * scale) << what;
  EXPECT_LE(res.norm, gnorm * (1 + 1e-12)) << what;
  double gu = 0.0;
  for (index_t j = 0; j < X.d; ++j) gu += g[j] * res.u[j];
  EXPECT_NEAR(gu, res.norm * res.norm, 1e-9 * scale * scale) << what;
  if (compare_brute_force) {
    const auto expected = brute_force_projection(Xt, bits, g);
    expect_close(res.u, expected, 1e-8 * scale, what);
    EXPECT_NEAR(res.norm, norm(expected), 1e-8 * scale) << what;
  }
}

TEST(ConeProjection, MatchesBruteForceOnRandomInstances) {
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<int> coin(0, 1);
  int checked = 0;
  for (index_t d = 1; d <= 4; ++d) {
    for (index_t n = 1; n <= 9; ++n) {
      for (int rep = 0; rep < 6; ++rep) {
        const Dense X = random_matrix(n, d, rng);
        std::vector<int> bits(n);
        if (rep % 2 == 0) {
          bits = bits_of_gate(X, random_vector(d, rng));  // a realizable pattern: K has an interior
        } else {
          for (auto& b : bits) b = coin(rng);  // any sign vector: K may be lower-dimensional or {0}
        }
        const auto g = random_vector(d, rng);
        check_instance<double>(X, bits, g, "double");
        check_instance<float>(X, bits, g, "float");
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 4 * 9 * 6);
}

TEST(ConeProjection, ZeroGradientGivesZero) {
  std::mt19937_64 rng(1);
  const Dense X = random_matrix(7, 3, rng);
  std::vector<int> bits{1, 0, 1, 1, 0, 0, 1};
  std::vector<double> storage;
  const auto res = project_dense<double>(X, bits, std::vector<double>(3, 0.0), storage);
  EXPECT_TRUE(res.converged);
  EXPECT_EQ(res.norm, 0.0);
  EXPECT_EQ(res.iterations, 0);
  for (double x : res.u) EXPECT_EQ(x, 0.0);
}

TEST(ConeProjection, GradientInsideTheConeIsItsOwnProjection) {
  std::mt19937_64 rng(2);
  const Dense X = random_matrix(40, 5, rng);
  const auto gate = random_vector(5, rng);
  const auto bits = bits_of_gate(X, gate);  // the gate itself lies in its cone
  std::vector<double> storage;
  const auto res = project_dense<double>(X, bits, gate, storage);
  EXPECT_TRUE(res.converged);
  EXPECT_EQ(res.iterations, 0);
  expect_close(res.u, gate, 0.0, "u == g");
  EXPECT_NEAR(res.norm, norm(gate), 1e-14);
}

TEST(ConeProjection, OppositeDuplicateRowsGiveTheZeroCone) {
  // Rows x, -x, y, -y all active: x^T u >= 0 and -x^T u >= 0 (same for y), so K = {0} in R^2.
  Dense X{4, 2, {1.0, 2.0, -1.0, -2.0, 0.5, -3.0, -0.5, 3.0}};
  std::vector<int> bits{1, 1, 1, 1};
  std::mt19937_64 rng(3);
  for (int rep = 0; rep < 5; ++rep) {
    const auto g = random_vector(2, rng);
    std::vector<double> storage;
    const auto res = project_dense<double>(X, bits, g, storage);
    EXPECT_TRUE(res.converged);
    EXPECT_LE(res.norm, 1e-12 * norm(g));
    check_instance<double>(X, bits, g, "zero cone");
  }
}

TEST(ConeProjection, LowerDimensionalConeIsAHalfLine) {
  // x^T u = 0 forced by (x, -x) active in R^2 leaves the line x^perp; a third row cuts it to a half-line.
  Dense X{3, 2, {1.0, 0.0, -1.0, 0.0, 0.0, 1.0}};
  std::vector<int> bits{1, 1, 1};
  std::vector<double> storage;
  const std::vector<double> g{3.0, -2.0};  // projection onto {(0, t), t >= 0} is 0
  auto res = project_dense<double>(X, bits, g, storage);
  EXPECT_TRUE(res.converged);
  EXPECT_LE(res.norm, 1e-12);
  const std::vector<double> h{-3.0, 2.0};  // projection is (0, 2)
  res = project_dense<double>(X, bits, h, storage);
  EXPECT_TRUE(res.converged);
  expect_close(res.u, {0.0, 2.0}, 1e-12, "half-line");
}

TEST(ConeProjection, DegenerateDataMatchesBruteForce) {
  std::mt19937_64 rng(4);
  std::uniform_int_distribution<int> coin(0, 1);
  for (int rep = 0; rep < 40; ++rep) {
    const index_t n = 8, d = 3;
    Dense X = random_matrix(n, d, rng);
    // Dyadic entries keep the degeneracies below exact in float too (same problem for both types).
    for (auto& x : X.a) x = std::round(x * 64.0) / 64.0;
    switch (rep % 4) {
      case 0:  // rank-deficient: third column = first + second
        for (index_t k = 0; k < n; ++k) X(k, 2) = X(k, 0) + X(k, 1);
        break;
      case 1:  // duplicate and opposite-duplicate rows
        for (index_t j = 0; j < d; ++j) {
          X(1, j) = X(0, j);
          X(2, j) = -X(0, j);
          X(4, j) = 2.5 * X(3, j);
        }
        break;
      case 2:  // zero rows (the constraint 0 >= 0 never binds)
        for (index_t j = 0; j < d; ++j) X(0, j) = X(5, j) = 0.0;
        break;
      default:  // rank one: every row a multiple of one vector
        for (index_t k = 0; k < n; ++k)
          for (index_t j = 0; j < d; ++j) X(k, j) = X(k, 0) * (j + 1.0);
        break;
    }
    std::vector<int> bits(n);
    for (auto& b : bits) b = coin(rng);
    const auto g = random_vector(d, rng);
    check_instance<double>(X, bits, g, "degenerate double");
    check_instance<float>(X, bits, g, "degenerate float");
  }
}

TEST(ConeProjection, NearlyDegenerateThinConesAreSolvedAccurately) {
  // Rows nearly in a plane, or nearly opposite: thin cones whose exact representation needs multipliers
  // ~ 1/angle. The iterate must still converge to the tolerance (optimality: see the Python exact test).
  std::mt19937_64 rng(8);
  std::uniform_int_distribution<int> coin(0, 1);
  std::normal_distribution<double> normal;
  for (int rep = 0; rep < 60; ++rep) {
    const index_t n = 8, d = 3;
    Dense X = random_matrix(n, d, rng);
    const double eps = std::pow(10.0, -4.0 - (rep % 6) * 2.0);  // 1e-4 .. 1e-14
    if (rep % 2 == 0) {
      for (index_t k = 0; k < n; ++k) X(k, 2) = X(k, 0) + X(k, 1) + eps * normal(rng);
    } else {
      for (index_t j = 0; j < d; ++j) {
        X(1, j) = -X(0, j) + eps * normal(rng);
        X(3, j) = -X(2, j) + eps * normal(rng);
      }
    }
    std::vector<int> bits(n);
    for (auto& b : bits) b = coin(rng);
    if (rep % 2 == 1) bits[0] = bits[1] = bits[2] = bits[3] = 1;
    const auto g = random_vector(d, rng);
    SCOPED_TRACE(testing::Message() << "rep " << rep << " eps " << eps);
    check_instance<double>(X, bits, g, "thin double", false);
    check_instance<float>(X, bits, g, "thin float", false);
  }
}

TEST(ConeProjection, AllZeroDataLeavesGUnchanged) {
  Dense X{5, 3, std::vector<double>(15, 0.0)};
  std::vector<int> bits{1, 0, 1, 0, 0};
  const std::vector<double> g{1.0, -2.0, 0.5};
  std::vector<double> storage;
  const auto res = project_dense<double>(X, bits, g, storage);
  EXPECT_TRUE(res.converged);
  expect_close(res.u, g, 0.0, "no constraint binds");
}

TEST(ConeProjection, LargerInstancesAreFeasibleAndOptimal) {
  // No brute force at this size: check the optimality conditions of a projection onto a cone instead,
  // u in K, ||u||^2 = g^T u, and that u beats every cone point on the segment to a random feasible point.
  std::mt19937_64 rng(5);
  for (index_t n : {63, 64, 65, 300}) {
    for (index_t d : {2, 5, 12}) {
      const Dense X = random_matrix(n, d, rng);
      const auto gate = random_vector(d, rng);
      const auto bits = bits_of_gate(X, gate);
      const auto g = random_vector(d, rng);
      std::vector<double> storage;
      const auto res = project_dense<double>(X, bits, g, storage);
      ASSERT_TRUE(res.converged) << "n=" << n << " d=" << d;
      EXPECT_LE(violation(X, bits, res.u), 1e-10 * norm(g));
      double gu = 0.0;
      for (index_t j = 0; j < d; ++j) gu += g[j] * res.u[j];
      EXPECT_NEAR(gu, res.norm * res.norm, 1e-10);
      // Variational inequality <g - u, v - u> <= 0 for v in K: the gate is in K, and so is the cone over it.
      for (double scale : {0.1, 1.0, 10.0}) {
        double vi = 0.0;
        for (index_t j = 0; j < d; ++j) vi += (g[j] - res.u[j]) * (scale * gate[j] - res.u[j]);
        EXPECT_LE(vi, 1e-9);
      }
      EXPECT_LE(res.iterations, 10 * d + 20);
    }
  }
}

TEST(ConeProjection, StridedViewsGiveTheSameAnswer) {
  std::mt19937_64 rng(6);
  const index_t n = 70, d = 4;
  const Dense X = random_matrix(n, d, rng);
  const auto bits = bits_of_gate(X, random_vector(d, rng));
  const auto mask = mask_of_bits(bits);
  const auto g = random_vector(d, rng);
  std::vector<double> c_store(X.a), f_store(n * d), wide(n * 2 * d);
  for (index_t k = 0; k < n; ++k)
    for (index_t j = 0; j < d; ++j) {
      f_store[j * n + k] = X(k, j);
      wide[k * 2 * d + 2 * j] = X(k, j);  // every other column of an (n x 2d) matrix: not BLAS-readable
    }
  const auto rc = project_onto_sign_cone(MatrixView<double>::c_order(c_store.data(), n, d), mask.data(), g.data());
  const auto rf = project_onto_sign_cone(MatrixView<double>::f_order(f_store.data(), n, d), mask.data(), g.data());
  const MatrixView<double> strided{wide.data(), n, d, 2 * d, 2};
  const auto rs = project_onto_sign_cone(strided, mask.data(), g.data());
  expect_close(rf.u, rc.u, 1e-13, "F vs C");
  expect_close(rs.u, rc.u, 1e-13, "strided vs C");
  // float data widened to double is the same problem as the widened copy in double
  std::vector<float> f32(X.a.begin(), X.a.end());
  std::vector<double> widened(f32.begin(), f32.end());
  const auto r32 = project_onto_sign_cone(MatrixView<float>::c_order(f32.data(), n, d), mask.data(), g.data());
  const auto r64 = project_onto_sign_cone(MatrixView<double>::c_order(widened.data(), n, d), mask.data(), g.data());
  expect_close(r32.u, r64.u, 0.0, "float vs widened double");
}

TEST(ConeProjection, EarlyStopGivesADecreasingUpperBound) {
  // Every iterate is dual feasible, so ||u_k|| >= ||Pi_K(g)||, and ||u_k|| does not increase.
  std::mt19937_64 rng(7);
  const index_t n = 200, d = 8;
  const Dense X = random_matrix(n, d, rng);
  const auto bits = bits_of_gate(X, random_vector(d, rng));
  const auto g = random_vector(d, rng);
  std::vector<double> storage;
  const auto exact = project_dense<double>(X, bits, g, storage);
  ASSERT_TRUE(exact.converged);
  ASSERT_GE(exact.iterations, 3);
  double previous = std::numeric_limits<double>::infinity();
  for (index_t cap = 1; cap < exact.iterations; ++cap) {
    const auto early = project_dense<double>(X, bits, g, storage, 1e-10, cap);
    EXPECT_FALSE(early.converged) << cap;
    EXPECT_EQ(early.iterations, cap);
    EXPECT_GE(early.norm, exact.norm * (1 - 1e-12)) << cap;
    EXPECT_LE(early.norm, previous * (1 + 1e-12)) << cap;
    EXPECT_GT(early.max_violation, 0.0) << cap;
    previous = early.norm;
  }
}

TEST(ConeProjection, RejectsBadArguments) {
  std::vector<double> x(6, 1.0);
  const auto X = MatrixView<double>::c_order(x.data(), 3, 2);
  const auto mask = mask_of_bits({1, 0, 1});
  const double g[2] = {1.0, 2.0};
  EXPECT_THROW(project_onto_sign_cone(X, mask.data(), g, -1.0), std::invalid_argument);
  EXPECT_THROW(project_onto_sign_cone(X, mask.data(), g, std::nan("")), std::invalid_argument);
  const double bad_g[2] = {1.0, std::numeric_limits<double>::infinity()};
  EXPECT_THROW(project_onto_sign_cone(X, mask.data(), bad_g), std::invalid_argument);
  EXPECT_THROW(project_onto_sign_cone(MatrixView<double>::c_order(x.data(), 0, 2), mask.data(), g),
               std::invalid_argument);
}

// ---- the dual-constraint oracle ---------------------------------------------------------------------

// Patterns with arbitrary sign vectors (not necessarily realizable by a gate), gates set to 0.
PatternSet patterns_of_bits(index_t n, index_t d, const std::vector<std::vector<int>>& all_bits) {
  std::vector<Word> words;
  for (const auto& bits : all_bits) {
    const auto m = mask_of_bits(bits);
    words.insert(words.end(), m.begin(), m.end());
  }
  return PatternSet::from_words(n, d, std::move(words), std::vector<double>(all_bits.size() * d, 0.0));
}

std::vector<int> bits_of_pattern(const PatternSet& pats, index_t i) {
  std::vector<int> bits(pats.n_samples());
  for (index_t k = 0; k < pats.n_samples(); ++k) bits[k] = pats.active(k, i);
  return bits;
}

// g = X^T D_i r, naively.
std::vector<double> masked_gradient(const Dense& X, const std::vector<int>& bits, const std::vector<double>& r) {
  std::vector<double> g(X.d, 0.0);
  for (index_t k = 0; k < X.n; ++k)
    if (bits[k])
      for (index_t j = 0; j < X.d; ++j) g[j] += X(k, j) * r[k];
  return g;
}

struct OracleOutput {
  std::vector<double> pos, neg, arg;
  ConeOracleInfo info;
};

template <class T>
OracleOutput run_oracle(const std::vector<T>& x, index_t n, index_t d, const PatternSet& pats, const std::vector<T>& r,
                        BlockSubset subset = {}, index_t max_iter = 0) {
  const index_t S = subset.count(pats.n_patterns());
  OracleOutput out{std::vector<double>(S), std::vector<double>(S), std::vector<double>(S * d), {}};
  out.info = dual_constraint_oracle(MatrixView<T>::c_order(x.data(), n, d), pats, r.data(), subset, 1e-10,
                                    out.pos.data(), out.neg.data(), out.arg.data(), max_iter);
  return out;
}

TEST(DualConstraintOracle, MatchesBruteForceProjectionNorms) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> coin(0, 1);
  for (index_t d : {1, 2, 3}) {
    const index_t n = 7;
    const Dense X = random_matrix(n, d, rng);
    std::vector<std::vector<int>> all_bits(12, std::vector<int>(n));
    for (std::size_t i = 0; i < all_bits.size(); ++i) {
      if (i % 2 == 0) {
        all_bits[i] = bits_of_gate(X, random_vector(d, rng));
      } else {
        for (auto& b : all_bits[i]) b = coin(rng);
      }
      all_bits[i][0] = 1;  // never the all-zero pattern
    }
    const PatternSet pats = patterns_of_bits(n, d, all_bits);
    const auto r = random_vector(n, rng);
    const auto out = run_oracle<double>(X.a, n, d, pats, r);
    EXPECT_EQ(out.info.n_unconverged, 0);
    for (index_t i = 0; i < pats.n_patterns(); ++i) {
      const auto bits = bits_of_pattern(pats, i);
      auto g = masked_gradient(X, bits, r);
      const double expected_pos = norm(brute_force_projection(X, bits, g));
      for (auto& x : g) x = -x;
      const double expected_neg = norm(brute_force_projection(X, bits, g));
      EXPECT_NEAR(out.pos[i], expected_pos, 1e-9) << "d=" << d << " i=" << i;
      EXPECT_NEAR(out.neg[i], expected_neg, 1e-9) << "d=" << d << " i=" << i;
      // The maximizer: unit (or 0), in the cone, and attains the larger value.
      std::vector<double> u(out.arg.begin() + i * d, out.arg.begin() + (i + 1) * d);
      const double best = std::max(out.pos[i], out.neg[i]);
      if (best > 0.0) {
        EXPECT_NEAR(norm(u), 1.0, 1e-12);
      } else {
        EXPECT_EQ(norm(u), 0.0);
      }
      EXPECT_LE(violation(X, bits, u), 1e-9);
      double value = 0.0;  // (+-r)^T D_i X u
      for (index_t k = 0; k < n; ++k) {
        if (!bits[k]) continue;
        double xu = 0.0;
        for (index_t j = 0; j < d; ++j) xu += X(k, j) * u[j];
        value += r[k] * xu;
      }
      EXPECT_NEAR(out.pos[i] >= out.neg[i] ? value : -value, best, 1e-9);
    }
  }
}

TEST(DualConstraintOracle, AgreesWithSingleProjectionsOnGatePatterns) {
  std::mt19937_64 rng(12);
  for (index_t n : {5, 64, 130}) {
    for (index_t d : {2, 6}) {
      const Dense X = random_matrix(n, d, rng);
      std::vector<double> gates(20 * d);
      for (auto& x : gates) x = std::normal_distribution<double>()(rng);
      const auto view = MatrixView<double>::c_order(X.a.data(), n, d);
      const PatternSet pats = PatternSet::from_gates(view, gates.data(), 20);
      ASSERT_GE(pats.n_patterns(), 1);
      const auto r = random_vector(n, rng);
      const auto out = run_oracle<double>(X.a, n, d, pats, r);
      EXPECT_EQ(out.info.n_unconverged, 0);
      EXPECT_LE(out.info.max_relative_violation, 1e-10);
      index_t iterations = 0;
      for (index_t i = 0; i < pats.n_patterns(); ++i) {
        auto g = masked_gradient(X, bits_of_pattern(pats, i), r);
        const auto pos = project_onto_pattern_cone(view, pats, i, g.data());
        for (auto& x : g) x = -x;
        const auto neg = project_onto_pattern_cone(view, pats, i, g.data());
        EXPECT_NEAR(out.pos[i], pos.norm, 1e-10 * std::max(1.0, norm(g)));
        EXPECT_NEAR(out.neg[i], neg.norm, 1e-10 * std::max(1.0, norm(g)));
        iterations += pos.iterations + neg.iterations;
      }
      EXPECT_EQ(out.info.total_iterations, iterations);
    }
  }
}

TEST(DualConstraintOracle, SubsetsThreadsAndFloatAgree) {
  std::mt19937_64 rng(13);
  const index_t n = 150, d = 5;
  const Dense X = random_matrix(n, d, rng);
  std::vector<double> gates(40 * d);
  for (auto& x : gates) x = std::normal_distribution<double>()(rng);
  const PatternSet pats = PatternSet::from_gates(MatrixView<double>::c_order(X.a.data(), n, d), gates.data(), 40);
  const index_t P = pats.n_patterns();
  ASSERT_GE(P, 10);
  const auto r = random_vector(n, rng);

  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = run_oracle<double>(X.a, n, d, pats, r);
  omp_set_num_threads(std::max(2, threads));
  const auto many = run_oracle<double>(X.a, n, d, pats, r);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.pos, many.pos);  // bitwise: each pattern's result does not depend on the thread count
  EXPECT_EQ(one.neg, many.neg);
  EXPECT_EQ(one.arg, many.arg);
  EXPECT_EQ(one.info.total_iterations, many.info.total_iterations);

  const std::vector<index_t> picked{P - 1, 0, 3, 3};
  const auto sub = run_oracle<double>(X.a, n, d, pats, r, BlockSubset::of(picked));
  for (std::size_t s = 0; s < picked.size(); ++s) {
    EXPECT_EQ(sub.pos[s], one.pos[picked[s]]);
    EXPECT_EQ(sub.neg[s], one.neg[picked[s]]);
    for (index_t j = 0; j < d; ++j) EXPECT_EQ(sub.arg[s * d + j], one.arg[picked[s] * d + j]);
  }
  const std::vector<index_t> none;
  const auto empty = run_oracle<double>(X.a, n, d, pats, r, BlockSubset::of(none));
  EXPECT_TRUE(empty.pos.empty());

  // float data: the same as its float64 widening, bitwise (the core widens float to double).
  const std::vector<float> x32(X.a.begin(), X.a.end()), r32(r.begin(), r.end());
  const std::vector<double> x_wide(x32.begin(), x32.end()), r_wide(r32.begin(), r32.end());
  const auto f = run_oracle<float>(x32, n, d, pats, r32);
  const auto w = run_oracle<double>(x_wide, n, d, pats, r_wide);
  EXPECT_EQ(f.pos, w.pos);
  EXPECT_EQ(f.neg, w.neg);
}

TEST(DualConstraintOracle, EarlyStopValuesAreUpperBounds) {
  std::mt19937_64 rng(14);
  const index_t n = 300, d = 6;
  const Dense X = random_matrix(n, d, rng);
  std::vector<double> gates(15 * d);
  for (auto& x : gates) x = std::normal_distribution<double>()(rng);
  const PatternSet pats = PatternSet::from_gates(MatrixView<double>::c_order(X.a.data(), n, d), gates.data(), 15);
  const auto r = random_vector(n, rng);
  const auto exact = run_oracle<double>(X.a, n, d, pats, r);
  ASSERT_EQ(exact.info.n_unconverged, 0);
  ASSERT_GE(exact.info.max_iterations, 3);
  const auto early = run_oracle<double>(X.a, n, d, pats, r, {}, 2);
  EXPECT_GT(early.info.n_unconverged, 0);
  EXPECT_LE(early.info.max_iterations, 2);
  for (index_t i = 0; i < pats.n_patterns(); ++i) {
    EXPECT_GE(early.pos[i], exact.pos[i] * (1 - 1e-12));
    EXPECT_GE(early.neg[i], exact.neg[i] * (1 - 1e-12));
  }
}

TEST(DualConstraintOracle, RejectsBadArguments) {
  std::mt19937_64 rng(15);
  const index_t n = 10, d = 3;
  const Dense X = random_matrix(n, d, rng);
  std::vector<double> gates{1.0, 0.0, 0.0, 0.0, 1.0, 0.0};
  const auto view = MatrixView<double>::c_order(X.a.data(), n, d);
  const PatternSet pats = PatternSet::from_gates(view, gates.data(), 2);
  const auto r = random_vector(n, rng);
  std::vector<double> pos(2), neg(2);
  const std::vector<index_t> bad{0, 7};
  EXPECT_THROW(dual_constraint_oracle(view, pats, r.data(), BlockSubset::of(bad), 1e-10, pos.data(), neg.data()),
               std::invalid_argument);
  EXPECT_THROW(dual_constraint_oracle(view, pats, r.data(), {}, -1.0, pos.data(), neg.data()), std::invalid_argument);
  const auto fewer_rows = MatrixView<double>::c_order(X.a.data(), n - 1, d);
  EXPECT_THROW(dual_constraint_oracle(fewer_rows, pats, r.data(), {}, 1e-10, pos.data(), neg.data()),
               std::invalid_argument);
  auto r_nan = r;
  r_nan[4] = std::nan("");
  EXPECT_THROW(dual_constraint_oracle(view, pats, r_nan.data(), {}, 1e-10, pos.data(), neg.data()),
               std::invalid_argument);
  const double g[3] = {1.0, 2.0, 3.0};
  EXPECT_THROW(project_onto_pattern_cone(view, pats, 2, g), std::invalid_argument);
  EXPECT_THROW(project_onto_pattern_cone(view, pats, -1, g), std::invalid_argument);
}

}  // namespace
}  // namespace convexnn

// ---- PatternConeProjector: warm-started repeated projections ------------------------------------------

namespace convexnn {
namespace {

// A sequence of nearby inputs per slot (as in a solver's iterations): every warm-started projection must
// equal the cold one, whether the warm state came from the same pattern, a perturbed g, a much larger
// jump, or an early stop (stop_below); slots switching patterns must not reuse a stale factorization.
TEST(PatternConeProjector, WarmStartsGiveTheColdProjection) {
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal;
  for (index_t n : {7, 40, 200}) {
    for (index_t d : {2, 5, 12}) {
      const Dense X = random_matrix(n, d, rng);
      std::vector<double> gates(8 * d);
      for (auto& x : gates) x = normal(rng);
      const auto view = MatrixView<double>::c_order(X.a.data(), n, d);
      const PatternSet pats = PatternSet::from_gates(view, gates.data(), 8);
      PatternConeProjector<double> projector(view, pats, 3);
      std::vector<double> u(d);
      for (index_t i = 0; i < pats.n_patterns(); ++i) {
        // Start near a point of the cone, so that projections are often nonzero with partial active sets.
        std::vector<double> g(gates.begin() + i * d, gates.begin() + (i + 1) * d);
        for (int step = 0; step < 25; ++step) {
          const double jump = step % 7 == 6 ? 1.0 : 0.05;
          for (auto& x : g) x += jump * normal(rng);
          const auto cold = project_onto_pattern_cone(view, pats, i, g.data(), 1e-12);
          bool converged = false;
          const double warm_norm = projector.project(0, i, g.data(), 1e-12, u.data(), &converged);
          ASSERT_TRUE(converged);
          EXPECT_NEAR(warm_norm, cold.norm, 1e-9 * std::max(1.0, norm(g)));
          for (index_t j = 0; j < d; ++j) EXPECT_NEAR(u[j], cold.u[j], 1e-8 * std::max(1.0, norm(g)));
          // A second slot alternates between two patterns: its state must be rebuilt each time.
          const index_t other = (i + 1) % pats.n_patterns();
          const auto cold_other = project_onto_pattern_cone(view, pats, other, g.data(), 1e-12);
          EXPECT_NEAR(projector.project(1, step % 2 ? i : other, g.data(), 1e-12, u.data()),
                      step % 2 ? cold.norm : cold_other.norm, 1e-9 * std::max(1.0, norm(g)));
          // Early stops leave a usable (partial) warm state; the answer below the threshold is exact.
          const double threshold = 0.5 * cold.norm;
          const double bounded =
              projector.project(2, i, g.data(), 1e-12, u.data(), nullptr, nullptr, step % 3 ? threshold : -1.0);
          if (step % 3)
            EXPECT_GE(bounded, std::min(cold.norm, threshold) - 1e-9 * std::max(1.0, norm(g)));
          else
            EXPECT_NEAR(bounded, cold.norm, 1e-9 * std::max(1.0, norm(g)));
        }
      }
    }
  }
}

// copy_warm_start hands one slot's active set to another slot of the same pattern (the solver's certificate
// starts from the prox's): the projection from a copied state equals the cold one, needs no more passes than
// the cold one when the vectors agree, and a copy from an empty slot changes nothing. The work counters count
// what ran, and multiply_X is X B.
TEST(PatternConeProjector, CopiedWarmStartsCountersAndProducts) {
  std::mt19937_64 rng(77);
  std::normal_distribution<double> normal;
  for (index_t n : {9, 63, 150}) {
    for (index_t d : {1, 3, 8}) {
      const Dense X = random_matrix(n, d, rng);
      std::vector<double> gates(5 * d);
      for (auto& x : gates) x = normal(rng);
      const auto view = MatrixView<double>::c_order(X.a.data(), n, d);
      const PatternSet pats = PatternSet::from_gates(view, gates.data(), 5);
      PatternConeProjector<double> projector(view, pats, 4);
      std::vector<double> u(d), v(d);
      for (index_t i = 0; i < pats.n_patterns(); ++i) {
        const std::vector<double> g = random_vector(d, rng);
        const auto cold = project_onto_pattern_cone(view, pats, i, g.data(), 1e-12);
        projector.reset_stats();
        projector.project(0, i, g.data(), 1e-12, u.data());
        const auto first = projector.stats();
        EXPECT_EQ(first.projections, 1);
        EXPECT_GE(first.passes, 1);
        EXPECT_GE(first.steps, 0);
        projector.copy_warm_start(0, 1);
        projector.copy_warm_start(3, 2);  // slot 3 never used: a no-op, slot 2 stays cold
        projector.reset_stats();
        const double copied = projector.project(1, i, g.data(), 1e-12, v.data());
        const auto second = projector.stats();
        EXPECT_NEAR(copied, cold.norm, 1e-9 * std::max(1.0, norm(g)));
        for (index_t j = 0; j < d; ++j) EXPECT_NEAR(v[j], cold.u[j], 1e-8 * std::max(1.0, norm(g)));
        EXPECT_LE(second.passes, first.passes);
        EXPECT_EQ(second.passes, 1);  // the copied active set is already optimal: one verifying pass
        EXPECT_NEAR(projector.project(2, i, g.data(), 1e-12, v.data()), cold.norm, 1e-9 * std::max(1.0, norm(g)));
      }
      EXPECT_THROW(projector.copy_warm_start(0, 4), std::invalid_argument);
      EXPECT_THROW(projector.copy_warm_start(-1, 0), std::invalid_argument);
      // multiply_X: (n x k) = X (n x d) B (d x k), also for a column-major X.
      for (index_t k : {1, 4}) {
        const Dense B = random_matrix(d, k, rng);
        std::vector<double> out(n * k);
        projector.multiply_X(B.a.data(), k, out.data());
        std::vector<double> Xf(n * d);
        for (index_t r = 0; r < n; ++r)
          for (index_t j = 0; j < d; ++j) Xf[j * n + r] = X(r, j);
        PatternConeProjector<double> fortran(MatrixView<double>::f_order(Xf.data(), n, d), pats, 1);
        std::vector<double> out_f(n * k);
        fortran.multiply_X(B.a.data(), k, out_f.data());
        for (index_t r = 0; r < n; ++r)
          for (index_t c = 0; c < k; ++c) {
            double expect = 0.0;
            for (index_t j = 0; j < d; ++j) expect += X(r, j) * B(j, c);
            EXPECT_NEAR(out[r * k + c], expect, 1e-12 * (1.0 + std::abs(expect)));
            EXPECT_NEAR(out_f[r * k + c], expect, 1e-12 * (1.0 + std::abs(expect)));
          }
      }
    }
  }
}

// project_batch (first passes of several projections in one GEMM) agrees with one-at-a-time projections over
// a sequence of nearby inputs (warm starts), with and without early stops, including empty batches and
// projections that need no pass at all (g = 0, or a warm start that already proves the bound).
TEST(PatternConeProjector, BatchedProjectionsAgreeWithSingleOnes) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  for (index_t n : {10, 64, 129}) {
    for (index_t d : {2, 6}) {
      const Dense X = random_matrix(n, d, rng);
      std::vector<double> gates(6 * d);
      for (auto& x : gates) x = normal(rng);
      const auto view = MatrixView<double>::c_order(X.a.data(), n, d);
      const PatternSet pats = PatternSet::from_gates(view, gates.data(), 6);
      const index_t P = pats.n_patterns(), count = 2 * P;
      PatternConeProjector<double> single(view, pats, count), batched(view, pats, count);
      std::vector<index_t> slots(count), patterns(count);
      for (index_t s = 0; s < count; ++s) {
        slots[s] = s;
        patterns[s] = s % P;
      }
      std::vector<double> G(count * d), U(count * d), norms(count), below(count), u(d);
      for (auto& x : G) x = normal(rng);
      batched.project_batch(0, slots.data(), patterns.data(), G.data(), 1e-12, U.data(), norms.data());
      for (int step = 0; step < 8; ++step) {
        for (auto& x : G) x += 0.1 * normal(rng);
        if (step == 3) std::fill(G.begin(), G.begin() + d, 0.0);
        for (index_t s = 0; s < count; ++s) below[s] = step % 2 ? 0.3 * std::sqrt(d) : -1.0;
        batched.project_batch(count, slots.data(), patterns.data(), G.data(), 1e-12, U.data(), norms.data(),
                              below.data());
        for (index_t s = 0; s < count; ++s) {
          const double* g = G.data() + s * d;
          const double expect = single.project(s, patterns[s], g, 1e-12, u.data(), nullptr, nullptr, below[s]);
          const double scale = std::max(1.0, std::sqrt(std::inner_product(g, g + d, g, 0.0)));
          if (below[s] >= 0.0 && (expect <= below[s] || norms[s] <= below[s])) {
            // Early stops: both answer "below the threshold" or both give the exact value.
            EXPECT_EQ(expect <= below[s] + 1e-12 * scale, norms[s] <= below[s] + 1e-12 * scale);
            continue;
          }
          EXPECT_NEAR(norms[s], expect, 1e-9 * scale);
          for (index_t j = 0; j < d; ++j) EXPECT_NEAR(U[s * d + j], u[j], 1e-8 * scale);
        }
      }
    }
  }
}

}  // namespace
}  // namespace convexnn

// ---- PatternConeProjector: safe screening of the constraint passes ---------------------------------------

namespace convexnn {
namespace {

// Screened projections (near rows only while the iterate stays within the radius) agree with unscreened
// ones over a solver-like sequence of nearby inputs, with occasional jumps (which must fall back to full
// passes), early stops and batched calls; and the screened passes actually happen.
TEST(PatternConeProjector, ScreenedPassesGiveTheUnscreenedProjections) {
  std::mt19937_64 rng(31);
  std::normal_distribution<double> normal;
  for (index_t n : {300, 1000}) {
    for (index_t d : {3, 7}) {
      const Dense X = random_matrix(n, d, rng);
      std::vector<double> gates(4 * d);
      for (auto& x : gates) x = normal(rng);
      const auto view = MatrixView<double>::c_order(X.a.data(), n, d);
      const PatternSet pats = PatternSet::from_gates(view, gates.data(), 4);
      const index_t P = pats.n_patterns(), count = 2 * P;
      PatternConeProjector<double> plain(view, pats, count), screened(view, pats, count), batched(view, pats, count);
      plain.set_screening(0);
      screened.set_screening(1, n / 10);
      batched.set_screening(1, n / 10);
      EXPECT_THROW(screened.set_screening(-1), std::invalid_argument);
      std::vector<index_t> slots(count), patterns(count);
      for (index_t s = 0; s < count; ++s) {
        slots[s] = s;
        patterns[s] = s % P;
      }
      std::vector<double> G(count * d), U(count * d), norms(count), below(count, -1.0), u(d), v(d);
      for (index_t s = 0; s < count; ++s)  // start near the gate (a point of the cone): partial active sets
        for (index_t j = 0; j < d; ++j) G[s * d + j] = gates[patterns[s] * d + j] + 0.3 * normal(rng);
      for (int step = 0; step < 30; ++step) {
        const double jump = step % 10 == 9 ? 1.0 : 0.01;
        for (auto& x : G) x += jump * normal(rng);
        for (index_t s = 0; s < count; ++s) below[s] = step % 4 == 3 ? 0.5 : -1.0;
        batched.project_batch(count, slots.data(), patterns.data(), G.data(), 1e-12, U.data(), norms.data(),
                              below.data());
        for (index_t s = 0; s < count; ++s) {
          const double* g = G.data() + s * d;
          const double scale = std::max(1.0, std::sqrt(std::inner_product(g, g + d, g, 0.0)));
          bool converged = false;
          const double expect = plain.project(s, patterns[s], g, 1e-12, u.data(), nullptr, nullptr, below[s]);
          const double got = screened.project(s, patterns[s], g, 1e-12, v.data(), &converged, nullptr, below[s]);
          ASSERT_TRUE(converged);
          if (below[s] >= 0.0 && (expect <= below[s] || got <= below[s] || norms[s] <= below[s])) {
            EXPECT_EQ(expect <= below[s] + 1e-12 * scale, got <= below[s] + 1e-12 * scale);
            EXPECT_EQ(expect <= below[s] + 1e-12 * scale, norms[s] <= below[s] + 1e-12 * scale);
            continue;
          }
          EXPECT_NEAR(got, expect, 1e-9 * scale);
          EXPECT_NEAR(norms[s], expect, 1e-9 * scale);
          for (index_t j = 0; j < d; ++j) {
            EXPECT_NEAR(v[j], u[j], 1e-8 * scale);
            EXPECT_NEAR(U[s * d + j], u[j], 1e-8 * scale);
          }
        }
      }
      EXPECT_EQ(plain.stats().screened_passes, 0);
      EXPECT_GT(screened.stats().screened_passes, screened.stats().passes);  // small steps: mostly screened
      EXPECT_GT(batched.stats().screened_passes, 0);
    }
  }
}

}  // namespace
}  // namespace convexnn
