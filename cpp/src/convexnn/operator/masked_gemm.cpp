// The GEMM-tile product method of MaskedOperator (ProductMethod::Gemm), also the cone violations and the
// masked Gram products of the power iteration, and the SIMD mask kernels they use (see masked_gemm.hpp).
//
// Layout of one work unit (row tile of nb rows, pattern block of sb patterns, c columns):
//   forward:  C (sb*c x nb) = Upk[s0..] (sb*c x d) * X_tile^T   (one GEMM)
//             acc(j, k)    += sum_s mask_s[k] * C(s*c + j, k)     (mask epilogue, SIMD, 64 rows per word)
//   adjoint:  M (sb*c x nb) with M(s*c + j, k) = mask_s[k] * R[k, j]   (mask prologue)
//             Gpk[s0..] (sb*c x d) += M * X_tile                 (one GEMM)
// Rows of C and M are one (pattern, column) pair each, so a mask word meets 64 contiguous values.
// Upk/Gpk are the coefficient blocks "packed" as (S*c) x d row-major: for c = 1 that is exactly the
// (S, d) C-contiguous input/output, for c > 1 it is a transpose of each block done once per call.
#include "convexnn/operator/masked_gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "convexnn/core/blas.hpp"
#include "convexnn/core/buffers.hpp"
#include "convexnn/core/parallel_errors.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVEXNN_X86_SIMD 1
#include <immintrin.h>
#else
#define CONVEXNN_X86_SIMD 0
#endif

