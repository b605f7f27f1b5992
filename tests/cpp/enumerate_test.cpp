// Exact enumeration: counts against Cover's formula (general position) and against Zaslavsky's formula
// (degenerate data, computed here independently from ranks of hyperplane subsets), interior gates,
// refusal above max_patterns.
#include "convexnn/patterns/enumerate.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "convexnn/patterns/pattern_set.hpp"

namespace cnn = convexnn;
using cnn::index_t;
using cnn::MatrixView;
using cnn::PatternSet;
using Word = PatternSet::Word;

namespace {

struct Data {
  index_t n = 0, d = 0;
  std::vector<double> x;  // row-major
  MatrixView<double> view() const { return MatrixView<double>::c_order(x.data(), n, d); }
  void add_row(const std::vector<double>& row) {
    d = static_cast<index_t>(row.size());
    x.insert(x.end(), row.begin(), row.end());
    ++n;
  }
};

Data gaussian_data(index_t n, index_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  Data D;
  D.n = n;
  D.d = d;
  D.x.resize(static_cast<std::size_t>(n * d));
  for (double& v : D.x) v = nd(rng);
  return D;
}

// n random rows in general position whose sum is zero, so 0 is inside their convex hull and the
// all-negative region does not exist: the pattern count is exactly Cover's count.
Data centred_general(index_t n, index_t r, std::uint64_t seed) {
  Data D = gaussian_data(n, r, seed);
  for (index_t j = 0; j < r; ++j) {
    double s = 0;
    for (index_t k = 0; k + 1 < n; ++k) s += D.x[k * r + j];
    D.x[(n - 1) * r + j] = -s;
  }
  return D;
}

// Rank of a set of vectors (Gaussian elimination, partial pivoting).
index_t rank_of(std::vector<std::vector<double>> rows) {
  if (rows.empty()) return 0;
  const index_t m = static_cast<index_t>(rows.size()), d = static_cast<index_t>(rows[0].size());
  index_t rank = 0;
  for (index_t col = 0; col < d && rank < m; ++col) {
    index_t piv = rank;
    for (index_t i = rank; i < m; ++i)
      if (std::abs(rows[i][col]) > std::abs(rows[piv][col])) piv = i;
    if (std::abs(rows[piv][col]) < 1e-9) continue;
    std::swap(rows[piv], rows[rank]);
    for (index_t i = rank + 1; i < m; ++i) {
      const double f = rows[i][col] / rows[rank][col];
      for (index_t j = col; j < d; ++j) rows[i][j] -= f * rows[rank][j];
    }
    ++rank;
  }
  return rank;
}

// Distinct hyperplanes (unit normals, sign fixed by the first nonzero coordinate), zero rows skipped.
std::vector<std::vector<double>> distinct_hyperplanes(const Data& D) {
  std::vector<std::vector<double>> H;
  for (index_t k = 0; k < D.n; ++k) {
    std::vector<double> h(D.x.begin() + k * D.d, D.x.begin() + (k + 1) * D.d);
    double nn = 0;
    for (double v : h) nn += v * v;
    if (nn == 0) continue;
    nn = std::sqrt(nn);
    double sign = 0;
    for (double v : h)
      if (std::abs(v) > 1e-12 * nn) {
        sign = v > 0 ? 1 : -1;
        break;
      }
    for (double& v : h) v *= sign / nn;
    bool dup = false;
    for (const auto& g : H) {
      double diff = 0;
      for (index_t j = 0; j < D.d; ++j) diff = std::max(diff, std::abs(g[j] - h[j]));
      dup = dup || diff < 1e-9;
    }
    if (!dup) H.push_back(h);
  }
  return H;
}

// Zaslavsky: a central arrangement has sum_{S subset of A} (-1)^{|S| - rank(S)} regions.
std::int64_t zaslavsky_regions(const Data& D) {
  const auto H = distinct_hyperplanes(D);
  const index_t h = static_cast<index_t>(H.size());
  EXPECT_LE(h, 18) << "brute force too large";
  std::int64_t total = 0;
  for (std::uint64_t S = 0; S < (std::uint64_t(1) << h); ++S) {
    std::vector<std::vector<double>> rows;
    for (index_t k = 0; k < h; ++k)
      if ((S >> k) & 1) rows.push_back(H[k]);
    const index_t excess = static_cast<index_t>(rows.size()) - rank_of(rows);
    total += (excess % 2 == 0) ? 1 : -1;
  }
  return total;
}

// Runs the enumeration and checks everything that must hold for any X: distinct nonzero masks, unit gates
// strictly inside their regions, and from_gates(X, gates) reproducing the set exactly.
PatternSet enumerate_checked(const Data& D) {
  const PatternSet s = cnn::enumerate_patterns(D.view());
  EXPECT_EQ(s.n_samples(), D.n);
  EXPECT_EQ(s.dim(), D.d);
  std::vector<double> col_sq(static_cast<std::size_t>(D.d), 0.0);
  for (index_t k = 0; k < D.n; ++k)
    for (index_t j = 0; j < D.d; ++j) col_sq[j] += D.x[k * D.d + j] * D.x[k * D.d + j];
  std::set<std::vector<Word>> distinct;
  for (index_t i = 0; i < s.n_patterns(); ++i) {
    std::vector<Word> w(s.mask(i), s.mask(i) + s.words_per_pattern());
    bool zero = true;
    for (Word v : w) zero = zero && v == 0;
    EXPECT_FALSE(zero) << "all-zero pattern kept";
    distinct.insert(w);
    const double* g = s.gate(i);
    double gn = 0;
    for (index_t j = 0; j < D.d; ++j) gn += g[j] * g[j];
    EXPECT_NEAR(gn, 1.0, 1e-12);
    // Margins in column-equilibrated coordinates (x_kj / c_j, g_j c_j with c_j = ||column j||), which do not
    // depend on how the features are scaled: |x_k^T g| > 1e-9 ||x~_k|| ||g~||.
    double gt = 0;
    for (index_t j = 0; j < D.d; ++j) gt += g[j] * g[j] * col_sq[j];
    for (index_t k = 0; k < D.n; ++k) {
      double z = 0, xt = 0;
      for (index_t j = 0; j < D.d; ++j) {
        z += D.x[k * D.d + j] * g[j];
        if (col_sq[j] > 0) xt += D.x[k * D.d + j] * D.x[k * D.d + j] / col_sq[j];
      }
      if (xt > 0) EXPECT_GT(std::abs(z), 1e-9 * std::sqrt(xt * gt)) << "gate " << i << " nearly on hyperplane " << k;
    }
  }
  EXPECT_EQ(static_cast<index_t>(distinct.size()), s.n_patterns());
  const PatternSet again = PatternSet::from_gates(D.view(), s.gates().data(), s.n_patterns(), false, false);
  EXPECT_EQ(again.words(), s.words());
  return s;
}

}  // namespace

