// Bindings of the masked products: BlockOperatorF64/F32 (the operator interface every solver binding takes,
// subclassable from Python through the trampoline in py_operator.hpp), MaskedOperatorF64/F32, and the free
// functions block_norms and masked_kernel_isa.
//
// Inputs are validated here with ValueError messages that name the argument; arrays must already have
// the operator's dtype and be C-contiguous (nothing is converted silently: a float32 copy of a float64
// problem, or a copy of a large X, should be the caller's decision). X is viewed, never copied: the
// operator keeps X and `patterns` alive (py::keep_alive). The GIL is released during the computation.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "array_utils.hpp"
#include "bindings.hpp"
#include "convexnn/operator/cone_operator.hpp"
#include "convexnn/operator/masked_operator.hpp"
#include "convexnn/patterns/pattern_set.hpp"
#include "py_operator.hpp"

namespace py = pybind11;

namespace convexnn::python {
namespace {

template <class T>
const char* dtype_name() {
  return sizeof(T) == sizeof(float) ? "float32" : "float64";
}

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// The object itself as an array of dtype T (no conversion, no copy), or ValueError naming `name`.
template <class T>
py::array_t<T, 0> exact_array(const py::object& obj, const char* name, bool need_c_contiguous) {
  CONVEXNN_CHECK(py::isinstance<py::array>(obj), name << " must be a numpy.ndarray of dtype " << dtype_name<T>()
                                                      << ", got "
                                                      << std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const bool same_dtype = py::isinstance<py::array_t<T, 0>>(a);  // equivalent to T, native byte order
  CONVEXNN_CHECK(same_dtype,
                 name << " must have dtype " << dtype_name<T>() << ", got " << std::string(py::str(a.dtype())));
  CONVEXNN_CHECK(!need_c_contiguous || (a.flags() & py::array::c_style),
                 name << " must be C-contiguous (use numpy.ascontiguousarray)");
  return py::reinterpret_borrow<py::array_t<T, 0>>(a);
}

// subset=None -> all blocks; otherwise a 1-D integer array (indices, repeats allowed) or a boolean
// selector of length n_blocks; negative indices count from the end. Returns the indices (empty vector + all=true for
// None).
struct SubsetArg {
  bool all = true;
  std::vector<index_t> index;
  BlockSubset view() const {
    return all ? BlockSubset{} : BlockSubset{index.data(), static_cast<index_t>(index.size())};
  }
  index_t count(index_t n_blocks) const { return all ? n_blocks : static_cast<index_t>(index.size()); }
};

SubsetArg parse_subset(const py::object& obj, index_t n_blocks) {
  SubsetArg s;
  if (obj.is_none()) return s;
  s.all = false;
  py::array a = py::array::ensure(obj);
  CONVEXNN_CHECK(a, "subset must be None or a 1-D array of block indices");
  CONVEXNN_CHECK(a.ndim() == 1, "subset must be 1-D, got shape " << shape_of(a));
  const char kind = a.dtype().kind();
  if (kind == 'b') {
    CONVEXNN_CHECK(a.shape(0) == n_blocks,
                   "boolean subset must have length n_blocks = " << n_blocks << ", got " << a.shape(0));
    auto b = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(a);
    for (index_t i = 0; i < n_blocks; ++i)
      if (b.data()[i]) s.index.push_back(i);
    return s;
  }
  CONVEXNN_CHECK(kind == 'i' || kind == 'u' || a.shape(0) == 0,
                 "subset must hold integer block indices (or booleans), got dtype " << std::string(py::str(a.dtype())));
  auto ints = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  s.index.assign(ints.data(), ints.data() + ints.shape(0));
  // Negative indices count from the end, as in numpy (and convexnn.reference).
  for (std::size_t k = 0; k < s.index.size(); ++k) {
    CONVEXNN_CHECK(s.index[k] >= -n_blocks && s.index[k] < n_blocks,
                   "subset[" << k << "] = " << s.index[k] << " is out of range for " << n_blocks << " blocks");
    if (s.index[k] < 0) s.index[k] += n_blocks;
  }
  return s;
}

// Coefficient blocks U (S, d, c) or (S, d) (then c = 1 and `squeeze`).
template <class T>
struct BlocksArg {
  py::array_t<T, 0> a;
  index_t c = 1;
  bool squeeze = false;
};

template <class T>
BlocksArg<T> parse_blocks(const py::object& obj, const char* name, index_t S, index_t d) {
  BlocksArg<T> b{exact_array<T>(obj, name, true)};
  CONVEXNN_CHECK(b.a.ndim() == 2 || b.a.ndim() == 3,
                 name << " must have shape (S, d, c) or (S, d), got " << shape_of(b.a));
  CONVEXNN_CHECK(b.a.shape(0) == S && b.a.shape(1) == d,
                 name << " must have shape (" << S << ", " << d << "[, c]) (S = number of blocks"
                      << " in the subset, d = block_dim), got " << shape_of(b.a));
  b.squeeze = b.a.ndim() == 2;
  b.c = b.squeeze ? 1 : b.a.shape(2);
  return b;
}

LipschitzMethod parse_method(const std::string& m) {
  if (m == "auto") return LipschitzMethod::Auto;
  if (m == "gram") return LipschitzMethod::Gram;
  if (m == "power") return LipschitzMethod::PowerIteration;
  CONVEXNN_CHECK(false, "method must be 'auto', 'gram' or 'power', got '" << m << "'");
  return LipschitzMethod::Auto;
}

ProductMethod parse_product_method(const std::string& m) {
  if (m == "auto") return ProductMethod::Auto;
  if (m == "gemm") return ProductMethod::Gemm;
  if (m == "tables") return ProductMethod::Tables;
  if (m == "amx") return ProductMethod::Amx;
  if (m == "bf16") return ProductMethod::Bf16;
  CONVEXNN_CHECK(false, "method must be 'auto', 'gemm', 'tables', 'amx' or 'bf16', got '" << m << "'");
  return ProductMethod::Auto;
}

const char* product_method_name(ProductMethod m) {
  switch (m) {
    case ProductMethod::Gemm: return "gemm";
    case ProductMethod::Tables: return "tables";
    case ProductMethod::Amx: return "amx";
    case ProductMethod::Bf16: return "bf16";
    default: return "auto";
  }
}

template <class T>
std::unique_ptr<MaskedOperator<T>> make_operator_with_masks(const py::object& X_obj, const py::object& patterns) {
  auto Xa = exact_array<T>(X_obj, "X", false);
  MatrixView<T> X = matrix_view<T>(Xa, "X");
  if (py::isinstance<PatternSet>(patterns))
    return std::make_unique<MaskedOperator<T>>(X, patterns.cast<const PatternSet&>());
  // Dense masks (n, P): packed once into words the operator owns.
  CONVEXNN_CHECK(py::isinstance<py::array>(patterns),
                 "patterns must be a convexnn._core.PatternSet or a boolean array of shape (n, P)");
  auto m = py::reinterpret_borrow<py::array>(patterns);
  CONVEXNN_CHECK(m.ndim() == 2 && m.shape(0) == X.rows,
                 "patterns (dense masks) must have shape (n, P) with n = " << X.rows << ", got " << shape_of(m));
  CONVEXNN_CHECK(m.dtype().kind() == 'b',
                 "patterns (dense masks) must be boolean, got dtype " << std::string(py::str(m.dtype())));
  auto b = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(m.attr("view")("uint8"));
  auto words = pack_masks(b.data(), m.shape(0), m.shape(1), m.shape(1), 1);
  return std::make_unique<MaskedOperator<T>>(X, std::move(words), m.shape(1));
}

template <class T>
std::unique_ptr<MaskedOperator<T>> make_operator(const py::object& X_obj, const py::object& patterns,
                                                 const std::string& method) {
  const ProductMethod product_method = parse_product_method(method);  // validated before any work
  auto op = make_operator_with_masks<T>(X_obj, patterns);
  op->set_product_method(product_method);
  return op;
}

template <class T>
std::string base_doc() {
  const std::string self = sizeof(T) == sizeof(float) ? "BlockOperatorF32" : "BlockOperatorF64";
  const std::string dt = dtype_name<T>();
  return R"doc(
Block operator A(U) = sum_i A_i U_i with blocks A_i (n x d), i = 0..P-1, and its adjoint: the interface
every convexnn solver (solve_gated, solve_gated_path, gated_beta_max, gated_certificate; solve_relu through a
ConeOperator, which adds the rows of the cone constraints) is written against. MaskedOperator)doc" +
         std::string(sizeof(T) == sizeof(float) ? "F32" : "F64") + R"doc( implements it in C++ (A_i = D_i X).

Subclass it in Python to drive the C++ solvers with your own products:

    class MyOperator(convexnn._core.)doc" +
         self + R"doc():
        def __init__(self, ...):
            super().__init__(n_samples, block_dim, n_blocks)   # the fixed shape (n, d, P)
        def forward(self, U, subset):   # U (S, d, c) )doc" +
         dt + R"doc(, subset None or int64 (S,)
            return z                    # (n, c) )doc" +
         dt + R"doc(: sum_k A_{s_k} U_k
        def adjoint(self, R, subset):   # R (n, c) )doc" +
         dt + R"doc(
            return G                    # (S, d, c) )doc" +
         dt + R"doc(: G_k = A_{s_k}^T R
        def block_gram(self, i):        # i: int
            return gram                 # (d, d) )doc" +
         dt + R"doc(: A_i^T A_i

subset None means all P blocks (S = P); otherwise the S block indices the block arrays follow. The
solvers release the GIL and re-acquire it for each call; the arguments are fresh arrays the method may
keep. A result that is not an ndarray, or has another dtype, raises TypeError, another shape ValueError,
both naming the method; an exception raised by a method propagates out of the solver unchanged.
Override calls are serial: the solvers never call an operator from several threads at once.

Parameters
----------
n_samples : int >= 1
block_dim : int >= 1
n_blocks : int >= 0
)doc";
}

// ConeOperatorF64(op, X, patterns): any BlockOperator with the rows of its cone constraints, for solve_relu.
template <class T>
std::unique_ptr<ConeOperator<T>> make_cone_operator(const BlockOperator<T>& op, const py::object& X_obj,
                                                    const PatternSet& patterns) {
  auto Xa = exact_array<T>(X_obj, "X", false);
  return std::make_unique<CompositeConeOperator<T>>(op, matrix_view<T>(Xa, "X"), patterns);
}

template <class T>
void bind_cone_operator(py::module_& m) {
  using Cone = ConeOperator<T>;
  const std::string self = sizeof(T) == sizeof(float) ? "ConeOperatorF32" : "ConeOperatorF64";
  const std::string doc = R"doc(
The operator of the exact ReLU program (solve_relu): a block operator that also exposes the rows of its cone
constraints (2 D_i - I) X v >= 0, i.e. X (m, d) and a PatternSet on those m rows (pattern i constrains block i).
MaskedOperator)doc" + std::string(sizeof(T) == sizeof(float) ? "F32" : "F64") +
                          R"doc( is one (built from a PatternSet); this constructor makes one of any operator:

)doc" + self + R"doc((op, X, patterns)
    op : BlockOperator of this dtype (n outputs, P blocks of dimension d), e.g. a Python subclass (kept alive).
    X : ndarray (m, d) of this dtype, C- or F-ordered (viewed, never copied; kept alive).
    patterns : PatternSet on the m rows of X with P patterns (kept alive).
m = n asserts that op is the masked operator A_i = D_i X on these rows (the ray-Newton design is then built
from X and the masks); m != n, e.g. a pooled convolutional operator (n images, m = n K patch rows), builds
it from op's single-block products. Products are forwarded to op.)doc";
  py::class_<Cone, BlockOperator<T>>(m, self.c_str(), doc.c_str())
      .def(py::init(&make_cone_operator<T>), py::arg("op"), py::arg("X"), py::arg("patterns"),
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>(), py::keep_alive<1, 4>())
      .def_property_readonly("masked_outputs", &Cone::masked_outputs,
                             "True when the outputs are the constraint rows (A_i = D_i X, m = n).")
      .def_property_readonly(
          "n_constraint_rows", [](const Cone& op) { return op.constraint_rows().rows; },
          "m, the number of rows of the cone constraints.");
}

