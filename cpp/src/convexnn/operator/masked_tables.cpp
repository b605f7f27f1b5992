// Masked products by subset-sum tables (see masked_tables.hpp for the method).
//
// Layout. A "feature vector" has m = d * c entries (one x_k r_k^T for the adjoint, one U_i for the
// forward), stored padded to mp entries, mp a multiple of one cache line, in 64-byte aligned buffers so
// every vector load is a whole, aligned line (unaligned 64-byte loads measured ~1.8x slower). A table is
// 16 such vectors: entry b (0 <= b < 16) is the sum of the group's vectors whose bit is set in b.
#include "convexnn/operator/masked_tables.hpp"
#include "convexnn/core/buffers.hpp"
#include "convexnn/core/parallel_errors.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace convexnn::detail {
namespace {

using Word = std::uint64_t;
constexpr index_t kWordBits = 64;
constexpr index_t kGroupBits = 4;                       // vectors per table
constexpr index_t kEntries = index_t(1) << kGroupBits;  // 16 entries per table
constexpr index_t kGroupsPerWord = kWordBits / kGroupBits;
constexpr std::size_t kLine = 64;  // bytes: alignment and padding unit
template <class T>
constexpr index_t kPadElems = static_cast<index_t>(kLine / sizeof(T));

// ---- tuning constants (bench/cpp/masked_ops_bench.cpp at n = 1e4, d = 50, P = 500, see bench/RESULTS.md) ----
// Bytes of tables read by the inner loop of one tile: every pattern (adjoint) or row (forward) of the
// tile reads all of them, so they must stay in L2 (and mostly in L1). 128 KiB measured best of
// {32, 64, 128, 256} KiB for the adjoint on a 48 KiB L1 / 2 MiB L2 core.
constexpr std::size_t kTableBudget = 128 * 1024;
// Vector accumulators kept in registers per pass over the groups (8 of the 16 ymm / 32 zmm registers).
constexpr int kMaxAccumulators = 8;
// Forward: rows per work unit (a multiple of 64 so a unit owns whole mask words).
constexpr index_t kForwardRowTile = 256;
// Adjoint: at most this many patterns per work unit. Each unit builds the tables of its rows itself (15
// vector additions per group against one per pattern and group), so long chunks keep that cheap; more
// chunks only serve to bound the partial sums (row chunks x patterns x mp) when there are many patterns.
constexpr index_t kAdjointPatternChunk = 1024;
// Adjoint partial sums (row chunks x patterns x mp) are kept in a reused per-thread buffer: bound it.
constexpr std::size_t kMaxPartialBytes = std::size_t(16) << 20;
// Minimum number of work units wanted when the shape allows (independent of the thread count).
constexpr index_t kMinWorkUnits = 16;
// Below this many vector additions a call runs on one thread.
constexpr double kMinParallelAdds = 2e5;
// The Auto method's thresholds (when the tables run at all) are in choose_method.cpp.

// ---- aligned buffers ---------------------------------------------------------------------------------------

// Per-thread scratch, one buffer per (T, Slot) (see grow_scratch).
template <class T, int Slot>
T* scratch(index_t count) {
  thread_local AlignedVector<T> buf;
  return grow_scratch(buf, count, "masked operator (tables)", "per-thread scratch");
}

// ---- the inner kernel --------------------------------------------------------------------------------------

template <class T, int Lanes>
struct Vec {
  typedef T type __attribute__((vector_size(Lanes * sizeof(T))));
};

// out[j0 .. j0 + R*Lanes) += sum_{g < ng} tables[g][nibble g0 + g of words][j0 ..], R registers; nibble q
// is bits 4(q % 16) .. 4(q % 16) + 3 of words[q / 16]. One word is loaded per 16 groups and shifted.
template <class T, int Lanes, int R>
[[gnu::always_inline]] inline void accumulate_chunk(const Word* words, index_t g0, index_t ng, const T* tables,
                                                    index_t mp, index_t j0, T* out, bool overwrite) {
  using V = typename Vec<T, Lanes>::type;
  V acc[R];
  for (int r = 0; r < R; ++r) {
    if (overwrite)
      acc[r] = V{};
    else
      std::memcpy(&acc[r], out + j0 + r * Lanes, sizeof(V));
  }
  const index_t table_stride = kEntries * mp;
  const T* table = tables + j0;
  for (index_t q = g0, end = g0 + ng; q < end;) {
    Word word = words[q / kGroupsPerWord] >> (kGroupBits * (q % kGroupsPerWord));
    const index_t run = std::min(kGroupsPerWord - q % kGroupsPerWord, end - q);
    // A pointer walk (no separate counter): the loop must keep every index in registers.
    for (const T* stop = table + run * table_stride; table != stop; word >>= kGroupBits, table += table_stride) {
      const T* entry = table + static_cast<index_t>(word & (kEntries - 1)) * mp;
      for (int r = 0; r < R; ++r) {
        V v;
        std::memcpy(&v, entry + r * Lanes, sizeof(V));
        acc[r] += v;
      }
    }
    q += run;
  }
  for (int r = 0; r < R; ++r) std::memcpy(out + j0 + r * Lanes, &acc[r], sizeof(V));
}

// For each output o < count: out_o[0 .. mp) += sum_{g < ng} tables[g][nibble(words_o, g0 + g)], with
// out_o = out + o * out_stride and words_o = word_rows[o] (mp a multiple of Lanes); out_o = that sum
// (from zero, out_o not read) when overwrite.
template <class T, int Lanes>
[[gnu::always_inline]] inline void accumulate_tables(index_t count, const Word* const* word_rows, index_t g0,
                                                     index_t ng, const T* tables, index_t mp, T* out,
                                                     index_t out_stride, bool overwrite) {
  for (index_t o = 0; o < count; ++o) {
    const Word* words = word_rows[o];
    T* dst = out + o * out_stride;
    index_t j0 = 0;
    for (; j0 + kMaxAccumulators * Lanes <= mp; j0 += kMaxAccumulators * Lanes)
      accumulate_chunk<T, Lanes, kMaxAccumulators>(words, g0, ng, tables, mp, j0, dst, overwrite);
    switch ((mp - j0) / Lanes) {  // the remaining registers (fewer than kMaxAccumulators)
      case 7: accumulate_chunk<T, Lanes, 7>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      case 6: accumulate_chunk<T, Lanes, 6>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      case 5: accumulate_chunk<T, Lanes, 5>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      case 4: accumulate_chunk<T, Lanes, 4>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      case 3: accumulate_chunk<T, Lanes, 3>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      case 2: accumulate_chunk<T, Lanes, 2>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      case 1: accumulate_chunk<T, Lanes, 1>(words, g0, ng, tables, mp, j0, dst, overwrite); break;
      default: break;
    }
  }
}

// Completes `groups` tables whose entries 0 (zeros) and 1, 2, 4, 8 (the group's 4 vectors) are set:
// entry e = entry (e with its lowest set bit cleared) + entry (its lowest set bit), 11 vector additions
// per table in a fixed order (e ascending).
template <class T, int Lanes>
[[gnu::always_inline]] inline void complete_tables_impl(index_t groups, index_t mp, T* tables) {
  using V = typename Vec<T, Lanes>::type;
  for (index_t g = 0; g < groups; ++g) {
    T* t = tables + g * kEntries * mp;
    for (index_t e = 3; e < kEntries; ++e) {
      if ((e & (e - 1)) == 0) continue;  // a power of two: one of the group's vectors
      const T* high = t + (e & (e - 1)) * mp;
      const T* low = t + (e & -e) * mp;
      T* dst = t + e * mp;
      for (index_t j = 0; j < mp; j += Lanes) {
        V a, b;
        std::memcpy(&a, high + j, sizeof(V));
        std::memcpy(&b, low + j, sizeof(V));
        a += b;
        std::memcpy(dst + j, &a, sizeof(V));
      }
    }
  }
}

template <class T>
struct TableKernels {
  // For each output o < count: out + o * out_stride (mp entries) += one entry per group of
  // [g0, g0 + ng), selected by the nibbles of word_rows[o] (see accumulate_tables).
  void (*accumulate)(index_t count, const Word* const* word_rows, index_t g0, index_t ng, const T* tables, index_t mp,
                     T* out, index_t out_stride, bool overwrite);
  void (*complete)(index_t groups, index_t mp, T* tables);
};

// One instantiation per vector width; the same additions in the same order in each (bitwise identical).
template <class T>
void accumulate_generic(index_t count, const Word* const* rows, index_t g0, index_t ng, const T* tables, index_t mp,
                        T* out, index_t out_stride, bool overwrite) {
  accumulate_tables<T, static_cast<int>(16 / sizeof(T))>(count, rows, g0, ng, tables, mp, out, out_stride, overwrite);
}
template <class T>
void complete_generic(index_t groups, index_t mp, T* tables) {
  complete_tables_impl<T, static_cast<int>(16 / sizeof(T))>(groups, mp, tables);
}
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVEXNN_TABLES_X86 1
template <class T>
__attribute__((target("avx2"))) void accumulate_avx2(index_t count, const Word* const* rows, index_t g0, index_t ng,
                                                     const T* tables, index_t mp, T* out, index_t out_stride,
                                                     bool overwrite) {
  accumulate_tables<T, static_cast<int>(32 / sizeof(T))>(count, rows, g0, ng, tables, mp, out, out_stride, overwrite);
}
template <class T>
__attribute__((target("avx2"))) void complete_avx2(index_t groups, index_t mp, T* tables) {
  complete_tables_impl<T, static_cast<int>(32 / sizeof(T))>(groups, mp, tables);
}
template <class T>
__attribute__((target("avx512f"))) void accumulate_avx512(index_t count, const Word* const* rows, index_t g0,
                                                          index_t ng, const T* tables, index_t mp, T* out,
                                                          index_t out_stride, bool overwrite) {
  accumulate_tables<T, static_cast<int>(64 / sizeof(T))>(count, rows, g0, ng, tables, mp, out, out_stride, overwrite);
}
template <class T>
__attribute__((target("avx512f"))) void complete_avx512(index_t groups, index_t mp, T* tables) {
  complete_tables_impl<T, static_cast<int>(64 / sizeof(T))>(groups, mp, tables);
}
#else
#define CONVEXNN_TABLES_X86 0
#endif

template <class T>
TableKernels<T> kernels_for(SimdIsa simd) {
#if CONVEXNN_TABLES_X86
  if (simd == SimdIsa::Avx512) return {&accumulate_avx512<T>, &complete_avx512<T>};
  if (simd == SimdIsa::Avx2) return {&accumulate_avx2<T>, &complete_avx2<T>};
#endif
  (void)simd;
  return {&accumulate_generic<T>, &complete_generic<T>};
}

// x^T v for a contiguous x of length d: kPadElems interleaved partial sums (vectorisable in any ISA,
// summed in a fixed order at the end), so the result does not depend on the vector width.
template <class T>
T row_dot(const T* x, const T* v, index_t d) {
  constexpr index_t L = kPadElems<T>;
  T part[L] = {};
  index_t a = 0;
  for (; a + L <= d; a += L)
    for (index_t l = 0; l < L; ++l) part[l] += x[a + l] * v[a + l];
  for (index_t l = 0; a + l < d; ++l) part[l] += x[a + l] * v[a + l];
  T s = T(0);
  for (index_t l = 0; l < L; ++l) s += part[l];
  return s;
}

// The slot of vector q (0 <= q < 4) of group g in a table array: entry 2^q of table g.
template <class T>
T* group_vector(T* tables, index_t g, index_t q, index_t mp) {
  return tables + (g * kEntries + (index_t(1) << q)) * mp;
}

// Groups of rows per adjoint tile: the largest power of two (so tiles never straddle a mask word) whose
// tables fit the budget, at most one word (16 groups = 64 rows).
template <class T>
index_t adjoint_groups_per_tile(index_t mp) {
  const index_t fit = static_cast<index_t>(kTableBudget / (kEntries * static_cast<std::size_t>(mp) * sizeof(T)));
  index_t groups = 1;
  while (groups * 2 <= std::min(fit, kGroupsPerWord)) groups *= 2;
  return groups;
}

// Groups of patterns per forward block: as many tables as fit the budget (at least one), whole words
// (16 groups) when at least one word fits.
template <class T>
index_t forward_groups_per_block(index_t mp) {
  const index_t fit = static_cast<index_t>(kTableBudget / (kEntries * static_cast<std::size_t>(mp) * sizeof(T)));
  return fit >= kGroupsPerWord ? fit / kGroupsPerWord * kGroupsPerWord : std::max<index_t>(1, fit);
}

}  // namespace

