// Bindings of the exact (cone-constrained) ReLU solver, relu_solver.hpp.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "array_utils.hpp"
#include "bindings.hpp"
#include "convexnn/solvers/relu_solver.hpp"
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
py::dict solve_relu(const ConeOperator<T>& op, const py::array_t<double, py::array::c_style | py::array::forcecast>& y,
                    double beta, const std::string& loss, double tol, index_t max_iter, double time_limit,
                    index_t check_every, const py::object& warm_V, const py::object& warm_W, bool verbose,
                    const BlockOperator<double>* certify_op, bool ray_newton, const py::object& callback,
                    bool precision_floor) {
  CONVEXNN_CHECK(y.ndim() == 2 && y.shape(0) == op.n_samples(),
                 "y must have shape (" << op.n_samples() << ", c), got ndim = " << y.ndim());
  const index_t c = y.shape(1), P = op.n_blocks(), d = op.block_dim();
  py::array_t<T, py::array::c_style | py::array::forcecast> hv, hw;
  const T* V0 = optional_blocks<T>(warm_V, P, d, c, "warm_start V", hv);
  const T* W0 = optional_blocks<T>(warm_W, P, d, c, "warm_start W", hw);
  CONVEXNN_CHECK((V0 == nullptr) == (W0 == nullptr), "warm_start needs both V and W");
  ReluSolver<T> solver(op, y.data(), c, parse_loss(loss), certify_op);
  ReluOptions options;
  options.tol = tol;
  options.max_iter = max_iter;
  options.time_limit = time_limit;
  options.check_every = check_every;
  options.ray_newton = ray_newton;
  options.precision_floor = precision_floor;
  std::shared_ptr<py::error_already_set> error;
  const std::string label = "relu";
  options.callback = progress_callback(verbose, callback, &error, &label);
  // Ctrl-C, also inside long iterations: stop with status "interrupted" (the KeyboardInterrupt is swallowed,
  // as by progress_callback).
  options.interrupt = [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() == 0) return false;
    PyErr_Clear();
    return true;
  };
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
                  py::arg("n_active") = r.n_active, py::arg("history") = history_to_dict(r.history),
                  py::arg("timings") = r.timings);
}

template <class T>
void bind_relu_for(py::module_& m) {
  m.def("solve_relu", &solve_relu<T>, py::arg("op"), py::arg("y"), py::arg("beta"),
        py::arg("loss") = "squared", py::arg("tol") = 1e-6, py::arg("max_iter") = 10000,
        py::arg("time_limit") = std::numeric_limits<double>::infinity(), py::arg("check_every") = 5,
        py::arg("warm_V") = py::none(), py::arg("warm_W") = py::none(), py::arg("verbose") = false,
        py::arg("certify_op") = nullptr, py::arg("ray_newton") = true, py::arg("callback") = py::none(),
        py::arg("precision_floor") = false,
        R"doc(Solve the exact (cone-constrained) two-layer ReLU program to a certified relative gap.

    min_{V, W}  L(sum_i A_i (V_i - W_i), y) + beta * sum_i sum_k (||V_i[:, k]||_2 + ||W_i[:, k]||_2)
    s.t.        (2 D_i - I) X V_i[:, k] >= 0  and  (2 D_i - I) X W_i[:, k] >= 0   for every block i, column k

(Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, eq. (3)-(4) for c = 1; c > 1 are
output heads sharing the patterns). Accelerated proximal gradient whose prox is exact on the cones.

solve_relu(op, y, beta, loss="squared", tol=1e-6, max_iter=10000, time_limit=inf, check_every=5,
           warm_V=None, warm_W=None, verbose=False, certify_op=None, ray_newton=True, callback=None,
           precision_floor=False)

op : ConeOperatorF64 / ConeOperatorF32 with n outputs, P blocks of dimension d, and the rows of the cone
    constraints: a MaskedOperator(X, patterns) built from a PatternSet (A_i = D_i X), or
    ConeOperatorF64(op, X, patterns) for any BlockOperator op, e.g. a Python subclass (see BlockOperatorF64)
    such as a pooled convolutional operator (n images, m = n K patch rows, A_i U = the sum over each image's
    K patches of D_i X U).
y : (n, c) float64, the targets (binary losses: c = 1, values in {-1, +1}; cross_entropy: one-hot).
beta : float >= 0.  loss : "squared", "logistic", "hinge", "squared_hinge" or "cross_entropy" (sums over samples).
tol : > 0, on the relative duality gap and on the relative cone violation.
max_iter : FISTA iterations.  time_limit : seconds.  check_every : iterations between certificates.
warm_V, warm_W : (P, d, c) starting point (both or neither; projected onto the cones).
verbose : print one line per certificate (and about every 0.5 s between certificates).
certify_op : BlockOperatorF64 with op's blocks, for float64 certificates of float32 iterations.
ray_newton : Newton steps on the scales of the nonzero columns at the checks (not for the hinge).
precision_floor : float32 only: stop with status "precision_floor" once the certified gap has stalled (above
    tol, below 1e-3) for 10 certificates, so that the caller can continue in float64 (convexnn.solve does).
callback : None or callable(info dict: iteration, objective, dual_objective, gap, n_active, working_set, time),
    called at every certificate and about every 0.5 s between them (then with the last certificate's values);
    returning False stops the solve (status "interrupted"). Ctrl-C also stops it (within ~0.1 s plus one
    cone projection), with the last certified point.

Returns dict(V, W (P, d, c), objective, dual_objective, gap, kkt_residual, max_violation (relative, over the
rows of X), max_dual_constraint, n_iter, status, time, n_newton, solver, n_active, history, timings). timings:
dict str -> float, wall seconds per phase (setup, gradient, prox, forward, certificate_products,
certificate_oracle, ray_newton, other, total). status is one of "converged", "max_iter", "time_limit",
"interrupted", "diverged", "precision_floor". A stop by time_limit or an interrupt returns the last iterate with a fresh
certificate when that is cheap, else the point of the last certificate (n_iter is then that certificate's
iteration; max_dual_constraint NaN if that certificate was screened).)doc");
}

}  // namespace

void bind_relu(py::module_& m) {
  bind_relu_for<double>(m);
  bind_relu_for<float>(m);
}

}  // namespace convexnn::python
