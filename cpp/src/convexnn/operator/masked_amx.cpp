// Masked products on AMX tiles (see masked_amx.hpp for the method).
//
// Tiles (all 16 rows x 64 bytes): C (float32, 16 x 16) in tile registers 0..3, A (bf16 0/1 masks,
// 16 x 32) in 4, B (bf16 operand in the VNNI pair layout, 32 x 16) in 5. One tile product
//   C[r][j] += sum_{t < 32} A[r][t] * B[t][j]
// with B stored as 16 rows of 16 pairs: row q holds (B[2q][j], B[2q + 1][j]) for j = 0..15.
// Forward: A = masks of 16 rows over 32 patterns, B = 32 patterns x 16 features of U.
// Adjoint: A = masks of 16 patterns over 32 rows, B = 32 rows x 16 features of Phi.
#include "convexnn/operator/masked_amx.hpp"
#include "convexnn/core/buffers.hpp"
#include "convexnn/operator/masked_tables.hpp"
#include "convexnn/core/parallel_errors.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVEXNN_AMX 1
// GCC 12 warns inside its own AVX-512 headers (their _mm512_undefined_* placeholders) when the
// intrinsics inline into these functions: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define CONVEXNN_AMX 0
#endif

namespace convexnn::detail {

#if CONVEXNN_AMX
namespace {

using Word = std::uint64_t;
using Bf16 = std::uint16_t;
constexpr index_t kWordBits = 64;
constexpr index_t kTileRows = 16;                   // rows of every tile
constexpr index_t kTileK = 32;                      // bf16 elements along the summation index per tile product
constexpr index_t kTileCols = 16;                   // float32 columns of a C tile
constexpr index_t kTileElems = kTileRows * kTileK;  // bf16 elements of an A or B tile (1 KiB)
constexpr int kSplits = 3;                          // bf16 terms per float32 operand (8 + 8 + 8 significant bits)
constexpr int kMaxCTiles = 4;                       // C tiles held in registers 0..3
constexpr int kTilesUsed = 7;                       // C in tiles 0..3, A in 4 and 6, B in 5
constexpr index_t kRowUnit = 64;                    // forward rows per work unit (whole mask words)
// Adjoint: rows per chunk are chosen so the chunk's B tiles (3 splits x column tiles x 1 KiB per 32 rows)
// stay within this many bytes (L2), read by every pattern block of the chunk.
constexpr std::size_t kAdjointChunkBytes = std::size_t(512) << 10;
// Adjoint: k-steps (32 rows each) summed in tile registers before joining the running sums (see amx_adjoint;
// 16 and 32 measured 1.3x and 1.1x slower at n = 1e4, d = 50, P = 500).
constexpr index_t kSumSteps = 64;
constexpr double kMinParallelMacs = 2e6;  // below this many multiply-adds a call runs on one thread

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// The B tiles of k-step s (32 rows of the summation index: patterns for the forward, data rows for the
// adjoint) of a float32 operand whose row k (< rows of this step) is base[k * row_stride + e] * (scale ?
// scale[k] : 1), e < m features: for split h and column tile ct, the VNNI tile at
// out + ((s * 3 + h) * nct + ct) * 512 holds in row q, pair (2 j, 2 j + 1) the term h of rows 2 q and
// 2 q + 1, feature 16 ct + j (zero past `rows` or m). The three bf16 terms of a float32 a are taken by
// truncation: a1 = the top 8 significant bits of a, a2 those of a - a1, a3 the rest (exact: 24 = 3 x 8 bits;
// truncation never rounds up to infinity). 16 features at a time: a row pair's terms interleave into one
// 64-byte tile row as (bits(v_even) >> 16) | (bits(v_odd) & 0xFFFF0000), lane by lane.
__attribute__((target("avx512f,avx512bw"))) void pack_b_step(index_t s, index_t rows, index_t m, index_t nct,
                                                             const float* base, index_t row_stride, const float* scale,
                                                             Bf16* out) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (index_t ct = 0; ct < nct; ++ct) {
    const index_t e0 = ct * kTileCols, left = m - e0;
    const __mmask16 cols = left >= kTileCols ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
    for (index_t q = 0; q < kTileRows; ++q) {
      __m512 v[2];
      for (index_t t = 0; t < 2; ++t) {
        const index_t k = 2 * q + t;
        v[t] = k < rows ? _mm512_maskz_loadu_ps(cols, base + k * row_stride + e0) : _mm512_setzero_ps();
        if (scale && k < rows) v[t] = _mm512_mul_ps(v[t], _mm512_set1_ps(scale[k]));
      }
      for (int h = 0; h < kSplits; ++h) {
        const __m512i even = _mm512_castps_si512(v[0]), odd = _mm512_castps_si512(v[1]);
        const __m512i row = _mm512_or_si512(_mm512_srli_epi32(even, 16), _mm512_and_si512(odd, high));
        _mm512_store_si512(out + ((s * kSplits + h) * nct + ct) * kTileElems + q * kTileK, row);
        v[0] = _mm512_sub_ps(v[0], _mm512_castsi512_ps(_mm512_and_si512(even, high)));
        v[1] = _mm512_sub_ps(v[1], _mm512_castsi512_ps(_mm512_and_si512(odd, high)));
      }
    }
  }
}

#define CONVEXNN_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

CONVEXNN_AMX_TARGET void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < kTilesUsed; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = kTileRows;
  }
  // GCC's _tile_loadconfig tells the compiler it reads 8 bytes only: without this barrier the stores
  // above are dropped as dead and the tiles stay unconfigured.
  __asm__ volatile("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
}