namespace convexnn {
namespace {

using Word = std::uint64_t;
constexpr index_t kWordBits = 64;

// ---- tuning constants (measured with bench/cpp/masked_ops_bench.cpp, see bench/RESULTS.md) ----------

// Rows per tile (masked_gemm.hpp): a multiple of 64 so every tile starts on a mask-word boundary. 256 rows gave the
// fastest forward and adjoint of {128, 256, 512} on the reference problem (n = 1e4, d = 50, P = 500;
// bench/RESULTS.md): long enough for OpenBLAS's GEMM, short enough for four full mask words per pattern.
constexpr index_t kRowTile = detail::kGemmRowTile;
static_assert(kRowTile % 64 == 0, "row tiles must start on mask-word boundaries");
// Budget for the per-thread GEMM output tile C or M (sb*c x nb elements), so the tile written by the
// GEMM is still in L2 when the mask pass reads it (and vice versa for the adjoint). 512 KiB was within
// 3% of the best budget (1-2 MiB, on a 2 MiB L2) in the same measurements and still fits the 1 MiB L2
// of older server cores.
#ifndef CONVEXNN_MASKED_TILE_KIB  // compile-time override for tuning runs only
#define CONVEXNN_MASKED_TILE_KIB 512
#endif
constexpr std::size_t kTileBytes = std::size_t(CONVEXNN_MASKED_TILE_KIB) * 1024;
// The work grid is split until it has at least this many units (when the shape allows): enough to keep
// up to this many threads busy. It depends on the shape only, never on the thread count, which is what
// makes results identical for every thread count.
constexpr index_t kMinWorkUnits = 16;
// Orientation of the adjoint GEMM (see Context::gemm_adjoint). OpenBLAS's kernels favour the pattern
// block as the long output dimension in double and the d-long one in float: about 8% either way,
// measured at d = 50 on Sapphire Rapids (SkylakeX kernels). Either orientation gives correct results.
template <class T>
constexpr bool kAdjointAsTranspose = std::is_same_v<T, double>;
// Below this many flops a call runs on one thread: an OpenMP fork/join costs a few microseconds.
constexpr double kMinParallelFlops = 2e5;// ---- small utilities ---------------------------------------------------------------------------------

using detail::ceil_div;
using detail::round_up;

Word valid_bits(index_t rows_in_word) { return rows_in_word >= kWordBits ? ~Word(0) : ((Word(1) << rows_in_word) - 1); }

template <class T>
std::vector<T> make_buffer(index_t count, const char* what) {
  return detail::make_checked_vector<std::vector<T>>(count, "masked operator", what);
}

// Per-thread scratch that only grows, reused across calls (OpenMP threads persist). Contents are
// stale between uses; callers never read what they did not write in the same call, except the tile
// columns past the last row, which the mask bits (zero past n) exclude.
template <class T, int Slot>
T* scratch(index_t count) {
  thread_local std::vector<T> buf;
  return detail::grow_scratch(buf, count, "masked operator", "per-thread tile buffer");
}

using detail::ParallelErrors;
// ---- mask kernels --------------------------------------------------------------------------------------
// Each works on 64-row groups (one mask word). Every variant performs the same additions in the same
// order on the same values (a masked-out term is skipped or contributes +0.0), so all variants give
// bitwise identical results.

template <class T>
struct MaskKernels {
  // out[b] = (accumulate ? out[b] : 0) + sum_{s < terms, in order} bit_b(words[s*word_stride]) * t[s*t_stride + b]
  // for b < 64.
  void (*masked_sum)(index_t terms, const Word* words, index_t word_stride, const T* t, index_t t_stride, T* out,
                     bool accumulate);
  // dst[b] = bit_b(word) ? src[b] : 0 for b < 64 (src == dst allowed).
  void (*masked_copy)(Word word, const T* src, T* dst);
  // max(running, max_{k < rows} (bit_k ? -t[k] : t[k])), bits from words[k / 64].
  T (*signed_max)(const Word* words, index_t rows, const T* t, T running);
};

template <class T>
using UInt = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;

// Byte -> 8 lane masks (all ones where the bit is set): turns a mask bit into a bitwise AND.
template <class T>
struct ByteLanes {
  UInt<T> lanes[256][8];
  ByteLanes() {
    for (int v = 0; v < 256; ++v)
      for (int b = 0; b < 8; ++b) lanes[v][b] = ((v >> b) & 1) ? ~UInt<T>(0) : UInt<T>(0);
  }
};
template <class T>
const ByteLanes<T>& byte_lanes() {
  static const ByteLanes<T> table;
  return table;
}

template <class T>
inline T and_bits(T x, UInt<T> m) {
  UInt<T> u;
  std::memcpy(&u, &x, sizeof(T));
  u &= m;
  std::memcpy(&x, &u, sizeof(T));
  return x;
}

template <class T>
void masked_sum_generic(index_t terms, const Word* words, index_t word_stride, const T* t, index_t t_stride, T* out,
                        bool accumulate) {
  const auto& L = byte_lanes<T>().lanes;
  T acc[kWordBits];
  for (int b = 0; b < kWordBits; ++b) acc[b] = accumulate ? out[b] : T(0);
  for (index_t s = 0; s < terms; ++s) {
    const Word w = words[s * word_stride];
    if (w == 0) continue;
    const T* ts = t + s * t_stride;
    for (int byte = 0; byte < 8; ++byte) {
      const auto* m = L[(w >> (8 * byte)) & 0xFF];
      for (int b = 0; b < 8; ++b) acc[8 * byte + b] += and_bits(ts[8 * byte + b], m[b]);
    }
  }
  for (int b = 0; b < kWordBits; ++b) out[b] = acc[b];
}

template <class T>
void masked_copy_generic(Word w, const T* src, T* dst) {
  const auto& L = byte_lanes<T>().lanes;
  for (int byte = 0; byte < 8; ++byte) {
    const auto* m = L[(w >> (8 * byte)) & 0xFF];
    for (int b = 0; b < 8; ++b) dst[8 * byte + b] = and_bits(src[8 * byte + b], m[b]);
  }
}

template <class T>
T signed_max_generic(const Word* words, index_t rows, const T* t, T running) {
  const UInt<T> sign = UInt<T>(1) << (8 * sizeof(T) - 1);
  for (index_t k = 0; k < rows; ++k) {
    const UInt<T> flip = ((words[k / kWordBits] >> (k % kWordBits)) & 1U) ? sign : UInt<T>(0);
    UInt<T> u;
    T x = t[k];
    std::memcpy(&u, &x, sizeof(T));
    u ^= flip;
    std::memcpy(&x, &u, sizeof(T));
    running = x > running ? x : running;
  }
  return running;
}

#if CONVEXNN_X86_SIMD
// AVX-512: a mask word is directly a lane predicate (8 doubles / 16 floats per register).
__attribute__((target("avx512f"))) void masked_sum_avx512(index_t terms, const Word* words, index_t word_stride,
                                                          const double* t, index_t t_stride, double* out,
                                                          bool accumulate) {
  __m512d a0, a1, a2, a3, a4, a5, a6, a7;
  if (accumulate) {
    a0 = _mm512_loadu_pd(out + 0), a1 = _mm512_loadu_pd(out + 8), a2 = _mm512_loadu_pd(out + 16);
    a3 = _mm512_loadu_pd(out + 24), a4 = _mm512_loadu_pd(out + 32), a5 = _mm512_loadu_pd(out + 40);
    a6 = _mm512_loadu_pd(out + 48), a7 = _mm512_loadu_pd(out + 56);
  } else {
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_pd();
  }
  for (index_t s = 0; s < terms; ++s) {
    const Word w = words[s * word_stride];
    if (w == 0) continue;
    const double* ts = t + s * t_stride;
    a0 = _mm512_mask_add_pd(a0, static_cast<__mmask8>(w), a0, _mm512_loadu_pd(ts + 0));
    a1 = _mm512_mask_add_pd(a1, static_cast<__mmask8>(w >> 8), a1, _mm512_loadu_pd(ts + 8));
    a2 = _mm512_mask_add_pd(a2, static_cast<__mmask8>(w >> 16), a2, _mm512_loadu_pd(ts + 16));
    a3 = _mm512_mask_add_pd(a3, static_cast<__mmask8>(w >> 24), a3, _mm512_loadu_pd(ts + 24));
    a4 = _mm512_mask_add_pd(a4, static_cast<__mmask8>(w >> 32), a4, _mm512_loadu_pd(ts + 32));
    a5 = _mm512_mask_add_pd(a5, static_cast<__mmask8>(w >> 40), a5, _mm512_loadu_pd(ts + 40));
    a6 = _mm512_mask_add_pd(a6, static_cast<__mmask8>(w >> 48), a6, _mm512_loadu_pd(ts + 48));
    a7 = _mm512_mask_add_pd(a7, static_cast<__mmask8>(w >> 56), a7, _mm512_loadu_pd(ts + 56));
  }
  _mm512_storeu_pd(out + 0, a0), _mm512_storeu_pd(out + 8, a1), _mm512_storeu_pd(out + 16, a2);
  _mm512_storeu_pd(out + 24, a3), _mm512_storeu_pd(out + 32, a4), _mm512_storeu_pd(out + 40, a5);
  _mm512_storeu_pd(out + 48, a6), _mm512_storeu_pd(out + 56, a7);
}
__attribute__((target("avx512f"))) void masked_sum_avx512(index_t terms, const Word* words, index_t word_stride,
                                                          const float* t, index_t t_stride, float* out,
                                                          bool accumulate) {
  __m512 a0, a1, a2, a3;
  if (accumulate) {
    a0 = _mm512_loadu_ps(out + 0), a1 = _mm512_loadu_ps(out + 16);
    a2 = _mm512_loadu_ps(out + 32), a3 = _mm512_loadu_ps(out + 48);
  } else {
    a0 = a1 = a2 = a3 = _mm512_setzero_ps();
  }
  for (index_t s = 0; s < terms; ++s) {
    const Word w = words[s * word_stride];
    if (w == 0) continue;
    const float* ts = t + s * t_stride;
    a0 = _mm512_mask_add_ps(a0, static_cast<__mmask16>(w), a0, _mm512_loadu_ps(ts + 0));
    a1 = _mm512_mask_add_ps(a1, static_cast<__mmask16>(w >> 16), a1, _mm512_loadu_ps(ts + 16));
    a2 = _mm512_mask_add_ps(a2, static_cast<__mmask16>(w >> 32), a2, _mm512_loadu_ps(ts + 32));
    a3 = _mm512_mask_add_ps(a3, static_cast<__mmask16>(w >> 48), a3, _mm512_loadu_ps(ts + 48));
  }
  _mm512_storeu_ps(out + 0, a0), _mm512_storeu_ps(out + 16, a1);
  _mm512_storeu_ps(out + 32, a2), _mm512_storeu_ps(out + 48, a3);
}
__attribute__((target("avx512f"))) void masked_copy_avx512(Word w, const double* src, double* dst) {
  for (int q = 0; q < 8; ++q)
    _mm512_storeu_pd(dst + 8 * q, _mm512_maskz_loadu_pd(static_cast<__mmask8>(w >> (8 * q)), src + 8 * q));
}
__attribute__((target("avx512f"))) void masked_copy_avx512(Word w, const float* src, float* dst) {
  for (int q = 0; q < 4; ++q)
    _mm512_storeu_ps(dst + 16 * q, _mm512_maskz_loadu_ps(static_cast<__mmask16>(w >> (16 * q)), src + 16 * q));
}
__attribute__((target("avx512f"))) double signed_max_avx512(const Word* words, index_t rows, const double* t,
                                                            double running) {
  const __m512i sign = _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ULL));
  __m512d m = _mm512_set1_pd(running);
  for (index_t k0 = 0; k0 < rows; k0 += 8) {
    const index_t left = rows - k0;
    const __mmask8 valid = left >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1U << left) - 1);
    const __mmask8 bits = static_cast<__mmask8>(words[k0 / kWordBits] >> (k0 % kWordBits));
    const __m512i x = _mm512_castpd_si512(_mm512_maskz_loadu_pd(valid, t + k0));
    const __m512d v = _mm512_castsi512_pd(_mm512_mask_xor_epi64(x, bits, x, sign));
    m = _mm512_mask_max_pd(m, valid, v, m);
  }
  // (Not _mm512_reduce_max_pd: GCC 12 warns about an uninitialized register inside it.)
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, m);
  return *std::max_element(lanes, lanes + 8);
}
__attribute__((target("avx512f"))) float signed_max_avx512(const Word* words, index_t rows, const float* t,
                                                           float running) {
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000U));
  __m512 m = _mm512_set1_ps(running);
  for (index_t k0 = 0; k0 < rows; k0 += 16) {
    const index_t left = rows - k0;
    const __mmask16 valid = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1U << left) - 1);
    const __mmask16 bits = static_cast<__mmask16>(words[k0 / kWordBits] >> (k0 % kWordBits));
    const __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(valid, t + k0));
    const __m512 v = _mm512_castsi512_ps(_mm512_mask_xor_epi32(x, bits, x, sign));
    m = _mm512_mask_max_ps(m, valid, v, m);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  return *std::max_element(lanes, lanes + 16);
}

