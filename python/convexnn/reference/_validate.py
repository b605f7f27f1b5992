"""Input checks shared by the reference modules.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object) whose message names
the argument and what was expected, e.g. ``ValueError("X must be 2-D, got shape (5,)")``.
"""

import numpy as np

GROUPS = ("output", "neuron")


def as_matrix(X, name="X"):
    """Return ``X`` as a finite float64 array of shape (n, d) with n >= 1 and d >= 1."""
    try:
        A = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(X).__name__}") from exc
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} must not contain NaN or Inf")
    return A


def as_targets(y, n=None, name="y"):
    """Return ``y`` as a finite float64 array of shape (n, c); a vector (n,) becomes (n, 1)."""
    try:
        Y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(y).__name__}") from exc
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(f"{name} must be 1-D (n,) or 2-D (n, c), got shape {np.shape(y)}")
    if Y.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {np.shape(y)}")
    if n is not None and Y.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows (one per sample), got shape {np.shape(y)}")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} must not contain NaN or Inf")
    return Y


def as_masks(masks, n, name="masks"):
    """Return ``masks`` as a bool array of shape (n, P); 0/1 numbers are accepted."""
    M = np.asarray(masks)
    if M.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, P), got shape {M.shape}")
    if M.shape[0] != n:
        raise ValueError(f"{name} must have n = {n} rows, got shape {M.shape}")
    if M.dtype != np.bool_:
        if not np.all((M == 0) | (M == 1)):
            raise ValueError(f"{name} must be a bool (or 0/1) array")
        M = M.astype(bool)
    return M


def as_subset(subset, P, name="subset"):
    """Return pattern indices as an int array; ``None`` means all P patterns.

    A bool array of length P is accepted as a selector.
    """
    if subset is None:
        return np.arange(P)
    S = np.asarray(subset)
    if S.dtype == np.bool_:
        if S.shape != (P,):
            raise ValueError(f"{name} as a bool selector must have shape ({P},), got {S.shape}")
        return np.flatnonzero(S)
    if S.ndim != 1 or (S.size and not np.issubdtype(S.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of pattern indices, got shape {S.shape} and dtype {S.dtype}")
    S = S.astype(np.intp)
    if S.size and (S.min() < -P or S.max() >= P):
        raise ValueError(f"{name} has an index out of range for {P} patterns")
    return S % P if S.size else S


def as_blocks(U, n_blocks, d, name="U", c=None):
    """Return ``U`` as a finite float64 array of shape (n_blocks, d, c)."""
    A = np.asarray(U, dtype=np.float64)
    if A.ndim != 3:
        raise ValueError(f"{name} must be 3-D (P, d, c), got shape {A.shape}")
    if A.shape[0] != n_blocks or A.shape[1] != d:
        raise ValueError(f"{name} must have shape ({n_blocks}, {d}, c), got {A.shape}")
    if c is not None and A.shape[2] != c:
        raise ValueError(f"{name} must have c = {c} output columns, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} must not contain NaN or Inf")
    return A


def as_beta(beta, name="beta"):
    """Return ``beta`` as a finite float >= 0."""
    try:
        b = float(beta)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {type(beta).__name__}") from exc
    if not np.isfinite(b) or b < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {beta!r}")
    return b


def check_groups(groups, name="groups"):
    """Raise ValueError unless ``groups`` is "output" or "neuron"."""
    if groups not in GROUPS:
        raise ValueError(f"{name} must be one of {GROUPS}, got {groups!r}")
    return groups
