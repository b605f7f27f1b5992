// PatternSet: masks against a direct loop, dedup / drop-zero, layouts, subset, merge, recompute, pickling
// support (from_words), the Gaussian sampler and the Alg3 flip sampler.
#include "convexnn/patterns/pattern_set.hpp"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace cnn = convexnn;
using cnn::index_t;
using cnn::MatrixView;
using cnn::PatternSet;
using Word = PatternSet::Word;

namespace {

std::vector<double> gaussian(index_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;  // test data only: portability of these values does not matter
  std::vector<double> v(static_cast<std::size_t>(count));
  for (double& x : v) x = nd(rng);
  return v;
}

// Direct definition: bit k of pattern i is 1[sum_j X(k, j) g_i[j] >= 0] (float64 accumulation).
template <class T>
std::vector<Word> direct_masks(const MatrixView<T>& X, const std::vector<double>& G, index_t P) {
  const index_t n = X.rows, d = X.cols, W = (n + 63) / 64;
  std::vector<Word> out(static_cast<std::size_t>(P * W), 0);
  for (index_t i = 0; i < P; ++i)
    for (index_t k = 0; k < n; ++k) {
      double s = 0.0;
      for (index_t j = 0; j < d; ++j) s += static_cast<double>(X(k, j)) * G[i * d + j];
      if (s >= 0.0) out[i * W + k / 64] |= Word(1) << (k % 64);
    }
  return out;
}

std::vector<Word> mask_of(const PatternSet& s, index_t i) {
  return std::vector<Word>(s.mask(i), s.mask(i) + s.words_per_pattern());
}

}  // namespace

// Every layout (C, F, padded strides: not BLAS-compatible), both dtypes, n around word boundaries, P around
// the gate block (128): packed words equal the direct loop, bits past n are zero.
TEST(PatternSet, MasksMatchDirectLoop) {
  for (index_t n : {1, 5, 63, 64, 65, 130, 300}) {
    for (index_t P : {1, 7, 129}) {
      const index_t d = 6;
      const std::vector<double> x = gaussian(n * d, 1000 + n);
      const std::vector<double> G = gaussian(P * d, 2000 + P);
      std::vector<float> xf(x.begin(), x.end());
      std::vector<double> xF(static_cast<std::size_t>(n * d)), xpad(static_cast<std::size_t>(n * (d + 3)), 99.0);
      for (index_t k = 0; k < n; ++k)
        for (index_t j = 0; j < d; ++j) {
          xF[j * n + k] = x[k * d + j];
          xpad[k * (d + 3) + j] = x[k * d + j];
        }
      const auto Xc = MatrixView<double>::c_order(x.data(), n, d);
      const auto XF = MatrixView<double>::f_order(xF.data(), n, d);
      const MatrixView<double> Xpad{xpad.data(), n, d, d + 3, 1};
      const MatrixView<double> Xstrided{xF.data(), n, d, 1, n};  // F order again via explicit strides
      const auto Xf = MatrixView<float>::c_order(xf.data(), n, d);
      const std::vector<Word> expect = direct_masks(Xc, G, P);
      for (const auto& view : {Xc, XF, Xpad, Xstrided}) {
        const PatternSet s = PatternSet::from_gates(view, G.data(), P, false, false);
        ASSERT_EQ(s.n_patterns(), P);
        ASSERT_EQ(s.n_samples(), n);
        ASSERT_EQ(s.dim(), d);
        ASSERT_EQ(s.words_per_pattern(), (n + 63) / 64);
        EXPECT_EQ(s.words(), expect) << "n=" << n << " P=" << P;
        EXPECT_EQ(s.gates(), G);
      }
      const PatternSet sf = PatternSet::from_gates(Xf, G.data(), P, false, false);
      EXPECT_EQ(sf.words(), direct_masks(Xf, G, P)) << "float32, n=" << n << " P=" << P;
      if (n % 64 != 0) {
        for (index_t i = 0; i < P; ++i) EXPECT_EQ(sf.mask(i)[sf.words_per_pattern() - 1] >> (n % 64), Word(0));
      }
    }
  }
}