CONVEXNN_AMX_TARGET void release_tiles() { _tile_release(); }

// GCC's tile intrinsics paste their tile numbers into the instruction text: literal numbers only. These
// switch over C tile j (a constant after inlining); A is tile 4, B tile 5.
#define CONVEXNN_C_TILE_SWITCH(j, STMT) \
  switch (j) {                          \
    case 0: STMT(0); break;             \
    case 1: STMT(1); break;             \
    case 2: STMT(2); break;             \
    default: STMT(3); break;            \
  }
CONVEXNN_AMX_TARGET [[gnu::always_inline]] inline void c_zero(int j){
#define CONVEXNN_STMT(t) _tile_zero(t)
    CONVEXNN_C_TILE_SWITCH(j, CONVEXNN_STMT)
#undef CONVEXNN_STMT
} CONVEXNN_AMX_TARGET [[gnu::always_inline]] inline void c_load(int j, const float* p, index_t stride){
#define CONVEXNN_STMT(t) _tile_loadd(t, p, stride)
    CONVEXNN_C_TILE_SWITCH(j, CONVEXNN_STMT)
#undef CONVEXNN_STMT
} CONVEXNN_AMX_TARGET [[gnu::always_inline]] inline void c_store(int j, float* p, index_t stride){
#define CONVEXNN_STMT(t) _tile_stored(t, p, stride)
    CONVEXNN_C_TILE_SWITCH(j, CONVEXNN_STMT)
#undef CONVEXNN_STMT
} CONVEXNN_AMX_TARGET [[gnu::always_inline]] inline void c_add_product(int j, int a) {  // C_j += A_a x B (tile 5)
  if (a == 0) {
#define CONVEXNN_STMT(t) _tile_dpbf16ps(t, 4, 5)
    CONVEXNN_C_TILE_SWITCH(j, CONVEXNN_STMT)
#undef CONVEXNN_STMT
  } else {
#define CONVEXNN_STMT(t) _tile_dpbf16ps(t, 6, 5)
    CONVEXNN_C_TILE_SWITCH(j, CONVEXNN_STMT)
#undef CONVEXNN_STMT
  }
}
#undef CONVEXNN_C_TILE_SWITCH

// The A tiles of k-steps g0 .. g0 + count - 1 for RB row blocks, into a[(s * RB + r) * 512] (s counted
// from g0): row i of tile (s, r) = bf16 1.0 where bit j of the 32 mask bits of step g0 + s of mask row
// rows[r * 16 + i] is set, else 0 (a null row pointer gives a zero row). A mask row holds 64 bits per word,
// so step g is the half g % 2 of word g / 2. Built before the tile products read them (a tile load right
// after the stores that wrote it waits for them).
__attribute__((target("avx512f,avx512bw"))) void build_mask_tiles(int RB, index_t g0, index_t count,
                                                                  const Word* const* rows, Bf16* a) {
  const __m512i one = _mm512_set1_epi16(static_cast<short>(0x3F80));  // bf16 1.0
  for (index_t s = 0; s < count; ++s, a += RB * kTileElems) {
    const index_t g = g0 + s, word = g / 2, shift = kTileK * (g % 2);
    for (index_t q = 0; q < RB * kTileRows; ++q) {
      const auto bits = static_cast<__mmask32>(rows[q] ? rows[q][word] >> shift : 0);
      _mm512_store_si512(a + q * kTileK, _mm512_maskz_mov_epi16(bits, one));
    }
  }
}

