// Bindings of the certified gated-ReLU solver (cpp/include/convexnn/solvers/gated_solver.hpp).
//
// Every function takes the operator through its abstract base (BlockOperatorF64 / BlockOperatorF32, registered
// by bind_operators.cpp before this file runs), so any bound operator works. The GIL is released during the
// solve and re-acquired only in the progress callback, which also polls for Ctrl-C (PyErr_CheckSignals): a
// KeyboardInterrupt stops the solve with status "interrupted" and returns the best certified point so far.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "bindings.hpp"
#include "convexnn/solvers/gated_solver.hpp"
#include "progress.hpp"

namespace py = pybind11;

namespace convexnn::python {
namespace {

using F64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

struct Targets {
  F64Array y;
  index_t n = 0, c = 1;
};

Targets parse_targets(const py::object& y_obj, index_t n_expected) {
  Targets t;
  CONVEXNN_CHECK(!y_obj.is_none(), "y must be an array of shape (n,) or (n, c), got None");
  t.y = F64Array::ensure(y_obj);
  CONVEXNN_CHECK(t.y, "y must be convertible to a float64 array of shape (n,) or (n, c)");
  CONVEXNN_CHECK(t.y.ndim() == 1 || t.y.ndim() == 2, "y must have shape (n,) or (n, c), got ndim = " << t.y.ndim());
  t.n = t.y.shape(0);
  t.c = t.y.ndim() == 2 ? t.y.shape(1) : 1;
  CONVEXNN_CHECK(t.n == n_expected,
                 "y must have n = " << n_expected << " rows (the operator's n_samples), got " << t.n);
  CONVEXNN_CHECK(t.c >= 1, "y must have at least one column");
  return t;
}

// sample_weight: None -> empty (no weights), else n finite weights >= 0 (ValueError naming it otherwise).
std::vector<double> parse_weights(const py::object& w, index_t n) {
  if (w.is_none()) return {};
  const F64Array a = F64Array::ensure(w);
  CONVEXNN_CHECK(a && a.ndim() == 1 && a.shape(0) == n,
                 "sample_weight must be None or an array of shape (" << n << ",) (one weight per sample)");
  validate_weights(a.data(), n);
  return std::vector<double>(a.data(), a.data() + n);
}
const double* weights_or_null(const std::vector<double>& w) { return w.empty() ? nullptr : w.data(); }

double parse_limit(const py::object& v, const char* name, double dflt) {
  if (v.is_none()) return dflt;
  const double x = v.cast<double>();
  CONVEXNN_CHECK(!std::isnan(x) && x >= 0, name << " must be >= 0 (or None), got " << x);
  return x;
}

// Everything the Python signature shares between solve_gated and solve_gated_path.
struct PyOptions {
  std::string loss = "squared", groups = "output", solver = "auto";
  double tol = 1e-6;
  py::object max_iter, time_limit;
  bool verbose = false;
  index_t check_every = 10;
  bool working_set = true;
  py::object callback;
  bool newton = true;
};

// Builds GatedOptions with the shared progress callback (progress.hpp); a Python exception raised in the user's
// callback is kept in *error and rethrown after the solve.
GatedOptions make_options(const PyOptions& po, std::shared_ptr<py::error_already_set>* error, std::string* label) {
  GatedOptions o;
  CONVEXNN_CHECK(std::isfinite(po.tol) && po.tol >= 0, "tol must be a finite number >= 0, got " << po.tol);
  o.tol = po.tol;
  const double mi = parse_limit(po.max_iter, "max_iter", 10000.0);
  o.max_iter = std::isinf(mi) ? std::numeric_limits<index_t>::max() : static_cast<index_t>(mi);
  o.time_limit = parse_limit(po.time_limit, "time_limit", std::numeric_limits<double>::infinity());
  o.solver = po.solver;
  CONVEXNN_CHECK(po.check_every >= 1, "check_every must be >= 1, got " << po.check_every);
  o.check_every = po.check_every;
  o.working_set = po.working_set;
  o.newton = po.newton;
  const bool verbose = po.verbose;
  py::object user = po.callback;
  o.callback = progress_callback(verbose, user, error, label);
  return o;
}

template <class T>
py::dict result_to_dict(GatedResult<T>&& r, index_t P, index_t d, index_t c) {
  py::array_t<T> U({P, d, c});
  std::copy(r.U.begin(), r.U.end(), U.mutable_data());
  py::dict out;
  out["U"] = U;
  out["objective"] = r.objective;
  out["dual_objective"] = r.dual_objective;
  out["gap"] = r.gap;
  out["n_iter"] = r.n_iter;
  out["status"] = r.status;
  out["time"] = r.time;
  out["solver"] = r.solver;
  out["n_active"] = r.n_active;
  out["history"] = history_to_dict(r.history);
  py::dict timings;  // phase -> seconds (GatedResult::timings)
  for (const auto& [phase, seconds] : r.timings) timings[py::str(phase)] = seconds;
  out["timings"] = timings;
  return out;
}

// Warm start (P, d, c) or (P, d) when c = 1, converted to T.
template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> parse_warm(const py::object& w, index_t P, index_t d,
                                                                     index_t c) {
  using A = py::array_t<T, py::array::c_style | py::array::forcecast>;
  if (w.is_none()) return A();  // (an empty array; callers test the argument for None)
  A a = A::ensure(w);
  CONVEXNN_CHECK(a, "warm_start must be convertible to an array of shape (" << P << ", " << d << ", " << c << ")");
  const bool ok3 = a.ndim() == 3 && a.shape(0) == P && a.shape(1) == d && a.shape(2) == c;
  const bool ok2 = c == 1 && a.ndim() == 2 && a.shape(0) == P && a.shape(1) == d;
  CONVEXNN_CHECK(ok3 || ok2, "warm_start must have shape (P, d, c) = (" << P << ", " << d << ", " << c << ")");
  return a;
}

template <class T>
void bind_typed(py::module_& m) {
  m.def(
      "solve_gated",
      [](const BlockOperator<T>& op, const py::object& y_obj, double beta, const std::string& loss,
         const std::string& groups, double tol, const py::object& max_iter, const py::object& time_limit,
         const std::string& solver, const py::object& warm_start, bool verbose, index_t check_every,
         const BlockOperator<double>* certify_op, const py::object& callback, bool working_set, bool newton,
         const py::object& sample_weight) {
        const Targets t = parse_targets(y_obj, op.n_samples());
        const std::vector<double> w = parse_weights(sample_weight, t.n);
        const Loss l = parse_loss(loss);
        const Groups g = parse_groups(groups);
        PyOptions po{loss,    groups,      solver,      tol,      max_iter, time_limit,
                     verbose, check_every, working_set, callback, newton};
        std::shared_ptr<py::error_already_set> error;
        std::string label = "solve_gated";
        const GatedOptions o = make_options(po, &error, &label);
        const index_t P = op.n_blocks(), d = op.block_dim();
        auto warm = parse_warm<T>(warm_start, P, d, t.c);
        GatedSolver<T> s(op, t.y.data(), t.n, t.c, l, g, certify_op, weights_or_null(w));
        GatedResult<T> r;
        {
          py::gil_scoped_release release;
          r = s.solve(beta, o, warm_start.is_none() ? nullptr : warm.data());
        }
        if (error) throw *error;
        return result_to_dict(std::move(r), P, d, t.c);
      },
      py::arg("op"), py::arg("y"), py::arg("beta"), py::arg("loss") = "squared", py::arg("groups") = "output",
      py::arg("tol") = 1e-6, py::arg("max_iter") = 10000, py::arg("time_limit") = py::none(),
      py::arg("solver") = "auto", py::arg("warm_start") = py::none(), py::arg("verbose") = false,
      py::arg("check_every") = 10, py::arg("certify_op") = nullptr, py::arg("callback") = py::none(),
      py::arg("working_set") = true, py::arg("newton") = true, py::arg("sample_weight") = py::none(),
      R"doc(Solve the gated-ReLU program min_U L(sum_i D_i X U_i, y) + beta * Omega(U) to a certified relative gap.

op : BlockOperatorF64 / BlockOperatorF32 (e.g. MaskedOperatorF64(X, masks)); P blocks of dimension d.
y : (n,) or (n, c) float64. Binary losses (logistic, hinge, squared_hinge): c = 1, values in {-1, +1};
    cross_entropy: one-hot (n, c), c >= 2. Losses are SUMS over samples (no 1/n).
beta : float >= 0.  groups : "output" (one group per column of U_i) or "neuron" (||U_i||_F).
tol : on the relative duality gap (primal - dual) / |primal|.
max_iter : BCD epochs / FISTA iterations (None: unlimited).  time_limit : seconds (None: none).
solver : "auto" (= "fista"), "bcd" or "fista".  warm_start : (P, d, c) or None.
verbose : print progress every check_every iterations.  callback(info: dict) -> bool: False stops
    ("interrupted").  certify_op : BlockOperatorF64 with the same blocks, to compute the certificate in
    float64 when op is float32 (otherwise float32 products with a safety margin).
working_set : solve on working sets of blocks (celer-style), the global gap is always checked.
newton : once the support is identified, finish with active-set Newton-CG steps (smooth losses).
sample_weight : (n,) weights >= 0 of the samples in the loss, sum_k w_k l(z_k, y_k) (every loss), or None.
Ctrl-C stops with status "interrupted" and returns the best certified point so far.

Returns dict(U (P, d, c), objective, dual_objective, gap, n_iter, status, time, solver, n_active,
history=dict of arrays iteration/objective/dual_objective/gap/time/n_active, one entry per global check,
timings=dict phase -> seconds: forward, adjoint, prox, certificate, hinge_polish, newton, working_set, gram,
other (exclusive, adding up to at most) total).
status is one of "converged", "max_iter", "time_limit", "interrupted", "diverged", "precision_floor" (a float32
solve whose certified gap stopped improving above tol: continue in float64 from U).)doc");

  m.def(
      "solve_gated_path",
      [](const BlockOperator<T>& op, const py::object& y_obj, const std::vector<double>& betas, const std::string& loss,
         const std::string& groups, double tol, const py::object& max_iter, const py::object& time_limit,
         const std::string& solver, const py::object& warm_start, bool verbose, index_t check_every,
         const BlockOperator<double>* certify_op, const py::object& callback, bool working_set, bool newton,
         const py::object& sample_weight) {
        const Targets t = parse_targets(y_obj, op.n_samples());
        const std::vector<double> w = parse_weights(sample_weight, t.n);
        const Loss l = parse_loss(loss);
        const Groups g = parse_groups(groups);
        for (double b : betas) CONVEXNN_CHECK(std::isfinite(b) && b >= 0, "betas must be finite and >= 0, got " << b);
        PyOptions po{loss,    groups,      solver,      tol,      max_iter, time_limit,
                     verbose, check_every, working_set, callback, newton};
        std::shared_ptr<py::error_already_set> error;
        std::string label = "solve_gated_path";
        const GatedOptions o = make_options(po, &error, &label);
        const index_t P = op.n_blocks(), d = op.block_dim();
        auto warm = parse_warm<T>(warm_start, P, d, t.c);
        GatedSolver<T> s(op, t.y.data(), t.n, t.c, l, g, certify_op, weights_or_null(w));
        std::vector<GatedResult<T>> rs;
        {
          py::gil_scoped_release release;
          rs = s.solve_path(betas, o, warm_start.is_none() ? nullptr : warm.data());
        }
        if (error) throw *error;
        py::list out;
        for (std::size_t k = 0; k < rs.size(); ++k) {
          py::dict dct = result_to_dict(std::move(rs[k]), P, d, t.c);
          dct["beta"] = betas[k];
          out.append(dct);
        }
        return out;
      },
      py::arg("op"), py::arg("y"), py::arg("betas"), py::arg("loss") = "squared", py::arg("groups") = "output",
      py::arg("tol") = 1e-6, py::arg("max_iter") = 10000, py::arg("time_limit") = py::none(),
      py::arg("solver") = "auto", py::arg("warm_start") = py::none(), py::arg("verbose") = false,
      py::arg("check_every") = 10, py::arg("certify_op") = nullptr, py::arg("callback") = py::none(),
      py::arg("working_set") = true, py::arg("newton") = true, py::arg("sample_weight") = py::none(),
      R"doc(Regularization path: solve_gated for each beta in the given order (typically decreasing), each
warm-started from the previous solution; block eigenbases are computed once. max_iter and time_limit apply to
each solve. Returns a list of solve_gated dicts (with "beta"); stops early after an "interrupted" solve.)doc");

  m.def(
      "gated_beta_max",
      [](const BlockOperator<T>& op, const py::object& y_obj, const std::string& loss, const std::string& groups,
         const py::object& sample_weight) {
        const Targets t = parse_targets(y_obj, op.n_samples());
        const std::vector<double> w = parse_weights(sample_weight, t.n);
        GatedSolver<T> s(op, t.y.data(), t.n, t.c, parse_loss(loss), parse_groups(groups), nullptr, weights_or_null(w));
        py::gil_scoped_release release;
        return s.beta_max();
      },
      py::arg("op"), py::arg("y"), py::arg("loss") = "squared", py::arg("groups") = "output",
      py::arg("sample_weight") = py::none(),
      "Smallest beta for which U = 0 is optimal: max_i ||X^T D_i grad L_w(0)||_* (exact, one adjoint pass; "
      "sample_weight: (n,) weights of the weighted loss, or None).");

  m.def(
      "gated_certificate",
      [](const BlockOperator<T>& op, const py::object& U_obj, const py::object& y_obj, double beta,
         const std::string& loss, const std::string& groups, const BlockOperator<double>* certify_op,
         const py::object& sample_weight) {
        const Targets t = parse_targets(y_obj, op.n_samples());
        const std::vector<double> w = parse_weights(sample_weight, t.n);
        GatedSolver<T> s(op, t.y.data(), t.n, t.c, parse_loss(loss), parse_groups(groups), certify_op,
                         weights_or_null(w));
        auto U = parse_warm<T>(U_obj, op.n_blocks(), op.block_dim(), t.c);
        CONVEXNN_CHECK(!U_obj.is_none(), "U must be an array of shape (P, d, c), got None");
        Certificate cert;
        {
          py::gil_scoped_release release;
          cert = s.certificate(U.data(), beta);
        }
        py::dict out;
        out["primal"] = cert.primal;
        out["dual"] = cert.dual;
        out["gap"] = cert.gap;
        out["scale"] = cert.scale;
        out["dual_norm"] = cert.dual_norm;
        return out;
      },
      py::arg("op"), py::arg("U"), py::arg("y"), py::arg("beta"), py::arg("loss") = "squared",
      py::arg("groups") = "output", py::arg("certify_op") = nullptr, py::arg("sample_weight") = py::none(),
      R"doc(Certificate of a given U (P, d, c): dict(primal, dual, gap, scale, dual_norm), with
theta = -grad L(A U) (hinge: the subgradient) scaled by s = min(1, beta / dual_norm); the same bound as
convexnn.reference.duality.gated_dual.)doc");
}

}  // namespace

void bind_solvers(py::module_& m) {
  bind_typed<double>(m);
  bind_typed<float>(m);
}

}  // namespace convexnn::python
