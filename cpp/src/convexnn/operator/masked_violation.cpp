// MaskedOperator::cone_violation (the ConeOperator contract, cone_operator.hpp): per tile of 64 rows (one mask
// word) X is transposed into double once, then every column's row products are accumulated across the 64 rows
// at once, term by term in the column order of X, each term a mul then an add. That is exactly the arithmetic
// of the default row loop (cone_operator.cpp), so all variants and thread counts give the default's bits; the
// file is compiled without floating-point contraction (CMakeLists.txt) so that no FMA changes them.
#include <algorithm>
#include <vector>

#include "convexnn/operator/masked_gemm.hpp"
#include "convexnn/operator/masked_operator.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVEXNN_X86_SIMD 1
#include <immintrin.h>
#else
#define CONVEXNN_X86_SIMD 0
#endif

namespace convexnn {
namespace {

using Word = PackedMasks::Word;
constexpr index_t kTile = PackedMasks::kWordBits;
// Row tiles per parallel unit, and the work (multiply-adds) below which one thread does it all.
constexpr index_t kTilesPerUnit = 16;
constexpr double kParallelWork = 1e6;

// max(running, max_{b < rows} (bit_b ? -acc_b : acc_b)) of one tile, acc_b = sum_r xt[r * 64 + b] v[r] in order.
double tile_generic(const double* xt, index_t d, const double* v, Word word, index_t rows, double running) {
  double acc[kTile] = {};
  for (index_t r = 0; r < d; ++r) {
    const double* x = xt + r * kTile;
    const double vr = v[r];
    for (index_t b = 0; b < kTile; ++b) acc[b] = acc[b] + x[b] * vr;
  }
  for (index_t b = 0; b < rows; ++b) {
    const double cand = ((word >> b) & 1U) ? -acc[b] : acc[b];
    running = cand > running ? cand : running;
  }
  return running;
}

#if CONVEXNN_X86_SIMD
__attribute__((target("avx512f"))) double tile_avx512(const double* xt, index_t d, const double* v, Word word,
                                                      index_t rows, double running) {
  __m512d a[8];
  for (auto& q : a) q = _mm512_setzero_pd();
  for (index_t r = 0; r < d; ++r) {
    const __m512d vr = _mm512_set1_pd(v[r]);
    const double* x = xt + r * kTile;
    for (int q = 0; q < 8; ++q) a[q] = _mm512_add_pd(a[q], _mm512_mul_pd(_mm512_loadu_pd(x + 8 * q), vr));
  }
  const __m512i sign = _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ULL));
  __m512d m = _mm512_set1_pd(running);
  for (int q = 0; q < 8 && 8 * q < rows; ++q) {
    const index_t left = rows - 8 * q;
    const __mmask8 valid = left >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1U << left) - 1);
    const __mmask8 bits = static_cast<__mmask8>(word >> (8 * q));
    const __m512i x = _mm512_castpd_si512(a[q]);
    const __m512d s = _mm512_castsi512_pd(_mm512_mask_xor_epi64(x, bits, x, sign));
    m = _mm512_mask_max_pd(m, valid, s, m);  // s > m ? s : m (a NaN s keeps m)
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, m);
  for (double l : lanes) running = l > running ? l : running;
  return running;
}
#endif

using TileKernel = double (*)(const double*, index_t, const double*, Word, index_t, double);

TileKernel tile_kernel() {
#if CONVEXNN_X86_SIMD
  if (detail::masked_simd() == detail::SimdIsa::Avx512) return &tile_avx512;
#endif
  return &tile_generic;
}

}  // namespace

template <class T>
void MaskedOperator<T>::cone_violation(const T* V, index_t c, double* out, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "cone_violation: c must be >= 1, got " << c);
  check_subset(subset, "subset");
  const index_t n = X_.rows, d = X_.cols, S = subset.count(masks_.n_patterns), cols = S * c;
  std::fill(out, out + cols, 0.0);
  if (cols == 0 || n == 0 || d == 0) return;
  // The columns in double, each contiguous (d).
  std::vector<double> vc(static_cast<std::size_t>(cols * d));
  for (index_t k = 0; k < S; ++k)
    for (index_t r = 0; r < d; ++r)
      for (index_t j = 0; j < c; ++j) vc[static_cast<std::size_t>((k * c + j) * d + r)] = V[(k * d + r) * c + j];
  const index_t n_tiles = (n + kTile - 1) / kTile, units = (n_tiles + kTilesPerUnit - 1) / kTilesPerUnit;
  // Maxima combine exactly in any order: one partial row per unit only avoids write races.
  std::vector<double> parts(static_cast<std::size_t>(units * cols), 0.0);
  const TileKernel kernel = tile_kernel();
  const bool parallel = units > 1 && static_cast<double>(n) * d * cols > kParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<double> xt(static_cast<std::size_t>(d * kTile));
#pragma omp for schedule(dynamic, 1)
    for (index_t u = 0; u < units; ++u) {
      double* part = parts.data() + u * cols;
      for (index_t t = u * kTilesPerUnit; t < std::min(n_tiles, (u + 1) * kTilesPerUnit); ++t) {
        const index_t r0 = t * kTile, rows = std::min(kTile, n - r0);
        std::fill(xt.begin(), xt.end(), 0.0);
        for (index_t b = 0; b < rows; ++b)
          for (index_t r = 0; r < d; ++r) xt[static_cast<std::size_t>(r * kTile + b)] = X_(r0 + b, r);
        for (index_t k = 0; k < S; ++k) {
          const Word word = masks_.mask(subset.block(k))[t];
          for (index_t j = 0; j < c; ++j)
            part[k * c + j] = kernel(xt.data(), d, vc.data() + (k * c + j) * d, word, rows, part[k * c + j]);
        }
      }
    }
  }
  for (index_t u = 0; u < units; ++u)
    for (index_t e = 0; e < cols; ++e) {
      const double p = parts[static_cast<std::size_t>(u * cols + e)];
      out[e] = p > out[e] ? p : out[e];
    }
}

template void MaskedOperator<float>::cone_violation(const float*, index_t, double*, BlockSubset) const;
template void MaskedOperator<double>::cone_violation(const double*, index_t, double*, BlockSubset) const;

}  // namespace convexnn
