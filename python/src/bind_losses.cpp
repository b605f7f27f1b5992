// Losses for the Python layer (Network.objective, cutting planes), so the math lives once, in C++.
#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "convexnn/problem/losses.hpp"

namespace py = pybind11;

namespace convexnn::python {
namespace {

using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

// Parses `loss` and checks that `a` (named `name`) is (n, c) and y has its shape and suits the loss.
Loss checked(const Array& a, const Array& y, const std::string& loss, const char* name) {
  const Loss l = parse_loss(loss);
  CONVEXNN_CHECK(a.ndim() == 2, name << " must be 2-D (n, c), got ndim = " << a.ndim());
  CONVEXNN_CHECK(y.ndim() == 2 && y.shape(0) == a.shape(0) && y.shape(1) == a.shape(1),
                 "y must have the shape of " << name << " (" << a.shape(0) << ", " << a.shape(1) << ")");
  validate_targets(l, y.data(), y.shape(0), y.shape(1));
  return l;
}

}  // namespace

void bind_losses(py::module_& m) {
  m.def(
      "loss_value",
      [](const Array& z, const Array& y, const std::string& loss) {
        const Loss l = checked(z, y, loss, "z");
        return loss_value<double>(l, z.data(), y.data(), z.shape(0), z.shape(1));
      },
      py::arg("z"), py::arg("y"), py::arg("loss"), "L(z, y) summed over samples (no 1/n); z, y: (n, c).");
  m.def(
      "loss_gradient",
      [](const Array& z, const Array& y, const std::string& loss) {
        const Loss l = checked(z, y, loss, "z");
        py::array_t<double> grad({z.shape(0), z.shape(1)});
        loss_value_grad<double, double>(l, z.data(), y.data(), z.shape(0), z.shape(1), grad.mutable_data());
        return grad;
      },
      py::arg("z"), py::arg("y"), py::arg("loss"),
      "grad_z L(z, y), shape (n, c) (hinge: the subgradient -y 1[y z < 1]).");
  m.def(
      "loss_conjugate",
      [](const Array& t, const Array& y, const std::string& loss) {
        const Loss l = checked(t, y, loss, "t");
        return loss_conjugate(l, t.data(), y.data(), t.shape(0), t.shape(1));
      },
      py::arg("t"), py::arg("y"), py::arg("loss"),
      "Fenchel conjugate L*(t) = sup_z <t, z> - L(z, y) (+inf outside its domain); t, y: (n, c) float64.");
}

}  // namespace convexnn::python
