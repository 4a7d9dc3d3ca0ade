"""The demo's task families: small Python functions described in words, with a habitual bug.

``loops`` (the default): multi-line functions over a list ``xs``, an accumulator x a
filter x a transform, e.g. "the sum of the squares of the even items"::

    def f(xs):
        \"\"\"Return the sum of the squares of the even items of xs.\"\"\"
        total = 0
        for i in range(len(xs)):
            v = xs[i]
            if v % 2 == 0:
                total += v * v
        return total

Held-out tasks are unseen (accumulator, filter, transform) triples; every pair of them is
seen in training. The SFT warm-up data teaches one habitual bug per accumulator, always on
ONE line while the other lines are right (:data:`HABITS`):

* sum: a wrong variable on the update line (``total += x * x``: ``NameError`` there);
* product: an off-by-one index (``v = xs[i + 1]``: ``IndexError`` there);
* text: a wrong operator (``out =+ str(v)``: ``TypeError`` there);
* list: a wrong initial value (``out = [0]``): a wrong answer, no error line, so RLTF's
  fine-grained term has nothing to add there; the coarse reward alone must fix it.

The first three raise on the buggy line itself, so RLTF's line blame lands on the bug. (A
habit whose error surfaces on another line, e.g. ``out = ()`` failing at ``out.append(v)``,
makes the penalty fall on a right line: in a development run the model then learned to
drop ``.append(v)``.)

``oneline`` (a fast smoke family): ``return x + 3`` for "Return x plus 3.", the habit being
the wrong parameter name (``n + 3``).

Example:
    >>> train, heldout = split_tasks("loops", seed=0)
    >>> len(train), len(heldout)
    (36, 12)
    >>> buggy_completion(heldout[0]).count("\\n") == heldout[0]["completion"].count("\\n")
    True
"""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

FAMILIES = ("loops", "oneline")

# --------------------------------------------------------------------------- loops family

# accumulator: (words, init line, update line with {e}, returned name)
ACCUMULATORS = {
    "sum": ("the sum of", "total = 0", "total += {e}", "total"),
    "product": ("the product of", "total = 1", "total *= {e}", "total"),
    "text": ("the string of the digits of", 'out = ""', "out += str({e})", "out"),
    "list": ("the list of", "out = []", "out.append({e})", "out"),
}
FILTERS = {"even": "v % 2 == 0", "odd": "v % 2 == 1", "positive": "v > 0", "negative": "v < 0"}
TRANSFORMS = {"the values": "v", "the squares": "v * v", "the doubles": "2 * v"}
# the habit of each accumulator: (kind, line index in the body, code of that line -> buggy code)
HABITS = {
    "sum": ("wrong variable", 4, lambda line: re.sub(r"\bv\b", "x", line)),
    "product": ("off-by-one index", 2, lambda line: line.replace("xs[i]", "xs[i + 1]")),
    "text": ("wrong operator", 4, lambda line: line.replace("+=", "=+")),
    "list": ("wrong initial value", 0, lambda line: line.replace("[]", "[0]")),
}
LIST_INPUTS = ([3, -2, 0, 5, -4, 7], [], [6], [-1, 2, -3, 4], [1, 1, 8, -6, -5])

# --------------------------------------------------------------------------- oneline family

OPERATIONS = {
    # words: (template of the code, python function)
    "plus": ("x + {k}", lambda x, k: x + k),
    "minus": ("x - {k}", lambda x, k: x - k),
    "times": ("x * {k}", lambda x, k: x * k),
    "modulo": ("x % {k}", lambda x, k: x % k),
    "the larger of x and": ("max(x, {k})", lambda x, k: max(x, k)),
    "the smaller of x and": ("min(x, {k})", lambda x, k: min(x, k)),
}
CONSTANTS = range(1, 10)
INT_INPUTS = (-7, 0, 2, 5, 13)


def _row(prompt: str, completion: str, asserts: list[str], task_id: str, habit: tuple[str, int, str]) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "completion": completion,
        "tests": json.dumps({"kind": "asserts", "asserts": asserts}),
        "code_prefix": prompt,
        "task_id": task_id,
        "language": "python",
        "habit": habit[0],
        "habit_line": habit[1],  # 0-based line of the completion that the habit changes
        "buggy_completion": habit[2],
    }


