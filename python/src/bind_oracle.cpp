// Bindings of cone_oracle.hpp: the projection onto a pattern's cone and the per-pattern dual-constraint oracle.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "array_utils.hpp"
#include "bindings.hpp"
#include "convexnn/cones/cone_oracle.hpp"
#include "convexnn/patterns/pattern_set.hpp"

namespace py = pybind11;

namespace convexnn::python {
namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

bool is_dtype(const py::array& a, const py::dtype& dt) { return a.dtype().is(dt) || a.dtype().equal(dt); }

// X must be float32 or float64 (no silent casts: the dtype selects the precision of the data).
void check_X_dtype(const py::array& X) {
  CONVEXNN_CHECK(is_dtype(X, py::dtype::of<float>()) || is_dtype(X, py::dtype::of<double>()),
                 "X must be a float32 or float64 array, got dtype " << std::string(py::str(X.dtype())));
}

F64 vector_arg(const py::handle& obj, index_t size, const char* name) {
  F64 a = F64::ensure(obj);
  CONVEXNN_CHECK(a, name << " must be convertible to a float64 array");
  CONVEXNN_CHECK(a.ndim() == 1 && a.shape(0) == size,
                 name << " must have shape (" << size << ",), got ndim = " << a.ndim()
                      << (a.ndim() >= 1 ? ", shape[0] = " + std::to_string(a.shape(0)) : std::string()));
  return a;
}

template <class T>
py::dict projection_dict(const ConeProjection<T>& res) {
  py::dict out;
  py::array_t<double> u(static_cast<py::ssize_t>(res.u.size()));
  std::copy(res.u.begin(), res.u.end(), u.mutable_data());
  out["u"] = u;
  out["norm"] = res.norm;
  out["max_violation"] = res.max_violation;
  out["iterations"] = res.iterations;
  out["converged"] = res.converged;
  return out;
}

template <class T>
py::dict project_pattern_typed(const py::array& X_in, const PatternSet& pats, index_t i, const py::handle& g_in,
                               double tol, index_t max_iter) {
  const auto X_arr = py::array_t<T, 0>::ensure(X_in);
  const MatrixView<T> X = matrix_view<T>(X_arr, "X");
  const F64 g = vector_arg(g_in, X.cols, "g");
  ConeProjection<T> res;
  {
    py::gil_scoped_release release;
    res = project_onto_pattern_cone<T>(X, pats, i, g.data(), tol, max_iter);
  }
  return projection_dict(res);
}

template <class T>
py::dict project_mask_typed(const py::array& X_in, const py::handle& mask_in, const py::handle& g_in, double tol,
                            index_t max_iter) {
  const auto X_arr = py::array_t<T, 0>::ensure(X_in);
  const MatrixView<T> X = matrix_view<T>(X_arr, "X");
  const auto mask = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(mask_in);
  CONVEXNN_CHECK(mask && mask.ndim() == 1 && mask.shape(0) == X.rows,
                 "mask must be a boolean array of shape (" << X.rows << ",)");
  const F64 g = vector_arg(g_in, X.cols, "g");
  std::vector<PatternSet::Word> words((X.rows + PatternSet::kWordBits - 1) / PatternSet::kWordBits, 0);
  const bool* m = mask.data();
  for (index_t k = 0; k < X.rows; ++k)
    if (m[k]) words[k / PatternSet::kWordBits] |= PatternSet::Word{1} << (k % PatternSet::kWordBits);
  ConeProjection<T> res;
  {
    py::gil_scoped_release release;
    res = project_onto_sign_cone<T>(X, words.data(), g.data(), tol, max_iter);
  }
  return projection_dict(res);
}

template <class T>
py::tuple oracle_typed(const py::array& X_in, const PatternSet& pats, const py::handle& r_in,
                       const py::object& subset_in, double tol, index_t max_iter, bool return_info) {
  const auto X_arr = py::array_t<T, 0>::ensure(X_in);
  const MatrixView<T> X = matrix_view<T>(X_arr, "X");
  const py::array r_any = py::array::ensure(r_in);
  CONVEXNN_CHECK(r_any && is_dtype(r_any, py::dtype::of<T>()),
                 "r must have X's dtype " << std::string(py::str(py::dtype::of<T>())));
  const auto r = py::array_t<T, py::array::c_style>::ensure(r_any);
  CONVEXNN_CHECK(r && r.ndim() == 1 && r.shape(0) == X.rows, "r must have shape (" << X.rows << ",)");

  std::vector<index_t> subset_index;
  BlockSubset subset;
  if (!subset_in.is_none()) {
    const auto s = py::array_t<index_t, py::array::c_style | py::array::forcecast>::ensure(subset_in);
    CONVEXNN_CHECK(s && s.ndim() == 1, "subset must be a 1-D array of pattern indices");
    subset_index.assign(s.data(), s.data() + s.shape(0));
    subset = BlockSubset::of(subset_index);
  }
  const index_t S = subset.count(pats.n_patterns());
  py::array_t<double> values_pos(static_cast<py::ssize_t>(S));
  py::array_t<double> values_neg(static_cast<py::ssize_t>(S));
  py::array_t<double> maximizers({static_cast<py::ssize_t>(S), static_cast<py::ssize_t>(X.cols)});
  ConeOracleInfo info;
  {
    double* pos = values_pos.mutable_data();
    double* neg = values_neg.mutable_data();
    double* arg = maximizers.mutable_data();
    py::gil_scoped_release release;
    info = dual_constraint_oracle<T>(X, pats, r.data(), subset, tol, pos, neg, arg, max_iter);
  }
  if (!return_info) return py::make_tuple(values_pos, values_neg, maximizers);
  py::dict d;
  d["total_iterations"] = info.total_iterations;
  d["max_iterations"] = info.max_iterations;
  d["max_relative_violation"] = info.max_relative_violation;
  d["n_unconverged"] = info.n_unconverged;
  return py::make_tuple(values_pos, values_neg, maximizers, d);
}

}  // namespace

