// The choice of the product method of MaskedOperator (ProductMethod::Auto) in one place: every kernel
// answers "can I run this shape?" (can_implement) and choose_method holds every threshold of the automatic
// choice (the measurements behind them: docs/tuning.md).
#pragma once

#include <cstddef>

#include "convexnn/operator/masked_operator.hpp"

namespace convexnn::detail {

// The shape of one product: n rows, blocks of dimension d, c columns, n_blocks blocks, elements of
// elem_bytes bytes (4: float32, 8: float64).
struct ProductShape {
  index_t n = 0, d = 0, c = 1, n_blocks = 0;
  std::size_t elem_bytes = sizeof(double);
};

bool gemm_can_implement(const ProductShape& shape);    // every shape
bool tables_can_implement(const ProductShape& shape);  // every shape (the tables are exact for any size)
bool amx_can_implement(const ProductShape& shape);     // float32 on a CPU and OS with AMX (amx_available)
bool bf16_can_implement(const ProductShape& shape);    // float32 on a CPU and OS with AVX512_BF16 (bf16_available)

// The method ProductMethod::Auto runs for `shape` (never Auto): the tables where they beat the GEMM tiles
// (enough patterns to amortise the tables, short feature vectors d * c, forward tables of bounded size), and
// AMX instead of the tables in float32 from 128 patterns on for d * c <= 128 where the CPU has it.
ProductMethod choose_method(const ProductShape& shape);

}  // namespace convexnn::detail
