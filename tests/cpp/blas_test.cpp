#include <gtest/gtest.h>

#include <vector>

#include "convexnn/core/blas.hpp"

namespace cnn = convexnn;

TEST(Blas, GemmRowMajorMatchesLoop) {
  const cnn::index_t m = 3, n = 4, k = 5;
  std::vector<double> a(m * k), b(k * n), c(m * n, 0.0);
  for (cnn::index_t i = 0; i < m * k; ++i) a[i] = 0.1 * i - 0.7;
  for (cnn::index_t i = 0; i < k * n; ++i) b[i] = 0.05 * i * i - 0.3;
  cnn::blas::gemm<double>(cnn::blas::Layout::RowMajor, cnn::blas::Op::NoTrans, cnn::blas::Op::NoTrans, m, n, k, 1.0,
                          a.data(), k, b.data(), n, 0.0, c.data(), n);
  for (cnn::index_t i = 0; i < m; ++i)
    for (cnn::index_t j = 0; j < n; ++j) {
      double s = 0;
      for (cnn::index_t l = 0; l < k; ++l) s += a[i * k + l] * b[l * n + j];
      EXPECT_NEAR(c[i * n + j], s, 1e-12);
    }
}

TEST(Blas, SyevDiagonalisesSymmetricMatrix) {
  std::vector<double> a = {2.0, 1.0, 1.0, 2.0}, w(2);
  ASSERT_EQ(cnn::blas::syev<double>(2, a.data(), w.data()), 0);
  EXPECT_NEAR(w[0], 1.0, 1e-12);
  EXPECT_NEAR(w[1], 3.0, 1e-12);
}