void bind_oracle(py::module_& m) {
  m.def(
      "project_onto_pattern_cone",
      [](const py::array& X, const PatternSet& patterns, index_t i, const py::handle& g, double tol, index_t max_iter) {
        check_X_dtype(X);
        return is_dtype(X, py::dtype::of<float>()) ? project_pattern_typed<float>(X, patterns, i, g, tol, max_iter)
                                                   : project_pattern_typed<double>(X, patterns, i, g, tol, max_iter);
      },
      py::arg("X"), py::arg("patterns"), py::arg("i"), py::arg("g"), py::arg("tol") = 1e-10, py::arg("max_iter") = 0,
      R"doc(Euclidean projection of g onto the cone K_i = {u : (2 D_i - I) X u >= 0} of pattern i.

X : (n, d) float32/float64, C- or F-ordered (the patterns' X).  g : (d,) float64.
tol : relative; stops when every -(2 D_i - I)_k x_k^T u <= tol * ||g|| * ||x_k||.
max_iter : active-set step cap (0: automatic).
Returns dict(u (d,) float64, norm = ||u|| = max{g^T v : v in K_i, ||v|| <= 1}, max_violation =
max_k (-a_k^T u)_+ / ||x_k||, iterations, converged).)doc");

  m.def(
      "project_onto_sign_cone",
      [](const py::array& X, const py::handle& mask, const py::handle& g, double tol, index_t max_iter) {
        check_X_dtype(X);
        return is_dtype(X, py::dtype::of<float>()) ? project_mask_typed<float>(X, mask, g, tol, max_iter)
                                                   : project_mask_typed<double>(X, mask, g, tol, max_iter);
      },
      py::arg("X"), py::arg("mask"), py::arg("g"), py::arg("tol") = 1e-10, py::arg("max_iter") = 0,
      R"doc(Projection of g onto {u : s_k x_k^T u >= 0}, s_k = +1 where mask[k] else -1 (any sign vector).

X : (n, d) float32/float64.  mask : (n,) bool.  g : (d,) float64.  Same result dict as project_onto_pattern_cone.)doc");

  m.def(
      "dual_constraint_oracle",
      [](const py::array& X, const PatternSet& patterns, const py::handle& r, const py::object& subset, double tol,
         index_t max_iter, bool return_info) {
        check_X_dtype(X);
        return is_dtype(X, py::dtype::of<float>())
                   ? oracle_typed<float>(X, patterns, r, subset, tol, max_iter, return_info)
                   : oracle_typed<double>(X, patterns, r, subset, tol, max_iter, return_info);
      },
      py::arg("X"), py::arg("patterns"), py::arg("r"), py::arg("subset") = py::none(), py::arg("tol") = 1e-10,
      py::arg("max_iter") = 0, py::arg("return_info") = false,
      R"doc(Per-pattern dual constraint values max{ +-r^T D_i X u : u in K_i, ||u|| <= 1 } = ||Pi_{K_i}(+-X^T D_i r)||.

X : (n, d) float32/float64.  r : (n,) of X's dtype.  subset : optional (S,) int pattern indices (default all P).
Returns (values_pos (S,), values_neg (S,), maximizers (S, d)) in float64; maximizers[s] is the unit maximizer
for the sign with the larger value (+r on ties), 0 when that value is 0. Values are upper bounds up to rounding
(they decrease to the exact value as the active-set method converges). With return_info=True a fourth element,
dict(total_iterations, max_iterations, max_relative_violation, n_unconverged), is appended.)doc");
}

}  // namespace convexnn::python
