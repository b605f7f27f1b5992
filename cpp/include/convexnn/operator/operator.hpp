// The one abstract operator every solver is written against (adelie-style): the block operator
//   A(U) = sum_i D_i X U_i,   U = (U_1, ..., U_P),  U_i in R^{d x c},
// and its adjoint. Implementations: MaskedOperator (bit-packed masks, CPU, BLAS tiles), a dense
// explicit-blocks operator for tests, and the CUDA operator in cuda/.
#pragma once

#include <vector>

#include "convexnn/common.hpp"

namespace convexnn {

// A subset of blocks (a working set). `size < 0` means "all blocks"; otherwise `index[0..size)` are
// block indices into the full set, and block arrays passed alongside have `size` blocks in that order.
struct BlockSubset {
  const index_t* index = nullptr;
  index_t size = -1;

  bool all() const { return size < 0; }
  index_t count(index_t n_blocks) const { return all() ? n_blocks : size; }
  index_t block(index_t k) const { return all() ? k : index[k]; }
  static BlockSubset of(const std::vector<index_t>& v) { return {v.data(), static_cast<index_t>(v.size())}; }
};

template <class T>
class BlockOperator {
 public:
  virtual ~BlockOperator() = default;

  virtual index_t n_samples() const = 0;  // n
  virtual index_t block_dim() const = 0;  // d (with the bias column when there is one)
  virtual index_t n_blocks() const = 0;   // P

  // z (n x c, row-major) = sum_{k} D_{s_k} X U_k, with U (|S| x d x c, C-contiguous).
  virtual void forward(const T* U, index_t c, T* z, BlockSubset subset = {}) const = 0;
  // G_k (d x c) = X^T D_{s_k} R for every block in the subset; R (n x c) row-major, G (|S| x d x c).
  virtual void adjoint(const T* R, index_t c, T* G, BlockSubset subset = {}) const = 0;
  // The d x d Gram matrix X^T D_i X of one block (row-major), e.g. for block Lipschitz constants.
  virtual void block_gram(index_t i, T* gram) const = 0;
};

}  // namespace convexnn