TEST(PatternSet, ActiveAndPopcountAgreeWithWords) {
  const index_t n = 77, d = 3, P = 5;
  const std::vector<double> x = gaussian(n * d, 3), G = gaussian(P * d, 4);
  const auto X = MatrixView<double>::c_order(x.data(), n, d);
  const PatternSet s = PatternSet::from_gates(X, G.data(), P, false, false);
  for (index_t i = 0; i < P; ++i) {
    index_t count = 0;
    for (index_t k = 0; k < n; ++k) {
      double z = 0;
      for (index_t j = 0; j < d; ++j) z += x[k * d + j] * G[i * d + j];
      EXPECT_EQ(s.active(k, i), z >= 0);
      count += z >= 0;
    }
    EXPECT_EQ(s.popcount(i), count);
    EXPECT_EQ(s.gate(i)[0], G[i * d]);
  }
}

// Ties count as active (0 >= 0): a zero row is active for every gate, a zero gate gives the all-ones mask.
TEST(PatternSet, TiesAreActive) {
  const std::vector<double> x = {1, 2, 0, 0, -1, 1};   // rows (1,2), (0,0), (-1,1)
  const std::vector<double> G = {0, 0, -1, 0, 2, -1};  // zero gate, -e1, (2,-1): x_0^T g = 0
  const PatternSet s = PatternSet::from_gates(MatrixView<double>::c_order(x.data(), 3, 2), G.data(), 3, false, false);
  EXPECT_EQ(s.mask(0)[0], Word(0b111));
  EXPECT_EQ(s.mask(1)[0], Word(0b110));
  EXPECT_EQ(s.mask(2)[0], Word(0b011));
}

// Dedup keeps the first occurrence (with its gate); drop_zero drops exactly the all-zero mask; the result
// equals an independent std::set-based dedup of the direct masks.
TEST(PatternSet, DeduplicateAndDropZero) {
  const index_t n = 70, d = 2;
  std::vector<double> x = gaussian(n * d, 5);
  for (index_t k = 0; k < n; ++k) x[k * d] = std::abs(x[k * d]) + 0.1;  // first coordinate > 0
  const auto X = MatrixView<double>::c_order(x.data(), n, d);
  // gates: g0, 2*g0 (same mask), -e1 (all zero), g1, g0 again, -e1 again, many random ones
  std::vector<double> G = {0.3, 1.0, 0.6, 2.0, -1.0, 0.0, -0.2, 1.0, 0.3, 1.0, -1.0, 0.0};
  const std::vector<double> more = gaussian(2 * 300, 6);
  G.insert(G.end(), more.begin(), more.end());
  const index_t P = static_cast<index_t>(G.size()) / d;
  const std::vector<Word> raw = direct_masks(X, G, P);
  for (bool dedup : {false, true})
    for (bool drop : {false, true}) {
      const PatternSet s = PatternSet::from_gates(X, G.data(), P, dedup, drop);
      std::set<std::vector<Word>> seen;
      std::vector<index_t> kept;
      for (index_t i = 0; i < P; ++i) {
        const std::vector<Word> full(raw.begin() + i * 2, raw.begin() + i * 2 + 2);
        if (drop && full[0] == 0 && full[1] == 0) continue;
        if (dedup && !seen.insert(full).second) continue;
        kept.push_back(i);
      }
      ASSERT_EQ(s.n_patterns(), static_cast<index_t>(kept.size())) << dedup << drop;
      for (index_t p = 0; p < s.n_patterns(); ++p) {
        EXPECT_EQ(mask_of(s, p), std::vector<Word>(raw.begin() + kept[p] * 2, raw.begin() + kept[p] * 2 + 2));
        EXPECT_EQ(s.gate(p)[0], G[kept[p] * d]);
        EXPECT_EQ(s.gate(p)[1], G[kept[p] * d + 1]);
      }
      if (dedup && drop) {
        EXPECT_EQ(kept[0], 0);
        EXPECT_EQ(kept[1], 3);  // 2*g0 and -e1 gone
      }
    }
}

