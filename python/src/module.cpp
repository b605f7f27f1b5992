// The convexnn._core extension: thin bindings over the C++ core in cpp/.
#include <omp.h>

#include "bindings.hpp"
#include "convexnn/core/blas.hpp"

namespace py = pybind11;

namespace convexnn::python {

void bind_runtime(py::module_& m) {
  m.def(
      "get_num_threads", []() { return omp_get_max_threads(); }, "Number of threads the C++ core uses (OpenMP).");
  m.def(
      "set_num_threads",
      [](int n) {
        CONVEXNN_CHECK(n >= 1, "n_threads must be >= 1, got " << n);
        omp_set_num_threads(n);
      },
      py::arg("n_threads"), "Set the number of threads the C++ core uses.");
  m.def("blas_num_threads", &blas::get_num_threads, "Threads of the bundled OpenBLAS (scipy-openblas32).");
}

}  // namespace convexnn::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "convexnn C++ core (patterns, masked products, solvers)";
  m.attr("__version__") = CONVEXNN_VERSION;
  convexnn::python::bind_runtime(m);
  convexnn::python::bind_patterns(m);
  convexnn::python::bind_operators(m);
  convexnn::python::bind_oracle(m);
  convexnn::python::bind_losses(m);
  convexnn::python::bind_solvers(m);
  convexnn::python::bind_relu(m);
}