template <class T>
void bind_masked_operator(py::module_& m, const char* base_name, const char* name) {
  using Op = MaskedOperator<T>;
  using Base = BlockOperator<T>;
  py::class_<Base, PyBlockOperator<T>>(m, base_name, base_doc<T>().c_str())
      .def(py::init<index_t, index_t, index_t>(), py::arg("n_samples"), py::arg("block_dim"), py::arg("n_blocks"),
           "The operator's fixed shape: n_samples outputs n, blocks of dimension d = block_dim, P = n_blocks blocks.")
      .def_property_readonly("n_samples", &Base::n_samples, "n, the number of output rows.")
      .def_property_readonly("block_dim", &Base::block_dim, "d, the dimension of every block.")
      .def_property_readonly("n_blocks", &Base::n_blocks, "P, the number of blocks.");

  bind_cone_operator<T>(m);
  py::class_<Op, ConeOperator<T>>(m, name, R"doc(
Matrix-free masked products with bit-packed patterns: A(U) = sum_i D_i X U_i and its adjoint.

MaskedOperator(X, patterns, method="auto")
    X : ndarray (n, d) of this operator's dtype, C- or F-ordered (viewed, never copied; kept alive).
    patterns : convexnn._core.PatternSet on the same n rows (kept alive), or a boolean array (n, P)
        of dense masks (packed once into bits owned by the operator).
    method : "auto", "gemm", "tables", "amx" or "bf16". How forward/adjoint compute: row tiles of X times
        coefficient blocks by BLAS GEMM with the masks in SIMD epilogues ("gemm"); subset-sum tables over
        groups of 4 rows / 4 patterns, about 4x fewer operations ("tables"); float32 only, the masks as a
        bf16 0/1 matrix on Intel AMX tiles with the float32 operand split exactly into three bf16 terms
        and float32 accumulation ("amx", where amx_available()); the same exact split on the AVX-512 BF16
        dot-product instruction for CPUs without AMX ("bf16", float32 only, where bf16_available(); measured
        slower than the tables, so "auto" never picks it: docs/tuning.md). "auto" picks the tables when there are
        enough patterns, and then AMX instead in float32 where the CPU has it. All are exact up to rounding
        (they round differently). Also a settable property. With the tables, AMX or bf16 the operator also keeps
        the masks row-major (n * P / 8 more bytes, up to 256 MiB; beyond that the forward transposes them
        per call), which the full-set forward reads.

Every product takes `subset`: None (all P blocks) or block indices (1-D integer array, repeats allowed,
negative ones count from the end, or a boolean selector of length P); the block arrays then hold len(subset) blocks in that order.
Arrays must have the operator's dtype and be C-contiguous; otherwise ValueError naming the argument.
Results are bitwise identical for every thread count.)doc")
      .def(py::init(&make_operator<T>), py::arg("X"), py::arg("patterns"), py::arg("method") = "auto",
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>())
      .def_property(
          "method", [](const Op& op) { return product_method_name(op.product_method()); },
          [](Op& op, const std::string& m) { op.set_product_method(parse_product_method(m)); },
          "Product method of forward/adjoint: 'auto', 'gemm', 'tables', 'amx' or 'bf16'.")
      .def(
          "resolved_method",
          [](const Op& op, index_t c, index_t n_blocks) {
            CONVEXNN_CHECK(c >= 1, "c must be >= 1, got " << c);
            return std::string(product_method_name(op.resolved_method(c, n_blocks < 0 ? op.n_blocks() : n_blocks)));
          },
          py::arg("c") = 1, py::arg("n_blocks") = -1,
          "The method ('gemm', 'tables', 'amx' or 'bf16') a product with c columns over n_blocks blocks (default: all P) "
          "runs.")
      .def(
          "uses_tables",
          [](const Op& op, index_t c, index_t n_blocks) {
            CONVEXNN_CHECK(c >= 1, "c must be >= 1, got " << c);
            return op.uses_tables(c, n_blocks < 0 ? op.n_blocks() : n_blocks);
          },
          py::arg("c") = 1, py::arg("n_blocks") = -1,
          "Whether a product with c columns over n_blocks blocks (default: all P) runs on the tables.")
      .def(
          "forward",
          [](const Op& op, const py::object& U_obj, const py::object& subset_obj) {
            const SubsetArg subset = parse_subset(subset_obj, op.n_blocks());
            const auto U = parse_blocks<T>(U_obj, "U", subset.count(op.n_blocks()), op.block_dim());
            const index_t n = op.n_samples(), c = U.c;
            py::array_t<T> z = U.squeeze ? py::array_t<T>({n}) : py::array_t<T>({n, c});
            T* out = z.mutable_data();
            if (c > 0) {
              py::gil_scoped_release release;
              op.forward(U.a.data(), c, out, subset.view());
            }
            return z;
          },
          py::arg("U"), py::arg("subset") = py::none(),
          "z = sum_k D_{s_k} X U_k. U (S, d, c) -> z (n, c); U (S, d) -> z (n,).")
      .def(
          "adjoint",
          [](const Op& op, const py::object& R_obj, const py::object& subset_obj) {
            const SubsetArg subset = parse_subset(subset_obj, op.n_blocks());
            auto R = exact_array<T>(R_obj, "R", true);
            CONVEXNN_CHECK((R.ndim() == 1 || R.ndim() == 2) && R.shape(0) == op.n_samples(),
                           "R must have shape (n,) or (n, c) with n = " << op.n_samples() << ", got " << shape_of(R));
            const bool squeeze = R.ndim() == 1;
            const index_t S = subset.count(op.n_blocks()), d = op.block_dim(), c = squeeze ? 1 : R.shape(1);
            py::array_t<T> G = squeeze ? py::array_t<T>({S, d}) : py::array_t<T>({S, d, c});
            T* out = G.mutable_data();
            if (c > 0) {
              py::gil_scoped_release release;
              op.adjoint(R.data(), c, out, subset.view());
            }
            return G;
          },
          py::arg("R"), py::arg("subset") = py::none(),
          "G_k = X^T D_{s_k} R. R (n, c) -> G (S, d, c); R (n,) -> G (S, d).")
      .def(
          "cone_violation",
          [](const Op& op, const py::object& V_obj, const py::object& subset_obj) {
            const SubsetArg subset = parse_subset(subset_obj, op.n_blocks());
            const auto V = parse_blocks<T>(V_obj, "V", subset.count(op.n_blocks()), op.block_dim());
            const index_t S = subset.count(op.n_blocks()), c = V.c;
            py::array_t<T> out = V.squeeze ? py::array_t<T>({S}) : py::array_t<T>({S, c});
            T* o = out.mutable_data();
            if (c > 0) {
              py::gil_scoped_release release;
              op.cone_violation_gemm(V.a.data(), c, o, subset.view());
            }
            return out;
          },
          py::arg("V"), py::arg("subset") = py::none(),
          "out[k, j] = max(0, max_rows -((2 D_{s_k} - I) X V_k)[:, j]), the cone-constraint violation of each "
          "block and column, computed without forming the (n, P) products. V (S, d, c) -> (S, c); (S, d) -> (S,).")
      .def(
          "block_gram",
          [](const Op& op, index_t i) {
            CONVEXNN_CHECK(i >= 0 && i < op.n_blocks(), "i = " << i << " is out of range [0, " << op.n_blocks() << ")");
            const index_t d = op.block_dim();
            py::array_t<T> g({d, d});
            T* out = g.mutable_data();
            py::gil_scoped_release release;
            op.block_gram(i, out);
            return g;
          },
          py::arg("i"), "X^T D_i X, shape (d, d).")
      .def(
          "block_lipschitz",
          [](const Op& op, const py::object& subset_obj, const std::string& method) {
            const SubsetArg subset = parse_subset(subset_obj, op.n_blocks());
            const LipschitzMethod how = parse_method(method);
            py::array_t<T> out({subset.count(op.n_blocks())});
            T* o = out.mutable_data();
            py::gil_scoped_release release;
            op.block_lipschitz(o, subset.view(), how);
            return out;
          },
          py::arg("subset") = py::none(), py::arg("method") = "auto",
          "||D_i X||_2^2 for each block of the subset, shape (S,). method: 'gram' (X^T D_i X and LAPACK "
          "syev, exact), 'power' (batched power iteration, a lower estimate converged to a relative change "
          "of 1e-10 in float64 / 1e-5 in float32), or 'auto' (gram when d is small enough to be cheaper).")
      .def_property_readonly("dtype", [](const Op&) { return py::dtype::of<T>(); });
}

}  // namespace

