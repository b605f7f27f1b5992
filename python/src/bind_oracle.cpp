#include "bindings.hpp"

namespace convexnn::python {

// Filled in by the oracle work package.
void bind_oracle(pybind11::module_& /*m*/) {}

}  // namespace convexnn::python
