// Matrix-free masked products on the CPU, A(U) = sum_i D_i X U_i and its adjoint, bitwise identical for every
// thread count and SIMD variant. Tiling, threading and product methods: docs/architecture.md, "Product methods".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convexnn/operator/cone_operator.hpp"
#include "convexnn/operator/operator.hpp"
#include "convexnn/patterns/pattern_set.hpp"

namespace convexnn {

// A non-owning view of bit-packed masks in the PatternSet layout: pattern i owns words
// [i*words_per_pattern, (i+1)*words_per_pattern), bit (k % 64) of word (k / 64) is mask_i[k], bits past
// n_samples are zero.
struct PackedMasks {
  using Word = std::uint64_t;
  static constexpr index_t kWordBits = 64;

  const Word* words = nullptr;
  index_t n_samples = 0;
  index_t n_patterns = 0;
  index_t words_per_pattern = 0;

  const Word* mask(index_t i) const { return words + i * words_per_pattern; }
  bool active(index_t k, index_t i) const { return (mask(i)[k / kWordBits] >> (k % kWordBits)) & 1U; }

  static index_t words_for(index_t n) { return (n + kWordBits - 1) / kWordBits; }
  static PackedMasks of(const PatternSet& patterns) {
    return {patterns.words().data(), patterns.n_samples(), patterns.n_patterns(), patterns.words_per_pattern()};
  }
};

// Packs a dense 0/1 mask matrix (n x P, element (k, i) at dense[k*row_stride + i*col_stride], nonzero =
// active) into the PackedMasks word layout (P * ceil(n/64) words, bits past n zero).
std::vector<std::uint64_t> pack_masks(const std::uint8_t* dense, index_t n, index_t n_patterns, index_t row_stride,
                                      index_t col_stride);

// How forward and adjoint compute their products (both are exact up to rounding; see bench/RESULTS.md).
enum class ProductMethod {
  Auto,    // choose_method (choose_method.hpp): Tables when the shape favours them (enough patterns,
           // moderate d * c), there Amx instead in float32 where the CPU has it, else Gemm
  Gemm,    // row tiles of X times coefficient blocks by BLAS GEMM, masks in a SIMD epilogue/prologue
  Tables,  // subset-sum tables over groups of 4 rows / 4 patterns (masked_tables.cpp): ~4x fewer operations
  Amx,     // float32 only: the masks as a bf16 0/1 matrix on Intel AMX tiles, the float32 operand split
           // exactly into three bf16 terms (masked_amx.cpp); needs amx_available()
  Bf16,    // float32 only: the same exact bf16 split on the AVX-512 BF16 dot product VDPBF16PS
           // (masked_bf16.cpp), for CPUs without AMX; needs bf16_available()
};

// Whether this CPU and OS can run ProductMethod::Amx (AMX-TILE, AMX-BF16, AVX-512BW, Linux tile permission).
bool amx_available();
// Whether this CPU and OS can run ProductMethod::Bf16 (AVX512F/BW/VL and AVX512_BF16, zmm state enabled).
bool bf16_available();

// How block_lipschitz computes ||D_i X||_2^2 = lambda_max(X^T D_i X).
enum class LipschitzMethod {
  Auto,            // Gram when it is cheaper than kNominalPowerIterations power steps (small d), else Power
  Gram,            // X^T D_i X by GEMM on the active rows, then the top eigenvalue by LAPACK syev: exact
  PowerIteration,  // batched power iteration on all blocks with the tiled operator: a Rayleigh quotient,
                   // i.e. a LOWER estimate converged to a relative change <= power_tolerance<T>()
};

template <class T>
class MaskedOperator final : public ConeOperator<T> {
 public:
  using Word = PackedMasks::Word;

  // Non-owning: X and `patterns` must outlive the operator (the Python binding keeps both alive). Only an
  // operator built from a PatternSet has patterns() (the exact solver's cone projections need its set).
  MaskedOperator(MatrixView<T> X, const PatternSet& patterns);
  MaskedOperator(MatrixView<T> X, PackedMasks masks);
  // Owning the packed words (e.g. from pack_masks); X is still only viewed.
  MaskedOperator(MatrixView<T> X, std::vector<Word> words, index_t n_patterns);

  index_t n_samples() const override { return X_.rows; }
  index_t block_dim() const override { return X_.cols; }
  index_t n_blocks() const override { return masks_.n_patterns; }

