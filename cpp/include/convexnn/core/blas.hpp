// Thin typed wrappers over the CBLAS/LAPACK entry points of scipy-openblas32 (symbols prefixed scipy_).
#pragma once

#include "convexnn/core/common.hpp"

namespace convexnn::blas {

enum class Layout { RowMajor, ColMajor };
enum class Op { NoTrans, Trans };

// C = alpha * op(A) * op(B) + beta * C with C (m x n) in `layout`, leading dimensions in elements.
template <class T>
void gemm(Layout layout, Op op_a, Op op_b, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
          const T* b, index_t ldb, T beta, T* c, index_t ldc);

// y = alpha * op(A) x + beta * y
template <class T>
void gemv(Layout layout, Op op_a, index_t m, index_t n, T alpha, const T* a, index_t lda, const T* x, index_t incx,
          T beta, T* y, index_t incy);

template <class T>
T nrm2(index_t n, const T* x, index_t incx);

template <class T>
T dot(index_t n, const T* x, index_t incx, const T* y, index_t incy);

// Symmetric eigen-decomposition of an (n x n) row-major matrix in place: eigenvalues ascending in w,
// eigenvectors in the columns of a (a[i*n + j] = entry i of eigenvector j). Returns the LAPACK info code (0 on
// success).
template <class T>
int syev(index_t n, T* a, T* w);

// Number of threads OpenBLAS itself uses. The core parallelises over tiles with OpenMP and calls
// single-threaded BLAS inside each tile, so it pins this to 1 around its own parallel regions.
int get_num_threads();
void set_num_threads(int n);

// Pins OpenBLAS to one thread for the lifetime of the scope and restores the previous count afterwards, so
// the thread count of a call is the OpenMP one alone (the core parallelises over tiles / patterns and calls
// BLAS inside). scipy-openblas32 exports no per-thread setting, so this is process-wide; inside a caller's
// parallel region it is left alone (changing it there would race with the caller's other threads, which
// must have pinned it themselves).
class SingleThreadedScope {
 public:
  SingleThreadedScope();
  ~SingleThreadedScope();
  SingleThreadedScope(const SingleThreadedScope&) = delete;
  SingleThreadedScope& operator=(const SingleThreadedScope&) = delete;

 private:
  int previous_;
};

}  // namespace convexnn::blas
