# Type stub of the compiled extension convexnn._core, generated from its docstrings and signatures by
#   python -m pybind11_stubgen convexnn._core -o <dir>   (regenerate after changing python/src/).
"""
convexnn C++ core (patterns, masked products, solvers)
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['BlockOperatorF32', 'BlockOperatorF64', 'ConeOperatorF32', 'ConeOperatorF64', 'MaskedOperatorF32', 'MaskedOperatorF64', 'PatternSet', 'amx_available', 'arrangement_summary', 'bf16_available', 'blas_num_threads', 'block_norms', 'cover_count', 'dual_constraint_oracle', 'enumerate_patterns', 'estimate_region_count', 'flip_patterns', 'gated_beta_max', 'gated_certificate', 'get_num_threads', 'loss_conjugate', 'loss_gradient', 'loss_value', 'masked_kernel_isa', 'project_onto_pattern_cone', 'project_onto_sign_cone', 'set_num_threads', 'solve_gated', 'solve_gated_path', 'solve_relu']
class PatternSet:
    """
    Bit-packed sign patterns D_i = diag(1[X g_i >= 0]) with one float64 gate per pattern.
    
    Masks are stored pattern-major in uint64 words (bit k % 64 of word k // 64 is sample k); gates are (P, d)
    float64, gate-major (row i is the gate of pattern i). Build with from_gates, sample, enumerate_patterns,
    flip_patterns or from_words. Pickles.
    """
    @staticmethod
    def from_gates(X: typing.Any, gates: typing.Any, deduplicate: bool = True, drop_zero: bool = True) -> PatternSet:
        """
        Patterns 1[X g >= 0] of the gates.
        
        X: (n, d) float32/float64, C or F order (products accumulated in float64). gates: (P, d) float array, one
        gate per ROW. deduplicate keeps the first of equal masks; drop_zero drops the all-zero mask.
        """
    @staticmethod
    def from_words(n: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, words: typing.Any, gates: typing.Any) -> PatternSet:
        """
        Rebuild from packed words (P, ceil(n/64)) uint64 and gates (P, d) (validated; no dedup).
        """
    @staticmethod
    def gaussian_gates(X: typing.Any, n_gates: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex = 0, bias_column: bool = False) -> numpy.typing.NDArray[numpy.float64]:
        """
        The (n_gates, d) Gaussian gates used by sample (before deduplication).
        
        Feature entries N(0, 1) from a portable stream (mt19937_64 + Box-Muller): the same on every platform for a
        given seed. With bias_column=True the last column of X must be ones, and each gate's last entry puts its
        hyperplane through a uniformly drawn training point.
        """
    @staticmethod
    def network_patterns(X: typing.Any, W1: typing.Any) -> PatternSet:
        """
        'Alg2' of Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020: patterns of a network's neurons, W1 of shape (m, d), one neuron per row.
        """
    @staticmethod
    def sample(X: typing.Any, n_gates: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex = 0, bias_column: bool = False) -> PatternSet:
        """
        Patterns of n_gates Gaussian gates (deduplicated, all-zero dropped); see gaussian_gates.
        """
    def __getstate__(self) -> tuple[int, int, numpy.typing.NDArray[numpy.uint64], numpy.typing.NDArray[numpy.float64]]:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, arg0: tuple) -> None:
        ...
    def dense(self) -> numpy.typing.NDArray[numpy.bool]:
        """
        (n, P) bool array of the masks (for inspection and tests).
        """
    def gates(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        (P, d) float64 copy of the gates, one per row.
        """
    def merge(self, other: PatternSet) -> tuple[PatternSet, numpy.typing.NDArray[numpy.int64]]:
        """
        (merged, index): this set's patterns then other's new ones; index[j] = position of other's pattern j.
        """
    def popcounts(self) -> numpy.typing.NDArray[numpy.int64]:
        """
        (P,) int64: number of active samples per pattern.
        """
    def recompute(self, X: typing.Any) -> PatternSet:
        """
        Masks of the same gates on new data X (m, d): no dedup, no dropping (aligned with gates).
        """
    def subset(self, indices: typing.Any) -> PatternSet:
        """
        The patterns at these indices (in [0, P), no repeats), in that order.
        """
    def words(self) -> numpy.typing.NDArray[numpy.uint64]:
        """
        (P, ceil(n/64)) uint64 copy of the packed masks.
        """
    @property
    def dim(self) -> int:
        ...
    @property
    def n_patterns(self) -> int:
        ...
    @property
    def n_samples(self) -> int:
        ...
    @property
    def words_per_pattern(self) -> int:
        ...
class BlockOperatorF64:
    """
    Block operator A(U) = sum_i A_i U_i with blocks A_i (n x d), i = 0..P-1, and its adjoint: the interface
    every convexnn solver (solve_gated, solve_gated_path, gated_beta_max, gated_certificate, solve_relu) is
    written against. MaskedOperatorF64 implements it in C++ (A_i = D_i X).
    
    Subclass it in Python to drive the C++ solvers with your own products:
    
        class MyOperator(convexnn._core.BlockOperatorF64):
            def __init__(self, ...):
                super().__init__(n_samples, block_dim, n_blocks)   # the fixed shape (n, d, P)
            def forward(self, U, subset):   # U (S, d, c) float64, subset None or int64 (S,)
                return z                    # (n, c) float64: sum_k A_{s_k} U_k
            def adjoint(self, R, subset):   # R (n, c) float64
                return G                    # (S, d, c) float64: G_k = A_{s_k}^T R
            def block_gram(self, i):        # i: int
                return gram                 # (d, d) float64: A_i^T A_i
    
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
    """
    def __init__(self, n_samples: typing.SupportsInt | typing.SupportsIndex, block_dim: typing.SupportsInt | typing.SupportsIndex, n_blocks: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        The operator's fixed shape: n_samples outputs n, blocks of dimension d = block_dim, P = n_blocks blocks.
        """
    @property
    def block_dim(self) -> int:
        """
        d, the dimension of every block.
        """
    @property
    def n_blocks(self) -> int:
        """
        P, the number of blocks.
        """
    @property
    def n_samples(self) -> int:
        """
        n, the number of output rows.
        """
class ConeOperatorF64(BlockOperatorF64):
    """
    The operator of the exact ReLU program (solve_relu): a block operator that also exposes the rows of its cone
    constraints (2 D_i - I) X v >= 0, i.e. X (m, d) and a PatternSet on those m rows (pattern i constrains block i).
    MaskedOperatorF64 is one (built from a PatternSet); this constructor makes one of any operator:
    
    ConeOperatorF64(op, X, patterns)
        op : BlockOperator of this dtype (n outputs, P blocks of dimension d), e.g. a Python subclass (kept alive).
        X : ndarray (m, d) of this dtype, C- or F-ordered (viewed, never copied; kept alive).
        patterns : PatternSet on the m rows of X with P patterns (kept alive).
    m = n asserts that op is the masked operator A_i = D_i X on these rows (the ray-Newton design is then built
    from X and the masks); m != n, e.g. a pooled convolutional operator (n images, m = n K patch rows), builds
    it from op's single-block products. Products are forwarded to op.
    """
    def __init__(self, op: BlockOperatorF64, X: typing.Any, patterns: PatternSet) -> None:
        ...
    @property
    def masked_outputs(self) -> bool:
        """
        True when the outputs are the constraint rows (A_i = D_i X, m = n).
        """
    @property
    def n_constraint_rows(self) -> int:
        """
        m, the number of rows of the cone constraints.
        """
class MaskedOperatorF64(ConeOperatorF64):
    """
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
    Results are bitwise identical for every thread count.
    """
    def __init__(self, X: typing.Any, patterns: typing.Any, method: str = 'auto') -> None:
        ...
    def adjoint(self, R: typing.Any, subset: typing.Any = None) -> numpy.typing.NDArray[numpy.float64]:
        """
        G_k = X^T D_{s_k} R. R (n, c) -> G (S, d, c); R (n,) -> G (S, d).
        """
    def block_gram(self, i: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
        """
        X^T D_i X, shape (d, d).
        """
    def block_lipschitz(self, subset: typing.Any = None, method: str = 'auto') -> numpy.typing.NDArray[numpy.float64]:
        """
        ||D_i X||_2^2 for each block of the subset, shape (S,). method: 'gram' (X^T D_i X and LAPACK syev, exact), 'power' (batched power iteration, a lower estimate converged to a relative change of 1e-10 in float64 / 1e-5 in float32), or 'auto' (gram when d is small enough to be cheaper).
        """
    def cone_violation(self, V: typing.Any, subset: typing.Any = None) -> numpy.typing.NDArray[numpy.float64]:
        """
        out[k, j] = max(0, max_rows -((2 D_{s_k} - I) X V_k)[:, j]), the cone-constraint violation of each block and column, computed without forming the (n, P) products. V (S, d, c) -> (S, c); (S, d) -> (S,).
        """
    def forward(self, U: typing.Any, subset: typing.Any = None) -> numpy.typing.NDArray[numpy.float64]:
        """
        z = sum_k D_{s_k} X U_k. U (S, d, c) -> z (n, c); U (S, d) -> z (n,).
        """
    def resolved_method(self, c: typing.SupportsInt | typing.SupportsIndex = 1, n_blocks: typing.SupportsInt | typing.SupportsIndex = -1) -> str:
        """
        The method ('gemm', 'tables', 'amx' or 'bf16') a product with c columns over n_blocks blocks (default: all P) runs.
        """
    def uses_tables(self, c: typing.SupportsInt | typing.SupportsIndex = 1, n_blocks: typing.SupportsInt | typing.SupportsIndex = -1) -> bool:
        """
        Whether a product with c columns over n_blocks blocks (default: all P) runs on the tables.
        """
    @property
    def dtype(self) -> numpy.dtype[typing.Any]:
        ...
    @property
    def method(self) -> str:
        """
        Product method of forward/adjoint: 'auto', 'gemm', 'tables', 'amx' or 'bf16'.
        """
    @method.setter
    def method(self, arg1: str) -> None:
        ...
class BlockOperatorF32:
    """
    Block operator A(U) = sum_i A_i U_i with blocks A_i (n x d), i = 0..P-1, and its adjoint: the interface
    every convexnn solver (solve_gated, solve_gated_path, gated_beta_max, gated_certificate, solve_relu) is
    written against. MaskedOperatorF32 implements it in C++ (A_i = D_i X).
    
    Subclass it in Python to drive the C++ solvers with your own products:
    
        class MyOperator(convexnn._core.BlockOperatorF32):
            def __init__(self, ...):
                super().__init__(n_samples, block_dim, n_blocks)   # the fixed shape (n, d, P)
            def forward(self, U, subset):   # U (S, d, c) float32, subset None or int64 (S,)
                return z                    # (n, c) float32: sum_k A_{s_k} U_k
            def adjoint(self, R, subset):   # R (n, c) float32
                return G                    # (S, d, c) float32: G_k = A_{s_k}^T R
            def block_gram(self, i):        # i: int
                return gram                 # (d, d) float32: A_i^T A_i
    
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
    """
    def __init__(self, n_samples: typing.SupportsInt | typing.SupportsIndex, block_dim: typing.SupportsInt | typing.SupportsIndex, n_blocks: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        The operator's fixed shape: n_samples outputs n, blocks of dimension d = block_dim, P = n_blocks blocks.
        """
    @property
    def block_dim(self) -> int:
        """
        d, the dimension of every block.
        """
    @property
    def n_blocks(self) -> int:
        """
        P, the number of blocks.
        """
    @property
    def n_samples(self) -> int:
        """
        n, the number of output rows.
        """
class ConeOperatorF32(BlockOperatorF32):
    """
    The operator of the exact ReLU program (solve_relu): a block operator that also exposes the rows of its cone
    constraints (2 D_i - I) X v >= 0, i.e. X (m, d) and a PatternSet on those m rows (pattern i constrains block i).
    MaskedOperatorF32 is one (built from a PatternSet); this constructor makes one of any operator:
    
    ConeOperatorF32(op, X, patterns)
        op : BlockOperator of this dtype (n outputs, P blocks of dimension d), e.g. a Python subclass (kept alive).
        X : ndarray (m, d) of this dtype, C- or F-ordered (viewed, never copied; kept alive).
        patterns : PatternSet on the m rows of X with P patterns (kept alive).
    m = n asserts that op is the masked operator A_i = D_i X on these rows (the ray-Newton design is then built
    from X and the masks); m != n, e.g. a pooled convolutional operator (n images, m = n K patch rows), builds
    it from op's single-block products. Products are forwarded to op.
    """
    def __init__(self, op: BlockOperatorF32, X: typing.Any, patterns: PatternSet) -> None:
        ...
    @property
    def masked_outputs(self) -> bool:
        """
        True when the outputs are the constraint rows (A_i = D_i X, m = n).
        """
    @property
    def n_constraint_rows(self) -> int:
        """
        m, the number of rows of the cone constraints.
        """
class MaskedOperatorF32(ConeOperatorF32):
    """
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
    Results are bitwise identical for every thread count.
    """
    def __init__(self, X: typing.Any, patterns: typing.Any, method: str = 'auto') -> None:
        ...
    def adjoint(self, R: typing.Any, subset: typing.Any = None) -> numpy.typing.NDArray[numpy.float32]:
        """
        G_k = X^T D_{s_k} R. R (n, c) -> G (S, d, c); R (n,) -> G (S, d).
        """
    def block_gram(self, i: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
        """
        X^T D_i X, shape (d, d).
        """
    def block_lipschitz(self, subset: typing.Any = None, method: str = 'auto') -> numpy.typing.NDArray[numpy.float32]:
        """
        ||D_i X||_2^2 for each block of the subset, shape (S,). method: 'gram' (X^T D_i X and LAPACK syev, exact), 'power' (batched power iteration, a lower estimate converged to a relative change of 1e-10 in float64 / 1e-5 in float32), or 'auto' (gram when d is small enough to be cheaper).
        """
    def cone_violation(self, V: typing.Any, subset: typing.Any = None) -> numpy.typing.NDArray[numpy.float32]:
        """
        out[k, j] = max(0, max_rows -((2 D_{s_k} - I) X V_k)[:, j]), the cone-constraint violation of each block and column, computed without forming the (n, P) products. V (S, d, c) -> (S, c); (S, d) -> (S,).
        """
    def forward(self, U: typing.Any, subset: typing.Any = None) -> numpy.typing.NDArray[numpy.float32]:
        """
        z = sum_k D_{s_k} X U_k. U (S, d, c) -> z (n, c); U (S, d) -> z (n,).
        """
    def resolved_method(self, c: typing.SupportsInt | typing.SupportsIndex = 1, n_blocks: typing.SupportsInt | typing.SupportsIndex = -1) -> str:
        """
        The method ('gemm', 'tables', 'amx' or 'bf16') a product with c columns over n_blocks blocks (default: all P) runs.
        """
    def uses_tables(self, c: typing.SupportsInt | typing.SupportsIndex = 1, n_blocks: typing.SupportsInt | typing.SupportsIndex = -1) -> bool:
        """
        Whether a product with c columns over n_blocks blocks (default: all P) runs on the tables.
        """
    @property
    def dtype(self) -> numpy.dtype[typing.Any]:
        ...
    @property
    def method(self) -> str:
        """
        Product method of forward/adjoint: 'auto', 'gemm', 'tables', 'amx' or 'bf16'.
        """
    @method.setter
    def method(self, arg1: str) -> None:
        ...
def amx_available() -> bool:
    """
    Whether this CPU and OS can run the 'amx' product method (Intel AMX-TILE, AMX-BF16 and AVX-512BW, and the Linux permission to use the tiles). False when the environment variable CONVEXNN_AMX=0 was set before the first product.
    """
def arrangement_summary(X: typing.Any) -> dict:
    """
    dict(rank, n_hyperplanes, n_zero_rows, region_bound) of X's arrangement.
    """
def bf16_available() -> bool:
    """
    Whether this CPU and OS can run the 'bf16' product method (AVX512_BF16 with AVX512F, AVX512BW and AVX512VL, and an OS that saves the zmm state). False when the environment variable CONVEXNN_BF16=0 was set before the first product.
    """
def blas_num_threads() -> int:
    """
    Threads of the bundled OpenBLAS (scipy-openblas32).
    """
def block_norms(U: typing.Any, groups: str = 'output') -> numpy.ndarray:
    """
    Group norms of blocks U (S, d, c): 'output' -> column norms (S, c) (or (S,) for U (S, d)); 'neuron' -> Frobenius norms (S,). float32 or float64.
    """
def cover_count(n: typing.SupportsInt | typing.SupportsIndex, r: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    2 * sum_{k<r} C(n-1, k) (1 when n or r is 0), saturated at 2**64 - 1.
    """
def dual_constraint_oracle(X: numpy.ndarray, patterns: PatternSet, r: typing.Any, subset: typing.Any = None, tol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, max_iter: typing.SupportsInt | typing.SupportsIndex = 0, return_info: bool = False) -> tuple:
    """
    Per-pattern dual constraint values max{ +-r^T D_i X u : u in K_i, ||u|| <= 1 } = ||Pi_{K_i}(+-X^T D_i r)||.
    
    X : (n, d) float32/float64.  r : (n,) of X's dtype.  subset : optional (S,) int pattern indices (default all P).
    Returns (values_pos (S,), values_neg (S,), maximizers (S, d)) in float64; maximizers[s] is the unit maximizer
    for the sign with the larger value (+r on ties), 0 when that value is 0. Values are upper bounds up to rounding
    (they decrease to the exact value as the active-set method converges). With return_info=True a fourth element,
    dict(total_iterations, max_iterations, max_relative_violation, n_unconverged), is appended.
    """
def enumerate_patterns(X: typing.Any, max_patterns: typing.SupportsInt | typing.SupportsIndex = 1000000) -> PatternSet:
    """
    ALL patterns of X (n, d): one per region of the arrangement {u : x_k^T u = 0}.
    
    Append the bias column beforehand if wanted. Deduplicated, all-zero pattern dropped; each gate is a unit
    vector strictly inside its region, so PatternSet.from_gates(X, pats.gates()) gives the same patterns.
    Raises ValueError when estimate_region_count(X) exceeds max_patterns.
    """
def estimate_region_count(X: typing.Any) -> int:
    """
    Cover's bound 2 sum_{k<r} C(n'-1, k) (n' distinct hyperplanes of X, r = rank): what enumerate_patterns compares with max_patterns (counts the all-zero pattern).
    """
def flip_patterns(X: typing.Any, gates: typing.Any, threshold: typing.SupportsFloat | typing.SupportsIndex) -> PatternSet:
    """
    'Alg3' of Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020: each gate's pattern plus single-sample flips realizable by a nearby gate.
    
    gates: (P, d), one per row. A sample k is flipped when |x_k^T g| <= threshold * ||x_k|| * ||g|| (relative
    threshold) and the gate moved just across x_k's hyperplane gives exactly that flip; the returned gates
    reproduce the returned masks.
    """
@typing.overload
def gated_beta_max(op: BlockOperatorF64, y: typing.Any, loss: str = 'squared', groups: str = 'output') -> float:
    """
    Smallest beta for which U = 0 is optimal: max_i ||X^T D_i grad L(0)||_* (exact, one adjoint pass).
    """
@typing.overload
def gated_beta_max(op: BlockOperatorF32, y: typing.Any, loss: str = 'squared', groups: str = 'output') -> float:
    """
    Smallest beta for which U = 0 is optimal: max_i ||X^T D_i grad L(0)||_* (exact, one adjoint pass).
    """
@typing.overload
def gated_certificate(op: BlockOperatorF64, U: typing.Any, y: typing.Any, beta: typing.SupportsFloat | typing.SupportsIndex, loss: str = 'squared', groups: str = 'output', certify_op: BlockOperatorF64 = None) -> dict:
    """
    Certificate of a given U (P, d, c): dict(primal, dual, gap, scale, dual_norm), with
    theta = -grad L(A U) (hinge: the subgradient) scaled by s = min(1, beta / dual_norm); the same bound as
    convexnn.reference.duality.gated_dual.
    """
@typing.overload
def gated_certificate(op: BlockOperatorF32, U: typing.Any, y: typing.Any, beta: typing.SupportsFloat | typing.SupportsIndex, loss: str = 'squared', groups: str = 'output', certify_op: BlockOperatorF64 = None) -> dict:
    """
    Certificate of a given U (P, d, c): dict(primal, dual, gap, scale, dual_norm), with
    theta = -grad L(A U) (hinge: the subgradient) scaled by s = min(1, beta / dual_norm); the same bound as
    convexnn.reference.duality.gated_dual.
    """
def get_num_threads() -> int:
    """
    Number of threads the C++ core uses (OpenMP).
    """
def loss_conjugate(t: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], loss: str) -> float:
    """
    Fenchel conjugate L*(t) = sup_z <t, z> - L(z, y) (+inf outside its domain); t, y: (n, c) float64.
    """
def loss_gradient(z: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], loss: str) -> numpy.typing.NDArray[numpy.float64]:
    """
    grad_z L(z, y), shape (n, c) (hinge: the subgradient -y 1[y z < 1]).
    """
def loss_value(z: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], loss: str) -> float:
    """
    L(z, y) summed over samples (no 1/n); z, y: (n, c).
    """
def masked_kernel_isa() -> str:
    """
    SIMD variant of the mask kernels chosen for this CPU: 'avx512', 'avx2' or 'generic'.
    """
def project_onto_pattern_cone(X: numpy.ndarray, patterns: PatternSet, i: typing.SupportsInt | typing.SupportsIndex, g: typing.Any, tol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, max_iter: typing.SupportsInt | typing.SupportsIndex = 0) -> dict:
    """
    Euclidean projection of g onto the cone K_i = {u : (2 D_i - I) X u >= 0} of pattern i.
    
    X : (n, d) float32/float64, C- or F-ordered (the patterns' X).  g : (d,) float64.
    tol : relative; stops when every -(2 D_i - I)_k x_k^T u <= tol * ||g|| * ||x_k||.
    max_iter : active-set step cap (0: automatic).
    Returns dict(u (d,) float64, norm = ||u|| = max{g^T v : v in K_i, ||v|| <= 1}, max_violation =
    max_k (-a_k^T u)_+ / ||x_k||, iterations, converged).
    """
def project_onto_sign_cone(X: numpy.ndarray, mask: typing.Any, g: typing.Any, tol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, max_iter: typing.SupportsInt | typing.SupportsIndex = 0) -> dict:
    """
    Projection of g onto {u : s_k x_k^T u >= 0}, s_k = +1 where mask[k] else -1 (any sign vector).
    
    X : (n, d) float32/float64.  mask : (n,) bool.  g : (d,) float64.  Same result dict as project_onto_pattern_cone.
    """
def set_num_threads(n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set the number of threads the C++ core uses.
    """
@typing.overload
def solve_gated(op: BlockOperatorF64, y: typing.Any, beta: typing.SupportsFloat | typing.SupportsIndex, loss: str = 'squared', groups: str = 'output', tol: typing.SupportsFloat | typing.SupportsIndex = 1e-06, max_iter: typing.Any = 10000, time_limit: typing.Any = None, solver: str = 'auto', warm_start: typing.Any = None, verbose: bool = False, check_every: typing.SupportsInt | typing.SupportsIndex = 10, certify_op: BlockOperatorF64 = None, callback: typing.Any = None, working_set: bool = True, newton: bool = True) -> dict:
    """
    Solve the gated-ReLU program min_U L(sum_i D_i X U_i, y) + beta * Omega(U) to a certified relative gap.
    
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
    Ctrl-C stops with status "interrupted" and returns the best certified point so far.
    
    Returns dict(U (P, d, c), objective, dual_objective, gap, n_iter, status, time, solver, n_active,
    history=dict of arrays iteration/objective/dual_objective/gap/time/n_active, one entry per global check,
    timings=dict phase -> seconds: forward, adjoint, prox, certificate, hinge_polish, newton, working_set, gram,
    other (exclusive, adding up to at most) total).
    status is one of "converged", "max_iter", "time_limit", "interrupted", "diverged", "precision_floor" (a float32
    solve whose certified gap stopped improving above tol: continue in float64 from U).
    """
@typing.overload
def solve_gated(op: BlockOperatorF32, y: typing.Any, beta: typing.SupportsFloat | typing.SupportsIndex, loss: str = 'squared', groups: str = 'output', tol: typing.SupportsFloat | typing.SupportsIndex = 1e-06, max_iter: typing.Any = 10000, time_limit: typing.Any = None, solver: str = 'auto', warm_start: typing.Any = None, verbose: bool = False, check_every: typing.SupportsInt | typing.SupportsIndex = 10, certify_op: BlockOperatorF64 = None, callback: typing.Any = None, working_set: bool = True, newton: bool = True) -> dict:
    """
    Solve the gated-ReLU program min_U L(sum_i D_i X U_i, y) + beta * Omega(U) to a certified relative gap.
    
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
    Ctrl-C stops with status "interrupted" and returns the best certified point so far.
    
    Returns dict(U (P, d, c), objective, dual_objective, gap, n_iter, status, time, solver, n_active,
    history=dict of arrays iteration/objective/dual_objective/gap/time/n_active, one entry per global check,
    timings=dict phase -> seconds: forward, adjoint, prox, certificate, hinge_polish, newton, working_set, gram,
    other (exclusive, adding up to at most) total).
    status is one of "converged", "max_iter", "time_limit", "interrupted", "diverged", "precision_floor" (a float32
    solve whose certified gap stopped improving above tol: continue in float64 from U).
    """
@typing.overload
def solve_gated_path(op: BlockOperatorF64, y: typing.Any, betas: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], loss: str = 'squared', groups: str = 'output', tol: typing.SupportsFloat | typing.SupportsIndex = 1e-06, max_iter: typing.Any = 10000, time_limit: typing.Any = None, solver: str = 'auto', warm_start: typing.Any = None, verbose: bool = False, check_every: typing.SupportsInt | typing.SupportsIndex = 10, certify_op: BlockOperatorF64 = None, callback: typing.Any = None, working_set: bool = True, newton: bool = True) -> list:
    """
    Regularization path: solve_gated for each beta in the given order (typically decreasing), each
    warm-started from the previous solution; block eigenbases are computed once. max_iter and time_limit apply to
    each solve. Returns a list of solve_gated dicts (with "beta"); stops early after an "interrupted" solve.
    """
@typing.overload
def solve_gated_path(op: BlockOperatorF32, y: typing.Any, betas: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], loss: str = 'squared', groups: str = 'output', tol: typing.SupportsFloat | typing.SupportsIndex = 1e-06, max_iter: typing.Any = 10000, time_limit: typing.Any = None, solver: str = 'auto', warm_start: typing.Any = None, verbose: bool = False, check_every: typing.SupportsInt | typing.SupportsIndex = 10, certify_op: BlockOperatorF64 = None, callback: typing.Any = None, working_set: bool = True, newton: bool = True) -> list:
    """
    Regularization path: solve_gated for each beta in the given order (typically decreasing), each
    warm-started from the previous solution; block eigenbases are computed once. max_iter and time_limit apply to
    each solve. Returns a list of solve_gated dicts (with "beta"); stops early after an "interrupted" solve.
    """
@typing.overload
def solve_relu(op: ConeOperatorF64, y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], beta: typing.SupportsFloat | typing.SupportsIndex, loss: str = 'squared', tol: typing.SupportsFloat | typing.SupportsIndex = 1e-06, max_iter: typing.SupportsInt | typing.SupportsIndex = 10000, time_limit: typing.SupportsFloat | typing.SupportsIndex = ..., check_every: typing.SupportsInt | typing.SupportsIndex = 5, warm_V: typing.Any = None, warm_W: typing.Any = None, verbose: bool = False, certify_op: BlockOperatorF64 = None, ray_newton: bool = True, callback: typing.Any = None, precision_floor: bool = False) -> dict:
    """
    Solve the exact (cone-constrained) two-layer ReLU program to a certified relative gap.
    
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
    iteration; max_dual_constraint NaN if that certificate was screened).
    """
@typing.overload
def solve_relu(op: ConeOperatorF32, y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], beta: typing.SupportsFloat | typing.SupportsIndex, loss: str = 'squared', tol: typing.SupportsFloat | typing.SupportsIndex = 1e-06, max_iter: typing.SupportsInt | typing.SupportsIndex = 10000, time_limit: typing.SupportsFloat | typing.SupportsIndex = ..., check_every: typing.SupportsInt | typing.SupportsIndex = 5, warm_V: typing.Any = None, warm_W: typing.Any = None, verbose: bool = False, certify_op: BlockOperatorF64 = None, ray_newton: bool = True, callback: typing.Any = None, precision_floor: bool = False) -> dict:
    """
    Solve the exact (cone-constrained) two-layer ReLU program to a certified relative gap.
    
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
    iteration; max_dual_constraint NaN if that certificate was screened).
    """
__version__: str = '0.1.0'
