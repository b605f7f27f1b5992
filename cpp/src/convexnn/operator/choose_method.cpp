// Every threshold of the automatic product-method choice (choose_method.hpp; measurements: docs/tuning.md).
#include "convexnn/operator/choose_method.hpp"

#include "convexnn/operator/masked_amx.hpp"
#include "convexnn/operator/masked_bf16.hpp"
#include "convexnn/operator/masked_tables.hpp"

namespace convexnn::detail {
namespace {

// The tables need enough patterns to amortise building them (GEMM wins below ~32 patterns in float64 and
// ~64 in float32, whose GEMM is twice as fast), and short feature vectors m = d * c (GEMM wins at m = 600).
constexpr index_t kMinPatternsForTablesF64 = 32;
constexpr index_t kMinPatternsForTablesF32 = 64;
constexpr index_t kMaxFeaturesForTables = 256;
constexpr std::size_t kMaxForwardTableBytes = std::size_t(64) << 20;
// Where the tables beat the GEMM tiles, AMX beats the tables from 128 patterns on for m = d c <= 128.
constexpr index_t kMinPatternsForAmx = 128;
constexpr index_t kMaxFeaturesForAmx = 128;

bool tables_preferred(const ProductShape& s) {
  const index_t min_patterns = s.elem_bytes <= sizeof(float) ? kMinPatternsForTablesF32 : kMinPatternsForTablesF64;
  if (s.n < 1 || s.d < 1 || s.n_blocks < min_patterns) return false;
  if (s.d * s.c > kMaxFeaturesForTables) return false;
  return forward_table_bytes(s.d, s.c, s.n_blocks, s.elem_bytes) <= kMaxForwardTableBytes;
}

}  // namespace

bool gemm_can_implement(const ProductShape&) { return true; }
bool tables_can_implement(const ProductShape&) { return true; }
bool amx_can_implement(const ProductShape& s) { return s.elem_bytes == sizeof(float) && amx_available(); }
bool bf16_can_implement(const ProductShape& s) { return s.elem_bytes == sizeof(float) && bf16_available(); }

ProductMethod choose_method(const ProductShape& s) {
  if (!tables_preferred(s)) return ProductMethod::Gemm;
  const bool amx = s.n_blocks >= kMinPatternsForAmx && s.d * s.c <= kMaxFeaturesForAmx && amx_can_implement(s);
  return amx ? ProductMethod::Amx : ProductMethod::Tables;
}

}  // namespace convexnn::detail
