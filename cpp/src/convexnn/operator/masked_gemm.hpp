// The GEMM-tile products of MaskedOperator (ProductMethod::Gemm; masked_gemm.cpp), private to cpp/src:
// row tiles of X times coefficient blocks by BLAS GEMM with the masks applied in SIMD epilogues (forward,
// cone violations) or prologues (adjoint), and the SIMD variant of those mask kernels, which the tables share.
// Every shape can run (gemm_can_implement in choose_method.hpp); results are bitwise identical for every
// thread count and SIMD variant.
#pragma once

#include "convexnn/operator/masked_operator.hpp"
#include "convexnn/operator/masked_tables.hpp"

namespace convexnn::detail {

// Rows per GEMM tile, also the Gram matrices' row tile (block_gram): see masked_gemm.cpp, docs/tuning.md.
#ifndef CONVEXNN_MASKED_ROW_TILE  // compile-time override for tuning runs only
#define CONVEXNN_MASKED_ROW_TILE 256
#endif
inline constexpr index_t kGemmRowTile = CONVEXNN_MASKED_ROW_TILE;

// The SIMD variant of the mask kernels and the tables (masked_kernel_isa, force_masked_kernel_isa).
SimdIsa masked_simd();

// z (n x c, row-major) = sum_k D_{s_k} X U_k, U (|S| x d x c) C-contiguous; z overwritten (n, |S|, d >= 1).
template <class T>
void gemm_forward(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* U, index_t c, T* z);
// G_k (d x c) = X^T D_{s_k} R, R (n x c) row-major, G (|S| x d x c), overwritten (n, |S|, d >= 1).
template <class T>
void gemm_adjoint(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* R, index_t c, T* G);
// MaskedOperator::cone_violation after its checks: out (|S| x c) zero on entry, n, |S|, d >= 1.
template <class T>
void gemm_cone_violation(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* V, index_t c,
                         T* out);
// W_k = X^T D_{s_k} X V_k per block, V and W (|S| x d) row-major (the power iteration's product).
template <class T>
void gemm_gram_apply(const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* V, T* W);

}  // namespace convexnn::detail
