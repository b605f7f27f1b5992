// MaskedOperator and DenseBlockOperator against naive loops (accumulated in long double), on shapes that
// hit every tiling path: n < 64, n = 64 / 128, n not a multiple of 64, several row tiles and pattern
// blocks (partial outputs on both sides of the grid), P = 1, subsets with repeats, c = 1 and 3, float
// and double, C- and F-ordered X, 1 vs 2 threads and every SIMD kernel variant (bitwise identical), for
// both product methods (GEMM tiles and subset-sum tables).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "convexnn/core/blas.hpp"
#include "convexnn/operator/dense_block_operator.hpp"
#include "convexnn/operator/masked_operator.hpp"
#include "../../cpp/src/convexnn/operator/masked_tables.hpp"  // white-box: the bit transpose of the table kernels

namespace cnn = convexnn;
using cnn::index_t;

namespace {

using Real = long double;  // reference accumulation

// A random problem: X (n x d) stored in the requested order, dense 0/1 masks (n x P, row-major) made of
// hyperplane patterns 1[X g >= 0] plus an all-ones, an all-zero and a random-bits pattern when P allows.
template <class T>
struct Problem {
  index_t n, d, P;
  bool f_order;
  std::vector<T> x;             // storage of X
  std::vector<std::uint8_t> m;  // dense masks, m[k * P + i]
  cnn::MatrixView<T> X() const {
    return f_order ? cnn::MatrixView<T>::f_order(x.data(), n, d) : cnn::MatrixView<T>::c_order(x.data(), n, d);
  }
  T at(index_t k, index_t r) const { return X()(k, r); }
  bool active(index_t k, index_t i) const { return m[k * P + i] != 0; }
  cnn::MaskedOperator<T> op(cnn::ProductMethod method = cnn::ProductMethod::Auto) const {
    cnn::MaskedOperator<T> o(X(), cnn::pack_masks(m.data(), n, P, P, 1), P);
    o.set_product_method(method);
    return o;
  }
};

template <class T>
Problem<T> make_problem(index_t n, index_t d, index_t P, bool f_order, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  Problem<T> p{n, d, P, f_order, std::vector<T>(n * d), std::vector<std::uint8_t>(n * P)};
  std::vector<double> xs(n * d);
  for (auto& v : xs) v = gauss(rng);
  for (index_t k = 0; k < n; ++k)
    for (index_t r = 0; r < d; ++r) p.x[f_order ? r * n + k : k * d + r] = static_cast<T>(xs[k * d + r]);
  for (index_t i = 0; i < P; ++i) {
    const int kind = P >= 4 ? static_cast<int>(i % 7) : 0;
    std::vector<double> g(d);
    for (auto& v : g) v = gauss(rng);
    for (index_t k = 0; k < n; ++k) {
      bool a;
      if (kind == 1)
        a = true;
      else if (kind == 2)
        a = false;
      else if (kind == 3)
        a = (rng() & 1) != 0;
      else {
        double s = 0;
        for (index_t r = 0; r < d; ++r) s += xs[k * d + r] * g[r];
        a = s >= 0;
      }
      p.m[k * P + i] = a ? 1 : 0;
    }
  }
  return p;
}

template <class T>
std::vector<T> random_vec(index_t len, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  std::vector<T> v(len);
  for (auto& x : v) x = static_cast<T>(gauss(rng));
  return v;
}

std::vector<index_t> all_blocks(index_t P) {
  std::vector<index_t> v(P);
  for (index_t i = 0; i < P; ++i) v[i] = i;
  return v;
}

// Naive references (blocks listed explicitly: `blocks[k]` is the pattern of coefficient block k).
template <class T>
std::vector<Real> naive_forward(const Problem<T>& p, const std::vector<index_t>& blocks, const std::vector<T>& U,
                                index_t c) {
  std::vector<Real> z(p.n * c, 0);
  for (index_t k = 0; k < static_cast<index_t>(blocks.size()); ++k)
    for (index_t row = 0; row < p.n; ++row)
      if (p.active(row, blocks[k]))
        for (index_t j = 0; j < c; ++j)
          for (index_t r = 0; r < p.d; ++r) z[row * c + j] += Real(p.at(row, r)) * U[(k * p.d + r) * c + j];
  return z;
}

template <class T>
std::vector<Real> naive_adjoint(const Problem<T>& p, const std::vector<index_t>& blocks, const std::vector<T>& R,
                                index_t c) {
  const index_t S = static_cast<index_t>(blocks.size());
  std::vector<Real> G(S * p.d * c, 0);
  for (index_t k = 0; k < S; ++k)
    for (index_t row = 0; row < p.n; ++row)
      if (p.active(row, blocks[k]))
        for (index_t r = 0; r < p.d; ++r)
          for (index_t j = 0; j < c; ++j) G[(k * p.d + r) * c + j] += Real(p.at(row, r)) * R[row * c + j];
  return G;
}

template <class T>
std::vector<Real> naive_cone_violation(const Problem<T>& p, const std::vector<index_t>& blocks, const std::vector<T>& V,
                                       index_t c) {
  const index_t S = static_cast<index_t>(blocks.size());
  std::vector<Real> out(S * c, 0);
  for (index_t k = 0; k < S; ++k)
    for (index_t j = 0; j < c; ++j)
      for (index_t row = 0; row < p.n; ++row) {
        Real xv = 0;
        for (index_t r = 0; r < p.d; ++r) xv += Real(p.at(row, r)) * V[(k * p.d + r) * c + j];
        const Real signed_value = p.active(row, blocks[k]) ? xv : -xv;  // ((2D - I) X v)[row]
        out[k * c + j] = std::max(out[k * c + j], -signed_value);
      }
  return out;
}

template <class T>
std::vector<double> naive_gram(const Problem<T>& p, index_t i) {
  std::vector<double> g(p.d * p.d, 0);
  for (index_t row = 0; row < p.n; ++row)
    if (p.active(row, i))
      for (index_t a = 0; a < p.d; ++a)
        for (index_t b = 0; b < p.d; ++b) g[a * p.d + b] += double(p.at(row, a)) * double(p.at(row, b));
  return g;
}

double naive_lambda_max(const std::vector<double>& gram, index_t d) {
  std::vector<double> a(gram), w(d);
  EXPECT_EQ(cnn::blas::syev<double>(d, a.data(), w.data()), 0);
  return d > 0 ? w[d - 1] : 0.0;
}

template <class T>
double tolerance() {
  return sizeof(T) == sizeof(float) ? 2e-4 : 1e-12;
}

// |got - want| <= tol * (scale of the reference), scale = max(1, max |want|).
template <class T, class Ref>
void expect_close(const std::vector<T>& got, const std::vector<Ref>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1;
  for (const auto& v : want) scale = std::max(scale, std::abs(double(v)));
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(double(got[i]), double(want[i]), tol * scale) << what << " at " << i;
}

struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
};

