// convexnn._cuda: the GPU backend. Imported lazily by convexnn only when device="cuda" is asked for.
#include <pybind11/pybind11.h>

#include "convexnn_cuda/runtime.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "convexnn CUDA backend";
  m.def("device_count", &convexnn::cuda::device_count, "Number of visible CUDA devices (0 without a driver).");
  m.def("device_name", &convexnn::cuda::device_name, py::arg("ordinal") = 0);
}
