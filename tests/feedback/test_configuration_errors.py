"""Configuration errors raise at once, never as per-sample harness errors (a run that "trains" on nothing).

A sandbox that refuses the host, no JDK for Java, tests of a kind that cannot test the program's
language, an explicit language the rows contradict: each raises on the first reward call (or when
our trainers are built), naming the row by its ``task_id``.
"""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from trl_codefeedback.execution import Executor, TestSpecError
from trl_codefeedback.execution.java.jdk import JavaUnavailableError
from trl_codefeedback.execution.program import UnknownLanguageError
from trl_codefeedback.execution.sandbox import policy
from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError
from trl_codefeedback.feedback import CompilerReward, UnitTestReward

ASSERTS = json.dumps({"kind": "asserts", "asserts": ["assert f(1) == 2"]})
JAVA_TEST = json.dumps({"kind": "java_main", "test": (
    "class Main { public static void main(String[] a) throws Exception {\n"
    "  int x0 = Add.add(1, 2);\n  if (x0 != 3) { throw new Exception(\"0\"); }\n} }\n")})
PASSING = "def f(x):\n    return x + 1\n"
JAVA_CODE = "class Add {\n    static int add(int a, int b) { return a + b; }\n}\n"


class _NeverRun:
    def run(self, programs, limits=None):
        raise AssertionError("nothing may run")


class _Raises:
    def __init__(self, exc):
        self.exc = exc

    def run(self, programs, limits=None):
        raise self.exc


@pytest.fixture
def refusing_host(monkeypatch):
    """The executor's policy sees every required guarantee missing (as on a host without namespaces)."""
    monkeypatch.delenv(policy.ENV_VAR, raising=False)
    monkeypatch.setattr(policy, "missing", lambda info: ["network", "filesystem", "processes"])