// AVX2: a nibble (double) or byte (float) of the word selects a register of lane masks from a table.
struct Avx2Lanes {
  alignas(32) std::uint64_t nib[16][4];    // 4 doubles per register
  alignas(32) std::uint32_t byte[256][8];  // 8 floats per register
  Avx2Lanes() {
    for (int v = 0; v < 16; ++v)
      for (int b = 0; b < 4; ++b) nib[v][b] = ((v >> b) & 1) ? ~std::uint64_t(0) : 0;
    for (int v = 0; v < 256; ++v)
      for (int b = 0; b < 8; ++b) byte[v][b] = ((v >> b) & 1) ? ~std::uint32_t(0) : 0;
  }
};
const Avx2Lanes& avx2_lanes() {
  static const Avx2Lanes table;
  return table;
}

__attribute__((target("avx2"))) inline __m256d lanes_pd(const Avx2Lanes& L, Word w, int q) {
  return _mm256_load_pd(reinterpret_cast<const double*>(L.nib[(w >> (4 * q)) & 0xF]));
}
__attribute__((target("avx2"))) inline __m256 lanes_ps(const Avx2Lanes& L, Word w, int q) {
  return _mm256_load_ps(reinterpret_cast<const float*>(L.byte[(w >> (8 * q)) & 0xFF]));
}

