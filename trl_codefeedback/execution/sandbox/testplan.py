"""Test specs compiled for the trusted side: code objects, check units, and the names that come from the program.

The dataset's test code runs on the trusted side. A name it uses but does not define (MBPP's
``remove_Occ``, MBPP 601's ``Pair``, the ``root`` built by MBPP 367's set-up code) must come
from the program: it becomes a stand-in that forwards calls to the program's process. Every
other name resolves on the trusted side: built-ins (``sorted``, ``abs``...) are always the
interpreter's own, so a program cannot shadow what the tests use to judge it. The one
exception is a test that uses no program name at all besides built-in names (MBPP 126 defines
its own ``sum``): then the built-in names the program defines are taken from it.

Example:
    >>> plan = compile_plan({"kind": "asserts", "setup": "", "asserts": ["assert f(sorted(x)) == 1"]})
    >>> plan.program_names, plan.builtin_names
    (('f', 'x'), ())
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import sys
from dataclasses import dataclass, field

TESTS_FILE = "<tests>"
_BUILTIN_NAMES = frozenset(dir(builtins))
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))


@dataclass
class TestPlan:
    """A compiled test spec (trusted side). ``error`` is set when the test code itself is broken."""

    kind: str
    total: int
    program_names: tuple[str, ...] = ()
    builtin_names: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    asserts: list = field(default_factory=list)
    setup_source: str = ""
    prelude: object = None
    test_code: object = None
    check_arg: str | None = None
    units: list = field(default_factory=list)
    error: str | None = None

    __test__ = False


def _bound_and_loaded(tree: ast.AST) -> tuple[set[str], list[str]]:
    bound: set[str] = set()
    loaded: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound, loaded


def free_names(trees: list[ast.AST], defined: set[str] = frozenset()) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(program names, built-in names, stdlib modules) used but not defined by ``trees``, in first-use order."""
    bound: set[str] = set(defined)
    loaded: list[str] = []
    for tree in trees:
        b, ld = _bound_and_loaded(tree)
        bound |= b
        loaded += ld
    seen: dict[str, None] = {}
    for name in loaded:
        if name not in bound:
            seen.setdefault(name)
    names = list(seen)
    modules = tuple(n for n in names if n in _STDLIB and n not in _BUILTIN_NAMES)
    program = tuple(n for n in names if n not in _BUILTIN_NAMES and n not in modules)
    builtin = tuple(n for n in names if n in _BUILTIN_NAMES) if not program else ()
    return program, builtin, modules


def split_check_units(test_src: str, entry_point: str | None = None) -> tuple[str | None, list[tuple[ast.stmt, bool]]]:
    """Split a HumanEval-style ``check(candidate)`` into statements; flag the ones holding an ``assert``.

    Returns ``(argument name, [(statement, is_test), ...])``; ``(None, [])`` when there is no
    splittable top-level ``check`` function (the whole call then counts as one test).
    """
    tree = ast.parse(test_src, TESTS_FILE)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            if not node.args.args:
                return None, []
            arg = node.args.args[0].arg
            units = [(stmt, any(isinstance(n, ast.Assert) for n in ast.walk(stmt))) for stmt in node.body]
            if not any(is_test for _, is_test in units) or any(isinstance(n, ast.Return) for n in ast.walk(node)):
                return None, []
            return arg, units
    return None, []


@functools.lru_cache(maxsize=4096)
def count_check_units(test_src: str) -> int:
    """Number of tests :func:`split_check_units` yields (memoised: GRPO reuses a row's tests many times)."""
    try:
        _, units = split_check_units(test_src)
    except SyntaxError:
        return 1
    return sum(1 for _, t in units if t) or 1


def _compile(src_or_tree, mode: str = "exec"):
    return compile(src_or_tree, TESTS_FILE, mode, dont_inherit=True)


def compile_plan(tests: dict) -> TestPlan:
    """Compile a test spec for the trusted side (``TestPlan.error`` says when its code is broken)."""
    kind = tests["kind"]
    try:
        if kind == "asserts":
            trees = [ast.parse(src, TESTS_FILE) for src in tests["asserts"]]
            program, builtin, modules = free_names(trees)
            return TestPlan(kind, len(trees), program, builtin, modules, asserts=[_compile(t) for t in trees],
                            setup_source=tests.get("setup") or "")
        if kind == "check":
            prelude_src = tests.get("prelude") or ""
            prelude_tree = ast.parse(prelude_src, TESTS_FILE)
            test_tree = ast.parse(tests["test"], TESTS_FILE)
            entry = tests["entry_point"]
            defined, _ = _bound_and_loaded(prelude_tree)
            program, _, modules = free_names([test_tree], defined - {entry})
            arg, units = split_check_units(tests["test"])
            total = sum(1 for _, t in units if t) or 1
            return TestPlan(kind, total, program, (), modules, prelude=_compile(prelude_tree), test_code=_compile(test_tree),
                            check_arg=arg, units=[(_compile(ast.Module(body=[s], type_ignores=[])), t) for s, t in units])
        if kind == "call":
            return TestPlan(kind, len(tests["cases"]))
        if kind == "stdio":
            return TestPlan(kind, len(tests["cases"]))
    except SyntaxError as exc:
        return TestPlan(kind, 0, error=f"test code is not valid Python: {exc}")
    return TestPlan(kind, 0, error=f"tests of kind {kind!r} cannot test a Python program")


class PlanCache:
    """Compiled plans by spec (LRU): GRPO scores the same row's tests many times."""

    def __init__(self, size: int = 512):
        self.size = size
        self.plans: dict[str, TestPlan] = {}

    def get(self, tests: dict) -> TestPlan:
        key = json.dumps(tests, sort_keys=True)
        plan = self.plans.pop(key, None) or compile_plan(tests)
        self.plans[key] = plan
        while len(self.plans) > self.size:
            self.plans.pop(next(iter(self.plans)))
        return plan