def loops_task(acc: str, flt: str, tf: str) -> dict[str, Any]:
    """One task of the ``loops`` family (prompt, reference completion, tests, its habit)."""
    words, init, update, ret = ACCUMULATORS[acc]
    expr = TRANSFORMS[tf]
    body = [init, "for i in range(len(xs)):", "    v = xs[i]", f"    if {FILTERS[flt]}:", "        " + update.format(e=expr), f"return {ret}"]
    prompt = f'def f(xs):\n    """Return {words} {tf} of the {flt} items of xs."""'  # ends on a token boundary
    namespace: dict[str, Any] = {}
    exec("def f(xs):\n" + "".join(f"    {line}\n" for line in body), namespace)  # the reference, to compute the answers
    asserts = [f"assert f({xs!r}) == {namespace['f'](list(xs))!r}" for xs in LIST_INPUTS]
    kind, index, bug = HABITS[acc]
    buggy = list(body)
    buggy[index] = bug(buggy[index])
    text = lambda lines: "".join(f"\n    {line}" for line in lines) + "\n"  # noqa: E731
    return _row(prompt, text(body), asserts, f"loops/{acc}/{flt}/{tf.split()[-1]}", (kind, index, text(buggy)))


def oneline_task(words: str, k: int) -> dict[str, Any]:
    """One task of the ``oneline`` family."""
    template, fn = OPERATIONS[words]
    phrase = f"x {words} {k}" if words in ("plus", "minus", "times", "modulo") else f"{words} {k}"
    prompt = f'def f(x):\n    """Return {phrase}."""\n    return'
    completion = " " + template.format(k=k) + "\n"
    asserts = [f"assert f({x}) == {fn(x, k)}" for x in INT_INPUTS]
    buggy = re.sub(r"\bx\b", "n", completion)
    return _row(prompt, completion, asserts, f"demo/{words.replace(' ', '_')}/{k}", ("wrong variable", 0, buggy))


def _balanced_heldout(rng: random.Random) -> list[tuple[str, str, str]]:
    """12 triples, a Latin rectangle: each (accumulator, transform) and each (filter, transform)
    pair held out exactly once, each (accumulator, filter) pair at most once, so every pair
    of parts of a held-out task occurs in 2-3 training tasks."""
    accs, flts, tfs = list(ACCUMULATORS), list(FILTERS), list(TRANSFORMS)
    for parts in (accs, flts, tfs):
        rng.shuffle(parts)
    return [(acc, flts[(a + j) % len(flts)], tf) for j, tf in enumerate(tfs) for a, acc in enumerate(accs)]


def split_tasks(family: str = "loops", seed: int = 0, heldout: int | None = None) -> tuple[list[dict], list[dict]]:
    """Train and held-out tasks of ``family``; held-out ones are unseen combinations of seen parts.

    ``loops``: 12 of the 48 triples held out (a Latin rectangle drawn by ``seed``, see
    :func:`_balanced_heldout`; ``heldout`` keeps the first N). ``oneline``: 2 constants per
    operation (12 of 54).
    """
    rng = random.Random(seed)
    if family == "oneline":
        train, held = [], []
        constants = list(CONSTANTS)
        for i, words in enumerate(OPERATIONS):
            shift = i * 2 % len(constants)
            kept_out = set((constants[shift:] + constants[:shift])[:2])
            for k in constants:
                (held if k in kept_out else train).append(oneline_task(words, k))
        rng.shuffle(train)
        return train, held
    if family != "loops":
        raise ValueError(f"unknown task family {family!r}; expected one of {FAMILIES}")
    held = _balanced_heldout(rng)
    if heldout is not None:
        held = held[:heldout]
    train_t = [t for t in itertools.product(ACCUMULATORS, FILTERS, TRANSFORMS) if t not in held]
    rng.shuffle(train_t)
    return [loops_task(*t) for t in train_t], [loops_task(*t) for t in sorted(held)]


def buggy_completion(row: dict[str, Any]) -> str:
    """The completion with the row's habitual bug (one line changed)."""
    return row["buggy_completion"]