TEST(PatternSet, ResultDoesNotDependOnThreadCount) {
  const index_t n = 1000, d = 9, P = 700;
  const std::vector<double> x = gaussian(n * d, 7), G = gaussian(P * d, 8);
  std::vector<float> xf(x.begin(), x.end());
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const PatternSet a = PatternSet::from_gates(MatrixView<float>::c_order(xf.data(), n, d), G.data(), P);
  omp_set_num_threads(3);
  const PatternSet b = PatternSet::from_gates(MatrixView<float>::c_order(xf.data(), n, d), G.data(), P);
  omp_set_num_threads(before);
  EXPECT_EQ(a.words(), b.words());
  EXPECT_EQ(a.gates(), b.gates());
}

TEST(PatternSet, RejectsBadInput) {
  const std::vector<double> x = {1, 2, 3, 4};
  const auto X = MatrixView<double>::c_order(x.data(), 2, 2);
  std::vector<double> g = {1, std::nan("")};
  EXPECT_THROW(PatternSet::from_gates(X, g.data(), 1), std::invalid_argument);
  std::vector<double> xn = {1, 2, INFINITY, 4};
  g = {1, 1};
  EXPECT_THROW(PatternSet::from_gates(MatrixView<double>::c_order(xn.data(), 2, 2), g.data(), 1),
               std::invalid_argument);
  EXPECT_THROW(PatternSet::from_gates(MatrixView<double>::c_order(x.data(), 0, 2), g.data(), 1), std::invalid_argument);
  // More masks than PatternSet::kMaxBytes: refused before anything is allocated or read.
  try {
    PatternSet::from_gates(X, g.data(), index_t(1) << 40);
    FAIL() << "expected std::length_error";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find("bytes"), std::string::npos);
  }
}

TEST(PatternSet, SubsetKeepsOrderAndRejectsBadIndices) {
  const index_t n = 40, d = 3, P = 10;
  const std::vector<double> x = gaussian(n * d, 9), G = gaussian(P * d, 10);
  const PatternSet s = PatternSet::from_gates(MatrixView<double>::c_order(x.data(), n, d), G.data(), P, false, false);
  const PatternSet sub = s.subset({7, 2, 9});
  ASSERT_EQ(sub.n_patterns(), 3);
  EXPECT_EQ(mask_of(sub, 0), mask_of(s, 7));
  EXPECT_EQ(mask_of(sub, 1), mask_of(s, 2));
  EXPECT_EQ(sub.gate(2)[1], s.gate(9)[1]);
  EXPECT_EQ(s.subset({}).n_patterns(), 0);
  EXPECT_THROW(s.subset({1, 1}), std::invalid_argument);
  EXPECT_THROW(s.subset({10}), std::invalid_argument);
  EXPECT_THROW(s.subset({-1}), std::invalid_argument);
}

