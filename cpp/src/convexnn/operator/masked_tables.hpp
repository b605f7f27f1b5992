// Masked products by subset-sum tables: the "method of the Four Russians" for a 0/1 matrix times a
// real one. Private to cpp/src (MaskedOperator chooses between these and its GEMM tiles).
//
// The masks form an n x P matrix of bits, so both products multiply a bit matrix by a real one:
//   adjoint  G_i = sum_k  D_ik (x_k r_k^T)        bits of pattern i over the rows k
//   forward  V_k = sum_i  D_ik U_i,  z_k = V_k^T x_k   bits of row k over the patterns i
// Cut the summation index into groups of 4. For each group, the 16 sums of every subset of its 4 real
// vectors are tabulated once (15 vector additions); each output then adds ONE table entry per group, the
// one its 4 bits select. That is n/4 (adjoint) or P/4 (forward) vector additions per output instead of n
// or P multiply-adds: about 4x fewer operations than a GEMM, paid for by table memory (16 entries per 4
// vectors), which is why tables are built per row tile (adjoint) and read in cache-sized blocks (forward).
//
// Every output element is a sum in a fixed order (groups in order, each entry built in a fixed order),
// whatever the SIMD width or thread count: results are bitwise identical across kernel variants and
// thread counts, like the GEMM tiles (but not equal to them: the additions are grouped differently).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "convexnn/operator/masked_operator.hpp"

namespace convexnn::detail {

// The SIMD variant of the operator's kernels (mask kernels and tables), chosen by MaskedOperator from the CPU.
enum class SimdIsa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

// z (n x c, row-major) = sum_k D_{s_k} X U_k, U (|S| x d x c) C-contiguous; z overwritten. The forward
// reads each row's bits over the patterns: row_bits (from transpose_masks(masks)) when given and the
// subset is the whole set, else it transposes the bits of each row tile itself.
template <class T>
void table_forward(SimdIsa simd, const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* U,
                   index_t c, T* z, const std::uint64_t* row_bits = nullptr);

// The masks row-major: row k's bits over all patterns in words [k * W, (k + 1) * W), W = ceil(P / 64), bit
// i % 64 of word i / 64 = D_ik. row_bits_bytes is its size.
std::vector<std::uint64_t> transpose_masks(const PackedMasks& masks);
// Rows [r0, r0 + rows) (r0 a multiple of 64) of the masks of `subset`, row-major: row k's bits over the
// patterns s of the subset in out[(k - r0) * W .. + W), W = ceil(|S| / 64), bit s % 64 of word s / 64.
void transpose_mask_rows(const PackedMasks& masks, BlockSubset subset, index_t r0, index_t rows, std::uint64_t* out);
std::size_t row_bits_bytes(index_t n, index_t n_patterns);

// G_k (d x c) = X^T D_{s_k} R, R (n x c) row-major, G (|S| x d x c) C-contiguous, overwritten.
template <class T>
void table_adjoint(SimdIsa simd, const MatrixView<T>& X, const PackedMasks& masks, BlockSubset subset, const T* R,
                   index_t c, T* G);

// Bytes of the forward tables for this shape (the operator refuses sizes it cannot allocate).
std::size_t forward_table_bytes(index_t d, index_t c, index_t n_blocks, std::size_t elem_bytes);

// The last step of both forwards (tables and AMX): out[j] = x_k^T V_k[:, j] for j < c, V_k the (d x c)
// row-major sums of row k, in a fixed order (16 / 8 interleaved partial sums when c = 1 and X is C-ordered).
template <class T>
void row_outputs(const MatrixView<T>& X, index_t k, const T* v, index_t c, T* out);

// Tests only: out[b] bit j = in[j] bit b for a 64 x 64 bit matrix (in place).
void transpose_bits64(std::uint64_t* a);

}  // namespace convexnn::detail