struct Shape {
  index_t n, d, P;
};

// Shapes covering the grid: n < 64; n = 64, 128; n % 64 != 0; one row tile with several pattern
// blocks (forward pattern chunks); many row tiles with one block (adjoint row chunks); P = 1; d = 1;
// for the tables also feature vectors longer than one pass of registers (d = 50, 130) and several
// adjoint pattern chunks (P = 600).
const Shape kShapes[] = {{37, 4, 5},   {64, 3, 6},  {128, 5, 4}, {200, 6, 9},   {1, 3, 2},     {300, 5, 600},
                         {1500, 4, 3}, {700, 1, 7}, {333, 7, 1}, {260, 50, 70}, {130, 130, 11}};

const cnn::ProductMethod kMethods[] = {cnn::ProductMethod::Gemm, cnn::ProductMethod::Tables};
// float32 adds the AMX products where this machine can run them (cnn::amx_available()).
std::vector<cnn::ProductMethod> float_methods() {
  std::vector<cnn::ProductMethod> m(std::begin(kMethods), std::end(kMethods));
  if (cnn::amx_available()) m.push_back(cnn::ProductMethod::Amx);
  if (cnn::bf16_available()) m.push_back(cnn::ProductMethod::Bf16);
  return m;
}
std::string method_name(cnn::ProductMethod m) {
  switch (m) {
    case cnn::ProductMethod::Tables: return "tables";
    case cnn::ProductMethod::Amx: return "amx";
    case cnn::ProductMethod::Bf16: return "bf16";
    default: return "gemm";
  }
}

