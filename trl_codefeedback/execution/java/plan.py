"""Split a ``java_main`` test between the candidate JVM (actual expressions) and the trusted oracle (the rest).

The trusted side compiles the test *alone* (fixed JDK imports, no program): the statements of
``main`` that javac cannot resolve are exactly those that need the program. Each check (see
:func:`~trl_codefeedback.execution.java.split.main_checks`) becomes

* a **probe** method for the candidate JVM: those statements (plus the earlier statements of the
  check that declare locals they use), returning the declared values as ``Object[]``;
* a **trusted** method for the oracle: every statement of the check, with each of those
  declarations reading its value instead (``int x0 = (int) __tcf_in[0];``) and program-only
  expression statements dropped, so the test's own ``compare`` / conditions / ``throw`` judge it.

The plan is a pure function of the test text (never of the program), so a program cannot change
what is judged or where; it is cached per test.

Example (an MBJP check)::

    int x0 = MinCost.minCost(Arrays.asList(1, 2), 2);     ->  probe:   int x0 = MinCost.minCost(...); return new Object[]{x0};
    int v0 = 8;                                           ->  trusted: int x0 = (int) __tcf_in[0]; int v0 = 8;
    if (!(compare(x0, v0))) { throw new java.lang.Exception(...); }       if (!(compare(x0, v0))) { throw ...; }
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from trl_codefeedback.execution.java.split import _DECL_RE, _IDENT_RE, _is_check, _next_word, main_checks

# The imports every MBJP / MathQA-Java prompt carries, plus java.util's function and stream packages.
TRUSTED_IMPORTS = ("import java.io.*; import java.lang.*; import java.util.*; import java.math.*; "
                   "import java.util.function.*; import java.util.stream.*;\n")
VALUES_FIELD = "__tcf_in"
_DECLARATION_RE = re.compile(r"^((?:final\s+)?[\w$.<>\[\]?,\s]+?[\w$>\]])\s+([A-Za-z_$][\w$]*)\s*=(?!=)(.*);$", re.S)
_NOT_SIMPLE = ("if", "for", "while", "do", "try", "switch", "synchronized", "return", "throw", "break", "continue", "{", "yield")


class UnsupportedTest(ValueError):
    """A test the trusted oracle cannot judge apart from the program (a fault of the test, never of a program)."""


@dataclass(frozen=True)
class TrustedPlan:
    """What each side runs for one test. ``values[i]``: the names of the values check ``i`` sends.

    ``key`` names the trusted class's package (``<key>.Main``), so the oracle compiles many tests in one javac task.
    """

    test: str
    probe_source: str
    trusted_source: str
    key: str
    values: tuple[tuple[str, ...], ...]

    @property
    def num_tests(self) -> int:
        return len(self.values)

    @property
    def probes(self) -> tuple[str, ...]:
        return tuple(f"__tcf_check_{i}" for i in range(self.num_tests))


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def build_plan(test: str, unresolved: list[tuple[int, str, str]]) -> TrustedPlan:
    """The plan for ``test`` given javac's errors on the test alone: ``(offset in test, code, message)``.

    Raises :class:`UnsupportedTest` when a check cannot be judged apart from the program (a call
    inside a check's condition, a program reference outside ``main``, a test that does not compile).
    """
    mc = main_checks(test)
    if mc is None:
        raise UnsupportedTest("the test has no `public static void main(String[] args)` to split into checks")
    flagged: set[tuple[int, int]] = set()
    spans = [sp for g in mc.groups for sp in g]
    for pos, code, message in unresolved:
        if not code.startswith("compiler.err.cant.resolve"):
            raise UnsupportedTest(f"the test does not compile on its own (line {_line_of(test, pos)}: {message.splitlines()[0]})")
        sp = next((s for s in spans if s[0] <= pos < s[1]), None)
        if sp is None:
            raise UnsupportedTest(f"the test uses the program outside main's statements (line {_line_of(test, pos)}: "
                                  f"{message.splitlines()[0]})")
        text = test[sp[0]:sp[1]]
        if _next_word(text, 0) in _NOT_SIMPLE or text.startswith("{") or _is_check(text):
            raise UnsupportedTest(f"a check's condition or control flow calls the program (line {_line_of(test, pos)}); "
                                  "declare the value first: `T x0 = Cls.f(...); if (!(compare(x0, v0))) { throw ...; }`")
        flagged.add(sp)
    probes, trusted, values = [], [], []
    for i, group in enumerate(mc.groups):
        names: list[str] = []
        probe_idx = _with_dependencies(test, group, flagged)
        body_t = []
        for j, (a, b) in enumerate(group):
            text = test[a:b]
            if (a, b) not in flagged:
                body_t.append(text)
                continue
            d = _DECLARATION_RE.match(text)
            if d is None:  # an expression statement run for its effect only
                continue
            typ, name = d.group(1).strip(), d.group(2)
            bare = re.sub(r"^final\s+", "", typ)
            if bare == "var":
                raise UnsupportedTest(f"`var {name}` takes its type from the program (line {_line_of(test, a)}); declare the type")
            body_t.append(f"{typ} {name} = ({bare}) {VALUES_FIELD}[{len(names)}];")
            names.append(name)
        body_p = [test[a:b] for j, (a, b) in enumerate(group) if j in probe_idx]
        probes.append(_method(f"__tcf_check_{i}", "Object[]", body_p + [f"return new Object[] {{{', '.join(names)}}};"]))
        trusted.append(_method(f"__tcf_check_{i}", "void", body_t))
        values.append(tuple(names))
    head, tail = test[: mc.open_idx + 1] + "\n    }\n", test[mc.close_idx + 1:]
    probe_source = head + "".join(probes) + tail
    body = TRUSTED_IMPORTS + head + f"    static Object[] {VALUES_FIELD};\n" + "".join(trusted) + tail
    key = "t" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:32]  # also its package
    return TrustedPlan(test, probe_source, f"package {key};\n" + body, key, tuple(values))


def _with_dependencies(test: str, group, flagged) -> set[int]:
    """Indexes of the flagged statements and of the earlier statements declaring locals they use."""
    keep = {j for j, sp in enumerate(group) if sp in flagged}
    changed = True
    while changed:
        changed = False
        used = set(_IDENT_RE.findall(" ".join(test[group[j][0]:group[j][1]] for j in keep)))
        for j, (a, b) in enumerate(group):
            text = test[a:b]
            d = _DECL_RE.match(text)
            if j not in keep and j < max(keep, default=-1) and d and d.group(1) in used and not _is_check(text):
                keep.add(j)
                changed = True
    return keep


def _method(name: str, returns: str, body: list[str]) -> str:
    return f"\n    static {returns} {name}() throws Throwable {{\n" + "\n".join("        " + s for s in body) + "\n    }\n"