// 16 registers of 4 doubles would use every ymm register, so the 64 rows go in two halves of 32.
__attribute__((target("avx2"))) void masked_sum_avx2(index_t terms, const Word* words, index_t word_stride,
                                                     const double* t, index_t t_stride, double* out, bool accumulate) {
  const Avx2Lanes& L = avx2_lanes();
  for (int half = 0; half < 2; ++half) {
    const int h = 32 * half;
    __m256d a[8];
    for (int q = 0; q < 8; ++q) a[q] = accumulate ? _mm256_loadu_pd(out + h + 4 * q) : _mm256_setzero_pd();
    for (index_t s = 0; s < terms; ++s) {
      const Word w = words[s * word_stride] >> h;
      if ((w & 0xFFFFFFFFULL) == 0) continue;
      const double* ts = t + s * t_stride + h;
      for (int q = 0; q < 8; ++q)
        a[q] = _mm256_add_pd(a[q], _mm256_and_pd(lanes_pd(L, w, q), _mm256_loadu_pd(ts + 4 * q)));
    }
    for (int q = 0; q < 8; ++q) _mm256_storeu_pd(out + h + 4 * q, a[q]);
  }
}
__attribute__((target("avx2"))) void masked_sum_avx2(index_t terms, const Word* words, index_t word_stride,
                                                     const float* t, index_t t_stride, float* out, bool accumulate) {
  const Avx2Lanes& L = avx2_lanes();
  __m256 a[8];
  for (int q = 0; q < 8; ++q) a[q] = accumulate ? _mm256_loadu_ps(out + 8 * q) : _mm256_setzero_ps();
  for (index_t s = 0; s < terms; ++s) {
    const Word w = words[s * word_stride];
    if (w == 0) continue;
    const float* ts = t + s * t_stride;
    for (int q = 0; q < 8; ++q)
      a[q] = _mm256_add_ps(a[q], _mm256_and_ps(lanes_ps(L, w, q), _mm256_loadu_ps(ts + 8 * q)));
  }
  for (int q = 0; q < 8; ++q) _mm256_storeu_ps(out + 8 * q, a[q]);
}
__attribute__((target("avx2"))) void masked_copy_avx2(Word w, const double* src, double* dst) {
  const Avx2Lanes& L = avx2_lanes();
  for (int q = 0; q < 16; ++q)
    _mm256_storeu_pd(dst + 4 * q, _mm256_and_pd(lanes_pd(L, w, q), _mm256_loadu_pd(src + 4 * q)));
}
__attribute__((target("avx2"))) void masked_copy_avx2(Word w, const float* src, float* dst) {
  const Avx2Lanes& L = avx2_lanes();
  for (int q = 0; q < 8; ++q)
    _mm256_storeu_ps(dst + 8 * q, _mm256_and_ps(lanes_ps(L, w, q), _mm256_loadu_ps(src + 8 * q)));
}
#endif  // CONVEXNN_X86_SIMD

using Isa = detail::SimdIsa;  // one choice for the mask kernels and the tables

Isa detect_isa() {
#if CONVEXNN_X86_SIMD
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2")) return Isa::Avx2;
#endif
  return Isa::Generic;
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(detect_isa())};
  return slot;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

template <class T>
MaskKernels<T> kernels() {
  MaskKernels<T> k{&masked_sum_generic<T>, &masked_copy_generic<T>, &signed_max_generic<T>};
#if CONVEXNN_X86_SIMD
  const auto isa = static_cast<Isa>(isa_slot().load(std::memory_order_relaxed));
  if (isa == Isa::Avx512) {
    k.masked_sum =
        static_cast<void (*)(index_t, const Word*, index_t, const T*, index_t, T*, bool)>(&masked_sum_avx512);
    k.masked_copy = static_cast<void (*)(Word, const T*, T*)>(&masked_copy_avx512);
    k.signed_max = static_cast<T (*)(const Word*, index_t, const T*, T)>(&signed_max_avx512);
  } else if (isa == Isa::Avx2) {
    k.masked_sum = static_cast<void (*)(index_t, const Word*, index_t, const T*, index_t, T*, bool)>(&masked_sum_avx2);
    k.masked_copy = static_cast<void (*)(Word, const T*, T*)>(&masked_copy_avx2);
  }
#endif
  return k;
}

// ---- the work grid ---------------------------------------------------------------------------------

