// Masked products in float32 on Intel AMX tiles (bf16 inputs, float32 accumulation). Private to cpp/src.
//
// The masks form a 0/1 matrix M (n x P), exact in bf16, so both products are matrix products with M:
//   forward  V = M U   (n x m, m = d c; V_k = sum_i D_ik U_i),   z_k = V_k^T x_k in float32
//   adjoint  G = M^T Phi (P x m),  Phi_k = x_k r_k^T
// The float32 operand (U or Phi) is split exactly into three bf16 terms a = a1 + a2 + a3 (each the next 8
// significant bits, by truncation), so every product term is exact and each tile product adds it into
// float32 accumulators: the result rounds like a float32 sum over the 3 n (adjoint) or 3 P (forward) terms,
// in a fixed order (bitwise identical for every thread count). AMX reads bf16 subnormals as zero: a
// term below ~1e-38 in magnitude is dropped, i.e. entries below ~1e-33 lose some of their low bits.
#pragma once

#include <cstdint>

#include "convexnn/operator/masked_operator.hpp"

namespace convexnn::detail {

// Whether this CPU has AMX-TILE, AMX-BF16 and AVX-512BW and the OS lets this process use the tiles
// (Linux arch_prctl(ARCH_REQ_XCOMP_PERM)); checked once. false on other systems, and when the environment
// variable CONVEXNN_AMX is "0" at the first call.
bool amx_available();

// z (n x c, row-major) = sum_k D_{s_k} X U_k, U (|S| x d x c) C-contiguous; z overwritten. row_bits as
// table_forward (the cached row-major masks, used only for the whole set; else transposed per tile).
void amx_forward(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* U, index_t c,
                 float* z, const std::uint64_t* row_bits);

// G_k (d x c) = X^T D_{s_k} R, R (n x c) row-major, G (|S| x d x c) C-contiguous, overwritten.
void amx_adjoint(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* R, index_t c,
                 float* G);

}  // namespace convexnn::detail
