// Losses for the Python layer (Network.objective, cutting planes), so the math lives once, in C++.
#include <pybind11/numpy.h>

#include <vector>

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

// sample_weight: None -> empty, else the (n,) weights >= 0.
std::vector<double> weights(const py::object& w, index_t n) {
  if (w.is_none()) return {};
  const Array a = Array::ensure(w);
  CONVEXNN_CHECK(a && a.ndim() == 1 && a.shape(0) == n, "sample_weight must be None or of shape (" << n << ",)");
  validate_weights(a.data(), n);
  return std::vector<double>(a.data(), a.data() + n);
}
const double* ptr(const std::vector<double>& w) { return w.empty() ? nullptr : w.data(); }

}  // namespace

void bind_losses(py::module_& m) {
  m.def(
      "loss_value",
      [](const Array& z, const Array& y, const std::string& loss, const py::object& sample_weight) {
        const Loss l = checked(z, y, loss, "z");
        const std::vector<double> w = weights(sample_weight, z.shape(0));
        return loss_value<double>(l, z.data(), y.data(), z.shape(0), z.shape(1), 0.0, ptr(w));
      },
      py::arg("z"), py::arg("y"), py::arg("loss"), py::arg("sample_weight") = py::none(),
      "L(z, y) summed over samples (no 1/n; sample_weight (n,): sum_k w_k l(z_k, y_k)); z, y: (n, c).");
  m.def(
      "loss_gradient",
      [](const Array& z, const Array& y, const std::string& loss, const py::object& sample_weight) {
        const Loss l = checked(z, y, loss, "z");
        const std::vector<double> w = weights(sample_weight, z.shape(0));
        py::array_t<double> grad({z.shape(0), z.shape(1)});
        loss_value_grad<double, double>(l, z.data(), y.data(), z.shape(0), z.shape(1), grad.mutable_data(), 0.0,
                                        ptr(w));
        return grad;
      },
      py::arg("z"), py::arg("y"), py::arg("loss"), py::arg("sample_weight") = py::none(),
      "grad_z L(z, y), shape (n, c) (hinge: the subgradient -y 1[y z < 1]).");
  m.def(
      "loss_conjugate",
      [](const Array& t, const Array& y, const std::string& loss, const py::object& sample_weight) {
        const Loss l = checked(t, y, loss, "t");
        const std::vector<double> w = weights(sample_weight, t.shape(0));
        return loss_conjugate(l, t.data(), y.data(), t.shape(0), t.shape(1), 0.0, ptr(w));
      },
      py::arg("t"), py::arg("y"), py::arg("loss"), py::arg("sample_weight") = py::none(),
      "Fenchel conjugate L*(t) = sup_z <t, z> - L(z, y) (+inf outside its domain); t, y: (n, c) float64; "
      "with sample_weight (n,) that of the weighted loss, sum_k w_k l*(t_k / w_k).");
}

}  // namespace convexnn::python
