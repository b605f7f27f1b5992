"""Progress reporting: user callbacks and tqdm progress bars for solves, paths and cutting-plane rounds.

Three pieces, used by :func:`convexnn.solve`, :func:`convexnn.solve_path` and the cutting-plane loop:

* :class:`ProgressBar`: a tqdm bar (a no-op object when disabled) with ``step(n=1, **postfix)`` and
  ``set(n, **postfix)``; a context manager that closes the bar.
* :func:`solver_hook`: one function ``hook(info) -> bool`` (True: stop) that updates a bar and calls a user
  ``callback(info)`` (True: stop); it remembers whether the user asked to stop, so an "interrupted" status can be
  told apart from Ctrl-C.
* :func:`check_callback`: validation of a ``callback`` argument.

Example for a loop of rounds (the cutting-plane loop)::

    with ProgressBar(total=max_rounds, desc="cutting planes", enabled=progress) as bar:
        for r in range(max_rounds):
            ...
            bar.step(gap=res.gap, patterns=current.n_patterns)
"""

from __future__ import annotations

import math
from typing import Any, Callable

Info = dict[str, Any]


def check_callback(callback: Callable[[Info], Any] | None, name: str = "callback"):
    """None or a callable; anything else is a TypeError naming ``name``."""
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be None or a callable taking a dict (return True to stop); got {callback!r}")
    return callback


class ProgressBar:
    """A tqdm progress bar, or nothing when ``enabled`` is False.

    Parameters
    ----------
    total : int or float or None
        Number of steps (None: unknown; tqdm shows a counter).
    desc : str
        Label shown left of the bar.
    enabled : bool
        False: every method does nothing (no tqdm import).
    unit : str
        Unit of the steps ("it", "beta", "round").
    """

    def __init__(self, total=None, desc: str = "", enabled: bool = True, unit: str = "it"):
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            total = None if total is None or not math.isfinite(total) else int(total)
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=True, dynamic_ncols=True)

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def _postfix(self, postfix):
        if postfix:
            self._bar.set_postfix(
                {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False
            )

    def step(self, n: int = 1, **postfix) -> None:
        """Advance by ``n`` steps and show ``postfix`` (e.g. ``gap=1e-3``)."""
        if self._bar is not None:
            self._postfix(postfix)
            self._bar.update(n)

    def set(self, n, **postfix) -> None:
        """Move the bar to step ``n`` (never backwards past the total) and show ``postfix``."""
        if self._bar is not None:
            self._postfix(postfix)
            n = int(n)
            if self._bar.total is not None:
                n = min(n, self._bar.total)
            self._bar.update(n - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def solver_hook(callback: Callable[[Info], Any] | None, bar: ProgressBar | None = None):
    """A ``hook(info) -> bool`` (True: stop) calling ``callback`` and updating ``bar``, or None when neither is set.

    ``info`` holds at least ``iteration``, ``objective``, ``dual_objective``, ``gap`` and ``time``. The returned
    function has an attribute ``stopped_by_user`` (True once ``callback`` returned a true value).
    """
    if callback is None and (bar is None or not bar.enabled):
        return None

    def hook(info: Info) -> bool:
        info = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(info).items()}
        if bar is not None:
            bar.set(info.get("iteration", 0), gap=float(info.get("gap", math.nan)))
        if callback is not None and callback(info):
            hook.stopped_by_user = True
            return True
        return False

    hook.stopped_by_user = False
    return hook
