// Python bindings of PatternSet, the samplers and the exact enumeration (module convexnn._core).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "array_utils.hpp"
#include "bindings.hpp"
#include "convexnn/patterns/enumerate.hpp"
#include "convexnn/patterns/pattern_set.hpp"

namespace py = pybind11;

namespace convexnn::python {

namespace {

using Word = PatternSet::Word;

std::string type_name(const py::handle& obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

// The array itself when C- or F-contiguous, else a C-ordered copy (dtype already T).
template <class T>
py::array_t<T, 0> as_viewable(const py::array& arr, bool contiguous) {
  if (contiguous) return py::array_t<T, 0>::ensure(arr);
  return py::reinterpret_borrow<py::array_t<T, 0>>(py::array_t<T, py::array::c_style>::ensure(arr));
}

// Calls fn(MatrixView<T>) for a 2-D float32/float64 numpy array, viewed without a copy when it is C- or
// F-contiguous (any other layout is copied to C order). Wrong types raise TypeError, wrong shapes ValueError.
template <class Fn>
auto with_data_view(const py::handle& obj, const char* name, Fn&& fn) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array of float32 or float64, got " + type_name(obj));
  py::array arr = py::reinterpret_borrow<py::array>(obj);
  if (arr.ndim() != 2)
    throw py::value_error(std::string(name) + " must be 2-D (n, d), got ndim = " + std::to_string(arr.ndim()));
  const bool contiguous = (arr.flags() & (py::array::c_style | py::array::f_style)) != 0;
  if (arr.dtype().equal(py::dtype::of<double>())) {
    return fn(matrix_view<double>(as_viewable<double>(arr, contiguous), name));
  }
  if (arr.dtype().equal(py::dtype::of<float>())) {
    return fn(matrix_view<float>(as_viewable<float>(arr, contiguous), name));
  }
  throw py::type_error(std::string(name) + " must be a float32 or float64 array, got dtype " +
                       std::string(py::str(arr.dtype())));
}

// A (rows, cols) floating array as a C-contiguous float64 array (converted if needed; float only).
py::array_t<double, py::array::c_style> float64_matrix(const py::handle& obj, const char* name, py::ssize_t cols) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy array of floats, got " + type_name(obj));
  py::array arr = py::reinterpret_borrow<py::array>(obj);
  const char kind = arr.dtype().kind();
  if (kind != 'f')
    throw py::type_error(std::string(name) + " must be a float array, got dtype " + std::string(py::str(arr.dtype())));
  if (arr.ndim() != 2)
    throw py::value_error(std::string(name) + " must be 2-D (P, d), got ndim = " + std::to_string(arr.ndim()));
  if (cols >= 0 && arr.shape(1) != cols)
    throw py::value_error(std::string(name) + " must have shape (P, " + std::to_string(cols) + "), got (" +
                          std::to_string(arr.shape(0)) + ", " + std::to_string(arr.shape(1)) + ")");
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
}

index_t data_cols(const py::handle& X, const char* name) {
  return with_data_view(X, name, [](auto view) { return view.cols; });
}

py::array_t<double> gates_array(const PatternSet& s) {
  py::array_t<double> out({s.n_patterns(), s.dim()});
  std::copy(s.gates().begin(), s.gates().end(), out.mutable_data());
  return out;
}

py::array_t<std::uint64_t> words_array(const PatternSet& s) {
  py::array_t<std::uint64_t> out({s.n_patterns(), s.words_per_pattern()});
  std::copy(s.words().begin(), s.words().end(), out.mutable_data());
  return out;
}

py::array_t<bool> dense_array(const PatternSet& s) {
  const index_t n = s.n_samples(), P = s.n_patterns();
  py::array_t<bool> out({n, P});
  bool* o = out.mutable_data();
  for (index_t i = 0; i < P; ++i) {
    const Word* w = s.mask(i);
    for (index_t k = 0; k < n; ++k) o[k * P + i] = (w[k / PatternSet::kWordBits] >> (k % PatternSet::kWordBits)) & 1U;
  }
  return out;
}

std::vector<index_t> index_vector(const py::handle& obj, const char* name) {
  py::array arr = py::array::ensure(obj);
  if (!arr) throw py::type_error(std::string(name) + " must be a sequence of integers");
  if (arr.size() == 0) return {};
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(name) + " must hold integers, got dtype " + std::string(py::str(arr.dtype())));
  if (arr.ndim() != 1)
    throw py::value_error(std::string(name) + " must be 1-D, got ndim = " + std::to_string(arr.ndim()));
  auto a = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
  return std::vector<index_t>(a.data(), a.data() + a.size());
}