TEST(Enumerate, CoverCountValues) {
  EXPECT_EQ(cnn::cover_count(5, 2), 10u);
  EXPECT_EQ(cnn::cover_count(7, 1), 2u);
  EXPECT_EQ(cnn::cover_count(1, 3), 2u);
  EXPECT_EQ(cnn::cover_count(0, 3), 1u);
  EXPECT_EQ(cnn::cover_count(3, 0), 1u);
  EXPECT_EQ(cnn::cover_count(10, 10), 1024u);
  EXPECT_EQ(cnn::cover_count(200, 3), 39802u);
  EXPECT_EQ(cnn::cover_count(20, 5), 10072u);
  EXPECT_EQ(cnn::cover_count(100000, 40), std::numeric_limits<std::uint64_t>::max());
}

// General position: exactly Cover's count 2 sum_{k<r} C(n-1, k), for the r = 2 angle sort, the r >= 3 vertex
// method (simplicial vertices) and r = 1.
TEST(Enumerate, GeneralPositionMatchesCover) {
  const std::vector<std::pair<index_t, index_t>> cases = {{5, 1},  {40, 2}, {7, 3},  {60, 3}, {12, 4},
                                                          {25, 4}, {9, 5},  {18, 5}, {8, 6}};
  for (const auto& [n, r] : cases) {
    const Data D = centred_general(n, r, 100 + n * 7 + r);
    const PatternSet s = enumerate_checked(D);
    EXPECT_EQ(static_cast<std::uint64_t>(s.n_patterns()), cnn::cover_count(n, r)) << "n=" << n << " r=" << r;
    EXPECT_EQ(cnn::estimate_region_count(D.view()), cnn::cover_count(n, r));
  }
}