@pytest.fixture
def no_jdk(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no javac, no java


# ---------------------------------------------------------------------------- (a) the sandbox refuses


def test_a_refusing_sandbox_raises_on_the_first_call_instead_of_harness_errors(refusing_host):
    with Executor(workers=1) as ex:
        reward = UnitTestReward(executor=ex)
        with pytest.raises(SandboxUnavailableError, match="unit_test_reward: .*refusing to run"):
            reward(prompts=["p"], completions=[PASSING], tests=[ASSERTS])


@pytest.mark.parametrize("cls", [UnitTestReward, CompilerReward])
def test_a_refusal_from_any_executor_is_raised_with_the_rewards_name(cls):
    reward = cls(executor=_Raises(SandboxUnavailableError("refusing to run untrusted programs on this host")))
    with pytest.raises(SandboxUnavailableError, match=f"{reward.__name__}: refusing"):
        reward(prompts=["p"], completions=[PASSING], tests=[ASSERTS])


def test_a_failure_of_the_machinery_stays_a_harness_error():
    reward = UnitTestReward(executor=_Raises(RuntimeError("worker died")))
    with pytest.warns(RuntimeWarning, match="harness error"):
        assert reward(prompts=["p"], completions=[PASSING], tests=[ASSERTS]) == [None]


# ---------------------------------------------------------------------------- (b) no JDK


@pytest.mark.parametrize("make", [lambda ex: UnitTestReward(language="java", executor=ex),
                                  lambda ex: CompilerReward(language="java", executor=ex)])
def test_no_jdk_raises_naming_the_jdk_the_worker_needs(no_jdk, make):
    with Executor(workers=1) as ex:
        reward = make(ex)
        with pytest.raises(JavaUnavailableError, match="JDK 17") as err:
            reward(prompts=["p"], completions=[JAVA_CODE], tests=[JAVA_TEST])
    assert "11+" not in str(err.value)


def test_no_jdk_is_found_when_the_data_set_is_checked(no_jdk):
    ds = Dataset.from_list([{"prompt": "p", "tests": JAVA_TEST, "language": "java", "task_id": "MBJP/1"}])
    with pytest.raises(JavaUnavailableError, match="JDK 17"):
        UnitTestReward().validate_dataset(ds)  # the default executor runs here: it needs a JDK here
    UnitTestReward(executor=_NeverRun()).validate_dataset(ds)  # a custom executor may run elsewhere: not checked


# ---------------------------------------------------------------------------- (c) kind vs language


def test_tests_that_cannot_test_the_language_raise_before_anything_runs():
    reward = UnitTestReward(language="java", executor=_NeverRun())
    with pytest.raises(TestSpecError, match=r"row 1 .*task_id 'MBPP/12'.*kind 'asserts' cannot test a java program"):
        reward(prompts=["p", "p"], completions=[JAVA_CODE] * 2, tests=[JAVA_TEST, ASSERTS], task_id=["MBJP/1", "MBPP/12"])


def test_explicit_language_that_the_rows_contradict_raises():
    reward = UnitTestReward(language="java", executor=_NeverRun())
    with pytest.raises(ValueError, match=r"task_id 'MBPP/11'.*'python'.*language='java'"):
        reward(prompts=["p"], completions=[PASSING], tests=[ASSERTS], language=["python"], task_id=["MBPP/11"])


def test_without_a_language_argument_the_column_decides():
    reward = CompilerReward(executor=_Raises(AssertionError("unreachable")))
    with pytest.raises(TestSpecError):  # java rows with Python tests: the column made them Java
        UnitTestReward(executor=_NeverRun())(prompts=["p"], completions=[PASSING], tests=[ASSERTS], language=["java"])
    assert reward.language is None


def test_language_is_case_insensitive():
    reward = UnitTestReward(language="Python")
    assert reward.language == "python"
    assert reward(prompts=["p"], completions=[PASSING], tests=[ASSERTS], language=["PYTHON"]) == [1.0]
    with pytest.raises(UnknownLanguageError, match="cobol"):
        UnitTestReward(language="COBOL")


def test_batch_rows_are_named_by_task_id():
    reward = UnitTestReward(executor=_NeverRun())
    with pytest.raises(ValueError, match=r"row 1 of this reward call's batch \(task_id 'MBPP/12'\).*not valid JSON"):
        reward(prompts=["p", "p"], completions=[PASSING] * 2, tests=[ASSERTS, "nope"], task_id=["MBPP/11", "MBPP/12"])


def test_check_spec_without_entry_point_says_an():
    reward = UnitTestReward(executor=_NeverRun())
    with pytest.raises(TestSpecError, match="need an 'entry_point' field"):
        reward(prompts=["p"], completions=[PASSING], tests=[{"kind": "check", "test": "def check(c): pass"}])


def test_a_java_test_without_main_is_rejected_before_anything_runs():
    bad = json.dumps({"kind": "java_main", "test": "class Main { static void run() {} }"})
    reward = UnitTestReward(language="java", executor=_NeverRun())
    with pytest.raises(TestSpecError, match="Java oracle cannot judge"):
        reward(prompts=["p"], completions=[JAVA_CODE], tests=[bad])


# ---------------------------------------------------------------------------- whole data sets


def _rows(n=8, bad=None):
    rows = [{"prompt": f"p{i}", "tests": ASSERTS, "task_id": f"T/{i}", "language": "python"} for i in range(n)]
    if bad is not None:
        rows[bad]["tests"] = json.dumps({"kind": "check", "test": "def check(c): assert c(1) == 1"})
    return Dataset.from_list(rows)


def test_validate_dataset_names_the_data_set_row_and_task_id():
    with pytest.raises(TestSpecError, match=r"row 6 of train_dataset \(task_id 'T/6'\).*'entry_point'"):
        UnitTestReward().validate_dataset(_rows(bad=6))


def test_validate_dataset_names_a_missing_tests_column_and_the_ones_present():
    with pytest.raises(KeyError, match=r"'tests'.*train_dataset has no such column.*'test_list'"):
        UnitTestReward().validate_dataset(_rows().rename_column("tests", "test_list"))
    CompilerReward().validate_dataset(_rows().remove_columns("tests"))  # needs no tests


def test_validate_dataset_checks_explicit_language_against_the_column():
    with pytest.raises(ValueError, match=r"row 0 of train_dataset .*language='java'"):
        UnitTestReward(language="java").validate_dataset(_rows())