template <class T>
void row_outputs(const MatrixView<T>& X, index_t k, const T* v, index_t c, T* out) {
  const index_t d = X.cols;
  if (c == 1 && X.col_stride == 1) {
    out[0] = row_dot(X.data + k * X.row_stride, v, d);
    return;
  }
  for (index_t j = 0; j < c; ++j) {
    T s = T(0);
    for (index_t a = 0; a < d; ++a) s += X(k, a) * v[a * c + j];
    out[j] = s;
  }
}
template void row_outputs<float>(const MatrixView<float>&, index_t, const float*, index_t, float*);
template void row_outputs<double>(const MatrixView<double>&, index_t, const double*, index_t, double*);

void transpose_bits64(std::uint64_t* a) {
  // Recursive block swap (Hacker's Delight 7-3, least significant bit = column 0): 6 rounds of 32 swaps.
  Word mask = 0x00000000FFFFFFFFULL;
  for (index_t j = 32; j != 0; j >>= 1, mask ^= (mask << j)) {
    for (index_t k = 0; k < 64; k = ((k | j) + 1) & ~j) {
      const Word t = ((a[k] >> j) ^ a[k | j]) & mask;
      a[k] ^= t << j;
      a[k | j] ^= t;
    }
  }
}

// Rows [r0, r0 + rows) (r0 a multiple of 64) of the masks of `subset`, row-major: row k's bits over the
// patterns s of the subset in out[(k - r0) * W .. + W), W = ceil(|S| / 64), bit s % 64 of word s / 64.
void transpose_mask_rows(const PackedMasks& masks, BlockSubset subset, index_t r0, index_t rows, Word* out) {
  const index_t S = subset.count(masks.n_patterns), W = ceil_div(S, kWordBits);
  const index_t row_words = ceil_div(rows, kWordBits);
  Word block[kWordBits];
  for (index_t pw = 0; pw < W; ++pw) {
    for (index_t w = 0; w < row_words; ++w) {
      for (index_t q = 0; q < kWordBits; ++q) {
        const index_t s = pw * kWordBits + q;
        block[q] = s < S ? masks.mask(subset.block(s))[r0 / kWordBits + w] : 0;
      }
      transpose_bits64(block);
      for (index_t b = 0; b < kWordBits && w * kWordBits + b < rows; ++b) out[(w * kWordBits + b) * W + pw] = block[b];
    }
  }
}