// merge: this set unchanged first, then other's new masks; index maps every pattern of other to an equal mask.
TEST(PatternSet, MergeMapsOtherIntoTheUnion) {
  const index_t n = 130, d = 4;
  const std::vector<double> x = gaussian(n * d, 11);
  const auto X = MatrixView<double>::c_order(x.data(), n, d);
  const std::vector<double> Ga = gaussian(20 * d, 12);
  std::vector<double> Gb = gaussian(15 * d, 13);
  Gb.insert(Gb.end(), Ga.begin() + 5 * d, Ga.begin() + 12 * d);  // 7 gates shared with a
  Gb.insert(Gb.end(), Gb.begin(), Gb.begin() + 2 * d);           // 2 repeats inside b (no dedup in b)
  const PatternSet a = PatternSet::from_gates(X, Ga.data(), 20);
  const PatternSet b = PatternSet::from_gates(X, Gb.data(), static_cast<index_t>(Gb.size()) / d, false, false);
  const auto [merged, where] = a.merge(b);
  ASSERT_EQ(static_cast<index_t>(where.size()), b.n_patterns());
  EXPECT_EQ(merged.n_patterns(), a.n_patterns() + 15);
  for (index_t i = 0; i < a.n_patterns(); ++i) EXPECT_EQ(mask_of(merged, i), mask_of(a, i));
  std::set<std::vector<Word>> distinct;
  for (index_t i = 0; i < merged.n_patterns(); ++i) distinct.insert(mask_of(merged, i));
  EXPECT_EQ(static_cast<index_t>(distinct.size()), merged.n_patterns());
  for (index_t j = 0; j < b.n_patterns(); ++j) {
    ASSERT_GE(where[j], 0);
    ASSERT_LT(where[j], merged.n_patterns());
    EXPECT_EQ(mask_of(merged, where[j]), mask_of(b, j));
  }
  for (index_t j = 15; j < 22; ++j) EXPECT_LT(where[j], a.n_patterns());  // the shared ones map into a
  EXPECT_EQ(where[22], where[0]);
  const std::vector<double> y = gaussian(7 * d, 14);
  const PatternSet other_n = PatternSet::from_gates(MatrixView<double>::c_order(y.data(), 7, d), Ga.data(), 2);
  EXPECT_THROW(a.merge(other_n), std::invalid_argument);
}

TEST(PatternSet, RecomputeUsesSameGatesOnNewData) {
  const index_t n = 90, d = 5, m = 67;
  const std::vector<double> x = gaussian(n * d, 15), G = gaussian(40 * d, 16), y = gaussian(m * d, 17);
  const PatternSet s = PatternSet::from_gates(MatrixView<double>::c_order(x.data(), n, d), G.data(), 40);
  std::vector<float> yf(y.begin(), y.end());
  const auto Y = MatrixView<float>::c_order(yf.data(), m, d);
  const PatternSet r = s.recompute(Y);
  ASSERT_EQ(r.n_patterns(), s.n_patterns());
  EXPECT_EQ(r.n_samples(), m);
  EXPECT_EQ(r.gates(), s.gates());
  EXPECT_EQ(r.words(), direct_masks(Y, s.gates(), s.n_patterns()));
  // Recomputing on the training data gives back the same set.
  EXPECT_EQ(s.recompute(MatrixView<double>::c_order(x.data(), n, d)).words(), s.words());
  EXPECT_THROW(s.recompute(MatrixView<double>::c_order(y.data(), m * d / 4, 4)), std::invalid_argument);
}

TEST(PatternSet, FromWordsRoundTripAndValidation) {
  const index_t n = 100, d = 3;
  const std::vector<double> x = gaussian(n * d, 18), G = gaussian(9 * d, 19);
  const PatternSet s = PatternSet::from_gates(MatrixView<double>::c_order(x.data(), n, d), G.data(), 9);
  const PatternSet t = PatternSet::from_words(n, d, s.words(), s.gates());
  EXPECT_EQ(t.words(), s.words());
  EXPECT_EQ(t.gates(), s.gates());
  EXPECT_EQ(t.n_patterns(), s.n_patterns());
  std::vector<Word> w = s.words();
  w[1] |= Word(1) << 40;  // bit 104 > n = 100
  EXPECT_THROW(PatternSet::from_words(n, d, w, s.gates()), std::invalid_argument);
  EXPECT_THROW(PatternSet::from_words(n, d, std::vector<Word>(3), s.gates()), std::invalid_argument);
  EXPECT_THROW(PatternSet::from_words(n, 2, s.words(), std::vector<double>(3)), std::invalid_argument);
  std::vector<double> g = s.gates();
  g[0] = std::nan("");
  EXPECT_THROW(PatternSet::from_words(n, d, s.words(), g), std::invalid_argument);
  EXPECT_EQ(PatternSet::from_words(n, d, {}, {}).n_patterns(), 0);
}