// RB blocks of 16 output rows x NC column tiles (C tiles r * NC + j, RB * NC <= 4), over k-steps
// s < count: A tiles from build_mask_tiles (a), B tiles at b + ((s * 3 + h) * nct + ct0 + j) * 1024, each
// loaded once for the RB blocks. C block r lives at c_out + r * 16 * ldc (row stride ldc floats), read
// unless `zero` (then it starts at 0), written back.
template <int RB, int NC>
CONVEXNN_AMX_TARGET void tile_products(index_t count, const Bf16* a, const Bf16* b, index_t nct, index_t ct0,
                                       float* c_out, index_t ldc, bool zero) {
  static_assert(RB * NC <= kMaxCTiles, "C tiles live in tile registers 0..3");
  const index_t stride = ldc * static_cast<index_t>(sizeof(float));
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NC; ++j) {
      if (zero)
        c_zero(r * NC + j);
      else
        c_load(r * NC + j, c_out + r * kTileRows * ldc + j * kTileCols, stride);
    }
  for (index_t s = 0; s < count; ++s) {
    const Bf16* at = a + s * RB * kTileElems;
    _tile_loadd(4, at, 64);
    if (RB == 2) _tile_loadd(6, at + kTileElems, 64);
    for (int h = 0; h < kSplits; ++h) {
      const Bf16* bt = b + ((s * kSplits + h) * nct + ct0) * kTileElems;
      for (int j = 0; j < NC; ++j) {
        _tile_loadd(5, bt + j * kTileElems, 64);  // the B tile, shared by the RB row blocks
        for (int r = 0; r < RB; ++r) c_add_product(r * NC + j, r);
      }
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NC; ++j) c_store(r * NC + j, c_out + r * kTileRows * ldc + j * kTileCols, stride);
}

// z[r] = x_r^T v_r for `rows` contiguous rows x_r = x + r * ldx (d entries) and v_r = v + r * ldv, in
// 16-lane partial sums reduced at the end (a fixed order). AVX-512 with FMA: the portable row_outputs
// (masked_tables.hpp, which the tables need bitwise identical across SIMD variants) measured 1.15x slower
// for the whole AMX forward.
__attribute__((target("avx512f"))) void dot_rows(index_t rows, const float* x, index_t ldx, const float* v, index_t ldv,
                                                 index_t d, float* z) {
  for (index_t r = 0; r < rows; ++r) {
    __m512 acc = _mm512_setzero_ps();
    for (index_t a = 0; a < d; a += kTileCols) {
      const index_t left = d - a;
      const __mmask16 lanes = left >= kTileCols ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes, x + r * ldx + a),
                            _mm512_maskz_loadu_ps(lanes, v + r * ldv + a), acc);
    }
    z[r] = _mm512_reduce_add_ps(acc);
  }
}

// acc[i] += x[i], i < count (a fixed order, vectorisable).
void add_into(index_t count, const float* x, float* acc) {
  for (index_t i = 0; i < count; ++i) acc[i] += x[i];
}

// Two row blocks (32 output rows, mask rows `rows`, steps g0 .. g0 + count - 1 of the masks, step 0 of b)
// times all column tiles, in passes of two column tiles. abuf: room for 2 * count A tiles.
void pair_products(index_t g0, index_t count, const Word* const* rows, const Bf16* b, index_t nct, float* c_out,
                   index_t ldc, bool zero, Bf16* abuf) {
  build_mask_tiles(2, g0, count, rows, abuf);
  for (index_t ct0 = 0; ct0 < nct; ct0 += 2) {
    float* c = c_out + ct0 * kTileCols;
    if (nct - ct0 >= 2)
      tile_products<2, 2>(count, abuf, b, nct, ct0, c, ldc, zero);
    else
      tile_products<2, 1>(count, abuf, b, nct, ct0, c, ldc, zero);
  }
}

constexpr const char* kWho = "masked operator (amx)";  // for the sizes in allocation errors

}  // namespace

