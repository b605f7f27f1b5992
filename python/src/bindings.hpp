// One bind_* function per C++ concept; module.cpp calls them all. Bindings mirror the C++ classes 1:1.
#pragma once

#include <pybind11/pybind11.h>

namespace convexnn::python {

void bind_runtime(pybind11::module_& m);    // threads, BLAS info (module.cpp)
void bind_patterns(pybind11::module_& m);   // PatternSet, samplers, enumeration (bind_patterns.cpp)
void bind_operators(pybind11::module_& m);  // masked products (bind_operators.cpp)
void bind_oracle(pybind11::module_& m);     // per-pattern cone oracle and projection (bind_oracle.cpp)
void bind_solvers(pybind11::module_& m);    // gated / relu solvers (bind_solvers.cpp)
void bind_losses(pybind11::module_& m);     // loss values (bind_losses.cpp)
void bind_relu(pybind11::module_& m);       // exact ReLU solver (bind_relu.cpp)

}  // namespace convexnn::python
