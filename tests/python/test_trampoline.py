"""Python subclasses of ``_core.BlockOperatorF64/F32`` (the pybind11 trampoline) drive the C++ solvers.

A pure-NumPy masked operator, A_i = D_i X with D_i = diag(1[X g_i >= 0]) (Pilanci & Ergen, "Neural Networks
are Convex Regularizers", ICML 2020, eq. (8) gated and eq. (3)-(4) exact programs), must reproduce the solves
of the C++ ``MaskedOperatorF64`` to 1e-12; malformed overrides must raise errors naming the method, and an
exception raised by an override must come out of the solver unchanged.
"""

import numpy as np
import pytest

from convexnn import _core


class _NumpyMasked:
    """A_i = D_i X in plain NumPy: the reference the C++ MaskedOperator implements."""

    def __init__(self, X, masks):
        X = np.ascontiguousarray(X, dtype=self.dtype)
        super().__init__(X.shape[0], X.shape[1], masks.shape[1])
        self.X = X
        self.D = masks.astype(self.dtype)
        self.calls = {"forward": 0, "adjoint": 0, "block_gram": 0}

    def _masks(self, subset):
        return self.D if subset is None else self.D[:, subset]

    def forward(self, U, subset):
        self.calls["forward"] += 1
        return np.einsum("ns,snc->nc", self._masks(subset), self.X @ U)  # X @ U: (S, n, c)

    def adjoint(self, R, subset):
        self.calls["adjoint"] += 1
        return np.einsum("nd,ns,nc->sdc", self.X, self._masks(subset), R, optimize=True)

    def block_gram(self, i):
        self.calls["block_gram"] += 1
        Xi = self.X * self.D[:, i, None]
        return Xi.T @ Xi


class NumpyMaskedOperator(_NumpyMasked, _core.BlockOperatorF64):
    dtype = np.float64


class NumpyMaskedOperatorF32(_NumpyMasked, _core.BlockOperatorF32):
    dtype = np.float32


def _problem(seed=0, n=40, d=4, P=8, c=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d - 1))
    Xb = np.hstack([X, np.ones((n, 1))])
    pats = _core.PatternSet.from_gates(Xb, rng.standard_normal((P, d)))
    y = np.maximum(X @ rng.standard_normal((d - 1, c)), 0) + 0.1 * rng.standard_normal((n, c))
    return Xb, pats, y


def _rel(a, b):
    scale = max(np.max(np.abs(b)), 1e-300)
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / scale


def test_base_class_shape_and_validation():
    op = NumpyMaskedOperator(np.ones((3, 2)), np.ones((3, 5), dtype=bool))
    assert (op.n_samples, op.block_dim, op.n_blocks) == (3, 2, 5)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        _core.BlockOperatorF64(0, 2, 1)
    with pytest.raises(ValueError, match="block_dim must be >= 1"):
        _core.BlockOperatorF32(3, 0, 1)
    assert "super().__init__(n_samples, block_dim, n_blocks)" in _core.BlockOperatorF64.__doc__


@pytest.mark.parametrize("c", [1, 2])
def test_numpy_operator_reproduces_the_cpp_gated_solve(c):
    Xb, pats, y = _problem(seed=c, c=c)
    cpp = _core.MaskedOperatorF64(Xb, pats)
    npo = NumpyMaskedOperator(Xb, pats.dense())
    Y = y if c > 1 else y[:, 0]
    beta = 0.3 * _core.gated_beta_max(cpp, Y)
    assert _core.gated_beta_max(npo, Y) == pytest.approx(_core.gated_beta_max(cpp, Y), rel=1e-13)
    # tol = 0 with a fixed budget: both solves run to the rounding floor (stopping at "gap <= 1e-12" would
    # leave the coefficients 1e-11 apart along the flat directions of the objective).
    kw = dict(tol=0.0, max_iter=400)
    ref = _core.solve_gated(cpp, Y, beta, **kw)
    got = _core.solve_gated(npo, Y, beta, **kw)
    assert max(ref["gap"], got["gap"]) <= 1e-13
    assert got["objective"] == pytest.approx(ref["objective"], rel=1e-12)
    assert _rel(got["U"], ref["U"]) <= 1e-12
    assert npo.calls["forward"] > 0 and npo.calls["adjoint"] > 0
    # The certificate of a given point, and float64 certificates of a float32 C++ solve by a Python operator.
    cert_ref = _core.gated_certificate(cpp, ref["U"], Y, beta)
    cert_np = _core.gated_certificate(npo, ref["U"], Y, beta)
    assert cert_np["primal"] == pytest.approx(cert_ref["primal"], rel=1e-13)
    assert cert_np["dual"] == pytest.approx(cert_ref["dual"], rel=1e-12)
    op32 = _core.MaskedOperatorF32(Xb.astype(np.float32), pats)
    r32 = _core.solve_gated(op32, Y, beta, tol=1e-6, certify_op=npo)
    r32_ref = _core.solve_gated(op32, Y, beta, tol=1e-6, certify_op=cpp)
    assert r32["objective"] == pytest.approx(r32_ref["objective"], rel=1e-12)