bool amx_available() {
  static const bool ok = [] {
    // CONVEXNN_AMX=0 turns the AMX products off (e.g. to reproduce results of machines without AMX).
    if (const char* env = std::getenv("CONVEXNN_AMX"); env && std::string(env) == "0") return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool avx512f = (b >> 16) & 1U, avx512bw = (b >> 30) & 1U;
    const bool amx_bf16 = (d >> 22) & 1U, amx_tile = (d >> 24) & 1U;
    if (!(avx512f && avx512bw && amx_bf16 && amx_tile)) return false;
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;  // Linux >= 5.16
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
}

void amx_forward(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* U, index_t c,
                 float* z, const std::uint64_t* row_bits) {
  if (!subset.all()) row_bits = nullptr;  // the cached bits are those of the whole set
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns), m = d * c;
  const index_t nct = ceil_div(m, kTileCols), mp = nct * kTileCols;
  const index_t steps = ceil_div(S, kTileK), W = ceil_div(S, kWordBits);
  const index_t units = ceil_div(n, kRowUnit);
  const bool parallel = omp_get_max_threads() > 1 && double(n) * S * m * kSplits >= kMinParallelMacs;
  ParallelErrors errors;
#pragma omp parallel if (parallel)
  {
    // Every thread packs all of U's B tiles for itself: they are read by every row block, from its own L2
    // (shared tiles packed half by each thread measured slower: half the reads crossed to the other core).
    thread_local AlignedVector<Bf16> b_buf;
    Bf16* b = nullptr;
    errors.run([&] {
      b = grow_scratch(b_buf, steps * kSplits * nct * kTileElems, kWho, "forward B tiles");
      for (index_t st = 0; st < steps; ++st)
        pack_b_step(st, std::min(kTileK, S - st * kTileK), m, nct, U + st * kTileK * m, m, nullptr, b);
    });
    configure_tiles();
#pragma omp for schedule(dynamic, 1)
    for (index_t u = 0; u < units; ++u) {
      if (!b) continue;  // this thread could not allocate its tiles (reported by errors)
      errors.run([&] {
        thread_local AlignedVector<Bf16> a_buf;
        thread_local AlignedVector<float> v_buf;
        thread_local std::vector<Word> bits_buf;
        Bf16* abuf = grow_scratch(a_buf, 2 * steps * kTileElems, kWho, "mask tiles");
        float* V = grow_scratch(v_buf, 2 * kTileRows * mp, kWho, "row sums");
        const index_t r0 = u * kRowUnit, rows = std::min(kRowUnit, n - r0);
        const Word* bits = row_bits ? row_bits + r0 * W : nullptr;
        if (!bits) {
          Word* tile_bits = grow_scratch(bits_buf, kRowUnit * W, kWho, "row bits");
          transpose_mask_rows(masks, subset, r0, rows, tile_bits);
          bits = tile_bits;
        }
        // Pairs of 16-row blocks share every B tile load.
        for (index_t b0 = 0; b0 < rows; b0 += 2 * kTileRows) {
          const index_t brows = std::min(2 * kTileRows, rows - b0);
          const Word* mask_rows[2 * kTileRows];
          for (index_t r = 0; r < 2 * kTileRows; ++r) mask_rows[r] = r < brows ? bits + (b0 + r) * W : nullptr;
          pair_products(0, steps, mask_rows, b, nct, V, mp, true, abuf);
          if (c == 1 && X.col_stride == 1) {
            dot_rows(brows, X.data + (r0 + b0) * X.row_stride, X.row_stride, V, mp, d, z + r0 + b0);
            continue;
          }
          for (index_t r = 0; r < brows; ++r) row_outputs(X, r0 + b0 + r, V + r * mp, c, z + (r0 + b0 + r) * c);
        }
      });
    }
    release_tiles();
  }
  errors.rethrow();
}

void amx_adjoint(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* R, index_t c,
                 float* G) {
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns), m = d * c;
  const index_t nct = ceil_div(m, kTileCols), mp = nct * kTileCols;
  // Units of two 16-pattern blocks, which share every B tile load.
  const index_t steps = ceil_div(n, kTileK), units = ceil_div(S, 2 * kTileRows);
  // Steps per chunk: whole blocks of kSumSteps, B tiles within kAdjointChunkBytes (at least one block).
  const index_t step_bytes = kSplits * nct * kTileElems * static_cast<index_t>(sizeof(Bf16));
  const index_t chunk_steps =
      std::max<index_t>(kSumSteps, static_cast<index_t>(kAdjointChunkBytes) / step_bytes / kSumSteps * kSumSteps);
  const index_t chunks = ceil_div(steps, chunk_steps);
  thread_local AlignedVector<float> g_buf;
  float* Gacc = grow_scratch(g_buf, units * 2 * kTileRows * mp, kWho, "adjoint sums");
  std::vector<const Word*> pattern_masks(static_cast<std::size_t>(units * 2 * kTileRows), nullptr);
  for (index_t s = 0; s < S; ++s) pattern_masks[s] = masks.mask(subset.block(s));
  const bool parallel = omp_get_max_threads() > 1 && double(n) * S * m * kSplits >= kMinParallelMacs;
  ParallelErrors errors;
  // Each thread keeps the same units (pattern pairs) for every chunk of rows (a static schedule), so no
  // barrier is needed between chunks, and packs each chunk's B tiles itself into its own L2 (shared tiles
  // packed half by each thread measured slower: half the reads crossed to the other core).
