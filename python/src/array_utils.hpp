// Helpers that turn numpy arrays into core views without copying when the layout allows.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "convexnn/core/common.hpp"

namespace convexnn::python {

namespace py = pybind11;

// A 2-D numpy array of dtype T seen as a MatrixView. C- and F-ordered arrays are viewed in place;
// any other stride pattern must have been made contiguous by the caller (the Python layer does that).
template <class T>
MatrixView<T> matrix_view(const py::array_t<T, 0>& a, const char* name) {
  CONVEXNN_CHECK(a.ndim() == 2, name << " must be 2-D, got ndim = " << a.ndim());
  const auto item = static_cast<index_t>(sizeof(T));
  const index_t rs = a.strides(0) / item;
  const index_t cs = a.strides(1) / item;
  CONVEXNN_CHECK(a.strides(0) % item == 0 && a.strides(1) % item == 0, name << " has unaligned strides");
  MatrixView<T> v{a.data(), a.shape(0), a.shape(1), rs, cs};
  CONVEXNN_CHECK(v.rows <= 1 || v.cols <= 1 || v.blas_compatible(),
                 name << " must be C- or F-contiguous (got strides " << rs << ", " << cs << ")");
  // Degenerate shapes: normalise so that BLAS sees a valid leading dimension.
  if (v.rows <= 1 || v.cols <= 1) {
    if (a.flags() & py::array::f_style) {
      v.row_stride = 1;
      v.col_stride = v.rows > 0 ? v.rows : 1;
    } else {
      v.row_stride = v.cols > 0 ? v.cols : 1;
      v.col_stride = 1;
    }
  }
  return v;
}

}  // namespace convexnn::python
