// Masked products on VDPBF16PS (see masked_bf16.hpp for the method).
//
// One kernel serves both products: for outputs o (data rows for the forward, patterns for the adjoint), each
// with a row of mask bits over the summation index t (row_bits / the pattern masks), and a float32 operand B
// (U or Phi, t x m), out_o = sum_t bit(o, t) B[t, :]. B is packed in pairs of t: for pair p, split h, vector f
// of 16 features, 16 dwords whose low / high bf16 halves hold term h of B[2p][16 f + j] / B[2p + 1][16 f + j].
// The mask side of one VDPBF16PS is the broadcast dword of the pair's two bits (bf16 1.0 or 0 in each half).
#include "convexnn/operator/masked_bf16.hpp"
#include "convexnn/core/buffers.hpp"
#include "convexnn/core/parallel_errors.hpp"
#include "convexnn/operator/masked_tables.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

// AVX512_BF16 intrinsics need GCC >= 10 or Clang >= 9; elsewhere the method reports itself unavailable.
#if defined(__x86_64__) && ((defined(__clang__) && __clang_major__ >= 9) || \
                            (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10))
#define CONVEXNN_BF16 1
// GCC 12 warns inside its own AVX-512 headers (their _mm512_undefined_* placeholders): a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>
#else
#define CONVEXNN_BF16 0
#endif