#pragma omp parallel if (parallel)
  {
    const bool has_units = omp_get_thread_num() < units;
    thread_local AlignedVector<Bf16> b_buf, a_buf;
    thread_local AlignedVector<float> block_buf, phi_buf;
    Bf16 *b = nullptr, *abuf = nullptr;
    float *block = nullptr, *phi = nullptr;
    if (has_units)
      errors.run([&] {
        b = grow_scratch(b_buf, chunk_steps * kSplits * nct * kTileElems, kWho, "adjoint B tiles");
        abuf = grow_scratch(a_buf, 2 * kSumSteps * kTileElems, kWho, "mask tiles");
        block = grow_scratch(block_buf, 2 * kTileRows * mp, kWho, "block sums");
        phi = grow_scratch(phi_buf, kTileK * m, kWho, "rows of Phi");
      });
    if (b && abuf && block && phi) {
      configure_tiles();
      for (index_t ch = 0; ch < chunks; ++ch) {
        const index_t s0 = ch * chunk_steps, s1 = std::min(steps, s0 + chunk_steps);
        const index_t first = s0 * kTileK;  // the chunk's first row; its tiles start at step 0 of b
        for (index_t st = 0; st < s1 - s0; ++st) {
          const index_t r0 = first + st * kTileK, rows = std::min(kTileK, n - r0);
          if (c == 1 && X.col_stride == 1) {  // Phi_k = r_k x_k straight from contiguous rows
            pack_b_step(st, rows, m, nct, X.data + r0 * X.row_stride, X.row_stride, R + r0, b);
            continue;
          }
          for (index_t k = 0; k < rows; ++k)  // Phi_k = x_k r_k^T (row-major d x c) into the step's scratch
            for (index_t a = 0; a < d; ++a)
              for (index_t j = 0; j < c; ++j) phi[k * m + a * c + j] = X(r0 + k, a) * R[(r0 + k) * c + j];
          pack_b_step(st, rows, m, nct, phi, m, nullptr, b);
        }
        for (index_t u = omp_get_thread_num(); u < units; u += omp_get_num_threads()) {
          const Word* const* mask_rows = pattern_masks.data() + u * 2 * kTileRows;
          // Blocks of kSumSteps k-steps start from zero C tiles and are added into the unit's sums: one
          // sequential float32 sum over all n rows (3 terms per row) measured 4.5x the tables' rounding
          // error at n = 1e4; with blocks of 2048 rows it is at or below theirs (n = 1e4 and 5e4).
          float* acc = Gacc + u * 2 * kTileRows * mp;
          for (index_t sb = 0; sb < s1 - s0; sb += kSumSteps) {
            const index_t count = std::min(kSumSteps, s1 - s0 - sb);
            pair_products(s0 + sb, count, mask_rows, b + sb * kSplits * nct * kTileElems, nct, block, mp, true, abuf);
            if (ch == 0 && sb == 0)
              std::copy(block, block + 2 * kTileRows * mp, acc);
            else
              add_into(2 * kTileRows * mp, block, acc);
          }
        }
      }
      release_tiles();
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (index_t s = 0; s < S; ++s) std::copy(Gacc + s * mp, Gacc + s * mp + m, G + s * m);
  }
  errors.rethrow();
}

#else  // no AMX on this platform

bool amx_available() { return false; }
void amx_forward(const MatrixView<float>&, const PackedMasks&, BlockSubset, const float*, index_t, float*,
                 const std::uint64_t*) {
  CONVEXNN_CHECK(false, "masked operator: AMX products are not available on this platform");
}
void amx_adjoint(const MatrixView<float>&, const PackedMasks&, BlockSubset, const float*, index_t, float*) {
  CONVEXNN_CHECK(false, "masked operator: AMX products are not available on this platform");
}

#endif

}  // namespace convexnn::detail