std::size_t row_bits_bytes(index_t n, index_t n_patterns) {
  return static_cast<std::size_t>(n) * static_cast<std::size_t>(ceil_div(n_patterns, kWordBits)) * sizeof(Word);
}

std::vector<std::uint64_t> transpose_masks(const PackedMasks& masks) {
  const index_t n = masks.n_samples, W = ceil_div(masks.n_patterns, kWordBits);
  std::vector<Word> out =
      make_checked_vector<std::vector<Word>>(n * W, "masked operator (tables)", "row-major mask bits");
  const index_t tiles = ceil_div(n, kForwardRowTile);
  ParallelErrors errors;
#pragma omp parallel for schedule(static) if (tiles > 1 && double(n) * W >= kMinParallelAdds / kWordBits)
  for (index_t t = 0; t < tiles; ++t) {
    errors.run([&] {
      const index_t r0 = t * kForwardRowTile;
      transpose_mask_rows(masks, BlockSubset{}, r0, std::min(kForwardRowTile, n - r0), out.data() + r0 * W);
    });
  }
  errors.rethrow();
  return out;
}

std::size_t forward_table_bytes(index_t d, index_t c, index_t n_blocks, std::size_t elem_bytes) {
  const index_t mp = round_up(std::max<index_t>(d * c, 1), static_cast<index_t>(kLine / elem_bytes));
  return static_cast<std::size_t>(ceil_div(n_blocks, kGroupBits)) * kEntries * static_cast<std::size_t>(mp) *
         elem_bytes;
}