namespace convexnn::detail {

#if CONVEXNN_BF16
namespace {

using Word = std::uint64_t;
using Bf16 = std::uint16_t;
constexpr index_t kWordBits = 64;
constexpr index_t kLanes = 16;             // float32 lanes of one accumulator (features)
constexpr index_t kVecBf16 = 2 * kLanes;   // bf16 elements of one packed vector (16 pairs, 64 bytes)
constexpr int kSplits = 3;                 // bf16 terms per float32 operand (8 + 8 + 8 significant bits)
constexpr int kMaxPassVectors = 4;         // feature vectors per pass (accumulators: 2 x outputs x vectors)
// Summation indices per block summed from zero before joining the running sums: AMX's 2048 rows (a sequential
// float32 sum over all n rows measured 4.5x the tables' rounding there); a multiple of 64 (whole mask words).
constexpr index_t kSumBlock = 2048;
constexpr index_t kBlockPairs = kSumBlock / 2;
constexpr index_t kRowUnit = 64;           // forward rows per work unit (whole mask words)
constexpr index_t kAdjointUnit = 16;       // adjoint patterns per work unit
constexpr index_t kPackChunk = 32;         // pairs packed per step (64 rows of Phi in scratch)
constexpr double kMinParallelMacs = 2e6;   // below this many multiply-adds a call runs on one thread
constexpr const char* kWho = "masked operator (bf16)";

// The broadcast mask dword of a pair's bits (bit 0: even t, low half; bit 1: odd t, high half), bf16 1.0 = 0x3F80.
alignas(16) constexpr std::uint32_t kPairMask[4] = {0u, 0x3F80u, 0x3F800000u, 0x3F803F80u};

#define CONVEXNN_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Pairs p < pairs of an operand whose row k (< rows; zero past) is base[k * row_stride + e] * (scale ?
// scale[k] : 1), e < m (zero past), packed into out + ((p * 3 + h) * nct + f) * 32. The three terms of a
// float32 a by truncation: hi = its top 8 significant bits, mid those of a - hi, lo the rest (exact).
CONVEXNN_BF16_TARGET void pack_pairs(index_t pairs, index_t rows, index_t m, index_t nct, const float* base,
                                     index_t row_stride, const float* scale, Bf16* out) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (index_t p = 0; p < pairs; ++p)
    for (index_t f = 0; f < nct; ++f) {
      const index_t e0 = f * kLanes, left = m - e0;
      const __mmask16 cols = left >= kLanes ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
      __m512 v[2];
      for (index_t t = 0; t < 2; ++t) {
        const index_t k = 2 * p + t;
        v[t] = k < rows ? _mm512_maskz_loadu_ps(cols, base + k * row_stride + e0) : _mm512_setzero_ps();
        if (scale && k < rows) v[t] = _mm512_mul_ps(v[t], _mm512_set1_ps(scale[k]));
      }
      for (int h = 0; h < kSplits; ++h) {
        const __m512i even = _mm512_castps_si512(v[0]), odd = _mm512_castps_si512(v[1]);
        const __m512i packed = _mm512_or_si512(_mm512_srli_epi32(even, 16), _mm512_and_si512(odd, high));
        _mm512_store_si512(out + ((p * kSplits + h) * nct + f) * kVecBf16, packed);
        v[0] = _mm512_sub_ps(v[0], _mm512_castsi512_ps(_mm512_and_si512(even, high)));
        v[1] = _mm512_sub_ps(v[1], _mm512_castsi512_ps(_mm512_and_si512(odd, high)));
      }
    }
}

// R outputs x F feature vectors (vectors f0 .. f0 + F - 1) over pairs p < pairs of one block: the mask bits of
// output r start at bit 0 of rows[r][0]; B at b (pair 0 of the block). out_r = out + r * out_stride gets
// (first ? 0 : out_r) + (hi sums + (mid + lo) sums) in those vectors. Every sum runs p ascending, hi then
// mid then lo, odd t before even t inside one instruction: a fixed order.
template <int R, int F>
CONVEXNN_BF16_TARGET void pair_sums(const Word* const* rows, index_t pairs, const Bf16* b, index_t nct, index_t f0,
                                    float* out, index_t out_stride, bool first) {
  __m512 hi[R][F], lo[R][F];
  for (int r = 0; r < R; ++r)
    for (int f = 0; f < F; ++f) hi[r][f] = lo[r][f] = _mm512_setzero_ps();
  const index_t pair_stride = kSplits * nct * kVecBf16;
  for (index_t p0 = 0; p0 < pairs; p0 += kWordBits / 2) {
    Word word[R];
    for (int r = 0; r < R; ++r) word[r] = rows[r][p0 / (kWordBits / 2)];
    const index_t np = std::min(kWordBits / 2, pairs - p0);
    const Bf16* bp = b + p0 * pair_stride + f0 * kVecBf16;
    for (index_t q = 0; q < np; ++q, bp += pair_stride) {
      __m512bh bc[R];
      for (int r = 0; r < R; ++r) {
        bc[r] = (__m512bh)_mm512_set1_epi32(static_cast<int>(kPairMask[word[r] & 3U]));
        word[r] >>= 2;
      }
      for (int f = 0; f < F; ++f) {
        const auto b0 = (__m512bh)_mm512_load_si512(bp + f * kVecBf16);
        const auto b1 = (__m512bh)_mm512_load_si512(bp + (nct + f) * kVecBf16);
        const auto b2 = (__m512bh)_mm512_load_si512(bp + (2 * nct + f) * kVecBf16);
        for (int r = 0; r < R; ++r) {
          hi[r][f] = _mm512_dpbf16_ps(hi[r][f], bc[r], b0);
          lo[r][f] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(lo[r][f], bc[r], b1), bc[r], b2);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int f = 0; f < F; ++f) {
      float* dst = out + r * out_stride + (f0 + f) * kLanes;
      const __m512 block = _mm512_add_ps(hi[r][f], lo[r][f]);
      _mm512_storeu_ps(dst, first ? block : _mm512_add_ps(_mm512_loadu_ps(dst), block));
    }
}

// Outputs o < count (mask rows rows[o], bit 0 = the block's first t) over all nct feature vectors, in passes of
// up to 4 vectors, R outputs at a time (R with F: enough independent accumulator chains for the instruction's
// latency within 32 registers), a single-output kernel for the rest.
template <int F>
void block_sums_pass(index_t count, const Word* const* rows, index_t pairs, const Bf16* b, index_t nct, index_t f0,
                     float* out, index_t out_stride, bool first) {
  constexpr int R = F == 1 ? 8 : F == 2 ? 4 : F == 3 ? 3 : 2;
  index_t o = 0;
  for (; o + R <= count; o += R) pair_sums<R, F>(rows + o, pairs, b, nct, f0, out + o * out_stride, out_stride, first);
  for (; o < count; ++o) pair_sums<1, F>(rows + o, pairs, b, nct, f0, out + o * out_stride, out_stride, first);
}

void block_sums(index_t count, const Word* const* rows, index_t pairs, const Bf16* b, index_t nct, float* out,
                index_t out_stride, bool first) {
  for (index_t f0 = 0; f0 < nct; f0 += kMaxPassVectors) {
    switch (std::min<index_t>(kMaxPassVectors, nct - f0)) {
      case 1: block_sums_pass<1>(count, rows, pairs, b, nct, f0, out, out_stride, first); break;
      case 2: block_sums_pass<2>(count, rows, pairs, b, nct, f0, out, out_stride, first); break;
      case 3: block_sums_pass<3>(count, rows, pairs, b, nct, f0, out, out_stride, first); break;
      default: block_sums_pass<4>(count, rows, pairs, b, nct, f0, out, out_stride, first); break;
    }
  }
}

bool env_disabled() {
  const char* env = std::getenv("CONVEXNN_BF16");
  return env && std::string(env) == "0";
}

}  // namespace

bool bf16_available() {
  static const bool ok = [] {
    // CONVEXNN_BF16=0 turns the bf16 products off (e.g. to reproduce results of machines without them).
    if (env_disabled()) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1U)) return false;  // OSXSAVE: XCR0 readable
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0xE6U) != 0xE6U) return false;  // the OS saves xmm, ymm, opmask and both zmm halves
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const unsigned max_subleaf = a;
    const bool avx512f = (b >> 16) & 1U, avx512bw = (b >> 30) & 1U, avx512vl = (b >> 31) & 1U;
    if (!(avx512f && avx512bw && avx512vl) || max_subleaf < 1) return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return ((a >> 5) & 1U) != 0;  // AVX512_BF16
  }();
  return ok;
}