// Rows are cut into tiles of `tile_rows` (multiple of 64), blocks of the subset into pattern blocks of
// `block_size`. A work unit is (row chunk, pattern chunk), each chunk a run of whole tiles / blocks.
struct Grid {
  index_t tile_rows = 0, n_tiles = 0;
  index_t block_size = 0, n_blocks = 0;
  index_t row_chunks = 1, tiles_per_chunk = 0;
  index_t pattern_chunks = 1, blocks_per_chunk = 0;
  index_t units() const { return row_chunks * pattern_chunks; }
};

enum class Split { RowsFirst, PatternsFirst };

// RowsFirst (forward): one unit per row tile; patterns are split into chunks only when there are
// fewer than kMinWorkUnits tiles (each chunk then needs its own partial output).
// PatternsFirst (adjoint-like): one unit per pattern block; rows are split into chunks only when
// there are fewer than kMinWorkUnits blocks (partial block outputs per row chunk).
Grid make_grid(index_t n, index_t S, index_t c, std::size_t elem, Split split) {
  Grid g;
  g.tile_rows = std::min(kRowTile, round_up(std::max<index_t>(n, 1), kWordBits));
  g.n_tiles = ceil_div(n, g.tile_rows);
  const index_t budget = static_cast<index_t>(kTileBytes / (elem * static_cast<std::size_t>(g.tile_rows * c)));
  const index_t max_block = std::max<index_t>(1, budget);
  g.n_blocks = ceil_div(S, max_block);
  g.block_size = ceil_div(S, g.n_blocks);  // balanced blocks
  g.n_blocks = ceil_div(S, g.block_size);
  if (split == Split::RowsFirst) {
    g.row_chunks = g.n_tiles;
    g.pattern_chunks = g.n_tiles >= kMinWorkUnits ? 1 : std::min(g.n_blocks, ceil_div(kMinWorkUnits, g.n_tiles));
  } else {
    g.pattern_chunks = g.n_blocks;
    g.row_chunks = g.n_blocks >= kMinWorkUnits ? 1 : std::min(g.n_tiles, ceil_div(kMinWorkUnits, g.n_blocks));
  }
  g.tiles_per_chunk = ceil_div(g.n_tiles, g.row_chunks);
  g.row_chunks = ceil_div(g.n_tiles, g.tiles_per_chunk);
  g.blocks_per_chunk = ceil_div(g.n_blocks, g.pattern_chunks);
  g.pattern_chunks = ceil_div(g.n_blocks, g.blocks_per_chunk);
  return g;
}

bool run_parallel(const Grid& g, double flops) {
  return g.units() > 1 && flops >= kMinParallelFlops && omp_get_max_threads() > 1;
}

// What one call needs to know about X and the masks, shared by all kernels below.
template <class T>
struct Context {
  const MatrixView<T>& X;
  const PackedMasks& masks;
  BlockSubset subset;
  MaskKernels<T> k;

  index_t n() const { return X.rows; }
  index_t d() const { return X.cols; }

  // Mask words of blocks [s0, s0 + count) over the words of rows [r0, r0 + rows) into wbuf
  // (count x n_words, row-major); the last word is cut at `rows` so stale tile columns never count.
  void gather_words(index_t s0, index_t count, index_t r0, index_t rows, Word* wbuf) const {
    const index_t w0 = r0 / kWordBits, nw = ceil_div(rows, kWordBits);
    const Word last = valid_bits(rows - (nw - 1) * kWordBits);
    for (index_t s = 0; s < count; ++s) {
      const Word* m = masks.mask(subset.block(s0 + s)) + w0;
      Word* out = wbuf + s * nw;
      for (index_t w = 0; w < nw; ++w) out[w] = m[w];
      out[nw - 1] &= last;
    }
  }

  // C (m x rows, leading dim ldc) = A (m x d, row-major, lda = d) * X[r0 : r0+rows]^T
  void gemm_a_xt(index_t m, index_t r0, index_t rows, const T* A, T* C, index_t ldc) const {
    using blas::Layout;
    using blas::Op;
    if (X.col_stride == 1)  // C-ordered: the tile is rows x d row-major, used transposed
      blas::gemm<T>(Layout::RowMajor, Op::NoTrans, Op::Trans, m, rows, d(), T(1), A, d(), X.data + r0 * X.row_stride,
                    X.row_stride, T(0), C, ldc);
    else  // F-ordered: the tile's transpose is d x rows row-major with leading dim col_stride
      blas::gemm<T>(Layout::RowMajor, Op::NoTrans, Op::NoTrans, m, rows, d(), T(1), A, d(), X.data + r0, X.col_stride,
                    T(0), C, ldc);
  }

