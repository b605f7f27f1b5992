#include "bindings.hpp"

namespace convexnn::python {

// Filled in by the operators work package.
void bind_operators(pybind11::module_& /*m*/) {}

}  // namespace convexnn::python
