// MaskedOperator (see masked_operator.hpp for the contract): validation, the product method of each call
// (choose_method.hpp) and its dispatch, Gram matrices and Lipschitz constants. The products themselves live
// with their methods: masked_gemm.cpp (GEMM tiles, also the cone violations), masked_tables.cpp,
// masked_amx.cpp and masked_bf16.cpp; each answers "can I run this shape?" (choose_method.hpp) and runs it.
#include "convexnn/operator/masked_operator.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "convexnn/core/blas.hpp"
#include "convexnn/operator/choose_method.hpp"
#include "convexnn/operator/masked_amx.hpp"
#include "convexnn/operator/masked_gemm.hpp"
#include "convexnn/operator/masked_bf16.hpp"
#include "convexnn/operator/masked_tables.hpp"
#include "convexnn/core/buffers.hpp"
#include "convexnn/core/parallel_errors.hpp"

namespace convexnn {
namespace {

using Word = std::uint64_t;
constexpr index_t kWordBits = 64;
constexpr index_t kRowTile = detail::kGemmRowTile;  // block_gram's row tile (as the GEMM tiles')

// Auto Lipschitz method: a Gram matrix costs about n*d^2 (GEMM on the active rows, half of them on
// average, counted as 2 flops each) + 9*d^3 (syev with vectors) per block, a power step 4*n*d per block.
// Power iteration to a 1e-10 relative change typically needs tens of steps; 50 is the break-even used.
constexpr double kNominalPowerIterations = 50.0;
// Hard cap on power steps; the estimate returned is a lower bound whether or not it converged.
constexpr int kPowerMaxIterations = 1000;
using detail::ceil_div;
using detail::round_up;
using detail::ParallelErrors;

template <class T>
std::vector<T> make_buffer(index_t count, const char* what) {
  return detail::make_checked_vector<std::vector<T>>(count, "masked operator", what);
}

// Per-thread scratch that only grows, reused across calls (OpenMP threads persist).
template <class T, int Slot>
T* scratch(index_t count) {
  thread_local std::vector<T> buf;
  return detail::grow_scratch(buf, count, "masked operator", "per-thread buffer");
}

// Deterministic pseudo-random start in [-1, 1) (splitmix64 of block and coordinate).
double hash_uniform(std::uint64_t block, std::uint64_t coord) {
  std::uint64_t x = block * 0x9E3779B97F4A7C15ULL + coord + 0x632BE59BD9B4E019ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}
}  // namespace

// ---- free functions -------------------------------------------------------------------------------------

std::vector<std::uint64_t> pack_masks(const std::uint8_t* dense, index_t n, index_t n_patterns, index_t row_stride,
                                      index_t col_stride) {
  CONVEXNN_CHECK(n >= 0 && n_patterns >= 0,
                 "masks must have non-negative shape, got (" << n << ", " << n_patterns << ")");
  CONVEXNN_CHECK(dense != nullptr || n * n_patterns == 0, "masks: null data");
  const index_t W = PackedMasks::words_for(n);
  auto words = make_buffer<Word>(W * n_patterns, "packed masks");
  for (index_t i = 0; i < n_patterns; ++i)
    for (index_t k = 0; k < n; ++k)
      if (dense[k * row_stride + i * col_stride]) words[i * W + k / kWordBits] |= Word(1) << (k % kWordBits);
  return words;
}

template <class T>
void block_norms(const T* U, index_t n_blocks, index_t d, index_t c, bool groups_neuron, T* out) {
  CONVEXNN_CHECK(n_blocks >= 0 && d >= 0 && c >= 1,
                 "block_norms: bad shape (" << n_blocks << ", " << d << ", " << c << ")");
  // Two passes per group (max |x|, then the scaled sum of squares) so neither overflows nor underflows.
  auto norm = [](auto&& at, index_t len) {
    double big = 0;
    for (index_t l = 0; l < len; ++l) big = std::max(big, std::abs(static_cast<double>(at(l))));
    if (big == 0 || !std::isfinite(big)) return big;
    double s = 0;
    for (index_t l = 0; l < len; ++l) {
      const double v = static_cast<double>(at(l)) / big;
      s += v * v;
    }
    return big * std::sqrt(s);
  };
  for (index_t i = 0; i < n_blocks; ++i) {
    const T* b = U + i * d * c;
    if (groups_neuron) {
      out[i] = static_cast<T>(norm([b](index_t l) { return b[l]; }, d * c));
    } else {
      for (index_t j = 0; j < c; ++j)
        out[i * c + j] = static_cast<T>(norm([b, c, j](index_t l) { return b[l * c + j]; }, d));
    }
  }
}
// ---- MaskedOperator ---------------------------------------------------------------------------------------

namespace {
template <class T>
MatrixView<T> normalized_view(MatrixView<T> X) {
  CONVEXNN_CHECK(X.rows >= 0 && X.cols >= 0,
                 "X must have a non-negative shape, got (" << X.rows << ", " << X.cols << ")");
  CONVEXNN_CHECK(X.data != nullptr || X.rows * X.cols == 0, "X: null data");
  if (X.rows == 0 || X.cols == 0) return MatrixView<T>{X.data, X.rows, X.cols, std::max<index_t>(X.cols, 1), 1};
  // A single column or row has only one meaningful stride: give the other one a BLAS-valid value.
  if (X.cols == 1 && X.row_stride >= 1) X.col_stride = 1;
  if (X.rows == 1) {
    if (X.col_stride == 1)
      X.row_stride = X.cols;
    else if (X.col_stride >= 1)
      X.row_stride = 1;
  }
  CONVEXNN_CHECK(X.blas_compatible(), "X must be C- or F-contiguous in one dimension (got strides "
                                          << X.row_stride << ", " << X.col_stride << ")");
  return X;
}
}  // namespace

template <class T>
MaskedOperator<T>::MaskedOperator(MatrixView<T> X, PackedMasks masks) : X_(normalized_view(X)), masks_(masks) {
  CONVEXNN_CHECK(masks.n_samples == X_.rows,
                 "patterns have n_samples = " << masks.n_samples << " but X has " << X_.rows << " rows");
  CONVEXNN_CHECK(masks.n_patterns >= 0, "patterns: negative n_patterns");
  CONVEXNN_CHECK(masks.words_per_pattern == PackedMasks::words_for(masks.n_samples),
                 "patterns: words_per_pattern = " << masks.words_per_pattern << ", expected "
                                                  << PackedMasks::words_for(masks.n_samples));
  CONVEXNN_CHECK(masks.words != nullptr || masks.n_patterns * masks.words_per_pattern == 0,
                 "patterns: null mask words");
  cache_row_bits();
}

template <class T>
MaskedOperator<T>::MaskedOperator(MatrixView<T> X, const PatternSet& patterns)
    : MaskedOperator(X, PackedMasks::of(patterns)) {
  pattern_set_ = &patterns;
}

template <class T>
const PatternSet& MaskedOperator<T>::patterns() const {
  CONVEXNN_CHECK(pattern_set_ != nullptr,
                 "this MaskedOperator was built from packed or dense masks, not a PatternSet: the exact solver's "
                 "cone projections need the PatternSet");
  return *pattern_set_;
}

template <class T>
MaskedOperator<T>::MaskedOperator(MatrixView<T> X, std::vector<Word> words, index_t n_patterns)
    : X_(normalized_view(X)) {
  const index_t W = PackedMasks::words_for(X_.rows);
  CONVEXNN_CHECK(n_patterns >= 0 && static_cast<index_t>(words.size()) == W * n_patterns,
                 "packed masks: expected " << W * n_patterns << " words for " << n_patterns << " patterns of "
                                           << X_.rows << " rows, got " << words.size());
  owned_words_ = std::make_shared<const std::vector<Word>>(std::move(words));
  masks_ = PackedMasks{owned_words_->data(), X_.rows, n_patterns, W};
  cache_row_bits();
}

namespace {
// The row-major copy of the masks saves the full-set table forward its bit transposes (~10% of it at
// n = 1e4, d = 50, P = 500); it costs as much memory as the masks, so only up to this size.
constexpr std::size_t kMaxRowBitsBytes = std::size_t(256) << 20;
}  // namespace

template <class T>
void MaskedOperator<T>::cache_row_bits() {
  const index_t n = X_.rows, P = masks_.n_patterns;
  const ProductMethod method = n > 0 && P > 0 ? resolved_method(1, P) : ProductMethod::Gemm;
  if (row_bits_ || (method != ProductMethod::Tables && method != ProductMethod::Amx && method != ProductMethod::Bf16))
    return;
  if (detail::row_bits_bytes(n, P) > kMaxRowBitsBytes) return;
  try {
    row_bits_ = std::make_shared<const std::vector<Word>>(detail::transpose_masks(masks_));
  } catch (const std::length_error&) {  // out of memory: an optional cache, the forward transposes per call
  } catch (const std::bad_alloc&) {
  }
}

template <class T>
void MaskedOperator<T>::set_product_method(ProductMethod method) {
  if (method == ProductMethod::Amx) {
    CONVEXNN_CHECK((std::is_same_v<T, float>), "method 'amx' computes in float32 only (this operator is float64)");
    CONVEXNN_CHECK(detail::amx_available(),
                   "method 'amx' needs Intel AMX (AMX-TILE, AMX-BF16, AVX-512BW) and an OS that allows it; "
                   "this machine has not (see convexnn._core.amx_available())");
  }
  if (method == ProductMethod::Bf16) {
    CONVEXNN_CHECK((std::is_same_v<T, float>), "method 'bf16' computes in float32 only (this operator is float64)");
    CONVEXNN_CHECK(detail::bf16_available(),
                   "method 'bf16' needs AVX-512 BF16 (AVX512_BF16 with AVX512F/BW/VL) and an OS that saves the zmm "
                   "state; "
                       << (std::getenv("CONVEXNN_BF16") && std::string(std::getenv("CONVEXNN_BF16")) == "0"
                               ? "the environment variable CONVEXNN_BF16=0 turned it off"
                               : "this CPU has not")
                       << " (see convexnn._core.bf16_available())");
  }
  method_ = method;
  cache_row_bits();
}

template <class T>
void MaskedOperator<T>::check_subset(BlockSubset subset, const char* name) const {
  if (subset.all()) return;
  CONVEXNN_CHECK(subset.index != nullptr || subset.size == 0, name << ": null index array");
  const index_t P = masks_.n_patterns;
  for (index_t k = 0; k < subset.size; ++k)
    CONVEXNN_CHECK(subset.index[k] >= 0 && subset.index[k] < P,
                   name << "[" << k << "] = " << subset.index[k] << " is out of range [0, " << P << ")");
}

bool amx_available() { return detail::amx_available(); }
bool bf16_available() { return detail::bf16_available(); }

template <class T>
ProductMethod MaskedOperator<T>::resolved_method(index_t c, index_t n_blocks) const {
  if (method_ != ProductMethod::Auto) return method_;
  return detail::choose_method({X_.rows, X_.cols, c, n_blocks, sizeof(T)});
}


namespace {

// One product method's kernels: "can I run this shape?" (choose_method.hpp) and "run it" (forward and adjoint).
template <class T>
struct ProductKernels {
  bool (*can_implement)(const detail::ProductShape&);
  void (*forward)(const MatrixView<T>&, const PackedMasks&, BlockSubset, const T*, index_t, T*, const Word* row_bits);
  void (*adjoint)(const MatrixView<T>&, const PackedMasks&, BlockSubset, const T*, index_t, T*);
};

template <class T>
ProductKernels<T> kernels_of(ProductMethod method) {
  using View = const MatrixView<T>&;
  if constexpr (std::is_same_v<T, float>) {  // the bf16 methods compute in float32 only
    if (method == ProductMethod::Amx) return {&detail::amx_can_implement, &detail::amx_forward, &detail::amx_adjoint};
    if (method == ProductMethod::Bf16)
      return {&detail::bf16_can_implement, &detail::bf16_forward, &detail::bf16_adjoint};
  }
  if (method == ProductMethod::Tables)
    return {&detail::tables_can_implement,
            [](View X, const PackedMasks& m, BlockSubset s, const T* U, index_t c, T* z, const Word* bits) {
              detail::table_forward(detail::masked_simd(), X, m, s, U, c, z, bits);
            },
            [](View X, const PackedMasks& m, BlockSubset s, const T* R, index_t c, T* G) {
              detail::table_adjoint(detail::masked_simd(), X, m, s, R, c, G);
            }};
  CONVEXNN_CHECK(method == ProductMethod::Gemm, "masked operator: no " << (sizeof(T) == 8 ? "float64" : "float32")
                                                                       << " kernels for this product method");
  return {&detail::gemm_can_implement,
          [](View X, const PackedMasks& m, BlockSubset s, const T* U, index_t c, T* z, const Word*) {
            detail::gemm_forward(X, m, s, U, c, z);
          },
          &detail::gemm_adjoint<T>};
}

// The kernels of `method` (resolved, never Auto), checked to run `shape`.
template <class T>
ProductKernels<T> product_kernels(ProductMethod method, const detail::ProductShape& shape) {
  const ProductKernels<T> kern = kernels_of<T>(method);
  CONVEXNN_CHECK(kern.can_implement(shape), "masked operator: the product method cannot run this shape on this CPU");
  return kern;
}

}  // namespace

template <class T>
void MaskedOperator<T>::forward(const T* U, index_t c, T* z, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "forward: c must be >= 1, got " << c);
  check_subset(subset, "subset");
  const index_t n = X_.rows, d = X_.cols, S = subset.count(masks_.n_patterns);
  if (n == 0) return;
  if (S == 0 || d == 0) {
    std::fill(z, z + n * c, T(0));
    return;
  }
  const detail::ProductShape shape{n, d, c, S, sizeof(T)};
  const ProductKernels<T> kern = product_kernels<T>(resolved_method(c, S), shape);
  kern.forward(X_, masks_, subset, U, c, z, row_bits_ ? row_bits_->data() : nullptr);
}

