"""Test-spec formats: the ``tests`` object of a dataset row.

| kind      | fields                                              | source             |
|-----------|-----------------------------------------------------|--------------------|
| asserts   | setup (str, optional), asserts (list of str)         | MBPP               |
| check     | test (str defining ``check(candidate)``), entry_point, prelude (optional) | HumanEval, MBXP-Py |
| stdio     | cases: list of {input: str, output: str}             | APPS standard input|
| call      | fn_name, cases: list of {input: list, output}        | APPS call-based    |
| java_main | test (str with ``class Main``; main throws on failure)| MBJP, MathQA-Java  |

A spec may be given as a dict or as its JSON text (datasets store it as text,
because Arrow cannot hold the mixed-type argument lists of APPS call tests).

Example:
    >>> spec = parse_test_spec({"kind": "asserts", "asserts": ["assert f(1) == 2"]})
    >>> spec.kind, spec.num_tests
    ('asserts', 1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union


class TestSpecError(ValueError):
    """A ``tests`` object that does not follow one of the spec formats."""

    __test__ = False


@dataclass(frozen=True)
class AssertsSpec:
    asserts: tuple[str, ...]
    setup: str = ""
    kind: str = field(default="asserts", init=False)

    @property
    def num_tests(self) -> int:
        return len(self.asserts)


@dataclass(frozen=True)
class CheckSpec:
    """HumanEval-style tests. ``prelude``: trusted code run before ``test`` on the judging side
    (HumanEval's prompt: helpers such as ``poly`` that the test calls must be the dataset's, not
    the program's)."""

    test: str
    entry_point: str
    prelude: str = ""
    kind: str = field(default="check", init=False)

    @property
    def num_tests(self) -> int:
        """Number of assert-holding statements in ``check`` (what the Python runner splits into tests)."""
        from trl_codefeedback.execution.sandbox.testplan import count_check_units

        return count_check_units(self.test)


@dataclass(frozen=True)
class StdioCase:
    input: str
    output: str


@dataclass(frozen=True)
class StdioSpec:
    cases: tuple[StdioCase, ...]
    kind: str = field(default="stdio", init=False)

    @property
    def num_tests(self) -> int:
        return len(self.cases)


@dataclass(frozen=True)
class CallCase:
    input: tuple[Any, ...]
    output: Any


@dataclass(frozen=True)
class CallSpec:
    fn_name: str
    cases: tuple[CallCase, ...]
    kind: str = field(default="call", init=False)

    @property
    def num_tests(self) -> int:
        return len(self.cases)


@dataclass(frozen=True)
class JavaMainSpec:
    test: str
    kind: str = field(default="java_main", init=False)

    @property
    def num_tests(self) -> int:
        """Number of checks the Java backend splits ``main`` into (see :mod:`trl_codefeedback.execution.java.split`)."""
        from trl_codefeedback.execution.java.split import count_java_checks

        return count_java_checks(self.test)


TestSpec = Union[AssertsSpec, CheckSpec, StdioSpec, CallSpec, JavaMainSpec]

KINDS = ("asserts", "check", "stdio", "call", "java_main")
PYTHON_KINDS = ("asserts", "check", "stdio", "call")
#: The test kinds that can test a program of each language.
KINDS_FOR_LANGUAGE: dict[str, tuple[str, ...]] = {"python": PYTHON_KINDS, "java": ("java_main",)}


def check_kind_for_language(spec: TestSpec, language: str) -> None:
    """Raise :class:`TestSpecError` when tests of ``spec.kind`` cannot test a ``language`` program.

    >>> check_kind_for_language(parse_test_spec({"kind": "asserts", "asserts": []}), "java")
    Traceback (most recent call last):
    ...
    trl_codefeedback.execution.specs.TestSpecError: tests of kind 'asserts' cannot test a java program (kinds for java: java_main)
    """
    kinds = KINDS_FOR_LANGUAGE.get(language)
    if kinds is not None and spec.kind not in kinds:
        raise TestSpecError(f"tests of kind {spec.kind!r} cannot test a {language} program (kinds for {language}: {', '.join(kinds)})")


def _require(obj: dict, key: str, typ: type | tuple[type, ...], kind: str) -> Any:
    if key not in obj:
        article = "an" if key[:1].lower() in "aeiou" else "a"
        raise TestSpecError(f"tests of kind {kind!r} need {article} {key!r} field; got fields {sorted(obj)}")
    value = obj[key]
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise TestSpecError(f"tests field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _str_list(values: list, what: str) -> tuple[str, ...]:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TestSpecError(f"{what}[{i}] must be a string, got {type(v).__name__}")
    return tuple(values)


def parse_test_spec(obj: Any) -> TestSpec:
    """Validate a ``tests`` object (dict or JSON text) and return its typed spec.

    Raises:
        TestSpecError: with a message that says which field is wrong and how.
    """
    if isinstance(obj, (AssertsSpec, CheckSpec, StdioSpec, CallSpec, JavaMainSpec)):
        return obj
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as e:
            raise TestSpecError(f"tests is a string but not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise TestSpecError(f"tests must be a dict (or its JSON text), got {type(obj).__name__}")
    kind = obj.get("kind")
    if kind not in KINDS:
        raise TestSpecError(f"unknown tests kind {kind!r}; expected one of {list(KINDS)}")
    if kind == "asserts":
        asserts = _str_list(_require(obj, "asserts", list, kind), "asserts")
        setup = obj.get("setup") or ""
        if not isinstance(setup, str):
            raise TestSpecError(f"tests field 'setup' must be str, got {type(setup).__name__}")
        return AssertsSpec(asserts=asserts, setup=setup)
    if kind == "check":
        prelude = obj.get("prelude") or ""
        if not isinstance(prelude, str):
            raise TestSpecError(f"tests field 'prelude' must be str, got {type(prelude).__name__}")
        return CheckSpec(test=_require(obj, "test", str, kind), entry_point=_require(obj, "entry_point", str, kind), prelude=prelude)
    if kind == "stdio":
        cases = []
        for i, c in enumerate(_require(obj, "cases", list, kind)):
            if not isinstance(c, dict) or not isinstance(c.get("input"), str) or not isinstance(c.get("output"), str):
                raise TestSpecError(f"stdio cases[{i}] must be {{'input': str, 'output': str}}, got {c!r:.200}")
            cases.append(StdioCase(input=c["input"], output=c["output"]))
        return StdioSpec(cases=tuple(cases))
    if kind == "call":
        fn_name = _require(obj, "fn_name", str, kind)
        cases = []
        for i, c in enumerate(_require(obj, "cases", list, kind)):
            if not isinstance(c, dict) or "input" not in c or "output" not in c or not isinstance(c["input"], list):
                raise TestSpecError(f"call cases[{i}] must be {{'input': list, 'output': ...}}, got {c!r:.200}")
            cases.append(CallCase(input=tuple(c["input"]), output=c["output"]))
        return CallSpec(fn_name=fn_name, cases=tuple(cases))
    return JavaMainSpec(test=_require(obj, "test", str, kind))


def spec_to_dict(spec: TestSpec) -> dict[str, Any]:
    """The JSON-ready dict form of a spec (inverse of :func:`parse_test_spec`)."""
    if isinstance(spec, AssertsSpec):
        return {"kind": "asserts", "setup": spec.setup, "asserts": list(spec.asserts)}
    if isinstance(spec, CheckSpec):
        out = {"kind": "check", "test": spec.test, "entry_point": spec.entry_point}
        if spec.prelude:
            out["prelude"] = spec.prelude
        return out
    if isinstance(spec, StdioSpec):
        return {"kind": "stdio", "cases": [{"input": c.input, "output": c.output} for c in spec.cases]}
    if isinstance(spec, CallSpec):
        return {"kind": "call", "fn_name": spec.fn_name, "cases": [{"input": list(c.input), "output": c.output} for c in spec.cases]}
    return {"kind": "java_main", "test": spec.test}