  // The adjoint GEMM of a tile, G (m x d) (+)= M * X[r0 : r0+rows] with M (m x rows, leading dim ldm),
  // in one of two orientations (kAdjointAsTranspose<T>): G itself (row-major, ld d), or its transpose
  // Gt = X_tile^T * M^T (d x m, row-major, ld m), transposed back by the caller once per block.
  void gemm_adjoint(index_t m, index_t r0, index_t rows, const T* M, index_t ldm, T* out, bool accumulate) const {
    using blas::Layout;
    using blas::Op;
    const T beta = accumulate ? T(1) : T(0);
    const bool c_order = X.col_stride == 1;  // else F-ordered: the tile's transpose is d x rows, ld col_stride
    const T* tile = c_order ? X.data + r0 * X.row_stride : X.data + r0;
    const index_t ld = c_order ? X.row_stride : X.col_stride;
    if (kAdjointAsTranspose<T>)
      blas::gemm<T>(Layout::RowMajor, c_order ? Op::Trans : Op::NoTrans, Op::Trans, d(), m, rows, T(1), tile, ld, M,
                    ldm, beta, out, m);
    else
      blas::gemm<T>(Layout::RowMajor, Op::NoTrans, c_order ? Op::NoTrans : Op::Trans, m, d(), rows, T(1), M, ldm, tile,
                    ld, beta, out, d());
  }
};

// dst (m x d, row-major) = Gt^T for Gt (d x m, row-major).
template <class T>
void transpose_into(const T* Gt, index_t d, index_t m, T* dst) {
  for (index_t q = 0; q < m; ++q)
    for (index_t r = 0; r < d; ++r) dst[q * d + r] = Gt[r * m + q];
}

// (S, d, c) C-contiguous blocks -> (S*c) x d row-major, and back.
template <class T>
void pack_blocks(const T* U, index_t S, index_t d, index_t c, T* out) {
  for (index_t s = 0; s < S; ++s)
    for (index_t r = 0; r < d; ++r)
      for (index_t j = 0; j < c; ++j) out[(s * c + j) * d + r] = U[(s * d + r) * c + j];
}
template <class T>
void unpack_blocks(const T* packed, index_t S, index_t d, index_t c, T* U) {
  for (index_t s = 0; s < S; ++s)
    for (index_t r = 0; r < d; ++r)
      for (index_t j = 0; j < c; ++j) U[(s * d + r) * c + j] = packed[(s * c + j) * d + r];
}

// out[i] = sum_q parts[q * len + i], q in order (deterministic), elementwise-parallel.
template <class T>
void reduce_parts(const T* parts, index_t n_parts, index_t len, T* out, bool parallel) {
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t i = 0; i < len; ++i) {
    T s = parts[i];
    for (index_t q = 1; q < n_parts; ++q) s += parts[q * len + i];
    out[i] = s;
  }
}

// Per block of the subset: W_k = X^T D_{s_k} X V_k, V and W (|S| x d) row-major (c = 1). Used by the
// power iteration: the forward GEMM, the mask applied in place, and the adjoint GEMM, without the
// sum over patterns.
template <class T>
void masked_gram_apply(const Context<T>& ctx, const T* V, T* W) {
  const index_t n = ctx.n(), d = ctx.d(), S = ctx.subset.count(ctx.masks.n_patterns);
  const Grid g = make_grid(n, S, 1, sizeof(T), Split::PatternsFirst);
  const bool direct = g.row_chunks == 1;
  std::vector<T> parts = direct ? std::vector<T>() : make_buffer<T>(g.row_chunks * S * d, "partial Gram products");
  const bool parallel = run_parallel(g, 4.0 * n * d * S);
  blas::SingleThreadedScope blas_guard;
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (index_t u = 0; u < g.units(); ++u) {
    errors.run([&] {
      const index_t pc = u / g.row_chunks, rc = u % g.row_chunks;
      const index_t nw_tile = g.tile_rows / kWordBits;
      T* C = scratch<T, 0>(g.block_size * g.tile_rows);
      Word* wbuf = scratch<Word, 1>(g.block_size * nw_tile);
      T* Wt = scratch<T, 3>(d * g.block_size);
      for (index_t b = pc * g.blocks_per_chunk; b < std::min(g.n_blocks, (pc + 1) * g.blocks_per_chunk); ++b) {
        const index_t s0 = b * g.block_size, sb = std::min(g.block_size, S - s0);
        T* Wacc = direct ? W + s0 * d : parts.data() + rc * S * d + s0 * d;
        bool first = true;
        for (index_t t = rc * g.tiles_per_chunk; t < std::min(g.n_tiles, (rc + 1) * g.tiles_per_chunk); ++t) {
          const index_t r0 = t * g.tile_rows, rows = std::min(g.tile_rows, n - r0), nw = ceil_div(rows, kWordBits);
          ctx.gather_words(s0, sb, r0, rows, wbuf);
          ctx.gemm_a_xt(sb, r0, rows, V + s0 * d, C, g.tile_rows);
          for (index_t s = 0; s < sb; ++s)
            for (index_t w = 0; w < nw; ++w) {
              T* row = C + s * g.tile_rows + w * kWordBits;
              ctx.k.masked_copy(wbuf[s * nw + w], row, row);
            }
          ctx.gemm_adjoint(sb, r0, rows, C, g.tile_rows, kAdjointAsTranspose<T> ? Wt : Wacc, !first);
          first = false;
        }
        if (kAdjointAsTranspose<T>) transpose_into(Wt, d, sb, Wacc);
      }
    });
  }
  errors.rethrow();
  if (!direct) reduce_parts(parts.data(), g.row_chunks, S * d, W, parallel);
}

}  // namespace