def test_numpy_operator_drives_the_path_solver():
    Xb, pats, y = _problem(seed=1)
    cpp = _core.MaskedOperatorF64(Xb, pats)
    npo = NumpyMaskedOperator(Xb, pats.dense())
    bmax = _core.gated_beta_max(cpp, y[:, 0])
    betas = [0.3 * bmax, 0.15 * bmax]
    ref = _core.solve_gated_path(cpp, y[:, 0], betas, tol=0.0, max_iter=400)
    got = _core.solve_gated_path(npo, y[:, 0], betas, tol=0.0, max_iter=400)
    for r, g in zip(ref, got):
        assert max(r["gap"], g["gap"]) <= 1e-13
        assert g["objective"] == pytest.approx(r["objective"], rel=1e-12)
        # the coefficients carry the products' rounding times the problem's conditioning: 3.7e-12 against the
        # AVX-512 kernels of an Intel machine, below 1e-12 against the AVX2 ones
        assert _rel(g["U"], r["U"]) <= 1e-10


def test_float32_numpy_operator_runs_the_float32_solver():
    Xb, pats, y = _problem(seed=2)
    X32 = Xb.astype(np.float32)
    cpp = _core.MaskedOperatorF32(X32, pats)
    npo = NumpyMaskedOperatorF32(X32, pats.dense())
    beta = 0.3 * _core.gated_beta_max(cpp, y[:, 0])
    ref = _core.solve_gated(cpp, y[:, 0], beta, tol=1e-5)
    got = _core.solve_gated(npo, y[:, 0], beta, tol=1e-5)
    # float32 products round differently in NumPy and in C++: agreement to float32 accuracy.
    assert got["objective"] == pytest.approx(ref["objective"], rel=1e-5)


@pytest.mark.parametrize("loss,c", [("squared", 1), ("squared", 2), ("logistic", 1)])
def test_numpy_operator_reproduces_the_cpp_exact_solve(loss, c):
    # A problem whose optimum the solver pins down to rounding (both runs take the same iterations).
    Xb, pats, y = _problem(seed=3 + c, c=c, n=100, d=3, P=6)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    cpp = _core.MaskedOperatorF64(Xb, pats)
    npo = NumpyMaskedOperator(Xb, pats.dense())
    kw = dict(loss=loss, tol=1e-12, max_iter=3000)
    ref = _core.solve_relu(cpp, y, 1.0, **kw)
    got = _core.solve_relu(_core.ConeOperatorF64(npo, Xb, pats), y, 1.0, **kw)
    assert ref["status"] == got["status"] == "converged"
    assert got["objective"] == pytest.approx(ref["objective"], rel=1e-12)
    assert _rel(got["V"], ref["V"]) <= 1e-12
    assert _rel(got["W"], ref["W"]) <= 1e-12


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cone_operator_around_the_cpp_operator_is_bitwise_the_masked_operator(dtype):
    # The composite forwards the products to the same operator, and its default cone violation (a row loop)
    # has the bits of the MaskedOperator's SIMD kernel: the same solve, bit for bit, max_violation included.
    Xb, pats, y = _problem(seed=4, n=150, d=3, P=6)
    X = Xb.astype(dtype)
    cpp = (_core.MaskedOperatorF32 if dtype == np.float32 else _core.MaskedOperatorF64)(X, pats)
    cone = (_core.ConeOperatorF32 if dtype == np.float32 else _core.ConeOperatorF64)(cpp, X, pats)
    assert cone.masked_outputs and cone.n_constraint_rows == 150
    kw = dict(tol=1e-10, max_iter=300)
    ref = _core.solve_relu(cpp, y, 1.0, **kw)
    got = _core.solve_relu(cone, y, 1.0, **kw)
    for key in ("objective", "dual_objective", "gap", "max_violation", "max_dual_constraint", "n_iter", "status"):
        assert got[key] == ref[key] or (np.isnan(got[key]) and np.isnan(ref[key])), key
    assert np.array_equal(got["V"], ref["V"]) and np.array_equal(got["W"], ref["W"])
    assert ref["max_violation"] > 0.0  # rounding-level, but computed (not a trivially equal zero)