void bf16_forward(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* U, index_t c,
                  float* z, const std::uint64_t* row_bits) {
  if (!subset.all()) row_bits = nullptr;  // the cached bits are those of the whole set
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns), m = d * c;
  const index_t nct = ceil_div(m, kLanes), mp = nct * kLanes;
  const index_t pairs = ceil_div(S, 2), W = ceil_div(S, kWordBits), units = ceil_div(n, kRowUnit);
  const index_t pack_steps = ceil_div(pairs, kPackChunk);
  thread_local AlignedVector<Bf16> b_buf;  // calling-thread scratch: U packed once, read by every row
  Bf16* b = grow_scratch(b_buf, pairs * kSplits * nct * kVecBf16, kWho, "packed coefficients");
  const bool parallel = omp_get_max_threads() > 1 && double(n) * S * m * kSplits >= kMinParallelMacs;
  ParallelErrors errors;
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (index_t st = 0; st < pack_steps; ++st) {
      const index_t p0 = st * kPackChunk, np = std::min(kPackChunk, pairs - p0);
      pack_pairs(np, std::min(2 * np, S - 2 * p0), m, nct, U + 2 * p0 * m, m, nullptr,
                 b + p0 * kSplits * nct * kVecBf16);
    }
#pragma omp for schedule(dynamic, 1)
    for (index_t u = 0; u < units; ++u) {
      errors.run([&] {
        thread_local AlignedVector<float> v_buf;
        thread_local std::vector<Word> bits_buf;
        float* V = grow_scratch(v_buf, kRowUnit * mp, kWho, "row sums");
        const index_t r0 = u * kRowUnit, rows = std::min(kRowUnit, n - r0);
        const Word* bits = row_bits ? row_bits + r0 * W : nullptr;
        if (!bits) {
          Word* tile_bits = grow_scratch(bits_buf, kRowUnit * W, kWho, "row bits");
          transpose_mask_rows(masks, subset, r0, rows, tile_bits);
          bits = tile_bits;
        }
        for (index_t p0 = 0; p0 < pairs; p0 += kBlockPairs) {
          const Word* word_rows[kRowUnit];  // each row's bits from the block's first pattern on
          for (index_t k = 0; k < rows; ++k) word_rows[k] = bits + k * W + 2 * p0 / kWordBits;
          block_sums(rows, word_rows, std::min(kBlockPairs, pairs - p0), b + p0 * kSplits * nct * kVecBf16, nct, V, mp,
                     p0 == 0);
        }
        for (index_t k = 0; k < rows; ++k) row_outputs(X, r0 + k, V + k * mp, c, z + (r0 + k) * c);
      });
    }
  }
  errors.rethrow();
}

