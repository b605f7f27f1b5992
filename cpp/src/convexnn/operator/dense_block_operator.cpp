#include "convexnn/operator/dense_block_operator.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "convexnn/core/blas.hpp"

namespace convexnn {

template <class T>
DenseBlockOperator<T>::DenseBlockOperator(index_t n, index_t d, index_t n_blocks, std::vector<T> blocks)
    : n_(n), d_(d), p_(n_blocks), blocks_(std::move(blocks)) {
  CONVEXNN_CHECK(n >= 0 && d >= 0 && n_blocks >= 0,
                 "blocks must have a non-negative shape, got (" << n_blocks << ", " << n << ", " << d << ")");
  CONVEXNN_CHECK(static_cast<double>(n) * d * n_blocks == static_cast<double>(blocks_.size()),
                 "blocks: expected " << n_blocks << " x " << n << " x " << d << " elements, got " << blocks_.size());
}

template <class T>
DenseBlockOperator<T> DenseBlockOperator<T>::from_masks(MatrixView<T> X, const PackedMasks& masks) {
  CONVEXNN_CHECK(masks.n_samples == X.rows,
                 "patterns have n_samples = " << masks.n_samples << " but X has " << X.rows << " rows");
  const double elems = static_cast<double>(X.rows) * X.cols * masks.n_patterns;
  if (elems * sizeof(T) > static_cast<double>(std::numeric_limits<std::ptrdiff_t>::max() / 2))
    throw std::length_error("DenseBlockOperator: " + std::to_string(elems * sizeof(T)) + " bytes of blocks");
  std::vector<T> blocks(static_cast<std::size_t>(elems), T(0));
  for (index_t i = 0; i < masks.n_patterns; ++i) {
    T* A = blocks.data() + i * X.rows * X.cols;
    for (index_t k = 0; k < X.rows; ++k)
      if (masks.active(k, i))
        for (index_t r = 0; r < X.cols; ++r) A[k * X.cols + r] = X(k, r);
  }
  return DenseBlockOperator(X.rows, X.cols, masks.n_patterns, std::move(blocks));
}

template <class T>
void DenseBlockOperator<T>::check_subset(BlockSubset subset) const {
  if (subset.all()) return;
  for (index_t k = 0; k < subset.size; ++k)
    CONVEXNN_CHECK(subset.index[k] >= 0 && subset.index[k] < p_,
                   "subset[" << k << "] = " << subset.index[k] << " is out of range [0, " << p_ << ")");
}

template <class T>
void DenseBlockOperator<T>::forward(const T* U, index_t c, T* z, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "forward: c must be >= 1, got " << c);
  check_subset(subset);
  std::fill(z, z + n_ * c, T(0));
  const index_t S = subset.count(p_);
  for (index_t k = 0; k < S; ++k)
    blas::gemm<T>(blas::Layout::RowMajor, blas::Op::NoTrans, blas::Op::NoTrans, n_, c, d_, T(1), block(subset.block(k)),
                  std::max<index_t>(d_, 1), U + k * d_ * c, c, T(1), z, c);
}

template <class T>
void DenseBlockOperator<T>::adjoint(const T* R, index_t c, T* G, BlockSubset subset) const {
  CONVEXNN_CHECK(c >= 1, "adjoint: c must be >= 1, got " << c);
  check_subset(subset);
  const index_t S = subset.count(p_);
  for (index_t k = 0; k < S; ++k) {
    T* Gk = G + k * d_ * c;
    if (n_ == 0) {
      std::fill(Gk, Gk + d_ * c, T(0));
      continue;
    }
    blas::gemm<T>(blas::Layout::RowMajor, blas::Op::Trans, blas::Op::NoTrans, d_, c, n_, T(1), block(subset.block(k)),
                  std::max<index_t>(d_, 1), R, c, T(0), Gk, c);
  }
}

template <class T>
void DenseBlockOperator<T>::block_gram(index_t i, T* gram) const {
  CONVEXNN_CHECK(i >= 0 && i < p_, "block index i = " << i << " is out of range [0, " << p_ << ")");
  std::fill(gram, gram + d_ * d_, T(0));
  if (n_ == 0) return;
  blas::gemm<T>(blas::Layout::RowMajor, blas::Op::Trans, blas::Op::NoTrans, d_, d_, n_, T(1), block(i),
                std::max<index_t>(d_, 1), block(i), std::max<index_t>(d_, 1), T(0), gram, std::max<index_t>(d_, 1));
  for (index_t a = 0; a < d_; ++a)
    for (index_t b = a + 1; b < d_; ++b) gram[b * d_ + a] = gram[a * d_ + b];
}

template <class T>
void DenseBlockOperator<T>::block_lipschitz(T* out, BlockSubset subset) const {
  check_subset(subset);
  const index_t S = subset.count(p_);
  if (d_ == 0) {
    std::fill(out, out + S, T(0));
    return;
  }
  std::vector<T> gram(d_ * d_), w(d_);
  for (index_t k = 0; k < S; ++k) {
    block_gram(subset.block(k), gram.data());
    if (blas::syev<T>(d_, gram.data(), w.data()) != 0)
      throw std::runtime_error("block_lipschitz: LAPACK syev did not converge");
    out[k] = std::max(w[d_ - 1], T(0));
  }
}

template class DenseBlockOperator<float>;
template class DenseBlockOperator<double>;

}  // namespace convexnn
