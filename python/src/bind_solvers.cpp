#include "bindings.hpp"

namespace convexnn::python {

// Filled in by the solvers work package.
void bind_solvers(pybind11::module_& /*m*/) {}

}  // namespace convexnn::python