void bf16_adjoint(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* R, index_t c,
                  float* G) {
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns), m = d * c;
  const index_t nct = ceil_div(m, kLanes), mp = nct * kLanes;
  const index_t blocks = ceil_div(n, kSumBlock), units = ceil_div(S, kAdjointUnit);
  thread_local AlignedVector<float> g_buf;  // calling-thread scratch: the running sums (S x mp)
  float* Gacc = grow_scratch(g_buf, S * mp, kWho, "adjoint sums");
  std::vector<const Word*> pattern_masks(static_cast<std::size_t>(S));
  for (index_t s = 0; s < S; ++s) pattern_masks[s] = masks.mask(subset.block(s));
  const bool direct = c == 1 && X.col_stride == 1;  // Phi_k = r_k x_k straight from contiguous rows
  const bool parallel = omp_get_max_threads() > 1 && double(n) * S * m * kSplits >= kMinParallelMacs;
  ParallelErrors errors;
  // Each thread keeps the same units (a static round robin) for every block of rows and packs each block's Phi
  // itself, so no barrier is needed between blocks (as in the AMX adjoint).
#pragma omp parallel if (parallel)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    if (tid < units)
      errors.run([&] {
        thread_local AlignedVector<Bf16> b_buf;
        thread_local std::vector<float> phi_buf;
        thread_local std::vector<const Word*> rows_buf;
        Bf16* b = grow_scratch(b_buf, kBlockPairs * kSplits * nct * kVecBf16, kWho, "packed rows of Phi");
        float* phi = direct ? nullptr : grow_scratch(phi_buf, 2 * kPackChunk * m, kWho, "rows of Phi");
        const Word** word_rows = grow_scratch(rows_buf, kAdjointUnit, kWho, "mask rows");
        for (index_t blk = 0; blk < blocks; ++blk) {
          const index_t r0 = blk * kSumBlock, block_rows = std::min(kSumBlock, n - r0);
          const index_t pairs = ceil_div(block_rows, 2);
          for (index_t p0 = 0; p0 < pairs; p0 += kPackChunk) {
            const index_t np = std::min(kPackChunk, pairs - p0), k0 = r0 + 2 * p0;
            const index_t rows = std::min(2 * np, n - k0);
            Bf16* out = b + p0 * kSplits * nct * kVecBf16;
            if (direct) {
              pack_pairs(np, rows, m, nct, X.data + k0 * X.row_stride, X.row_stride, R + k0, out);
              continue;
            }
            for (index_t k = 0; k < rows; ++k)  // Phi_k = x_k r_k^T (row-major d x c)
              for (index_t a = 0; a < d; ++a)
                for (index_t j = 0; j < c; ++j) phi[k * m + a * c + j] = X(k0 + k, a) * R[(k0 + k) * c + j];
            pack_pairs(np, rows, m, nct, phi, m, nullptr, out);
          }
          for (index_t u = tid; u < units; u += nth) {
            const index_t s0 = u * kAdjointUnit, count = std::min(kAdjointUnit, S - s0);
            for (index_t s = 0; s < count; ++s) word_rows[s] = pattern_masks[s0 + s] + r0 / kWordBits;
            block_sums(count, word_rows, pairs, b, nct, Gacc + s0 * mp, mp, blk == 0);
          }
        }
      });
#pragma omp barrier
#pragma omp for schedule(static)
    for (index_t s = 0; s < S; ++s) std::copy(Gacc + s * mp, Gacc + s * mp + m, G + s * m);
  }
  errors.rethrow();
}

#else  // no AVX512_BF16 intrinsics on this platform or compiler

bool bf16_available() { return false; }
void bf16_forward(const MatrixView<float>&, const PackedMasks&, BlockSubset, const float*, index_t, float*,
                  const std::uint64_t*) {
  CONVEXNN_CHECK(false, "masked operator: bf16 products are not available on this platform");
}
void bf16_adjoint(const MatrixView<float>&, const PackedMasks&, BlockSubset, const float*, index_t, float*) {
  CONVEXNN_CHECK(false, "masked operator: bf16 products are not available on this platform");
}

#endif

}  // namespace convexnn::detail
