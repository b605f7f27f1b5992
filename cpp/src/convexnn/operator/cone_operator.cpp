// ConeOperator's default cone violation (rows and patterns, one row at a time) and CompositeConeOperator.
// Compiled without floating-point contraction (CMakeLists.txt): every x_r^T v is a mul then an add per term,
// the same bits as MaskedOperator's SIMD kernel (masked_violation.cpp).
#include "convexnn/operator/cone_operator.hpp"

#include <vector>

namespace convexnn {

template <class T>
void ConeOperator<T>::cone_violation(const T* V, index_t c, double* out, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "cone_violation: c must be >= 1, got " << c);
  const MatrixView<T> X = constraint_rows();
  const PatternSet& pats = patterns();
  const index_t d = X.cols, P = this->n_blocks(), S = subset.count(P);
  std::vector<double> col(static_cast<std::size_t>(d));
  for (index_t k = 0; k < S; ++k) {
    const index_t i = subset.block(k);
    CONVEXNN_CHECK(i >= 0 && i < P, "subset: block index " << i << " is out of range [0, " << P << ")");
    const PatternSet::Word* mask = pats.mask(i);
    for (index_t j = 0; j < c; ++j) {
      for (index_t r = 0; r < d; ++r) col[r] = static_cast<double>(V[(k * d + r) * c + j]);
      double v = 0.0;
      for (index_t row = 0; row < X.rows; ++row) {
        double xv = 0.0;
        for (index_t r = 0; r < d; ++r) xv += static_cast<double>(X(row, r)) * col[r];
        const bool on = (mask[row / PatternSet::kWordBits] >> (row % PatternSet::kWordBits)) & 1U;
        const double cand = on ? -xv : xv;
        v = cand > v ? cand : v;
      }
      out[k * c + j] = v;
    }
  }
}

template <class T>
CompositeConeOperator<T>::CompositeConeOperator(const BlockOperator<T>& op, MatrixView<T> X,
                                                const PatternSet& patterns)
    : op_(op), X_(X), pats_(patterns) {
  CONVEXNN_CHECK(X.cols == op.block_dim(),
                 "X has " << X.cols << " columns but the operator's blocks have dimension " << op.block_dim());
  CONVEXNN_CHECK(patterns.n_samples() == X.rows && patterns.dim() == X.cols && patterns.n_patterns() == op.n_blocks(),
                 "patterns (" << patterns.n_samples() << " rows x " << patterns.n_patterns()
                              << " patterns) do not match the constraint rows X (" << X.rows
                              << " rows) and the operator's " << op.n_blocks() << " blocks");
}

template class ConeOperator<float>;
template class ConeOperator<double>;
template class CompositeConeOperator<float>;
template class CompositeConeOperator<double>;

}  // namespace convexnn