template <class T>
void check_all_products(const Shape& sh, bool f_order, index_t c, unsigned seed, cnn::ProductMethod method) {
  const auto p = make_problem<T>(sh.n, sh.d, sh.P, f_order, seed);
  const auto op = p.op(method);
  const std::string tag = "n=" + std::to_string(sh.n) + " d=" + std::to_string(sh.d) + " P=" + std::to_string(sh.P) +
                          " c=" + std::to_string(c) + (f_order ? " F " : " C ") + method_name(method);
  // Full set, then a subset with a repeated block in non-sorted order.
  std::vector<std::vector<index_t>> subsets = {all_blocks(sh.P)};
  subsets.push_back({sh.P - 1, 0, sh.P - 1});
  if (sh.P > 3) subsets.push_back({2, 1});
  for (std::size_t q = 0; q < subsets.size(); ++q) {
    const auto& blocks = subsets[q];
    const index_t S = static_cast<index_t>(blocks.size());
    const cnn::BlockSubset subset = q == 0 ? cnn::BlockSubset{} : cnn::BlockSubset::of(blocks);
    const auto U = random_vec<T>(S * sh.d * c, seed + 1);
    const auto R = random_vec<T>(sh.n * c, seed + 2);
    std::vector<T> z(sh.n * c, T(-7)), G(S * sh.d * c, T(-7)), viol(S * c, T(-7));
    op.forward(U.data(), c, z.data(), subset);
    expect_close(z, naive_forward(p, blocks, U, c), tolerance<T>(), "forward " + tag);
    op.adjoint(R.data(), c, G.data(), subset);
    expect_close(G, naive_adjoint(p, blocks, R, c), tolerance<T>(), "adjoint " + tag);
    op.cone_violation_gemm(U.data(), c, viol.data(), subset);
    expect_close(viol, naive_cone_violation(p, blocks, U, c), tolerance<T>(), "cone_violation " + tag);
  }
}

}  // namespace

TEST(MaskedOperator, MatchesNaiveLoopsDouble) {
  unsigned seed = 10;
  for (const auto method : kMethods)
    for (const auto& sh : kShapes)
      for (bool f : {false, true})
        for (index_t c : {1, 3}) check_all_products<double>(sh, f, c, seed++, method);
}

TEST(MaskedOperator, MatchesNaiveLoopsFloat) {
  unsigned seed = 100;
  for (const auto method : float_methods())
    for (const auto& sh : kShapes)
      for (bool f : {false, true})
        for (index_t c : {1, 3}) check_all_products<float>(sh, f, c, seed++, method);
}

// The bf16 products (masked_bf16.cpp) alone, so that a CPU without AVX512_BF16 reports the skip by name; the
// tests above include them in float_methods() where the CPU has them.
TEST(MaskedOperator, Bf16MatchesNaiveLoopsAndIsFloatOnly) {
  const auto p = make_problem<double>(100, 4, 8, false, 5);
  EXPECT_THROW(p.op(cnn::ProductMethod::Bf16), std::invalid_argument);  // float32 only
  const auto pf = make_problem<float>(100, 4, 8, false, 5);
  if (!cnn::bf16_available()) {
    EXPECT_THROW(pf.op(cnn::ProductMethod::Bf16), std::invalid_argument);
    GTEST_SKIP() << "this CPU has no AVX512_BF16 (or CONVEXNN_BF16=0): the bf16 products cannot run";
  }
  unsigned seed = 500;
  for (const auto& sh : kShapes)
    for (bool f : {false, true})
      for (index_t c : {1, 3}) check_all_products<float>(sh, f, c, seed++, cnn::ProductMethod::Bf16);
  // Block sums over 2048 summation indices: more rows / patterns than one block, odd counts.
  for (const Shape sh : {Shape{4500, 3, 5}, Shape{301, 2, 4099}})
    for (index_t c : {1, 2}) check_all_products<float>(sh, false, c, seed++, cnn::ProductMethod::Bf16);
}

TEST(MaskedOperator, AutoMethodPicksTablesOnlyForManyPatterns) {
  const auto p = make_problem<double>(200, 6, 40, false, 3);
  const auto op = p.op();
  EXPECT_EQ(op.product_method(), cnn::ProductMethod::Auto);
  EXPECT_TRUE(op.uses_tables(1, 40));
  EXPECT_FALSE(op.uses_tables(1, 2));  // too few patterns to amortise the tables
  EXPECT_FALSE(p.op(cnn::ProductMethod::Gemm).uses_tables(1, 40));
  EXPECT_TRUE(p.op(cnn::ProductMethod::Tables).uses_tables(1, 2));
}

TEST(MaskedTables, TransposeBits64MatchesNaive) {
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> a(64), t(64);
  for (auto& w : a) w = rng();
  a[3] = 0, a[7] = ~std::uint64_t(0);
  t = a;
  cnn::detail::transpose_bits64(t.data());
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j) ASSERT_EQ((t[i] >> j) & 1U, (a[j] >> i) & 1U) << i << "," << j;
}

