// Loss values for the Python layer (e.g. Network.objective), so the math lives once, in C++.
#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "convexnn/losses.hpp"

namespace py = pybind11;

namespace convexnn::python {

void bind_losses(py::module_& m) {
  m.def(
      "loss_value",
      [](const py::array_t<double, py::array::c_style | py::array::forcecast>& z,
         const py::array_t<double, py::array::c_style | py::array::forcecast>& y, const std::string& loss) {
        const Loss l = parse_loss(loss);
        CONVEXNN_CHECK(z.ndim() == 2, "z must be 2-D (n, c), got ndim = " << z.ndim());
        CONVEXNN_CHECK(y.ndim() == 2 && y.shape(0) == z.shape(0) && y.shape(1) == z.shape(1),
                       "y must have the shape of z (" << z.shape(0) << ", " << z.shape(1) << ")");
        validate_targets(l, y.data(), y.shape(0), y.shape(1));
        return loss_value<double>(l, z.data(), y.data(), z.shape(0), z.shape(1));
      },
      py::arg("z"), py::arg("y"), py::arg("loss"),
      "L(z, y) summed over samples (API.md scaling). z, y: (n, c) float64.");
  m.def(
      "loss_gradient",
      [](const py::array_t<double, py::array::c_style | py::array::forcecast>& z,
         const py::array_t<double, py::array::c_style | py::array::forcecast>& y, const std::string& loss) {
        const Loss l = parse_loss(loss);
        CONVEXNN_CHECK(z.ndim() == 2, "z must be 2-D (n, c), got ndim = " << z.ndim());
        CONVEXNN_CHECK(y.ndim() == 2 && y.shape(0) == z.shape(0) && y.shape(1) == z.shape(1),
                       "y must have the shape of z (" << z.shape(0) << ", " << z.shape(1) << ")");
        validate_targets(l, y.data(), y.shape(0), y.shape(1));
        py::array_t<double> grad({z.shape(0), z.shape(1)});
        loss_value_grad<double, double>(l, z.data(), y.data(), z.shape(0), z.shape(1), grad.mutable_data());
        return grad;
      },
      py::arg("z"), py::arg("y"), py::arg("loss"),
      "grad_z L(z, y), shape (n, c) (hinge: the subgradient -y 1[y z < 1]).");
  m.def(
      "loss_conjugate",
      [](const py::array_t<double, py::array::c_style | py::array::forcecast>& t,
         const py::array_t<double, py::array::c_style | py::array::forcecast>& y, const std::string& loss) {
        const Loss l = parse_loss(loss);
        CONVEXNN_CHECK(t.ndim() == 2, "t must be 2-D (n, c), got ndim = " << t.ndim());
        CONVEXNN_CHECK(y.ndim() == 2 && y.shape(0) == t.shape(0) && y.shape(1) == t.shape(1),
                       "y must have the shape of t (" << t.shape(0) << ", " << t.shape(1) << ")");
        validate_targets(l, y.data(), y.shape(0), y.shape(1));
        return loss_conjugate(l, t.data(), y.data(), t.shape(0), t.shape(1));
      },
      py::arg("t"), py::arg("y"), py::arg("loss"),
      "Fenchel conjugate L*(t) = sup_z <t, z> - L(z, y) (+inf outside its domain); t, y: (n, c) float64.");
}

}  // namespace convexnn::python
