// Shared vocabulary of the convexnn C++ core: index type, precondition checks, strided matrix views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace convexnn {

using index_t = std::int64_t;

// Precondition failures throw std::invalid_argument (mapped to Python ValueError by the bindings);
// resource failures throw std::bad_alloc or std::length_error with the size that was asked for.
[[noreturn]] inline void fail_precondition(const std::string& what) { throw std::invalid_argument(what); }

#define CONVEXNN_CHECK(cond, msg)                              \
  do {                                                         \
    if (!(cond)) {                                             \
      std::ostringstream convexnn_check_os_;                   \
      convexnn_check_os_ << msg;                               \
      ::convexnn::fail_precondition(convexnn_check_os_.str()); \
    }                                                          \
  } while (0)

// A read-only view of a dense matrix with arbitrary element strides (in elements, not bytes).
// numpy C-ordered (n, d): row_stride = d, col_stride = 1; F-ordered: row_stride = 1, col_stride = n.
template <class T>
struct MatrixView {
  const T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t row_stride = 0;
  index_t col_stride = 1;

  const T& operator()(index_t i, index_t j) const { return data[i * row_stride + j * col_stride]; }
  bool row_major() const { return col_stride == 1 && row_stride >= cols; }
  bool col_major() const { return row_stride == 1 && col_stride >= rows; }
  // True when BLAS can read it directly (one of the two strides is 1).
  bool blas_compatible() const { return row_major() || col_major(); }

  static MatrixView c_order(const T* p, index_t r, index_t c) { return {p, r, c, c, 1}; }
  static MatrixView f_order(const T* p, index_t r, index_t c) { return {p, r, c, 1, r}; }
};

// A mutable dense row-major matrix view (outputs are always written C-ordered).
template <class T>
struct MutableMatrixView {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  T& operator()(index_t i, index_t j) const { return data[i * cols + j]; }
};

}  // namespace convexnn