TEST(MaskedOperator, ReportsAKernelVariant) {
  const std::string isa = cnn::masked_kernel_isa();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "generic") << isa;
  EXPECT_FALSE(cnn::force_masked_kernel_isa("sse9"));
}

// Every SIMD variant the CPU can run and both thread counts give bitwise identical results.
template <class T>
void check_bitwise_reproducible(cnn::ProductMethod method) {
  const std::vector<Shape> shapes = {{300, 5, 600}, {1500, 4, 3}, {200, 6, 9}, {2000, 50, 40}};
  for (const auto& sh : shapes)
    for (index_t c : {1, 3}) {
      const auto p = make_problem<T>(sh.n, sh.d, sh.P, false, 7);
      const auto op = p.op(method);
      const auto U = random_vec<T>(sh.P * sh.d * c, 8), R = random_vec<T>(sh.n * c, 9);
      std::vector<T> z0, G0, v0;
      bool have_reference = false;
      for (const char* isa : {"generic", "avx2", "avx512"}) {
        if (!cnn::force_masked_kernel_isa(isa)) continue;
        for (int threads : {1, 2}) {
          ThreadCount tc(threads);
          std::vector<T> z(sh.n * c), G(sh.P * sh.d * c), v(sh.P * c);
          op.forward(U.data(), c, z.data());
          op.adjoint(R.data(), c, G.data());
          op.cone_violation_gemm(U.data(), c, v.data());
          if (!have_reference) {
            z0 = z, G0 = G, v0 = v, have_reference = true;
            continue;
          }
          const std::string tag = std::string(isa) + " threads=" + std::to_string(threads) +
                                  " n=" + std::to_string(sh.n) + " " + method_name(method);
          EXPECT_EQ(z, z0) << "forward " << tag;
          EXPECT_EQ(G, G0) << "adjoint " << tag;
          EXPECT_EQ(v, v0) << "cone_violation " << tag;
        }
      }
      ASSERT_TRUE(cnn::force_masked_kernel_isa("auto"));
    }
}

TEST(MaskedOperator, BitwiseIdenticalAcrossThreadsAndKernels) {
  for (const auto method : kMethods) check_bitwise_reproducible<double>(method);
  for (const auto method : float_methods()) check_bitwise_reproducible<float>(method);
}

// The full-set table forward reads the operator's cached row-major mask bits; a subset listing every block
// transposes the bits of each row tile instead: the two must agree bitwise (same additions, same order),
// including for an operator switched to the tables after construction.
TEST(MaskedOperator, CachedRowBitsMatchPerTileTransposes) {
  const std::vector<Shape> shapes = {{37, 4, 70}, {300, 5, 600}, {1000, 50, 129}, {64, 3, 64}};
  for (const auto& sh : shapes)
    for (index_t c : {1, 2}) {
      const auto p = make_problem<float>(sh.n, sh.d, sh.P, false, 31);
      auto switched = p.op(cnn::ProductMethod::Gemm);
      switched.set_product_method(cnn::ProductMethod::Tables);
      const auto every = all_blocks(sh.P);
      const auto U = random_vec<float>(sh.P * sh.d * c, 32);
      std::vector<float> z_cached(sh.n * c), z_tiles(sh.n * c), z_switched(sh.n * c);
      const auto op = p.op(cnn::ProductMethod::Tables);
      op.forward(U.data(), c, z_cached.data());
      op.forward(U.data(), c, z_tiles.data(), cnn::BlockSubset::of(every));
      switched.forward(U.data(), c, z_switched.data());
      const std::string tag = "n=" + std::to_string(sh.n) + " P=" + std::to_string(sh.P) + " c=" + std::to_string(c);
      EXPECT_EQ(z_cached, z_tiles) << tag;
      EXPECT_EQ(z_switched, z_tiles) << tag;
      expect_close(z_cached, naive_forward(p, every, U, c), tolerance<float>(), "forward " + tag);
    }
}

TEST(MaskedOperator, Adjointness) {
  const auto p = make_problem<double>(517, 6, 40, true, 21);
  const auto op = p.op();
  for (index_t c : {1, 2}) {
    const auto U = random_vec<double>(p.P * p.d * c, 22), R = random_vec<double>(p.n * c, 23);
    std::vector<double> z(p.n * c), G(p.P * p.d * c);
    op.forward(U.data(), c, z.data());
    op.adjoint(R.data(), c, G.data());
    double lhs = 0, rhs = 0, scale = 0;
    for (index_t i = 0; i < p.n * c; ++i) lhs += z[i] * R[i], scale += std::abs(z[i] * R[i]);
    for (index_t i = 0; i < p.P * p.d * c; ++i) rhs += U[i] * G[i];
    EXPECT_NEAR(lhs, rhs, 1e-12 * scale);
  }
}