// ---- adjoint ---------------------------------------------------------------------------------------------------
//
// Work units: (row chunk, pattern chunk). A unit walks its row tiles; per tile it builds the tables of
// the tile's rows (x_k r_k^T, zero past n) and adds, for each of its patterns, one entry per group into
// that pattern's partial sum for its row chunk. Partial sums of the row chunks are added in chunk order.
template <class T>
void table_adjoint(SimdIsa simd, const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* R,
                   index_t c, T* G) {
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns);
  const index_t m = d * c, mp = round_up(std::max<index_t>(m, 1), kPadElems<T>);
  const index_t groups = adjoint_groups_per_tile<T>(mp), tile_rows = groups * kGroupBits;
  const index_t n_tiles = ceil_div(n, tile_rows);
  const index_t pattern_chunks = ceil_div(S, kAdjointPatternChunk);
  const index_t chunk_len = ceil_div(S, pattern_chunks);
  const index_t partial_limit =  // row chunks whose partial sums fit kMaxPartialBytes (at least one)
      std::max<index_t>(1, static_cast<index_t>(kMaxPartialBytes / (static_cast<std::size_t>(S * mp) * sizeof(T))));
  const index_t tiles_per_chunk = ceil_div(
      n_tiles, std::min(partial_limit, pattern_chunks >= kMinWorkUnits ? 1 : ceil_div(kMinWorkUnits, pattern_chunks)));
  const index_t row_chunks = ceil_div(n_tiles, tiles_per_chunk);  // none empty: each writes its partial sums
  const index_t units = row_chunks * pattern_chunks;

  std::vector<const Word*> word_rows(static_cast<std::size_t>(S));
  for (index_t s = 0; s < S; ++s) word_rows[s] = masks.mask(subset.block(s));
  // Calling-thread scratch (slots apart from the workers'), reused across calls: no allocation or
  // zero-fill of the whole buffer per product; each unit zeroes its own part.
  T* parts = scratch<T, 10>(row_chunks * S * mp);
  const TableKernels<T> kern = kernels_for<T>(simd);
  const bool parallel = units > 1 && omp_get_max_threads() > 1 && double(n) * S * mp / kGroupBits >= kMinParallelAdds;

  ParallelErrors errors;
  // One parallel region (a fork/join costs tens of microseconds with passive waiting): the units, then the
  // reduction of their partial sums after the loop's barrier.
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(dynamic, 1)
    for (index_t u = 0; u < units; ++u) {
      errors.run([&] {
        const index_t pc = u / row_chunks, rc = u % row_chunks;
        const index_t s0 = pc * chunk_len, s1 = std::min(S, s0 + chunk_len);
        T* tables = scratch<T, 1>(groups * kEntries * mp);
        T* out = parts + (rc * S + s0) * mp;
        for (index_t t = rc * tiles_per_chunk; t < std::min(n_tiles, (rc + 1) * tiles_per_chunk); ++t) {
          const index_t r0 = t * tile_rows, rows = std::min(tile_rows, n - r0);
          // The group vectors x_k r_k^T (zero past n and in the padding), straight into the table slots.
          for (index_t g = 0; g < groups; ++g)
            std::fill(tables + g * kEntries * mp, tables + (g * kEntries + 1) * mp, T(0));
          for (index_t k = 0; k < tile_rows; ++k) {
            T* phi = group_vector(tables, k / kGroupBits, k % kGroupBits, mp);
            if (k >= rows) {
              std::fill(phi, phi + mp, T(0));
              continue;
            }
            const T* r = R + (r0 + k) * c;
            if (c == 1 && X.col_stride == 1) {  // contiguous row, one column: a vectorisable scale
              const T* x = X.data + (r0 + k) * X.row_stride;
              const T rk = r[0];
              for (index_t a = 0; a < d; ++a) phi[a] = x[a] * rk;
            } else {
              for (index_t a = 0; a < d; ++a) {
                const T x = X(r0 + k, a);
                for (index_t j = 0; j < c; ++j) phi[a * c + j] = x * r[j];
              }
            }
            std::fill(phi + m, phi + mp, T(0));
          }
          kern.complete(groups, mp, tables);
          // The unit's first tile writes its partial sums (no zero-fill of the buffer first).
          kern.accumulate(s1 - s0, word_rows.data() + s0, r0 / kGroupBits, groups, tables, mp, out, mp,
                          t == rc * tiles_per_chunk);
        }
      });
    }