template <class T>
void MaskedOperator<T>::adjoint(const T* R, index_t c, T* G, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "adjoint: c must be >= 1, got " << c);
  check_subset(subset, "subset");
  const index_t n = X_.rows, d = X_.cols, S = subset.count(masks_.n_patterns);
  if (S == 0 || d == 0) return;
  if (n == 0) {
    std::fill(G, G + S * d * c, T(0));
    return;
  }
  const detail::ProductShape shape{n, d, c, S, sizeof(T)};
  const ProductKernels<T> kern = product_kernels<T>(resolved_method(c, S), shape);
  kern.adjoint(X_, masks_, subset, R, c, G);
}

template <class T>
void MaskedOperator<T>::cone_violation_gemm(const T* V, index_t c, T* out, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "cone_violation: c must be >= 1, got " << c);
  check_subset(subset, "subset");
  const index_t n = X_.rows, d = X_.cols, S = subset.count(masks_.n_patterns);
  std::fill(out, out + S * c, T(0));
  if (S == 0 || n == 0 || d == 0) return;
  detail::gemm_cone_violation(X_, masks_, subset, V, c, out);
}

template <class T>
void MaskedOperator<T>::block_gram(index_t i, T* gram) const {
  CONVEXNN_CHECK(i >= 0 && i < masks_.n_patterns,
                 "block index i = " << i << " is out of range [0, " << masks_.n_patterns << ")");
  const index_t n = X_.rows, d = X_.cols;
  std::fill(gram, gram + d * d, T(0));
  if (n == 0 || d == 0) return;
  // Gather the active rows of X, a tile at a time, and accumulate tile^T tile by GEMM.
  const index_t nb = std::min(kRowTile, round_up(n, kWordBits));
  std::vector<T> tile = make_buffer<T>(nb * d, "Gram row tile");
  const Word* m = masks_.mask(i);
  index_t filled = 0;
  auto flush = [&]() {
    if (filled == 0) return;
    blas::gemm<T>(blas::Layout::RowMajor, blas::Op::Trans, blas::Op::NoTrans, d, d, filled, T(1), tile.data(), d,
                  tile.data(), d, T(1), gram, d);
    filled = 0;
  };
  for (index_t w = 0; w < masks_.words_per_pattern; ++w) {
    for (Word bits = m[w]; bits != 0; bits &= bits - 1) {
      const index_t k = w * kWordBits + __builtin_ctzll(bits);
      if (k >= n) break;
      T* dst = tile.data() + filled * d;
      for (index_t r = 0; r < d; ++r) dst[r] = X_(k, r);
      if (++filled == nb) flush();
    }
  }
  flush();
  // GEMM rounding can differ between (a, b) and (b, a): return an exactly symmetric matrix.
  for (index_t a = 0; a < d; ++a)
    for (index_t b = a + 1; b < d; ++b) gram[b * d + a] = gram[a * d + b];
}