// The portable stream: golden values pin it (a change of generator or transform must be deliberate);
// first k gates do not depend on n_gates; different seeds differ; moments look like N(0, 1).
TEST(PatternSet, GaussianGatesAreDeterministicAndPortable) {
  const std::vector<double> x = gaussian(50 * 4, 20);
  const auto X = MatrixView<double>::c_order(x.data(), 50, 4);
  const std::vector<double> a = PatternSet::gaussian_gates(X, 3, 42, false);
  const std::vector<double> b = PatternSet::gaussian_gates(X, 3, 42, false);
  EXPECT_EQ(a, b);
  const std::vector<double> golden = {-0.481217699801845,  -0.5745368738983058, 0.4945838562352133,
                                      0.5701215522073741,  0.37455426884981347, 0.251354176550835,
                                      -0.7344560350419196, 0.7542147983814691,  -1.2418094824390022,
                                      1.0237591177244176,  -2.9307824290563027, -0.4397871624361112};
  for (std::size_t i = 0; i < golden.size(); ++i) EXPECT_NEAR(a[i], golden[i], 1e-12) << i;
  const std::vector<double> longer = PatternSet::gaussian_gates(X, 10, 42, false);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), longer.begin()));
  EXPECT_NE(PatternSet::gaussian_gates(X, 3, 43, false), a);
  const std::vector<double> many = PatternSet::gaussian_gates(X, 25000, 7, false);  // 1e5 draws
  double mean = 0, var = 0;
  for (double v : many) mean += v;
  mean /= many.size();
  for (double v : many) var += (v - mean) * (v - mean);
  var /= many.size();
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.03);
}

// With a bias column each gate's hyperplane passes through a training point; the bias entry is the only
// one that depends on X; a last column that is not all ones is refused.
TEST(PatternSet, SampleWithBiasColumnSplitsTheData) {
  const index_t n = 200, d = 3;
  std::vector<double> x = gaussian(n * d, 21);
  for (index_t k = 0; k < n; ++k) {
    x[k * d] += 5.0;  // uncentred data
    x[k * d + 2] = 1.0;
  }
  const auto X = MatrixView<double>::c_order(x.data(), n, d);
  const index_t P = 50;
  const std::vector<double> G = PatternSet::gaussian_gates(X, P, 3, true);
  for (index_t i = 0; i < P; ++i) {
    double min_abs = INFINITY;
    for (index_t k = 0; k < n; ++k)
      min_abs = std::min(min_abs, std::abs(x[k * d] * G[i * d] + x[k * d + 1] * G[i * d + 1] + G[i * d + 2]));
    EXPECT_LT(min_abs, 1e-12);
  }
  const PatternSet s = PatternSet::sample(X, P, 3, true);
  const PatternSet direct = PatternSet::from_gates(X, G.data(), P);
  EXPECT_EQ(s.words(), direct.words());
  EXPECT_EQ(s.gates(), direct.gates());
  // Split the data: not all-ones for most gates (without the bias trick nearly every pattern would be).
  index_t all_ones = 0;
  for (index_t i = 0; i < s.n_patterns(); ++i) all_ones += s.popcount(i) == n;
  EXPECT_LT(all_ones, s.n_patterns() / 2);
  x[5] = 2.0;
  EXPECT_THROW(PatternSet::gaussian_gates(X, P, 3, true), std::invalid_argument);
  EXPECT_THROW(PatternSet::sample(X, 0, 3, false), std::invalid_argument);
}