#pragma omp for schedule(static)
    for (index_t s = 0; s < S; ++s) {  // partial sums of the row chunks, in chunk order
      T* g = G + s * m;
      const T* p0 = parts + s * mp;
      for (index_t e = 0; e < m; ++e) g[e] = p0[e];
      for (index_t q = 1; q < row_chunks; ++q) {
        const T* pq = parts + (q * S + s) * mp;
        for (index_t e = 0; e < m; ++e) g[e] += pq[e];
      }
    }
  }
  errors.rethrow();
}

// ---- forward ---------------------------------------------------------------------------------------------------
//
// The tables of the coefficient blocks (groups of 4 patterns of the subset) are built once per call.
// Work units are row tiles: a unit transposes the mask bits of its rows (64 x 64 blocks) so each row has
// its bits over the patterns in words, accumulates V_k = sum_i D_ik U_i block of tables by block of tables
// (so a block stays in cache while every row of the tile reads it), then z_k = V_k^T x_k.
template <class T>
void table_forward(SimdIsa simd, const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* U,
                   index_t c, T* z, const std::uint64_t* row_bits) {
  if (!subset.all()) row_bits = nullptr;  // the cached bits are those of the whole set
  const index_t n = X.rows, d = X.cols, S = subset.count(masks.n_patterns);
  const index_t m = d * c, mp = round_up(std::max<index_t>(m, 1), kPadElems<T>);
  const index_t n_groups = ceil_div(S, kGroupBits);
  const index_t pattern_words = ceil_div(S, kWordBits);  // words of one row's bits over the patterns
  const index_t block_groups = forward_groups_per_block<T>(mp);
  const index_t n_tiles = ceil_div(n, kForwardRowTile);
  const TableKernels<T> kern = kernels_for<T>(simd);
  const bool parallel = omp_get_max_threads() > 1 && double(n) * S * mp / kGroupBits >= kMinParallelAdds;

  T* tables = scratch<T, 11>(n_groups * kEntries * mp);  // calling-thread scratch, reused across calls
  ParallelErrors errors;
  // One parallel region: the tables, then (after the loop's barrier) the row tiles that read them.
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (index_t g = 0; g < n_groups; ++g) {
      errors.run([&] {  // entry 0 zero, the group's blocks U_i (zero past S and in the padding) into entries 1, 2, 4, 8
        std::fill(tables + g * kEntries * mp, tables + (g * kEntries + 1) * mp, T(0));
        for (index_t q = 0; q < kGroupBits; ++q) {
          T* slot = group_vector(tables, g, q, mp);
          const index_t i = g * kGroupBits + q;
          if (i < S) std::copy(U + i * m, U + (i + 1) * m, slot);
          std::fill(slot + (i < S ? m : 0), slot + mp, T(0));
        }
        kern.complete(1, mp, tables + g * kEntries * mp);
      });
    }
#pragma omp for schedule(dynamic, 1)
    for (index_t t = 0; t < n_tiles; ++t) {
      errors.run([&] {
        const index_t r0 = t * kForwardRowTile, rows = std::min(kForwardRowTile, n - r0);
        const Word** word_rows = scratch<const Word*, 4>(kForwardRowTile);
        T* V = scratch<T, 5>(kForwardRowTile * mp);
        const Word* bits = row_bits ? row_bits + r0 * pattern_words : nullptr;
        if (!bits) {
          Word* tile_bits = scratch<Word, 2>(kForwardRowTile * pattern_words);
          transpose_mask_rows(masks, subset, r0, rows, tile_bits);
          bits = tile_bits;
        }
        for (index_t k = 0; k < rows; ++k) word_rows[k] = bits + k * pattern_words;
        for (index_t g0 = 0; g0 < n_groups; g0 += block_groups)  // the first block writes V
          kern.accumulate(rows, word_rows, g0, std::min(block_groups, n_groups - g0), tables + g0 * kEntries * mp, mp,
                          V, mp, g0 == 0);
        for (index_t k = 0; k < rows; ++k) row_outputs(X, r0 + k, V + k * mp, c, z + (r0 + k) * c);
      });
    }
  }
  errors.rethrow();
}

template void table_forward<float>(SimdIsa, const MatrixView<float>&, const PackedMasks&, BlockSubset, const float*,
                                   index_t, float*, const std::uint64_t*);
template void table_forward<double>(SimdIsa, const MatrixView<double>&, const PackedMasks&, BlockSubset, const double*,
                                    index_t, double*, const std::uint64_t*);
template void table_adjoint<float>(SimdIsa, const MatrixView<float>&, const PackedMasks&, BlockSubset, const float*,
                                   index_t, float*);
template void table_adjoint<double>(SimdIsa, const MatrixView<double>&, const PackedMasks&, BlockSubset, const double*,
                                    index_t, double*);

}  // namespace convexnn::detail