TEST(Enumerate, TwoHundredPointsRankThree) {
  const Data D = centred_general(200, 3, 7);
  const PatternSet s = cnn::enumerate_patterns(D.view());
  EXPECT_EQ(s.n_patterns(), 39802);
  const PatternSet again = PatternSet::from_gates(D.view(), s.gates().data(), s.n_patterns(), false, false);
  EXPECT_EQ(again.words(), s.words());
}

// A bias-like column (rows (z_k, 1)): the all-negative region exists, so one pattern less than Cover.
TEST(Enumerate, BiasColumnGeneralPosition) {
  for (index_t r = 2; r <= 5; ++r) {
    const index_t n = r == 2 ? 30 : (r == 3 ? 25 : (r == 4 ? 14 : 11));
    Data D = gaussian_data(n, r, 300 + r);
    for (index_t k = 0; k < n; ++k) D.x[k * r + r - 1] = 1.0;
    const PatternSet s = enumerate_checked(D);
    EXPECT_EQ(static_cast<std::uint64_t>(s.n_patterns()), cnn::cover_count(n, r) - 1) << "r=" << r;
  }
}

// Rank-deficient X (d > r): the enumeration works in the row space; n < d uses the n x n Gram matrix.
TEST(Enumerate, RankDeficientAndWide) {
  const index_t n = 30, r = 3, d = 7;
  const Data Z = centred_general(n, r, 11);
  const Data A = gaussian_data(r, d, 12);
  Data D;
  D.n = n;
  D.d = d;
  D.x.assign(static_cast<std::size_t>(n * d), 0.0);
  for (index_t k = 0; k < n; ++k)
    for (index_t j = 0; j < d; ++j)
      for (index_t l = 0; l < r; ++l) D.x[k * d + j] += Z.x[k * r + l] * A.x[l * d + j];
  const auto summary = cnn::summarize_arrangement(D.view());
  EXPECT_EQ(summary.rank, r);
  EXPECT_EQ(summary.n_hyperplanes, n);
  EXPECT_EQ(enumerate_checked(D).n_patterns(), static_cast<index_t>(cnn::cover_count(n, r)));
  // The same product rounded to float32: the rank rule uses float32's precision, so still rank 3.
  std::vector<float> xf(D.x.begin(), D.x.end());
  const auto Xf = MatrixView<float>::c_order(xf.data(), n, d);
  EXPECT_EQ(cnn::summarize_arrangement(Xf).rank, r);
  EXPECT_EQ(cnn::enumerate_patterns(Xf).n_patterns(), static_cast<index_t>(cnn::cover_count(n, r)));
  // n < d, independent rows: all 2^n sign vectors, minus the all-zero one.
  const Data W = gaussian_data(6, 10, 13);
  EXPECT_EQ(enumerate_checked(W).n_patterns(), 63);
}

