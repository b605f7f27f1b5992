// The one abstract operator every solver is written against (adelie-style): the block operator
//   A(U) = sum_i D_i X U_i,   U = (U_1, ..., U_P),  U_i in R^{d x c},
// and its adjoint. Implementations: MaskedOperator (bit-packed masks, CPU, BLAS tiles), a dense
// explicit-blocks operator for tests, and the CUDA operator in cuda/.
#pragma once

#include <cmath>
#include <vector>

#include "convexnn/core/common.hpp"
#include "convexnn/problem/prox.hpp"

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

  // The adjoint fused with the group dual norms that beta_max and every certificate need, in double:
  //   groups_neuron = false: out[k * c + j] = ||(A_{s_k}^T R)[:, j]||_2   (|S| x c)
  //   groups_neuron = true:  out[k]         = ||A_{s_k}^T R||_F            (|S|)
  // The default runs adjoint() and then the norms (bitwise what a caller doing both gets); a device or a
  // remote operator can override it to return |S| * g numbers instead of |S| * d * c.
  virtual void adjoint_dual_norms(const T* R, index_t c, bool groups_neuron, double* out,
                                  BlockSubset subset = {}) const {
    const index_t S = subset.count(n_blocks()), d = block_dim();
    std::vector<T> G(static_cast<std::size_t>(S * d * c));
    if (S > 0) adjoint(R, c, G.data(), subset);
    for (index_t k = 0; k < S; ++k) {
      const T* g = G.data() + k * d * c;
      if (groups_neuron || c == 1) {
        out[groups_neuron ? k : k * c] = block_dual_norm(g, d, c, Groups::neuron);
        continue;
      }
      for (index_t j = 0; j < c; ++j) {
        double acc = 0.0;
        for (index_t r = 0; r < d; ++r) acc += static_cast<double>(g[r * c + j]) * static_cast<double>(g[r * c + j]);
        out[k * c + j] = std::sqrt(acc);
      }
    }
  }
};

}  // namespace convexnn