template <class T>
void MaskedOperator<T>::block_lipschitz(T* out, BlockSubset subset, LipschitzMethod method) const {
  check_subset(subset, "subset");
  const index_t n = X_.rows, d = X_.cols, S = subset.count(masks_.n_patterns);
  if (S == 0) return;
  if (n == 0 || d == 0) {
    std::fill(out, out + S, T(0));
    return;
  }
  if (method == LipschitzMethod::Auto) {
    const double gram_cost = double(n) * d * d + 9.0 * double(d) * d * d;
    const double power_cost = kNominalPowerIterations * 4.0 * double(n) * d;
    method = gram_cost <= power_cost ? LipschitzMethod::Gram : LipschitzMethod::PowerIteration;
  }
  if (method == LipschitzMethod::Gram)
    lipschitz_gram(out, subset);
  else
    lipschitz_power(out, subset);
}

template <class T>
void MaskedOperator<T>::lipschitz_gram(T* out, BlockSubset subset) const {
  const index_t d = X_.cols, S = subset.count(masks_.n_patterns);
  const bool parallel = S > 1 && omp_get_max_threads() > 1;
  blas::SingleThreadedScope blas_guard;
  ParallelErrors errors;
  std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (index_t k = 0; k < S; ++k) {
    errors.run([&] {
      T* gram = scratch<T, 0>(d * d);
      T* w = scratch<T, 1>(d);
      block_gram(subset.block(k), gram);
      if (blas::syev<T>(d, gram, w) != 0) failed.store(true);
      out[k] = std::max(w[d - 1], T(0));
    });
  }
  errors.rethrow();
  if (failed) throw std::runtime_error("block_lipschitz: LAPACK syev did not converge");
}