  // z (n x c, row-major) = sum_k D_{s_k} X U_k; U (|S| x d x c) C-contiguous. z is overwritten.
  void forward(const T* U, index_t c, T* z, BlockSubset subset = {}) const override;
  // G_k (d x c) = X^T D_{s_k} R for every block of the subset; R (n x c) row-major, G (|S| x d x c), overwritten.
  void adjoint(const T* R, index_t c, T* G, BlockSubset subset = {}) const override;
  // X^T D_i X (d x d, row-major). Single-threaded (one block); use block_lipschitz for all blocks at once.
  void block_gram(index_t i, T* gram) const override;

  // Cone-constraint violation of the exact ReLU program by GEMM tiles in T, never materialising
  // (2 D_i - I) X V_i: out[k, j] = max(0, max_rows ( -((2 D_{s_k} - I) X V_k)[row, j] )), V (|S| x d x c),
  // out (|S| x c). Fast; rounds like BLAS (Python's MaskedOperator.cone_violation).
  void cone_violation_gemm(const T* V, index_t c, T* out, BlockSubset subset = {}) const;

  // ConeOperator: the rows X, the PatternSet of the constructor (std::invalid_argument when built from packed
  // or dense masks), masked outputs, and the same violation accumulated in double in the default's order
  // (bitwise equal to ConeOperator's row loop) by a SIMD kernel (masked_violation.cpp).
  MatrixView<T> constraint_rows() const override { return X_; }
  const PatternSet& patterns() const override;
  bool masked_outputs() const override { return true; }
  void cone_violation(const T* V, index_t c, double* out, BlockSubset subset = {}) const override;

  // out[k] = ||D_{s_k} X||_2^2 (|S| values), the block Lipschitz constants of the squared loss.
  void block_lipschitz(T* out, BlockSubset subset = {}, LipschitzMethod method = LipschitzMethod::Auto) const;

  const MatrixView<T>& data() const { return X_; }
  const PackedMasks& masks() const { return masks_; }

  // The method forward/adjoint use (Auto by default). Not thread-safe against concurrent products.
  void set_product_method(ProductMethod method);
  ProductMethod product_method() const { return method_; }
  // The method a product with c columns over `n_blocks` blocks runs (never Auto).
  ProductMethod resolved_method(index_t c, index_t n_blocks) const;
  // Whether a product with c columns over `n_blocks` blocks runs on the tables (the resolved method).
  bool uses_tables(index_t c, index_t n_blocks) const { return resolved_method(c, n_blocks) == ProductMethod::Tables; }

 private:
  void check_subset(BlockSubset subset, const char* name) const;
  void lipschitz_gram(T* out, BlockSubset subset) const;
  void lipschitz_power(T* out, BlockSubset subset) const;
  // Caches the masks row-major (each row's bits over the patterns) for the full-set table / AMX forward,
  // when one of those would run on it and the copy is small (see kMaxRowBitsBytes in masked_operator.cpp).
  void cache_row_bits();

  MatrixView<T> X_;
  PackedMasks masks_;
  const PatternSet* pattern_set_ = nullptr;               // set only by the PatternSet constructor
  std::shared_ptr<const std::vector<Word>> owned_words_;  // set only by the owning constructor
  std::shared_ptr<const std::vector<Word>> row_bits_;     // the masks row-major, or null (cache_row_bits)
  ProductMethod method_ = ProductMethod::Auto;
};

// Relative change of the Rayleigh quotient at which LipschitzMethod::PowerIteration stops.
template <class T>
constexpr T power_tolerance() {
  return sizeof(T) == sizeof(float) ? T(1e-5) : T(1e-10);
}

// Group norms of coefficient blocks U (n_blocks x d x c, C-contiguous):
//   groups_neuron = false ("output"): out (n_blocks x c), out[i, j] = ||U_i[:, j]||_2
//   groups_neuron = true  ("neuron"): out (n_blocks),     out[i]    = ||U_i||_F
// Accumulated in double with scaling, so no overflow or underflow for finite inputs.
template <class T>
void block_norms(const T* U, index_t n_blocks, index_t d, index_t c, bool groups_neuron, T* out);

// The SIMD variant of the mask kernels ("avx512", "avx2" or "generic"), chosen once from the CPU.
std::string masked_kernel_isa();
// Tests only: force a variant ("avx512", "avx2", "generic", or "auto" to re-detect). Returns false (and
// changes nothing) when the CPU cannot run it. All variants give bitwise identical results.
bool force_masked_kernel_isa(const std::string& isa);

}  // namespace convexnn