// Repeated, opposite, scaled and zero rows (3-D integer data): compared with Zaslavsky's count.
TEST(Enumerate, DegenerateRowsMatchZaslavsky) {
  Data D;
  for (const auto& row : std::vector<std::vector<double>>{{1, 2, 0},
                                                          {0, 1, -1},
                                                          {1, 2, 0},    // repeated
                                                          {-1, -2, 0},  // opposite
                                                          {2, 0, 1},
                                                          {4, 0, 2},  // positive multiple
                                                          {0, 0, 0},  // zero row: always active
                                                          {1, 1, 1},
                                                          {3, -1, 2},
                                                          {-2, 1, 1},
                                                          {0, 3, -3}})  // multiple of row 2
    D.add_row(row);
  const auto summary = cnn::summarize_arrangement(D.view());
  EXPECT_EQ(summary.rank, 3);
  EXPECT_EQ(summary.n_hyperplanes, 6);
  EXPECT_EQ(summary.n_zero_rows, 1);
  EXPECT_EQ(summary.region_bound, cnn::cover_count(6, 3));
  const PatternSet s = enumerate_checked(D);
  // The zero row makes every mask nonzero, so no region is dropped.
  EXPECT_EQ(s.n_patterns(), zaslavsky_regions(D));
  for (index_t i = 0; i < s.n_patterns(); ++i) {
    EXPECT_TRUE(s.active(6, i));
    EXPECT_EQ(s.active(0, i), s.active(2, i));
    EXPECT_NE(s.active(0, i), s.active(3, i));
    EXPECT_EQ(s.active(4, i), s.active(5, i));
  }
  // Same data in float32 (exactly representable): same patterns.
  std::vector<float> xf(D.x.begin(), D.x.end());
  const PatternSet sf = cnn::enumerate_patterns(MatrixView<float>::c_order(xf.data(), D.n, D.d));
  EXPECT_EQ(sf.words(), s.words());
}

// Grids with a bias column: many points on common lines / planes, so vertices where more than r-1 hyperplanes
// meet (the recursive local enumeration) in ranks 3, 4 and 5. The all-negative region exists (bias).
TEST(Enumerate, DegenerateGridsWithBiasMatchZaslavsky) {
  Data grid3;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) grid3.add_row({double(a), double(b), 1.0});
  grid3.add_row({0.5, 1.5, 1.0});
  Data cube4;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 2; ++c) cube4.add_row({double(a), double(b), double(c), 1.0});
  cube4.add_row({0.5, 0.5, 0.5, 1.0});
  cube4.add_row({2.0, 0.0, 1.0, 1.0});
  cube4.add_row({1.0, 1.0, 2.0, 1.0});
  Data hyper5;
  for (int i = 0; i < 16 && hyper5.n < 13; ++i)
    if (i != 5 && i != 10 && i != 15)
      hyper5.add_row({double(i & 1), double((i >> 1) & 1), double((i >> 2) & 1), double((i >> 3) & 1), 1.0});
  for (const Data* D : {&grid3, &cube4, &hyper5}) {
    const PatternSet s = enumerate_checked(*D);
    EXPECT_EQ(s.n_patterns() + 1, zaslavsky_regions(*D)) << "d=" << D->d;
  }
}

// Degenerate data without bias and without zero rows: an opposite pair rules out the all-negative region.
TEST(Enumerate, DegenerateRankFourAndFiveWithoutBias) {
  Data D4;
  for (const auto& row : std::vector<std::vector<double>>{{1, 0, 0, 0},
                                                          {0, 1, 0, 0},
                                                          {0, 0, 1, 0},
                                                          {0, 0, 0, 1},
                                                          {1, 1, 0, 0},
                                                          {1, 0, 1, 0},
                                                          {0, 1, 1, 0},
                                                          {1, 1, 1, 1},
                                                          {-1, -1, -1, -1},
                                                          {1, -1, 0, 2},
                                                          {2, 2, 0, 0}})
    D4.add_row(row);
  EXPECT_EQ(enumerate_checked(D4).n_patterns(), zaslavsky_regions(D4));
  Data D5;
  for (const auto& row : std::vector<std::vector<double>>{{1, 0, 0, 0, 0},
                                                          {0, 1, 0, 0, 0},
                                                          {0, 0, 1, 0, 0},
                                                          {0, 0, 0, 1, 0},
                                                          {0, 0, 0, 0, 1},
                                                          {1, 1, 0, 0, 0},
                                                          {0, 1, 1, 0, 0},
                                                          {1, 0, 1, 0, 0},
                                                          {1, 1, 1, 1, 1},
                                                          {-1, 0, 0, 0, 0},
                                                          {0, 0, 1, -1, 1},
                                                          {1, -1, 0, 1, 0}})
    D5.add_row(row);
  EXPECT_EQ(enumerate_checked(D5).n_patterns(), zaslavsky_regions(D5));
}