std::string masked_kernel_isa() { return isa_name(static_cast<Isa>(isa_slot().load())); }

bool force_masked_kernel_isa(const std::string& isa) {
  const Isa best = detect_isa();
  Isa want;
  if (isa == "auto")
    want = best;
  else if (isa == "avx512")
    want = Isa::Avx512;
  else if (isa == "avx2")
    want = Isa::Avx2;
  else if (isa == "generic")
    want = Isa::Generic;
  else
    return false;
  if (static_cast<int>(want) > static_cast<int>(best)) return false;  // AVX-512 implies AVX2 support
  isa_slot().store(static_cast<int>(want));
  return true;
}

namespace detail {

SimdIsa masked_simd() { return static_cast<Isa>(isa_slot().load(std::memory_order_relaxed)); }

template <class T>
void gemm_forward(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* U, index_t c, T* z) {
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns);
  const Context<T> ctx{X, masks, subset, kernels<T>()};
  std::vector<T> packed;
  const T* Upk = U;
  if (c > 1) {
    packed = make_buffer<T>(S * c * d, "packed coefficients");
    pack_blocks(U, S, d, c, packed.data());
    Upk = packed.data();
  }
  const Grid g = make_grid(n, S, c, sizeof(T), Split::RowsFirst);
  const bool direct = g.pattern_chunks == 1;
  std::vector<T> parts = direct ? std::vector<T>() : make_buffer<T>(g.pattern_chunks * n * c, "partial forward sums");
  const bool parallel = run_parallel(g, 2.0 * n * d * S * c);
  blas::SingleThreadedScope blas_guard;
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (index_t u = 0; u < g.units(); ++u) {
    errors.run([&] {
      const index_t tile = u / g.pattern_chunks, pc = u % g.pattern_chunks;
      const index_t nb = g.tile_rows, r0 = tile * nb, rows = std::min(nb, n - r0), nw = ceil_div(rows, kWordBits);
      T* C = scratch<T, 0>(g.block_size * c * nb);
      Word* wbuf = scratch<Word, 1>(g.block_size * (nb / kWordBits));
      T* acc = scratch<T, 2>(c * nb);
      bool first = true;
      for (index_t b = pc * g.blocks_per_chunk; b < std::min(g.n_blocks, (pc + 1) * g.blocks_per_chunk); ++b) {
        const index_t s0 = b * g.block_size, sb = std::min(g.block_size, S - s0);
        ctx.gather_words(s0, sb, r0, rows, wbuf);
        ctx.gemm_a_xt(sb * c, r0, rows, Upk + s0 * c * d, C, nb);
        for (index_t j = 0; j < c; ++j)
          for (index_t w = 0; w < nw; ++w)
            ctx.k.masked_sum(sb, wbuf + w, nw, C + j * nb + w * kWordBits, c * nb, acc + j * nb + w * kWordBits,
                             !first);
        first = false;
      }
      T* out = direct ? z : parts.data() + pc * n * c;
      if (first) {  // this pattern chunk is empty (cannot happen with balanced chunks; kept for safety)
        std::fill(out + r0 * c, out + (r0 + rows) * c, T(0));
        return;
      }
      for (index_t k = 0; k < rows; ++k)
        for (index_t j = 0; j < c; ++j) out[(r0 + k) * c + j] = acc[j * nb + k];
    });
  }
  errors.rethrow();
  if (!direct) reduce_parts(parts.data(), g.pattern_chunks, n * c, z, parallel);
}

template <class T>
void gemm_adjoint(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* R, index_t c, T* G) {
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns);
  const Context<T> ctx{X, masks, subset, kernels<T>()};
  const Grid g = make_grid(n, S, c, sizeof(T), Split::PatternsFirst);
  // Output in the packed (S*c) x d layout: G itself when c == 1 and there is a single row chunk.
  const bool direct = c == 1 && g.row_chunks == 1;
  const index_t len = S * c * d;
  std::vector<T> parts = direct ? std::vector<T>() : make_buffer<T>(g.row_chunks * len, "partial adjoint blocks");
  const bool parallel = run_parallel(g, 2.0 * n * d * S * c);
  blas::SingleThreadedScope blas_guard;
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (index_t u = 0; u < g.units(); ++u) {
    errors.run([&] {
      const index_t pc = u / g.row_chunks, rc = u % g.row_chunks;
      const index_t nb = g.tile_rows;
      T* M = scratch<T, 0>(g.block_size * c * nb);
      Word* wbuf = scratch<Word, 1>(g.block_size * (nb / kWordBits));
      T* Rt = scratch<T, 2>(c * nb);
      T* Gt = scratch<T, 3>(d * g.block_size * c);
      for (index_t b = pc * g.blocks_per_chunk; b < std::min(g.n_blocks, (pc + 1) * g.blocks_per_chunk); ++b) {
        const index_t s0 = b * g.block_size, sb = std::min(g.block_size, S - s0);
        T* Gacc = direct ? G + s0 * d : parts.data() + rc * len + s0 * c * d;
        bool first = true;
        for (index_t t = rc * g.tiles_per_chunk; t < std::min(g.n_tiles, (rc + 1) * g.tiles_per_chunk); ++t) {
          const index_t r0 = t * nb, rows = std::min(nb, n - r0), nw = ceil_div(rows, kWordBits);
          // R tile transposed to c x nb, zero past `rows` so the mask pass reads defined values.
          for (index_t j = 0; j < c; ++j) {
            T* dst = Rt + j * nb;
            for (index_t k = 0; k < rows; ++k) dst[k] = R[(r0 + k) * c + j];
            std::fill(dst + rows, dst + nw * kWordBits, T(0));
          }
          ctx.gather_words(s0, sb, r0, rows, wbuf);
          for (index_t s = 0; s < sb; ++s)
            for (index_t j = 0; j < c; ++j)
              for (index_t w = 0; w < nw; ++w)
                ctx.k.masked_copy(wbuf[s * nw + w], Rt + j * nb + w * kWordBits, M + (s * c + j) * nb + w * kWordBits);
          ctx.gemm_adjoint(sb * c, r0, rows, M, nb, kAdjointAsTranspose<T> ? Gt : Gacc, !first);
          first = false;
        }
        if (first)
          std::fill(Gacc, Gacc + sb * c * d, T(0));
        else if (kAdjointAsTranspose<T>)
          transpose_into(Gt, d, sb * c, Gacc);
      }
    });
  }
  errors.rethrow();
  if (direct) return;
  if (c == 1) {
    reduce_parts(parts.data(), g.row_chunks, len, G, parallel);
  } else {
    std::vector<T> packed = make_buffer<T>(len, "packed adjoint blocks");
    reduce_parts(parts.data(), g.row_chunks, len, packed.data(), parallel);
    unpack_blocks(packed.data(), S, d, c, G);
  }
}