// Orthonormal rows: moving a gate along x_k changes only sample k, so every flip is realizable.
TEST(PatternSet, FlipPatternsOrthogonalRowsAllFlipsKept) {
  const index_t n = 6, d = 8;
  std::vector<double> x(static_cast<std::size_t>(n * d), 0.0);
  for (index_t k = 0; k < n; ++k) x[k * d + k] = 1.0 + k;
  const auto X = MatrixView<double>::c_order(x.data(), n, d);
  std::vector<double> g = gaussian(d, 22);
  const PatternSet all = PatternSet::flip_patterns(X, g.data(), 1, 1.0);
  const PatternSet base = PatternSet::from_gates(X, g.data(), 1, false, false);
  index_t expected = base.mask(0)[0] != 0;  // all-zero masks are dropped
  for (index_t k = 0; k < n; ++k) expected += (base.mask(0)[0] ^ (Word(1) << k)) != 0;
  ASSERT_EQ(all.n_patterns(), expected);
  EXPECT_EQ(mask_of(all, 0), mask_of(base, 0));
  for (index_t i = 1; i < all.n_patterns(); ++i) EXPECT_EQ(__builtin_popcountll(all.mask(i)[0] ^ base.mask(0)[0]), 1);
  const PatternSet again = PatternSet::from_gates(X, all.gates().data(), all.n_patterns(), false, false);
  EXPECT_EQ(again.words(), all.words());
  // threshold 0: only the base pattern (no sample lies on the hyperplane)
  EXPECT_EQ(PatternSet::flip_patterns(X, g.data(), 1, 0.0).n_patterns(), 1);
  EXPECT_THROW(PatternSet::flip_patterns(X, g.data(), 1, -1.0), std::invalid_argument);
}

// General data: every kept pattern is a base pattern or a single flip of its gate's base pattern within the
// threshold, and the returned gates reproduce the returned masks exactly.
TEST(PatternSet, FlipPatternsGatesReproduceMasks) {
  const index_t n = 150, d = 4, P = 12;
  const std::vector<double> x = gaussian(n * d, 23), G = gaussian(P * d, 24);
  const auto X = MatrixView<double>::c_order(x.data(), n, d);
  const double threshold = 0.1;
  const PatternSet f = PatternSet::flip_patterns(X, G.data(), P, threshold);
  const PatternSet base = PatternSet::from_gates(X, G.data(), P, false, false);
  std::set<std::vector<Word>> allowed;
  index_t candidates = 0;
  for (index_t i = 0; i < P; ++i) {
    allowed.insert(mask_of(base, i));
    double gn = 0;
    for (index_t j = 0; j < d; ++j) gn += G[i * d + j] * G[i * d + j];
    gn = std::sqrt(gn);
    for (index_t k = 0; k < n; ++k) {
      double z = 0, xn = 0;
      for (index_t j = 0; j < d; ++j) {
        z += x[k * d + j] * G[i * d + j];
        xn += x[k * d + j] * x[k * d + j];
      }
      if (std::abs(z) <= threshold * std::sqrt(xn) * gn) {
        std::vector<Word> w = mask_of(base, i);
        w[k / 64] ^= Word(1) << (k % 64);
        allowed.insert(w);
        ++candidates;
      }
    }
  }
  ASSERT_GT(candidates, 10);
  EXPECT_GT(f.n_patterns(), P);  // some flips are realizable
  for (index_t i = 0; i < f.n_patterns(); ++i) EXPECT_TRUE(allowed.count(mask_of(f, i))) << i;
  for (index_t i = 0; i < P; ++i) {  // every base pattern is there
    bool found = false;
    for (index_t p = 0; p < f.n_patterns() && !found; ++p) found = mask_of(f, p) == mask_of(base, i);
    EXPECT_TRUE(found) << i;
  }
  const PatternSet again = PatternSet::from_gates(X, f.gates().data(), f.n_patterns(), false, false);
  EXPECT_EQ(again.words(), f.words());
}