class _Broken(NumpyMaskedOperator):
    def __init__(self, X, masks, which, how):
        super().__init__(X, masks)
        self.which, self.how = which, how

    def _spoil(self, name, out):
        if name != self.which:
            return out
        if self.how == "shape":
            return out[:-1]
        if self.how == "dtype":
            return out.astype(np.float32)
        if self.how == "list":
            return out.tolist()
        raise ZeroDivisionError(f"boom in {name}")

    def forward(self, U, subset):
        return self._spoil("forward", super().forward(U, subset))

    def adjoint(self, R, subset):
        return self._spoil("adjoint", super().adjoint(R, subset))

    def block_gram(self, i):
        return self._spoil("block_gram", super().block_gram(i))


@pytest.mark.parametrize("which", ["forward", "adjoint", "block_gram"])
@pytest.mark.parametrize(
    "how,exc,pattern",
    [
        ("shape", ValueError, r"_Broken\.{w} must return shape"),
        ("dtype", TypeError, r"_Broken\.{w} must return dtype float64, got float32"),
        ("list", TypeError, r"_Broken\.{w} must return a numpy.ndarray"),
        ("raise", ZeroDivisionError, r"boom in {w}"),
    ],
)
def test_bad_overrides_raise_errors_naming_the_method(which, how, exc, pattern):
    Xb, pats, y = _problem(seed=7)
    op = _Broken(Xb, pats.dense(), which, how)
    beta = 0.1 * _core.gated_beta_max(_core.MaskedOperatorF64(Xb, pats), y[:, 0])
    # BCD on all blocks: the block Gram matrices, the adjoint and the forward products are all needed.
    with pytest.raises(exc, match=pattern.format(w=which)):
        _core.solve_gated(op, y[:, 0], beta, solver="bcd", working_set=False, max_iter=50)
    if which != "block_gram":
        with pytest.raises(exc, match=pattern.format(w=which)):
            _core.solve_relu(_core.ConeOperatorF64(op, Xb, pats), y, beta, max_iter=20)


def test_missing_override_and_keyboard_interrupt():
    class NoAdjoint(_core.BlockOperatorF64):
        def __init__(self):
            super().__init__(4, 2, 3)

        def forward(self, U, subset):
            return np.zeros((4, U.shape[2]))

    with pytest.raises(TypeError, match=r"must define adjoint\(R, subset\)"):
        _core.gated_beta_max(NoAdjoint(), np.ones(4))

    class Interrupting(NoAdjoint):
        def adjoint(self, R, subset):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _core.gated_beta_max(Interrupting(), np.ones(4))


def test_subset_argument_is_int64_and_inputs_are_private_copies():
    Xb, pats, y = _problem(seed=8)
    seen = []

    class Recording(NumpyMaskedOperator):
        def forward(self, U, subset):
            seen.append((U, U.copy(), subset))
            return super().forward(U, subset)

    op = Recording(Xb, pats.dense())
    beta = 0.5 * _core.gated_beta_max(op, y[:, 0])
    _core.solve_gated(op, y[:, 0], beta, tol=1e-8)
    subsets = [s for _, _, s in seen if s is not None]
    assert subsets, "the working-set solver calls forward on subsets"
    assert all(s.dtype == np.int64 and s.ndim == 1 for s in subsets)
    assert all(U.shape == (len(s) if s is not None else op.n_blocks, op.block_dim, 1) for U, _, s in seen)
    # Arrays kept by the override are copies the solver does not write to after the call.
    assert all(np.array_equal(U, U_at_call) for U, U_at_call, _ in seen)