TEST(MaskedOperator, ConeViolationIsZeroInsideTheCone) {
  // V_i = gate of pattern i (scaled) satisfies (2 D_i - I) X V_i >= 0 for hyperplane patterns.
  const index_t n = 150, d = 4, P = 3;
  auto p = make_problem<double>(n, d, P, false, 31);
  std::vector<double> gates = random_vec<double>(P * d, 32);
  for (index_t i = 0; i < P; ++i)
    for (index_t k = 0; k < n; ++k) {
      double s = 0;
      for (index_t r = 0; r < d; ++r) s += p.at(k, r) * gates[i * d + r];
      p.m[k * P + i] = s >= 0;
    }
  const auto op = p.op();
  std::vector<double> viol(P, -1.0), flipped(P);
  op.cone_violation_gemm(gates.data(), 1, viol.data());
  for (double v : viol) EXPECT_EQ(v, 0.0);
  for (auto& g : gates) g = -g;  // the opposite direction violates wherever X g != 0
  op.cone_violation_gemm(gates.data(), 1, flipped.data());
  for (double v : flipped) EXPECT_GT(v, 0.0);
}

template <class T>
void check_gram_and_lipschitz(bool f_order) {
  for (const Shape sh : {Shape{37, 4, 5}, Shape{300, 6, 9}, Shape{1, 2, 2}}) {
    const auto p = make_problem<T>(sh.n, sh.d, sh.P, f_order, 41);
    const auto op = p.op();
    const auto dense = cnn::DenseBlockOperator<T>::from_masks(p.X(), op.masks());
    std::vector<T> gram(sh.d * sh.d), dense_gram(sh.d * sh.d);
    std::vector<double> want(sh.P);
    for (index_t i = 0; i < sh.P; ++i) {
      const auto ref = naive_gram(p, i);
      op.block_gram(i, gram.data());
      expect_close(gram, ref, tolerance<T>(), "block_gram");
      for (index_t a = 0; a < sh.d; ++a)
        for (index_t b = 0; b < sh.d; ++b) EXPECT_EQ(gram[a * sh.d + b], gram[b * sh.d + a]);
      dense.block_gram(i, dense_gram.data());
      expect_close(dense_gram, ref, tolerance<T>(), "dense block_gram");
      want[i] = naive_lambda_max(ref, sh.d);
    }
    const std::vector<index_t> sub = {sh.P - 1, 0};
    for (auto method : {cnn::LipschitzMethod::Auto, cnn::LipschitzMethod::Gram, cnn::LipschitzMethod::PowerIteration}) {
      std::vector<T> L(sh.P), Ls(2);
      op.block_lipschitz(L.data(), {}, method);
      op.block_lipschitz(Ls.data(), cnn::BlockSubset::of(sub), method);
      // Power iteration stops at a relative change of power_tolerance<T>(); its error is that change
      // divided by the spectral gap (1 - lambda_2 / lambda_1), so allow a generous factor.
      const bool power = method == cnn::LipschitzMethod::PowerIteration;
      const double tol = power ? (sizeof(T) == sizeof(float) ? 2e-3 : 1e-6) : 10 * tolerance<T>();
      for (index_t i = 0; i < sh.P; ++i) {
        EXPECT_NEAR(double(L[i]), want[i], tol * std::max(1.0, want[i])) << "block " << i;
        if (power) EXPECT_LE(double(L[i]), want[i] * (1 + 10 * tolerance<T>()) + 1e-12);  // a lower estimate
      }
      // A block's value does not depend on the other blocks of the subset (exactly so for the Gram
      // path; power iteration runs GEMMs whose edge handling may round differently).
      EXPECT_NEAR(double(Ls[0]), double(L[sh.P - 1]), power ? tol * std::max(1.0, want[sh.P - 1]) : 0.0);
      EXPECT_NEAR(double(Ls[1]), double(L[0]), power ? tol * std::max(1.0, want[0]) : 0.0);
    }
    std::vector<T> Ld(sh.P);
    dense.block_lipschitz(Ld.data());
    for (index_t i = 0; i < sh.P; ++i)
      EXPECT_NEAR(double(Ld[i]), want[i], 10 * tolerance<T>() * std::max(1.0, want[i]));
  }
}

