#include "bindings.hpp"

namespace convexnn::python {

// Filled in by the patterns work package.
void bind_patterns(pybind11::module_& /*m*/) {}

}  // namespace convexnn::python