# ---- the exact solver with cone constraints on other rows than the operator's outputs ----------------------


class PooledPatchOperator(_core.BlockOperatorF64):
    """n images of K patches each: A_i U = sum over an image's K patches p of 1[p^T g_i >= 0] p^T U.

    The patch rows Xc (n K, d) carry the cone constraints (2 D_i - I) Xc v >= 0; the outputs are the n images
    (a global-average-pooled convolutional layer, Ergen & Pilanci, "Implicit Convex Regularizers of CNN
    Architectures", ICLR 2021, the pooled two-layer CNN program).
    """

    def __init__(self, Xc, masks, K):
        self.Xc, self.D, self.K = Xc, masks.astype(np.float64), K
        super().__init__(Xc.shape[0] // K, Xc.shape[1], masks.shape[1])

    def _masks(self, subset):
        return self.D if subset is None else self.D[:, subset]

    def forward(self, U, subset):
        Z = np.einsum("ms,smc->mc", self._masks(subset), self.Xc @ U)  # (n K, c) patch outputs
        return Z.reshape(self.n_samples, self.K, -1).sum(axis=1)

    def adjoint(self, R, subset):
        return np.einsum("md,ms,mc->sdc", self.Xc, self._masks(subset), np.repeat(R, self.K, axis=0))

    def explicit_blocks(self):
        """A_i (n, d) for every block: the explicit formulation's design matrices."""
        return np.einsum("ms,md->smd", self.D, self.Xc).reshape(self.n_blocks, self.n_samples, self.K, -1).sum(2)

    def block_gram(self, i):
        A = self.explicit_blocks()[i]
        return A.T @ A


def _pooled_problem(seed=0, n=12, K=3, d=3, P=5):
    rng = np.random.default_rng(seed)
    Xc = np.hstack([rng.standard_normal((n * K, d - 1)), np.ones((n * K, 1))])
    pats = _core.PatternSet.from_gates(Xc, rng.standard_normal((P, d)))
    op = PooledPatchOperator(Xc, pats.dense(), K)
    y = rng.standard_normal((n, 1))
    return Xc, pats, op, y


def _explicit_relu_cvxpy(op, y, beta):
    cp = pytest.importorskip("cvxpy")
    A = op.explicit_blocks()
    P, d = op.n_blocks, op.block_dim
    V = [cp.Variable(d) for _ in range(P)]
    W = [cp.Variable(d) for _ in range(P)]
    sign = 2 * op.D - 1  # (n K, P): the rows of (2 D_i - I)
    z = sum(A[i] @ (V[i] - W[i]) for i in range(P))
    cons = [cp.multiply(sign[:, i], op.Xc @ V[i]) >= 0 for i in range(P)]
    cons += [cp.multiply(sign[:, i], op.Xc @ W[i]) >= 0 for i in range(P)]
    pen = sum(cp.norm(V[i]) + cp.norm(W[i]) for i in range(P))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(z - y[:, 0]) + beta * pen), cons)
    prob.solve(solver="CLARABEL")
    return prob.value


@pytest.mark.parametrize("beta", [0.3, 1.0])
def test_pooled_operator_exact_solve_matches_the_explicit_program(beta):
    Xc, pats, op, y = _pooled_problem()
    assert (Xc.shape[0], op.n_samples) == (36, 12)
    cone = _core.ConeOperatorF64(op, Xc, pats)
    assert not cone.masked_outputs and cone.n_constraint_rows == 36
    res = _core.solve_relu(cone, y, beta, tol=1e-9, max_iter=3000)
    assert res["status"] == "converged"
    assert res["n_newton"] >= 1  # ray-Newton steps built from the operator's single-block products were accepted
    opt = _explicit_relu_cvxpy(op, y, beta)
    assert res["objective"] == pytest.approx(opt, rel=1e-6)
    assert res["dual_objective"] <= opt * (1 + 1e-7) + 1e-9  # an honest lower bound
    # Feasible on the patch rows, and the objective is that of the returned point.
    V, W = res["V"][:, :, 0], res["W"][:, :, 0]
    sign = 2 * op.D - 1
    assert np.all(sign * (Xc @ V.T) >= -1e-9) and np.all(sign * (Xc @ W.T) >= -1e-9)
    A = op.explicit_blocks()
    z = np.einsum("snd,sd->n", A, V - W)
    obj = 0.5 * np.sum((z - y[:, 0]) ** 2) + beta * (np.linalg.norm(V, axis=1) + np.linalg.norm(W, axis=1)).sum()
    assert obj == pytest.approx(res["objective"], rel=1e-10)
    # Ray Newton (which needs the operator's single-block products here) reaches the same optimum as plain FISTA.
    if beta >= 1.0:  # (plain FISTA needs ~1000 iterations of Python products at beta = 0.3)
        plain = _core.solve_relu(cone, y, beta, tol=1e-9, max_iter=3000, ray_newton=False)
        assert plain["status"] == "converged"
        assert plain["objective"] == pytest.approx(res["objective"], rel=1e-9)


