// Bindings of the exact (cone-constrained) ReLU solver, relu_solver.hpp.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "array_utils.hpp"
#include "bindings.hpp"
#include "convexnn/relu_solver.hpp"
#include "progress.hpp"

namespace py = pybind11;

namespace convexnn::python {
namespace {

template <class T>
py::array_t<T> blocks_array(const std::vector<T>& v, index_t P, index_t d, index_t c) {
  py::array_t<T> out({P, d, c});
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

template <class T>
const T* optional_blocks(const py::object& obj, index_t P, index_t d, index_t c, const char* name,
                         py::array_t<T, py::array::c_style | py::array::forcecast>& holder) {
  if (obj.is_none()) return nullptr;
  holder = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
  CONVEXNN_CHECK(holder && holder.ndim() == 3 && holder.shape(0) == P && holder.shape(1) == d && holder.shape(2) == c,
                 name << " must have shape (" << P << ", " << d << ", " << c << ")");
  return holder.data();
}

template <class T>
py::dict solve_relu(const BlockOperator<T>& op, const py::array_t<T, 0>& X, const PatternSet& patterns,
                    const py::array_t<double, py::array::c_style | py::array::forcecast>& y, double beta,
                    const std::string& loss, double tol, index_t max_iter, double time_limit, index_t check_every,
                    const py::object& warm_V, const py::object& warm_W, bool verbose,
                    const BlockOperator<double>* certify_op, bool ray_newton) {
  const MatrixView<T> Xv = matrix_view<T>(X, "X");
  CONVEXNN_CHECK(y.ndim() == 2 && y.shape(0) == op.n_samples(),
                 "y must have shape (" << op.n_samples() << ", c), got ndim = " << y.ndim());
  const index_t c = y.shape(1), P = op.n_blocks(), d = op.block_dim();
  py::array_t<T, py::array::c_style | py::array::forcecast> hv, hw;
  const T* V0 = optional_blocks<T>(warm_V, P, d, c, "warm_start V", hv);
  const T* W0 = optional_blocks<T>(warm_W, P, d, c, "warm_start W", hw);
  CONVEXNN_CHECK((V0 == nullptr) == (W0 == nullptr), "warm_start needs both V and W");
  ReluSolver<T> solver(op, Xv, patterns, y.data(), c, parse_loss(loss), certify_op);
  ReluOptions options;
  options.tol = tol;
  options.max_iter = max_iter;
  options.time_limit = time_limit;
  options.check_every = check_every;
  options.ray_newton = ray_newton;
  std::shared_ptr<py::error_already_set> error;
  const std::string label = "relu";
  options.callback = progress_callback(verbose, py::none(), &error, &label);
  ReluResult<T> r;
  {
    py::gil_scoped_release release;
    r = solver.solve(beta, options, V0, W0);
  }
  if (error) throw *error;
  return py::dict(py::arg("V") = blocks_array(r.V, P, d, c), py::arg("W") = blocks_array(r.W, P, d, c),
                  py::arg("objective") = r.objective, py::arg("dual_objective") = r.dual_objective,
                  py::arg("gap") = r.gap, py::arg("kkt_residual") = r.kkt_residual,
                  py::arg("max_violation") = r.max_violation, py::arg("max_dual_constraint") = r.max_dual_constraint,
                  py::arg("n_iter") = r.n_iter, py::arg("status") = r.status, py::arg("time") = r.time,
                  py::arg("n_newton") = r.n_newton,
                  py::arg("solver") = ray_newton ? "fista-cone-prox+ray-newton" : "fista-cone-prox",
                  py::arg("n_active") = r.n_active,
                  py::arg("history") = history_to_dict(r.history));
}

template <class T>
void bind_relu_for(py::module_& m) {
  m.def("solve_relu", &solve_relu<T>, py::arg("op"), py::arg("X"), py::arg("patterns"), py::arg("y"),
        py::arg("beta"), py::arg("loss") = "squared", py::arg("tol") = 1e-6, py::arg("max_iter") = 10000,
        py::arg("time_limit") = std::numeric_limits<double>::infinity(), py::arg("check_every") = 5,
        py::arg("warm_V") = py::none(), py::arg("warm_W") = py::none(), py::arg("verbose") = false,
        py::arg("certify_op") = nullptr, py::arg("ray_newton") = true,
        "Exact ReLU program by FISTA with the exact cone-norm prox (relu_solver.hpp). y: (n, c) float64.\n"
        "certify_op: a BlockOperatorF64 with the same blocks, for float64 certificates of float32 iterations.\n"
        "ray_newton: Newton steps on the scales of the nonzero columns at the checks (relu_solver.hpp).\n"
        "Returns dict(V, W (P, d, c), objective, dual_objective, gap, kkt_residual, max_violation, status, ...).");
}

}  // namespace

void bind_relu(py::module_& m) {
  bind_relu_for<double>(m);
  bind_relu_for<float>(m);
}

}  // namespace convexnn::python