// Rank-deficient degenerate data: 2-D points (with repeats) embedded in R^4; r = 2 is the angle sort.
TEST(Enumerate, RankTwoEmbeddedMatchesZaslavsky) {
  Data D;
  for (const auto& p :
       std::vector<std::pair<double, double>>{{1, 0}, {0, 1}, {1, 1}, {2, 2}, {-1, 1}, {3, -1}, {1, 0}}) {
    const auto [a, b] = p;
    D.add_row({a, b, a + b, a - 2 * b});
  }
  D.add_row({-1, 0, -1, -1});  // opposite of the first row
  EXPECT_EQ(cnn::summarize_arrangement(D.view()).rank, 2);
  EXPECT_EQ(enumerate_checked(D).n_patterns(), zaslavsky_regions(D));
}

TEST(Enumerate, TrivialCases) {
  Data zero;
  zero.add_row({0, 0, 0});
  zero.add_row({0, 0, 0});
  const PatternSet z = enumerate_checked(zero);
  ASSERT_EQ(z.n_patterns(), 1);
  EXPECT_EQ(z.mask(0)[0], Word(0b11));
  EXPECT_EQ(cnn::estimate_region_count(zero.view()), 1u);
  Data one;
  one.add_row({1, -2});
  const PatternSet o = enumerate_checked(one);
  ASSERT_EQ(o.n_patterns(), 1);  // {x^T u > 0}; the other region's pattern is all-zero
  EXPECT_EQ(o.mask(0)[0], Word(1));
  std::vector<double> bad = {1, std::nan(""), 0, 1};
  EXPECT_THROW(cnn::enumerate_patterns(MatrixView<double>::c_order(bad.data(), 2, 2)), std::invalid_argument);
}

TEST(Enumerate, RefusesAboveMaxPatterns) {
  const Data D = centred_general(60, 3, 21);
  const std::uint64_t bound = cnn::cover_count(60, 3);
  try {
    cnn::enumerate_patterns(D.view(), bound - 1);
    FAIL() << "expected std::length_error";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(bound)), std::string::npos) << e.what();
  }
  EXPECT_EQ(static_cast<std::uint64_t>(cnn::enumerate_patterns(D.view(), bound).n_patterns()), bound);
}

TEST(Enumerate, DeterministicAcrossThreadCounts) {
  const Data D = centred_general(22, 4, 31);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const PatternSet a = cnn::enumerate_patterns(D.view());
  omp_set_num_threads(3);
  const PatternSet b = cnn::enumerate_patterns(D.view());
  omp_set_num_threads(before);
  EXPECT_EQ(a.words(), b.words());
  EXPECT_EQ(a.gates(), b.gates());
}

// Badly scaled features (condition number ~1e12 from column scales alone) change no pattern: the columns are
// equilibrated before the rank decision.
TEST(Enumerate, BadlyScaledColumns) {
  Data D = centred_general(40, 3, 41);
  for (index_t k = 0; k < D.n; ++k) {
    D.x[k * 3] *= 1e7;
    D.x[k * 3 + 2] *= 1e-5;
  }
  EXPECT_EQ(cnn::summarize_arrangement(D.view()).rank, 3);
  EXPECT_EQ(static_cast<std::uint64_t>(enumerate_checked(D).n_patterns()), cnn::cover_count(40, 3));
}