def test_cone_rows_must_match_the_patterns_and_the_blocks():
    Xc, pats, op, y = _pooled_problem()
    with pytest.raises(ValueError, match="patterns .* do not match the constraint rows"):
        _core.ConeOperatorF64(op, Xc[:-1], pats)
    with pytest.raises(ValueError, match="columns but the operator's blocks have dimension"):
        _core.ConeOperatorF64(op, np.ascontiguousarray(Xc[:, :-1]), pats)
    with pytest.raises(ValueError, match="X must have dtype float64"):
        _core.ConeOperatorF64(op, Xc.astype(np.float32), pats)
    with pytest.raises(ValueError, match="y must have shape"):
        _core.solve_relu(_core.ConeOperatorF64(op, Xc, pats), np.zeros((Xc.shape[0], 1)), 0.1)
    # A plain block operator is not a cone operator, and a MaskedOperator of dense masks has no PatternSet.
    with pytest.raises(TypeError):
        _core.solve_relu(op, y, 0.1)
    Xb, pats2, y2 = _problem(seed=3)
    dense = _core.MaskedOperatorF64(Xb, pats2.dense())
    with pytest.raises(ValueError, match="built from packed or dense masks, not a PatternSet"):
        _core.solve_relu(dense, y2, 0.1)


def test_adjoint_dual_norms_override_is_used_and_checked():
    Xb, pats, y = _problem(seed=9)
    cpp = _core.MaskedOperatorF64(Xb, pats)

    class WithNorms(NumpyMaskedOperator):
        def adjoint_dual_norms(self, R, subset, groups):
            self.calls["norms"] = self.calls.get("norms", 0) + 1
            G = self.adjoint(R, subset)
            return np.sqrt((G**2).sum(axis=1)) if groups == "output" else np.sqrt((G**2).sum(axis=(1, 2)))

    op = WithNorms(Xb, pats.dense())
    assert _core.gated_beta_max(op, y[:, 0]) == pytest.approx(_core.gated_beta_max(cpp, y[:, 0]), rel=1e-13)
    assert op.calls["norms"] == 1

    class WrongNorms(NumpyMaskedOperator):
        def adjoint_dual_norms(self, R, subset, groups):
            return np.zeros(3)

    with pytest.raises(ValueError, match=r"WrongNorms\.adjoint_dual_norms must return shape \(S, c\)"):
        _core.gated_beta_max(WrongNorms(Xb, pats.dense()), y[:, 0])


def test_cone_operator_helper_wraps_any_block_operator():
    from convexnn._operators import cone_operator

    Xb, pats, y = _problem(seed=5, n=60, d=3, P=5)
    npo = NumpyMaskedOperator(Xb, pats.dense())
    cone = cone_operator(npo, Xb, pats)
    assert isinstance(cone, _core.ConeOperatorF64) and cone.masked_outputs
    ref = _core.solve_relu(_core.MaskedOperatorF64(Xb, pats), y, 1.0, tol=1e-10, max_iter=500)
    got = _core.solve_relu(cone, y, 1.0, tol=1e-10, max_iter=500)
    assert got["objective"] == pytest.approx(ref["objective"], rel=1e-12)
    X32 = Xb.astype(np.float32)
    assert isinstance(cone_operator(NumpyMaskedOperatorF32(X32, pats.dense()), X32, pats), _core.ConeOperatorF32)
    with pytest.raises(TypeError, match="op must be a convexnn._core.BlockOperatorF32 or BlockOperatorF64"):
        cone_operator(np.zeros((3, 3)), Xb, pats)