PatternSet from_words_py(index_t n, index_t d, const py::handle& words_obj, const py::handle& gates_obj) {
  CONVEXNN_CHECK(n >= 1, "n must be >= 1, got " << n);
  CONVEXNN_CHECK(d >= 1, "d must be >= 1, got " << d);
  if (!py::isinstance<py::array>(words_obj))
    throw py::type_error("words must be a numpy uint64 array, got " + type_name(words_obj));
  py::array warr = py::reinterpret_borrow<py::array>(words_obj);
  if (!warr.dtype().equal(py::dtype::of<std::uint64_t>()))
    throw py::type_error("words must have dtype uint64, got " + std::string(py::str(warr.dtype())));
  const index_t W = (n + PatternSet::kWordBits - 1) / PatternSet::kWordBits;
  auto gates = float64_matrix(gates_obj, "gates", d);
  if (warr.ndim() != 2 || warr.shape(0) != gates.shape(0) || warr.shape(1) != W)
    throw py::value_error("words must have shape (P, ceil(n / 64)) = (" + std::to_string(gates.shape(0)) + ", " +
                          std::to_string(W) + ")");
  auto w = py::array_t<std::uint64_t, py::array::c_style>::ensure(warr);
  std::vector<Word> words(w.data(), w.data() + w.size());
  std::vector<double> g(gates.data(), gates.data() + gates.size());
  return PatternSet::from_words(n, d, std::move(words), std::move(g));
}

}  // namespace

