// The operator of the exact (cone-constrained) ReLU program (Pilanci & Ergen, "Neural Networks are Convex
// Regularizers", ICML 2020, eq. (3)-(4)): a BlockOperator that also exposes the rows of its cone constraints
// (2 D_i - I) X v >= 0, i.e. the data X (m x d) and the pattern set (m rows, pattern i constrains block i), and
// the cone violation of coefficient blocks. Implementations: MaskedOperator (A_i = D_i X on the same rows,
// SIMD violation) and CompositeConeOperator (any BlockOperator with rows and patterns beside it, e.g. a pooled
// convolutional operator written in Python). docs/architecture.md, "The exact ReLU solver".
#pragma once

#include "convexnn/operator/operator.hpp"
#include "convexnn/patterns/pattern_set.hpp"

namespace convexnn {

template <class T>
class ConeOperator : public BlockOperator<T> {
 public:
  // X (m x d, d = block_dim()): the rows of the cone constraints.
  virtual MatrixView<T> constraint_rows() const = 0;
  // The patterns on those m rows, one per block. Throws std::invalid_argument when the operator has none
  // (a MaskedOperator built from packed or dense masks).
  virtual const PatternSet& patterns() const = 0;
  // True when the outputs are the constraint rows and A_i = D_i X (m = n): the exact solver then forms the
  // ray-Newton design from X and the masks; false e.g. for a pooled patch operator (n images, m = n K rows).
  virtual bool masked_outputs() const = 0;

  // The unscaled cone violation of every column, in double:
  //   out[k * c + j] = max(+0, max_rows -((2 D_{s_k} - I) X V_k)[row, j])   (|S| x c), V (|S| x d x c)
  // Each row product x_r^T v is accumulated in double term by term in the column order of X (mul, then add:
  // never fused, never by BLAS), so every implementation returns the same bits; NaN rows are ignored.
  // The default loops over the rows and patterns; MaskedOperator overrides it with a SIMD kernel.
  virtual void cone_violation(const T* V, index_t c, double* out, BlockSubset subset = {}) const;
};

// A ConeOperator from any BlockOperator `op` (n outputs, P blocks of dimension d) and the constraint rows X
// (m x d) with `patterns` (m rows, P patterns). Non-owning: op, X and patterns must outlive it. The outputs
// count as masked rows (masked_outputs) exactly when m = n: the caller asserts that op is then D_i X.
template <class T>
class CompositeConeOperator final : public ConeOperator<T> {
 public:
  CompositeConeOperator(const BlockOperator<T>& op, MatrixView<T> X, const PatternSet& patterns);

  index_t n_samples() const override { return op_.n_samples(); }
  index_t block_dim() const override { return op_.block_dim(); }
  index_t n_blocks() const override { return op_.n_blocks(); }
  void forward(const T* U, index_t c, T* z, BlockSubset subset = {}) const override {
    op_.forward(U, c, z, subset);
  }
  void adjoint(const T* R, index_t c, T* G, BlockSubset subset = {}) const override {
    op_.adjoint(R, c, G, subset);
  }
  void block_gram(index_t i, T* gram) const override { op_.block_gram(i, gram); }
  void adjoint_dual_norms(const T* R, index_t c, bool groups_neuron, double* out,
                          BlockSubset subset = {}) const override {
    op_.adjoint_dual_norms(R, c, groups_neuron, out, subset);
  }

  MatrixView<T> constraint_rows() const override { return X_; }
  const PatternSet& patterns() const override { return pats_; }
  bool masked_outputs() const override { return X_.rows == op_.n_samples(); }
  const BlockOperator<T>& base() const { return op_; }

 private:
  const BlockOperator<T>& op_;
  MatrixView<T> X_;
  const PatternSet& pats_;
};

}  // namespace convexnn