void bind_operators(py::module_& m) {
  bind_masked_operator<double>(m, "BlockOperatorF64", "MaskedOperatorF64");
  bind_masked_operator<float>(m, "BlockOperatorF32", "MaskedOperatorF32");

  m.def(
      "block_norms",
      [](const py::object& U_obj, const std::string& groups) {
        CONVEXNN_CHECK(groups == "output" || groups == "neuron",
                       "groups must be 'output' or 'neuron', got '" << groups << "'");
        CONVEXNN_CHECK(py::isinstance<py::array>(U_obj), "U must be a numpy.ndarray of shape (S, d, c) or (S, d)");
        auto a = py::reinterpret_borrow<py::array>(U_obj);
        CONVEXNN_CHECK(a.ndim() == 2 || a.ndim() == 3, "U must have shape (S, d, c) or (S, d), got " << shape_of(a));
        const bool neuron = groups == "neuron";
        auto run = [&](auto tag) -> py::array {
          using T = decltype(tag);
          auto U = exact_array<T>(U_obj, "U", true);
          const index_t S = U.shape(0), d = U.shape(1), c = U.ndim() == 3 ? U.shape(2) : 1;
          const bool squeeze = U.ndim() == 2 || neuron;
          py::array_t<T> out = squeeze ? py::array_t<T>({S}) : py::array_t<T>({S, c});
          if (c == 0) {
            std::fill(out.mutable_data(), out.mutable_data() + out.size(), T(0));
            return out;
          }
          T* o = out.mutable_data();
          py::gil_scoped_release release;
          block_norms<T>(U.data(), S, d, c, neuron, o);
          return out;
        };
        if (a.dtype().is(py::dtype::of<float>())) return run(float{});
        return run(double{});
      },
      py::arg("U"), py::arg("groups") = "output",
      "Group norms of blocks U (S, d, c): 'output' -> column norms (S, c) (or (S,) for U (S, d)); "
      "'neuron' -> Frobenius norms (S,). float32 or float64.");

  m.def("amx_available", &amx_available,
        "Whether this CPU and OS can run the 'amx' product method (Intel AMX-TILE, AMX-BF16 and AVX-512BW, "
        "and the Linux permission to use the tiles). False when the environment variable CONVEXNN_AMX=0 was "
        "set before the first product.");
  m.def("bf16_available", &bf16_available,
        "Whether this CPU and OS can run the 'bf16' product method (AVX512_BF16 with AVX512F, AVX512BW and "
        "AVX512VL, and an OS that saves the zmm state). False when the environment variable CONVEXNN_BF16=0 "
        "was set before the first product.");
  m.def("masked_kernel_isa", &masked_kernel_isa,
        "SIMD variant of the mask kernels chosen for this CPU: 'avx512', 'avx2' or 'generic'.");
}

}  // namespace convexnn::python