template <class T>
void MaskedOperator<T>::lipschitz_power(T* out, BlockSubset subset) const {
  const index_t d = X_.cols, S = subset.count(masks_.n_patterns);
  // `active` lists the positions (into out) of blocks still iterating; V/W hold their vectors compacted.
  std::vector<index_t> active(S), blocks(S);
  for (index_t k = 0; k < S; ++k) active[k] = k, blocks[k] = subset.block(k);
  std::vector<T> V = make_buffer<T>(S * d, "power iteration vectors"),
                 W = make_buffer<T>(S * d, "power iteration vectors");
  std::vector<T> estimate(S, T(0));
  for (index_t k = 0; k < S; ++k) {
    T* v = V.data() + k * d;
    double s = 0;
    for (index_t r = 0; r < d; ++r) v[r] = static_cast<T>(hash_uniform(blocks[k], r)), s += double(v[r]) * v[r];
    const T inv = static_cast<T>(1.0 / std::sqrt(s));
    for (index_t r = 0; r < d; ++r) v[r] *= inv;
  }
  const T tol = power_tolerance<T>();
  for (int it = 0; it < kPowerMaxIterations && !active.empty(); ++it) {
    const index_t A = static_cast<index_t>(active.size());
    std::vector<index_t> idx(A);
    for (index_t a = 0; a < A; ++a) idx[a] = blocks[active[a]];
    detail::gemm_gram_apply(X_, masks_, BlockSubset{idx.data(), A}, V.data(), W.data());
    index_t kept = 0;
    for (index_t a = 0; a < A; ++a) {
      const T* w = W.data() + a * d;
      // ||A v|| for a unit v lies between the Rayleigh quotient and lambda_max: the better lower bound.
      double s = 0;
      for (index_t r = 0; r < d; ++r) s += double(w[r]) * w[r];
      const T nrm = static_cast<T>(std::sqrt(s));
      const index_t pos = active[a];
      const T prev = estimate[pos];
      estimate[pos] = nrm;
      const bool done = nrm == T(0) || (it > 0 && std::abs(nrm - prev) <= tol * nrm);
      if (done) continue;
      T* v = V.data() + kept * d;
      for (index_t r = 0; r < d; ++r) v[r] = w[r] / nrm;
      active[kept++] = pos;
    }
    active.resize(kept);
  }
  std::copy(estimate.begin(), estimate.end(), out);
}

template class MaskedOperator<float>;
template class MaskedOperator<double>;
template void block_norms<float>(const float*, index_t, index_t, index_t, bool, float*);
template void block_norms<double>(const double*, index_t, index_t, index_t, bool, double*);

}  // namespace convexnn