TEST(MaskedOperator, BlockGramAndLipschitz) {
  check_gram_and_lipschitz<double>(false);
  check_gram_and_lipschitz<double>(true);
  check_gram_and_lipschitz<float>(false);
}

TEST(MaskedOperator, EmptyPatternsAndZeroColumns) {
  const auto p = make_problem<double>(70, 3, 4, false, 51);
  const auto op = p.op();
  std::vector<double> z(70, 5.0);
  op.forward(nullptr, 1, z.data(), cnn::BlockSubset{nullptr, 0});
  for (double v : z) EXPECT_EQ(v, 0.0);
  std::vector<double> L(4);
  op.block_lipschitz(L.data());  // patterns include an all-zero one (kind 2): its constant is 0
  EXPECT_EQ(L[2], 0.0);
}

TEST(MaskedOperator, RejectsBadArguments) {
  const auto p = make_problem<double>(40, 3, 4, false, 61);
  const auto op = p.op();
  std::vector<double> U(4 * 3), z(40), G(4 * 3);
  const std::vector<index_t> bad = {0, 4};
  EXPECT_THROW(op.forward(U.data(), 1, z.data(), cnn::BlockSubset::of(bad)), std::invalid_argument);
  EXPECT_THROW(op.adjoint(z.data(), 1, G.data(), cnn::BlockSubset::of(bad)), std::invalid_argument);
  const std::vector<index_t> negative = {-1};
  EXPECT_THROW(op.cone_violation(U.data(), 1, z.data(), cnn::BlockSubset::of(negative)), std::invalid_argument);
  EXPECT_THROW(op.forward(U.data(), 0, z.data()), std::invalid_argument);
  EXPECT_THROW(op.block_gram(4, G.data()), std::invalid_argument);
  // Masks for a different n: a view that says so, and owned words of the wrong count.
  const auto words = cnn::pack_masks(p.m.data(), 39, 4, 4, 1);
  EXPECT_THROW(cnn::MaskedOperator<double>(p.X(), cnn::PackedMasks{words.data(), 39, 4, 1}), std::invalid_argument);
  const auto more = make_problem<double>(65, 3, 4, false, 62);
  EXPECT_THROW(cnn::MaskedOperator<double>(p.X(), cnn::pack_masks(more.m.data(), 65, 4, 4, 1), 4),
               std::invalid_argument);
  try {
    op.forward(U.data(), 1, z.data(), cnn::BlockSubset::of(bad));
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("subset[1] = 4"), std::string::npos) << e.what();
  }
  // A strided X that BLAS cannot read.
  cnn::MatrixView<double> strided{p.x.data(), 10, 2, 4, 2};
  EXPECT_THROW(cnn::MaskedOperator<double>(strided, cnn::pack_masks(p.m.data(), 10, 4, 4, 1), 4),
               std::invalid_argument);
}

TEST(PackMasks, RoundTripsAndZeroesTailBits) {
  const auto p = make_problem<double>(130, 2, 5, false, 71);
  const auto words = cnn::pack_masks(p.m.data(), p.n, p.P, p.P, 1);
  ASSERT_EQ(words.size(), std::size_t(5 * 3));
  const cnn::PackedMasks view{words.data(), p.n, p.P, 3};
  for (index_t i = 0; i < p.P; ++i) {
    for (index_t k = 0; k < p.n; ++k) EXPECT_EQ(view.active(k, i), p.active(k, i));
    EXPECT_EQ(view.mask(i)[2] >> (130 - 128), 0u);
  }
}

TEST(BlockNorms, OutputAndNeuronGroups) {
  const index_t S = 3, d = 4, c = 2;
  auto U = random_vec<double>(S * d * c, 81);
  U[0] = 1e200;  // no overflow in the sum of squares
  std::vector<double> out(S * c), fro(S);
  cnn::block_norms(U.data(), S, d, c, false, out.data());
  cnn::block_norms(U.data(), S, d, c, true, fro.data());
  for (index_t i = 0; i < S; ++i) {
    Real f = 0;
    for (index_t j = 0; j < c; ++j) {
      Real s = 0;
      for (index_t r = 0; r < d; ++r) s += Real(U[(i * d + r) * c + j]) * U[(i * d + r) * c + j];
      EXPECT_NEAR(out[i * c + j], double(std::sqrt(s)), 1e-14 * double(std::sqrt(s)));
      f += s;
    }
    EXPECT_NEAR(fro[i], double(std::sqrt(f)), 1e-14 * double(std::sqrt(f)));
  }
  std::vector<float> Uf = {3.f, 4.f}, of(1);
  cnn::block_norms(Uf.data(), 1, 2, 1, false, of.data());
  EXPECT_FLOAT_EQ(of[0], 5.f);
}

