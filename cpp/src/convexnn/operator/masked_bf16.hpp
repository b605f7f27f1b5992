// Masked products in float32 on the AVX-512 BF16 dot-product instruction VDPBF16PS (_mm512_dpbf16_ps),
// the role AMX plays on CPUs that have AVX512_BF16 but no AMX. Private to cpp/src.
//
// As in masked_amx.hpp, both products multiply the 0/1 mask matrix M (n x P, exact in bf16):
//   forward  V = M U   (n x m, m = d c),  z_k = V_k^T x_k in float32
//   adjoint  G = M^T Phi (P x m),  Phi_k = x_k r_k^T
// The float32 operand (U or Phi) is split exactly into three bf16 terms a = hi + mid + lo by truncation
// (8 significant bits each), so every product term is exact. One VDPBF16PS adds, in each of 16 float32 lanes
// (features), the terms of two consecutive summation indices (patterns for the forward, rows for the adjoint),
// each masked by its bit: the hi terms go into one float32 accumulator, mid and lo into a second, and the two
// are added at the end of every block of 2048 summation indices, blocks joining a running sum in order. Every
// output is a sum in a fixed order: bitwise identical for every thread count. Like AMX, VDPBF16PS reads bf16
// subnormals as zero: a term below ~1e-38 in magnitude is dropped (entries below ~1e-33 lose low bits).
#pragma once

#include <cstdint>

#include "convexnn/operator/masked_operator.hpp"

namespace convexnn::detail {

// Whether this CPU and OS can run the kernels: CPUID AVX512F, AVX512BW, AVX512VL and AVX512_BF16, and the OS
// saving the zmm state (XCR0); checked once. false on other platforms or compilers without AVX512_BF16
// intrinsics, and when the environment variable CONVEXNN_BF16 is "0" at the first call.
bool bf16_available();

// z (n x c, row-major) = sum_k D_{s_k} X U_k, U (|S| x d x c) C-contiguous; z overwritten. row_bits as
// table_forward (the cached row-major masks, used only for the whole set; else transposed per row tile).
void bf16_forward(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* U, index_t c,
                  float* z, const std::uint64_t* row_bits);

// G_k (d x c) = X^T D_{s_k} R, R (n x c) row-major, G (|S| x d x c) C-contiguous, overwritten.
void bf16_adjoint(const MatrixView<float>& X, const PackedMasks& masks, BlockSubset subset, const float* R, index_t c,
                  float* G);

}  // namespace convexnn::detail
