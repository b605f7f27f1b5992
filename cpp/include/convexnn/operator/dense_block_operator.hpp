// A BlockOperator with explicit dense blocks A_i (n x d each): the reference implementation used to test
// solvers independently of the masked kernels, and fine for tiny problems. Memory is P*n*d elements.
//   forward:  z   = sum_k A_{s_k} U_k
//   adjoint:  G_k = A_{s_k}^T R
#pragma once

#include <vector>

#include "convexnn/operator/masked_operator.hpp"
#include "convexnn/operator/operator.hpp"

namespace convexnn {

template <class T>
class DenseBlockOperator final : public BlockOperator<T> {
 public:
  // blocks: (n_blocks, n, d) C-contiguous, taken by value (moved in).
  DenseBlockOperator(index_t n, index_t d, index_t n_blocks, std::vector<T> blocks);
  // A_i = D_i X for every pattern of `masks` (X copied into each block).
  static DenseBlockOperator from_masks(MatrixView<T> X, const PackedMasks& masks);

  index_t n_samples() const override { return n_; }
  index_t block_dim() const override { return d_; }
  index_t n_blocks() const override { return p_; }

  void forward(const T* U, index_t c, T* z, BlockSubset subset = {}) const override;
  void adjoint(const T* R, index_t c, T* G, BlockSubset subset = {}) const override;
  void block_gram(index_t i, T* gram) const override;
  // out[k] = ||A_{s_k}||_2^2 (Gram matrix + syev, exact).
  void block_lipschitz(T* out, BlockSubset subset = {}) const;

  const T* block(index_t i) const { return blocks_.data() + i * n_ * d_; }

 private:
  void check_subset(BlockSubset subset) const;

  index_t n_ = 0, d_ = 0, p_ = 0;
  std::vector<T> blocks_;
};

}  // namespace convexnn