TEST(DenseBlockOperator, MatchesMaskedOperator) {
  for (bool f : {false, true})
    for (index_t c : {1, 3}) {
      const auto p = make_problem<double>(150, 5, 8, f, 91);
      const auto op = p.op();
      const auto dense = cnn::DenseBlockOperator<double>::from_masks(p.X(), op.masks());
      EXPECT_EQ(dense.n_samples(), 150);
      EXPECT_EQ(dense.block_dim(), 5);
      EXPECT_EQ(dense.n_blocks(), 8);
      const std::vector<index_t> sub = {7, 2, 2};
      const auto U = random_vec<double>(3 * 5 * c, 92), R = random_vec<double>(150 * c, 93);
      std::vector<double> z(150 * c), G(3 * 5 * c);
      dense.forward(U.data(), c, z.data(), cnn::BlockSubset::of(sub));
      expect_close(z, naive_forward(p, sub, U, c), 1e-12, "dense forward");
      dense.adjoint(R.data(), c, G.data(), cnn::BlockSubset::of(sub));
      expect_close(G, naive_adjoint(p, sub, R, c), 1e-12, "dense adjoint");
    }
}

TEST(DenseBlockOperator, ExplicitBlocksAndValidation) {
  // Two arbitrary 2 x 1 blocks: A_0 = [1; 2], A_1 = [3; -1].
  cnn::DenseBlockOperator<double> op(2, 1, 2, {1, 2, 3, -1});
  const std::vector<double> U = {1.0, 2.0};
  std::vector<double> z(2), G(2), L(2);
  op.forward(U.data(), 1, z.data());
  EXPECT_DOUBLE_EQ(z[0], 7.0);
  EXPECT_DOUBLE_EQ(z[1], 0.0);
  const std::vector<double> R = {1.0, 1.0};
  op.adjoint(R.data(), 1, G.data());
  EXPECT_DOUBLE_EQ(G[0], 3.0);
  EXPECT_DOUBLE_EQ(G[1], 2.0);
  op.block_lipschitz(L.data());
  EXPECT_NEAR(L[0], 5.0, 1e-12);
  EXPECT_NEAR(L[1], 10.0, 1e-12);
  EXPECT_THROW(cnn::DenseBlockOperator<double>(2, 1, 2, {1, 2, 3}), std::invalid_argument);
  const std::vector<index_t> bad = {2};
  EXPECT_THROW(op.forward(U.data(), 1, z.data(), cnn::BlockSubset::of(bad)), std::invalid_argument);
}

// The interface's fused adjoint_dual_norms (default: adjoint, then the group norms) gives bitwise the norms of
// the adjoint computed separately, for both groupings, c = 1 and 3, and a subset.
TEST(OperatorInterface, AdjointDualNormsEqualAdjointThenNormsBitwise) {
  const auto p = make_problem<double>(150, 5, 40, false, 7);
  const auto op = p.op(cnn::ProductMethod::Gemm);
  for (index_t c : {1, 3}) {
    std::vector<double> R(static_cast<std::size_t>(p.n * c));
    for (std::size_t e = 0; e < R.size(); ++e) R[e] = std::sin(0.37 * static_cast<double>(e)) - 0.1;
    const std::vector<index_t> idx = {3, 0, 39, 3};
    for (const cnn::BlockSubset subset : {cnn::BlockSubset{}, cnn::BlockSubset::of(idx)}) {
      const index_t S = subset.count(p.P);
      std::vector<double> G(static_cast<std::size_t>(S * p.d * c));
      op.adjoint(R.data(), c, G.data(), subset);
      for (bool neuron : {false, true}) {
        const index_t ng = neuron ? 1 : c;
        std::vector<double> fused(static_cast<std::size_t>(S * ng));
        op.adjoint_dual_norms(R.data(), c, neuron, fused.data(), subset);
        for (index_t k = 0; k < S; ++k)
          for (index_t j = 0; j < ng; ++j) {
            double want;
            if (neuron || c == 1) {
              want = cnn::block_dual_norm(G.data() + k * p.d * c, p.d, c, cnn::Groups::neuron);
            } else {
              double acc = 0.0;
              for (index_t r = 0; r < p.d; ++r) acc += G[(k * p.d + r) * c + j] * G[(k * p.d + r) * c + j];
              want = std::sqrt(acc);
            }
            EXPECT_EQ(fused[k * ng + j], want) << "c " << c << " neuron " << neuron << " block " << k;
          }
      }
    }
  }
}

