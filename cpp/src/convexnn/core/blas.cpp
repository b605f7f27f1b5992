#include "convexnn/core/blas.hpp"

#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <limits>

namespace convexnn::blas {
namespace {

// scipy-openblas32 uses 32-bit BLAS integers: refuse sizes that do not fit instead of wrapping around.
blasint to_blasint(index_t v, const char* what) {
  CONVEXNN_CHECK(v >= 0 && v <= std::numeric_limits<blasint>::max(),
                 "BLAS dimension " << what << " = " << v << " does not fit the 32-bit BLAS integer");
  return static_cast<blasint>(v);
}
CBLAS_ORDER order(Layout l) { return l == Layout::RowMajor ? CblasRowMajor : CblasColMajor; }
CBLAS_TRANSPOSE trans(Op o) { return o == Op::NoTrans ? CblasNoTrans : CblasTrans; }

}  // namespace

template <>
void gemm<double>(Layout layout, Op op_a, Op op_b, index_t m, index_t n, index_t k, double alpha, const double* a,
                  index_t lda, const double* b, index_t ldb, double beta, double* c, index_t ldc) {
  if (m == 0 || n == 0) return;
  scipy_cblas_dgemm(order(layout), trans(op_a), trans(op_b), to_blasint(m, "m"), to_blasint(n, "n"), to_blasint(k, "k"),
                    alpha, a, to_blasint(lda, "lda"), b, to_blasint(ldb, "ldb"), beta, c, to_blasint(ldc, "ldc"));
}
template <>
void gemm<float>(Layout layout, Op op_a, Op op_b, index_t m, index_t n, index_t k, float alpha, const float* a,
                 index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc) {
  if (m == 0 || n == 0) return;
  scipy_cblas_sgemm(order(layout), trans(op_a), trans(op_b), to_blasint(m, "m"), to_blasint(n, "n"), to_blasint(k, "k"),
                    alpha, a, to_blasint(lda, "lda"), b, to_blasint(ldb, "ldb"), beta, c, to_blasint(ldc, "ldc"));
}

template <>
void gemv<double>(Layout layout, Op op_a, index_t m, index_t n, double alpha, const double* a, index_t lda,
                  const double* x, index_t incx, double beta, double* y, index_t incy) {
  scipy_cblas_dgemv(order(layout), trans(op_a), to_blasint(m, "m"), to_blasint(n, "n"), alpha, a,
                    to_blasint(lda, "lda"), x, static_cast<blasint>(incx), beta, y, static_cast<blasint>(incy));
}
template <>
void gemv<float>(Layout layout, Op op_a, index_t m, index_t n, float alpha, const float* a, index_t lda, const float* x,
                 index_t incx, float beta, float* y, index_t incy) {
  scipy_cblas_sgemv(order(layout), trans(op_a), to_blasint(m, "m"), to_blasint(n, "n"), alpha, a,
                    to_blasint(lda, "lda"), x, static_cast<blasint>(incx), beta, y, static_cast<blasint>(incy));
}

template <>
double nrm2<double>(index_t n, const double* x, index_t incx) {
  return scipy_cblas_dnrm2(to_blasint(n, "n"), x, static_cast<blasint>(incx));
}
template <>
float nrm2<float>(index_t n, const float* x, index_t incx) {
  return scipy_cblas_snrm2(to_blasint(n, "n"), x, static_cast<blasint>(incx));
}
template <>
double dot<double>(index_t n, const double* x, index_t incx, const double* y, index_t incy) {
  return scipy_cblas_ddot(to_blasint(n, "n"), x, static_cast<blasint>(incx), y, static_cast<blasint>(incy));
}
template <>
float dot<float>(index_t n, const float* x, index_t incx, const float* y, index_t incy) {
  return scipy_cblas_sdot(to_blasint(n, "n"), x, static_cast<blasint>(incx), y, static_cast<blasint>(incy));
}

template <>
int syev<double>(index_t n, double* a, double* w) {
  return scipy_LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', to_blasint(n, "n"), a, to_blasint(n, "n"), w);
}
template <>
int syev<float>(index_t n, float* a, float* w) {
  return scipy_LAPACKE_ssyev(LAPACK_ROW_MAJOR, 'V', 'U', to_blasint(n, "n"), a, to_blasint(n, "n"), w);
}

int get_num_threads() { return scipy_openblas_get_num_threads(); }
void set_num_threads(int n) { scipy_openblas_set_num_threads(n); }

SingleThreadedScope::SingleThreadedScope() : previous_(omp_in_parallel() ? 1 : get_num_threads()) {
  if (previous_ != 1) set_num_threads(1);
}
SingleThreadedScope::~SingleThreadedScope() {
  if (previous_ != 1) set_num_threads(previous_);
}

}  // namespace convexnn::blas