void bind_patterns(py::module_& m) {
  py::class_<PatternSet> cls(m, "PatternSet", R"doc(
Bit-packed sign patterns D_i = diag(1[X g_i >= 0]) with one float64 gate per pattern.

Masks are stored pattern-major in uint64 words (bit k % 64 of word k // 64 is sample k); gates are (P, d)
float64, gate-major (row i is the gate of pattern i). Build with from_gates, sample, enumerate_patterns,
flip_patterns or from_words. Pickles.
)doc");
  cls.def_static(
         "from_gates",
         [](const py::handle& X, const py::handle& gates, bool deduplicate, bool drop_zero) {
           const index_t d = data_cols(X, "X");
           auto G = float64_matrix(gates, "gates", d);
           return with_data_view(X, "X", [&](auto view) {
             py::gil_scoped_release release;
             return PatternSet::from_gates(view, G.data(), G.shape(0), deduplicate, drop_zero);
           });
         },
         py::arg("X"), py::arg("gates"), py::arg("deduplicate") = true, py::arg("drop_zero") = true,
         R"doc(Patterns 1[X g >= 0] of the gates.

X: (n, d) float32/float64, C or F order (products accumulated in float64). gates: (P, d) float array, one
gate per ROW. deduplicate keeps the first of equal masks; drop_zero drops the all-zero mask.)doc")
      .def_static(
          "sample",
          [](const py::handle& X, index_t n_gates, std::uint64_t seed, bool bias_column) {
            return with_data_view(X, "X", [&](auto view) {
              py::gil_scoped_release release;
              return PatternSet::sample(view, n_gates, seed, bias_column);
            });
          },
          py::arg("X"), py::arg("n_gates"), py::arg("seed") = 0, py::arg("bias_column") = false,
          R"doc(Patterns of n_gates Gaussian gates (deduplicated, all-zero dropped); see gaussian_gates.)doc")
      .def_static(
          "gaussian_gates",
          [](const py::handle& X, index_t n_gates, std::uint64_t seed, bool bias_column) {
            return with_data_view(X, "X", [&](auto view) {
              std::vector<double> G;
              {
                py::gil_scoped_release release;
                G = PatternSet::gaussian_gates(view, n_gates, seed, bias_column);
              }
              py::array_t<double> out({n_gates, view.cols});
              std::copy(G.begin(), G.end(), out.mutable_data());
              return out;
            });
          },
          py::arg("X"), py::arg("n_gates"), py::arg("seed") = 0, py::arg("bias_column") = false,
          R"doc(The (n_gates, d) Gaussian gates used by sample (before deduplication).

Feature entries N(0, 1) from a portable stream (mt19937_64 + Box-Muller): the same on every platform for a
given seed. With bias_column=True the last column of X must be ones, and each gate's last entry puts its
hyperplane through a uniformly drawn training point.)doc")
      .def_static(
          "network_patterns",
          [](const py::handle& X, const py::handle& W1) {
            const index_t d = data_cols(X, "X");
            auto W = float64_matrix(W1, "W1", d);
            return with_data_view(X, "X", [&](auto view) {
              py::gil_scoped_release release;
              return PatternSet::network_patterns(view, W.data(), W.shape(0));
            });
          },
          py::arg("X"), py::arg("W1"),
          "'Alg2' of Pilanci & Ergen, \"Neural Networks are Convex Regularizers\", ICML 2020: patterns of a network's "
          "neurons, W1 of shape (m, d), one neuron per row.")
      .def_static("from_words", &from_words_py, py::arg("n"), py::arg("d"), py::arg("words"), py::arg("gates"),
                  "Rebuild from packed words (P, ceil(n/64)) uint64 and gates (P, d) (validated; no dedup).")
      .def_property_readonly("n_samples", &PatternSet::n_samples)
      .def_property_readonly("dim", &PatternSet::dim)
      .def_property_readonly("n_patterns", &PatternSet::n_patterns)
      .def_property_readonly("words_per_pattern", &PatternSet::words_per_pattern)
      .def("gates", &gates_array, "(P, d) float64 copy of the gates, one per row.")
      .def("words", &words_array, "(P, ceil(n/64)) uint64 copy of the packed masks.")
      .def("dense", &dense_array, "(n, P) bool array of the masks (for inspection and tests).")
      .def(
          "popcounts",
          [](const PatternSet& s) {
            py::array_t<std::int64_t> out(s.n_patterns());
            for (index_t i = 0; i < s.n_patterns(); ++i) out.mutable_data()[i] = s.popcount(i);
            return out;
          },
          "(P,) int64: number of active samples per pattern.")
      .def(
          "subset", [](const PatternSet& s, const py::handle& idx) { return s.subset(index_vector(idx, "indices")); },
          py::arg("indices"), "The patterns at these indices (in [0, P), no repeats), in that order.")
      .def(
          "merge",
          [](const PatternSet& s, const PatternSet& other) {
            std::pair<PatternSet, std::vector<index_t>> res;
            {
              py::gil_scoped_release release;
              res = s.merge(other);
            }
            py::array_t<std::int64_t> where(static_cast<py::ssize_t>(res.second.size()));
            std::copy(res.second.begin(), res.second.end(), where.mutable_data());
            return py::make_tuple(std::move(res.first), where);
          },
          py::arg("other"),
          "(merged, index): this set's patterns then other's new ones; index[j] = position of other's pattern j.")
      .def(
          "recompute",
          [](const PatternSet& s, const py::handle& X) {
            return with_data_view(X, "X", [&](auto view) {
              py::gil_scoped_release release;
              return s.recompute(view);
            });
          },
          py::arg("X"), "Masks of the same gates on new data X (m, d): no dedup, no dropping (aligned with gates).")
      .def("__repr__",
           [](const PatternSet& s) {
             return "PatternSet(n_samples=" + std::to_string(s.n_samples()) + ", dim=" + std::to_string(s.dim()) +
                    ", n_patterns=" + std::to_string(s.n_patterns()) + ")";
           })
      .def(py::pickle(
          [](const PatternSet& s) { return py::make_tuple(s.n_samples(), s.dim(), words_array(s), gates_array(s)); },
          [](const py::tuple& t) {
            if (t.size() != 4) throw py::value_error("PatternSet pickle state must be (n, d, words, gates)");
            return from_words_py(t[0].cast<index_t>(), t[1].cast<index_t>(), t[2], t[3]);
          }));

  m.def(
      "enumerate_patterns",
      [](const py::handle& X, std::uint64_t max_patterns) {
        CONVEXNN_CHECK(max_patterns >= 1, "max_patterns must be >= 1, got " << max_patterns);
        return with_data_view(X, "X", [&](auto view) {
          py::gil_scoped_release release;
          return enumerate_patterns(view, max_patterns);
        });
      },
      py::arg("X"), py::arg("max_patterns") = kDefaultMaxPatterns,
      R"doc(ALL patterns of X (n, d): one per region of the arrangement {u : x_k^T u = 0}.

Append the bias column beforehand if wanted. Deduplicated, all-zero pattern dropped; each gate is a unit
vector strictly inside its region, so PatternSet.from_gates(X, pats.gates()) gives the same patterns.
Raises ValueError when estimate_region_count(X) exceeds max_patterns.)doc");
  m.def(
      "estimate_region_count",
      [](const py::handle& X) {
        return with_data_view(X, "X", [&](auto view) {
          py::gil_scoped_release release;
          return estimate_region_count(view);
        });
      },
      py::arg("X"),
      "Cover's bound 2 sum_{k<r} C(n'-1, k) (n' distinct hyperplanes of X, r = rank): what enumerate_patterns "
      "compares with max_patterns (counts the all-zero pattern).");
  m.def(
      "arrangement_summary",
      [](const py::handle& X) {
        const ArrangementSummary s = with_data_view(X, "X", [&](auto view) {
          py::gil_scoped_release release;
          return summarize_arrangement(view);
        });
        py::dict out;
        out["rank"] = s.rank;
        out["n_hyperplanes"] = s.n_hyperplanes;
        out["n_zero_rows"] = s.n_zero_rows;
        out["region_bound"] = s.region_bound;
        return out;
      },
      py::arg("X"), "dict(rank, n_hyperplanes, n_zero_rows, region_bound) of X's arrangement.");
  m.def(
      "cover_count", [](index_t n, index_t r) { return cover_count(n, r); }, py::arg("n"), py::arg("r"),
      "2 * sum_{k<r} C(n-1, k) (1 when n or r is 0), saturated at 2**64 - 1.");
  m.def(
      "flip_patterns",
      [](const py::handle& X, const py::handle& gates, double threshold) {
        const index_t d = data_cols(X, "X");
        auto G = float64_matrix(gates, "gates", d);
        return with_data_view(X, "X", [&](auto view) {
          py::gil_scoped_release release;
          return PatternSet::flip_patterns(view, G.data(), G.shape(0), threshold);
        });
      },
      py::arg("X"), py::arg("gates"), py::arg("threshold"),
      R"doc('Alg3' of Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020: each gate's pattern plus single-sample flips realizable by a nearby gate.

gates: (P, d), one per row. A sample k is flipped when |x_k^T g| <= threshold * ||x_k|| * ||g|| (relative
threshold) and the gate moved just across x_k's hyperplane gives exactly that flip; the returned gates
reproduce the returned masks.)doc");
}

}  // namespace convexnn::python