// The exact solver's cone violation (ConeOperator::cone_violation, double): MaskedOperator's SIMD kernel has the
// bits of the default row loop (a CompositeConeOperator around the same operator) for every kernel variant,
// thread count, subset, c and X order, and agrees with the long-double reference to rounding.
template <class T>
void check_exact_cone_violation() {
  const std::vector<Shape> shapes = {{37, 3, 5}, {64, 4, 7}, {200, 6, 9}, {1500, 5, 12}};
  for (const auto& sh : shapes)
    for (bool f_order : {false, true})
      for (index_t c : {1, 3}) {
        const auto p = make_problem<T>(sh.n, sh.d, sh.P, f_order, 41);
        const auto op = p.op();
        // The default needs a PatternSet: the same words (gates are not read by the violation).
        const cnn::PatternSet pats = cnn::PatternSet::from_words(
            sh.n, sh.d, cnn::pack_masks(p.m.data(), sh.n, sh.P, sh.P, 1), std::vector<double>(sh.P * sh.d, 0.0));
        const cnn::CompositeConeOperator<T> composite(op, p.X(), pats);
        const std::vector<index_t> blocks = {sh.P - 1, 0, sh.P / 2, 0};
        const auto subset = cnn::BlockSubset::of(blocks);
        const auto U = random_vec<T>(4 * sh.d * c, 42);
        std::vector<double> want(4 * c);
        composite.cone_violation(U.data(), c, want.data(), subset);
        const auto naive = naive_cone_violation(p, blocks, U, c);
        for (std::size_t e = 0; e < want.size(); ++e)
          EXPECT_NEAR(want[e], static_cast<double>(naive[e]), 1e-12 * (1.0 + std::abs(static_cast<double>(naive[e]))));
        for (const char* isa : {"generic", "avx2", "avx512"}) {
          if (!cnn::force_masked_kernel_isa(isa)) continue;
          for (int threads : {1, 2}) {
            ThreadCount tc(threads);
            std::vector<double> got(4 * c, -1.0);
            op.cone_violation(U.data(), c, got.data(), subset);
            EXPECT_EQ(got, want) << isa << " threads=" << threads << " n=" << sh.n << " c=" << c;
          }
        }
        ASSERT_TRUE(cnn::force_masked_kernel_isa("auto"));
      }
}

TEST(ConeOperator, MaskedSimdViolationHasTheBitsOfTheDefaultLoop) {
  check_exact_cone_violation<double>();
  check_exact_cone_violation<float>();
}

TEST(ConeOperator, CompositeForwardsAndValidates) {
  const auto p = make_problem<double>(50, 3, 4, false, 51);
  const auto op = p.op();
  const cnn::PatternSet pats = cnn::PatternSet::from_words(50, 3, cnn::pack_masks(p.m.data(), 50, 4, 4, 1),
                                                           std::vector<double>(12, 0.0));
  const cnn::CompositeConeOperator<double> cone(op, p.X(), pats);
  EXPECT_TRUE(cone.masked_outputs());
  EXPECT_EQ(cone.n_samples(), 50);
  const auto U = random_vec<double>(4 * 3, 52);
  std::vector<double> z0(50), z1(50);
  op.forward(U.data(), 1, z0.data());
  cone.forward(U.data(), 1, z1.data());
  EXPECT_EQ(z0, z1);
  // Rows, columns and patterns must match the operator's blocks.
  const auto fewer = cnn::MatrixView<double>::c_order(p.x.data(), 49, 3);
  EXPECT_THROW(cnn::CompositeConeOperator<double>(op, fewer, pats), std::invalid_argument);
  const auto narrow = cnn::MatrixView<double>{p.x.data(), 50, 2, 3, 1};
  EXPECT_THROW(cnn::CompositeConeOperator<double>(op, narrow, pats), std::invalid_argument);
  // A MaskedOperator of packed masks has no PatternSet; one built from a PatternSet has it.
  EXPECT_THROW(op.patterns(), std::invalid_argument);
  const cnn::MaskedOperator<double> with_set(p.X(), pats);
  EXPECT_EQ(&with_set.patterns(), &pats);
  EXPECT_TRUE(with_set.masked_outputs());
}