template <class T>
void gemm_cone_violation(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* V, index_t c,
                         T* out) {
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns);
  const Context<T> ctx{X, masks, subset, kernels<T>()};
  std::vector<T> packed;
  const T* Vpk = V;
  if (c > 1) {
    packed = make_buffer<T>(S * c * d, "packed coefficients");
    pack_blocks(V, S, d, c, packed.data());
    Vpk = packed.data();
  }
  const Grid g = make_grid(n, S, c, sizeof(T), Split::PatternsFirst);
  // Maxima combine exactly in any order; the per-row-chunk buffers only avoid write races.
  std::vector<T> parts = make_buffer<T>(g.row_chunks * S * c, "partial cone violations");
  const bool parallel = run_parallel(g, 2.0 * n * d * S * c);
  blas::SingleThreadedScope blas_guard;
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (index_t u = 0; u < g.units(); ++u) {
    errors.run([&] {
      const index_t pc = u / g.row_chunks, rc = u % g.row_chunks;
      const index_t nb = g.tile_rows;
      T* C = scratch<T, 0>(g.block_size * c * nb);
      Word* wbuf = scratch<Word, 1>(g.block_size * (nb / kWordBits));
      for (index_t b = pc * g.blocks_per_chunk; b < std::min(g.n_blocks, (pc + 1) * g.blocks_per_chunk); ++b) {
        const index_t s0 = b * g.block_size, sb = std::min(g.block_size, S - s0);
        T* part = parts.data() + rc * S * c + s0 * c;
        for (index_t t = rc * g.tiles_per_chunk; t < std::min(g.n_tiles, (rc + 1) * g.tiles_per_chunk); ++t) {
          const index_t r0 = t * nb, rows = std::min(nb, n - r0), nw = ceil_div(rows, kWordBits);
          ctx.gather_words(s0, sb, r0, rows, wbuf);
          ctx.gemm_a_xt(sb * c, r0, rows, Vpk + s0 * c * d, C, nb);
          for (index_t s = 0; s < sb; ++s)
            for (index_t j = 0; j < c; ++j)
              part[s * c + j] = ctx.k.signed_max(wbuf + s * nw, rows, C + (s * c + j) * nb, part[s * c + j]);
        }
      }
    });
  }
  errors.rethrow();
  for (index_t q = 0; q < g.row_chunks; ++q)
    for (index_t i = 0; i < S * c; ++i) out[i] = std::max(out[i], parts[q * S * c + i]);
}

template <class T>
void gemm_gram_apply(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* V, T* W) {
  const Context<T> ctx{X, masks, subset, kernels<T>()};
  masked_gram_apply(ctx, V, W);
}

#define CONVEXNN_GEMM_INSTANTIATE(T)                                                                               \
  template void gemm_forward<T>(const MatrixView<T>&, const PackedMasks&, BlockSubset, const T*, index_t, T*);       \
  template void gemm_adjoint<T>(const MatrixView<T>&, const PackedMasks&, BlockSubset, const T*, index_t, T*);       \
  template void gemm_cone_violation<T>(const MatrixView<T>&, const PackedMasks&, BlockSubset, const T*, index_t, T*); \
  template void gemm_gram_apply<T>(const MatrixView<T>&, const PackedMasks&, BlockSubset, const T*, T*);
CONVEXNN_GEMM_INSTANTIATE(float)
CONVEXNN_GEMM_INSTANTIATE(double)
#undef CONVEXNN_GEMM_INSTANTIATE

}  // namespace detail
}  // namespace convexnn
