// The pybind11 trampoline that lets a Python class implement BlockOperator<T> (the pattern of adelie's
// PyMatrixNaiveBase): a subclass of convexnn._core.BlockOperatorF64 / BlockOperatorF32 that defines
//
//   forward(U, subset) -> z (n, c)        U (S, d, c), subset None or int64 (S,)
//   adjoint(R, subset) -> G (S, d, c)     R (n, c)
//   block_gram(i)      -> (d, d)
//
// drives every C++ solver. The solvers release the GIL; each override re-acquires it, receives fresh
// copies of its inputs (an override may keep them), and its result is checked (ndarray, exact dtype,
// exact shape) with a TypeError / ValueError naming the method. A Python exception raised in an override
// propagates out of the solver as that Python exception (the solvers call operators from their own thread,
// never inside a parallel region, so nothing is lost or crashes on the way).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "convexnn/operator/operator.hpp"

namespace convexnn::python {

namespace py = pybind11;

template <class T>
class PyBlockOperator : public BlockOperator<T> {
 public:
  PyBlockOperator(index_t n_samples, index_t block_dim, index_t n_blocks) : n_(n_samples), d_(block_dim), p_(n_blocks) {
    CONVEXNN_CHECK(n_samples >= 1, "n_samples must be >= 1, got " << n_samples);
    CONVEXNN_CHECK(block_dim >= 1, "block_dim must be >= 1, got " << block_dim);
    CONVEXNN_CHECK(n_blocks >= 0, "n_blocks must be >= 0, got " << n_blocks);
  }

  index_t n_samples() const override { return n_; }
  index_t block_dim() const override { return d_; }
  index_t n_blocks() const override { return p_; }

  void forward(const T* U, index_t c, T* z, BlockSubset subset = {}) const override {
    py::gil_scoped_acquire gil;
    const py::function f = method("forward", "forward(U, subset)");
    const index_t S = subset.count(p_);
    py::array_t<T> Ua({S, d_, c});
    std::copy(U, U + S * d_ * c, Ua.mutable_data());
    const auto out = checked_result(f(Ua, subset_array(subset)), f, {n_, c}, "(n, c)");
    std::copy(out.data(), out.data() + n_ * c, z);
  }

  void adjoint(const T* R, index_t c, T* G, BlockSubset subset = {}) const override {
    py::gil_scoped_acquire gil;
    const py::function f = method("adjoint", "adjoint(R, subset)");
    const index_t S = subset.count(p_);
    py::array_t<T> Ra({n_, c});
    std::copy(R, R + n_ * c, Ra.mutable_data());
    const auto out = checked_result(f(Ra, subset_array(subset)), f, {S, d_, c}, "(S, d, c)");
    std::copy(out.data(), out.data() + S * d_ * c, G);
  }

  // Optional override adjoint_dual_norms(R, subset, groups) -> (S, c) float64 ("output") or (S,) ("neuron");
  // without one, the default (adjoint, then the norms) calls the Python adjoint.
  void adjoint_dual_norms(const T* R, index_t c, bool groups_neuron, double* out,
                          BlockSubset subset = {}) const override {
    {
      py::gil_scoped_acquire gil;  // every Python object below lives inside this scope
      const py::function f = py::get_override(static_cast<const BlockOperator<T>*>(this), "adjoint_dual_norms");
      if (f) {
        const index_t S = subset.count(p_);
        py::array_t<T> Ra({n_, c});
        std::copy(R, R + n_ * c, Ra.mutable_data());
        const char* groups = groups_neuron ? "neuron" : "output";
        const py::object r = f(Ra, subset_array(subset), groups);
        std::vector<index_t> shape = groups_neuron ? std::vector<index_t>{S} : std::vector<index_t>{S, c};
        const auto a = PyBlockOperator<double>::checked_result(r, f, shape, groups_neuron ? "(S,)" : "(S, c)");
        std::copy(a.data(), a.data() + a.size(), out);
        return;
      }
    }
    BlockOperator<T>::adjoint_dual_norms(R, c, groups_neuron, out, subset);
  }

  void block_gram(index_t i, T* gram) const override {
    py::gil_scoped_acquire gil;
    const py::function f = method("block_gram", "block_gram(i)");
    const auto out = checked_result(f(py::int_(i)), f, {d_, d_}, "(d, d)");
    std::copy(out.data(), out.data() + d_ * d_, gram);
  }

 private:
  static const char* dtype_name() { return sizeof(T) == sizeof(float) ? "float32" : "float64"; }

  // The Python override of `name`, or TypeError when the subclass does not define it.
  py::function method(const char* name, const char* signature) const {
    py::function f = py::get_override(static_cast<const BlockOperator<T>*>(this), name);
    if (!f) {
      const std::string base = sizeof(T) == sizeof(float) ? "BlockOperatorF32" : "BlockOperatorF64";
      throw py::type_error("a subclass of convexnn._core." + base + " must define " + signature +
                           " to be used by a solver");
    }
    return f;
  }

  static std::string qualname(const py::function& f) {
    if (py::hasattr(f, "__qualname__")) return py::str(f.attr("__qualname__"));
    return py::str(f);
  }

  static std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
    return s + (a.ndim() == 1 ? ",)" : ")");
  }

 public:  // (also used by PyBlockOperator<float> for the float64 norms)
  // The override's return value as a C-contiguous array of dtype T and exactly `shape` (TypeError/ValueError
  // naming the method otherwise).
  static py::array_t<T, py::array::c_style> checked_result(const py::object& r, const py::function& f,
                                                           std::vector<index_t> shape, const char* symbolic) {
    const std::string who = qualname(f);
    std::string want = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) want += (k ? ", " : "") + std::to_string(shape[k]);
    want += ")";
    if (!py::isinstance<py::array>(r))
      throw py::type_error(who + " must return a numpy.ndarray of shape " + symbolic + " = " + want + " and dtype " +
                           dtype_name() + ", got " + std::string(py::str(py::type::of(r).attr("__name__"))));
    const auto a = py::reinterpret_borrow<py::array>(r);
    if (!py::isinstance<py::array_t<T, 0>>(a))
      throw py::type_error(who + " must return dtype " + dtype_name() + ", got " + std::string(py::str(a.dtype())));
    bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t k = 0; same && k < shape.size(); ++k) same = a.shape(static_cast<py::ssize_t>(k)) == shape[k];
    if (!same) throw py::value_error(who + " must return shape " + symbolic + " = " + want + ", got " + shape_of(a));
    return py::array_t<T, py::array::c_style>::ensure(a);  // a copy only when a is not C-contiguous
  }

 private:
  static py::object subset_array(BlockSubset subset) {
    if (subset.all()) return py::none();
    py::array_t<std::int64_t> s(subset.size);
    std::copy(subset.index, subset.index + subset.size, s.mutable_data());
    return std::move(s);
  }

  index_t n_, d_, p_;
};

}  // namespace convexnn::python
