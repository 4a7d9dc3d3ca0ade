"""UnitTestReward / CompilerReward with real execution (the shared sandboxed executor)."""

from __future__ import annotations

import json
import warnings

import pytest

from trl_codefeedback.execution import Executor, Limits, Status
from trl_codefeedback.execution.program import UnknownLanguageError
from trl_codefeedback.feedback import (
    EMPTY_COMPLETION,
    CompilerReward,
    CompilerRewardValues,
    RLTFRewardValues,
    UnitTestReward,
)

TESTS = json.dumps({"kind": "asserts", "asserts": ["assert f(1) == 2", "assert f(2) == 3", "assert f(0) == 1"]})

PASSING = "```python\ndef f(x):\n    return x + 1\n```"
ONE_OF_THREE = "def f(x):\n    return 2 if x == 1 else -1\n"  # passes 1 of 3 tests
RUNTIME = "def f(x):\n    return undefined_name\n"
COMPILE = "```python\ndef f(x)\n    return x + 1\n```"
TIMEOUT = "def f(x):\n    while True:\n        pass\n"


def call(reward, completions, tests=TESTS, **kwargs):
    n = len(completions)
    return reward(prompts=["Write f."] * n, completions=completions, tests=[tests] * n, **kwargs)


@pytest.fixture(scope="module")
def fast_limits():
    return Limits(test_timeout_s=1.0, program_timeout_s=2.0)


def test_coarse_values_for_each_status(fast_limits):
    reward = UnitTestReward(limits=fast_limits)
    rewards = call(reward, [PASSING, ONE_OF_THREE, RUNTIME, COMPILE, TIMEOUT])
    statuses = [fb.status for fb in reward.last_feedback]
    expected = [Status.PASSED, Status.FAILED, Status.RUNTIME_ERROR, Status.COMPILE_ERROR, Status.TIMEOUT]
    assert statuses == expected, reward.last_feedback
    assert rewards == [1.0, -0.3, -0.6, -1.0, -0.6]


def test_adaptive_failed_value():
    reward = UnitTestReward(mode="adaptive")
    rewards = call(reward, [PASSING, ONE_OF_THREE, RUNTIME])
    assert reward.last_feedback[1].tests_passed == 1 and reward.last_feedback[1].tests_total == 3
    assert rewards[0] == 1.0
    assert rewards[1] == pytest.approx(-0.3 + 1.3 / 3)
    assert rewards[2] == -0.6  # adaptive only changes programs that ran and failed a test


def test_custom_values():
    values = RLTFRewardValues(passed=2.0, failed=0.0, compile_error=-5.0)
    assert call(UnitTestReward(values=values), [PASSING, ONE_OF_THREE, COMPILE]) == [2.0, 0.0, -5.0]


def test_chat_completions():
    rewards = call(UnitTestReward(), [[{"role": "assistant", "content": PASSING}]])
    assert rewards == [1.0]


def test_dict_tests_accepted():
    assert call(UnitTestReward(), [PASSING], tests=json.loads(TESTS)) == [1.0]


def test_unknown_mode_and_language_fail_at_construction():
    with pytest.raises(ValueError, match="mode"):
        UnitTestReward(mode="fine")
    with pytest.raises(UnknownLanguageError, match="cobol"):
        UnitTestReward(language="cobol")
    with pytest.raises(UnknownLanguageError, match="cobol"):
        CompilerReward(language="cobol")  # Java is supported since the Java backend (tests/execution/test_java_rewards.py)


def test_missing_tests_column_names_column_and_available_ones():
    reward = UnitTestReward(tests_column="unit_tests")
    with pytest.raises(KeyError) as err:
        reward(prompts=["p"], completions=[PASSING], tests=[TESTS], task_id=[1], log_metric=print)
    msg = str(err.value)
    assert "'unit_tests'" in msg and "'task_id'" in msg and "'tests'" in msg and "log_metric" not in msg


@pytest.mark.parametrize(
    "bad, match",
    [
        ("not json", "not valid JSON"),
        (json.dumps({"kind": "nope"}), "unknown tests kind"),
        (json.dumps({"kind": "asserts"}), "'asserts' field"),
        (None, "holds no tests"),
    ],
)
def test_malformed_row_names_row_and_problem(bad, match):
    reward = UnitTestReward(executor=_NeverRun())
    with pytest.raises(ValueError, match=match) as err:
        reward(prompts=["p", "p"], completions=[PASSING, PASSING], tests=[TESTS, bad])
    assert "row 1" in str(err.value)


class _NeverRun:
    def run(self, programs, limits=None):
        raise AssertionError("nothing may run when a row is malformed")


def test_empty_completion_scores_compile_error_without_running():
    reward = UnitTestReward(executor=_NeverRun())
    rewards = call(reward, ["", "   \n", "```python\n```", [{"role": "assistant", "content": None}]])
    assert rewards == [-1.0] * 4
    for fb in reward.last_feedback:
        assert fb.status is Status.COMPILE_ERROR and fb.error_type == EMPTY_COMPLETION
        assert fb.tests_total == 3


def test_code_prefix_error_line_is_relative_to_completion():
    prefix = "def f(x):\n    '''Add one.'''\n"  # 2 lines
    completions = [
        "    y = x + 1\n    return y\n",  # passes
        "    y = x + 1\n    return undefined_name\n",  # NameError on program line 4 = completion line 2
        "    return x + 1\n```\nThis returns x + 1.",  # prose after the closing fence is dropped
    ]
    reward = UnitTestReward()
    rewards = reward(prompts=["p"] * 3, completions=completions, tests=[TESTS] * 3, code_prefix=[prefix] * 3)
    assert rewards[0] == 1.0
    assert rewards[2] == 1.0
    r = reward.last_results[1]
    assert r.prefix_lines == 2 and r.program_error_line == 4
    assert r.feedback.error_line == 2
    s, e = r.error_span()
    assert completions[1][s:e] == "    return undefined_name"


def test_error_inside_prefix_has_no_completion_line():
    prefix = "import not_a_real_module_xyz\ndef f(x):\n"
    reward = UnitTestReward()
    reward(prompts=["p"], completions=["    return x + 1\n"], tests=[TESTS], code_prefix=[prefix])
    r = reward.last_results[0]
    assert r.feedback.status is Status.RUNTIME_ERROR
    assert r.program_error_line == 1 and r.feedback.error_line is None and r.error_span() is None


def test_error_line_maps_to_fenced_completion_span():
    completion = "Sure:\r\n```python\r\ndef f(x):\r\n    return x[0]\r\n```"
    reward = UnitTestReward()
    call(reward, [completion])
    r = reward.last_results[0]
    assert r.feedback.error_type == "TypeError" and r.feedback.error_line == 2
    s, e = r.error_span()
    assert completion[s:e] == "    return x[0]"


def test_log_metric_and_log_extra():
    metrics, extra = {}, {}
    reward = UnitTestReward(mode="adaptive")
    call(
        reward,
        [PASSING, ONE_OF_THREE, RUNTIME, COMPILE],
        log_metric=lambda name, value: metrics.setdefault(name, []).append(value),
        log_extra=lambda column, values: extra.setdefault(column, []).extend(values),
    )
    assert metrics["unit_test_reward/passed"] == [0.25]
    assert metrics["unit_test_reward/compile_error"] == [0.25]
    assert metrics["unit_test_reward/harness_error"] == [0.0]
    assert metrics["unit_test_reward/pass_ratio"] == [pytest.approx((1 + 1 / 3) / 4)]
    assert metrics["unit_test_reward/truncated"] == [0.0]
    assert extra["unit_test_reward/status"] == ["passed", "failed", "runtime_error", "compile_error"]
    assert extra["unit_test_reward/error_type"][2:] == ["NameError", "SyntaxError"]
    assert extra["unit_test_reward/error_line"][2:] == [2, 1]


def test_name_is_configurable():
    reward = UnitTestReward(name="mbpp_tests")
    assert reward.__name__ == "mbpp_tests"
    assert UnitTestReward().__name__ == "unit_test_reward"


class _Recorder:
    """Executor stand-in that records the programs it was given and answers with a real executor."""

    def __init__(self):
        self.programs = []

    def run(self, programs, limits=None):
        from trl_codefeedback.execution import execute

        self.programs.extend(programs)
        return execute(programs, limits=limits)


def test_truncation_from_completion_ids():
    rec = _Recorder()
    reward = UnitTestReward(executor=rec, max_completion_length=4, eos_token_ids=[0])
    call(reward, [PASSING, PASSING, PASSING], completion_ids=[[5, 6, 7, 8], [5, 6, 7, 0], [5, 0]])
    assert [p.truncated for p in rec.programs] == [True, False, False]
    assert [r.truncated for r in reward.last_results] == [True, False, False]


def test_truncation_from_column_wins():
    rec = _Recorder()
    reward = UnitTestReward(executor=rec, max_completion_length=4)
    call(reward, [PASSING, PASSING], completion_ids=[[1, 2, 3, 4], [1]], truncated=[False, True])
    assert [p.truncated for p in rec.programs] == [False, True]


def test_attach_trainer_reads_limits():
    class Args:
        max_completion_length = 16

    class Trainer:
        args = Args()
        eos_token_ids = [3, 4]

    reward = UnitTestReward().attach_trainer(Trainer())
    assert reward.max_completion_length == 16 and reward.eos_token_ids == frozenset({3, 4})


def test_truncated_last_line_syntax_error_is_global():
    reward = UnitTestReward(max_completion_length=3)
    call(reward, ["def f(x):\n    return (x +"], completion_ids=[[1, 2, 3]])
    fb = reward.last_feedback[0]
    assert fb.status is Status.COMPILE_ERROR and str(fb.error_scope) == "global"


def test_language_column_is_checked_per_row():
    reward = CompilerReward()
    with pytest.raises(UnknownLanguageError, match="row 1"):
        reward(prompts=["p", "p"], completions=["x = 1", "x = 1"], language=["python", "cobol"])


def test_harness_error_gives_none_and_warns():
    ex = Executor(workers=1)
    ex.close()  # a closed executor cannot run anything: our failure, not the model's
    reward = UnitTestReward(executor=ex)
    metrics = {}
    with pytest.warns(RuntimeWarning, match="harness error"):
        rewards = call(reward, [PASSING, ""], log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert rewards == [None, -1.0]  # the empty completion never reached the executor
    assert reward.last_feedback[0].status is Status.HARNESS_ERROR
    assert metrics["unit_test_reward/harness_error"] == 0.5
    assert metrics["unit_test_reward/pass_ratio"] == 0.0  # harness errors are left out of the mean


def test_harness_error_from_executor_record():
    class Broken:
        def run(self, programs, limits=None):
            from trl_codefeedback.execution import Feedback

            return [Feedback.harness_error("worker failure: boom") for _ in programs]

    reward = UnitTestReward(executor=Broken())
    with pytest.warns(RuntimeWarning, match="boom"):
        assert call(reward, [PASSING, PASSING]) == [None, None]


def test_compiler_reward():
    reward = CompilerReward()
    completions = ["```python\ndef f(x):\n    return x\n```", "def f(x)\n    return x\n", "", "import os\nos.exit(1)"]
    metrics = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rewards = reward(prompts=["p"] * 4, completions=completions, log_metric=metrics.__setitem__)
    assert rewards == [1.0, -1.0, -1.0, 1.0]  # compile only: the last one never runs
    assert metrics["compiler_reward/compile_rate"] == 0.5
    assert reward.last_feedback[1].error_line == 1


def test_compiler_reward_custom_values():
    reward = CompilerReward(values=CompilerRewardValues(compiles=0.5, compile_error=0.0))
    assert reward(prompts=["p", "p"], completions=["x = 1", "x ="]) == [0.5, 0.0]


def test_chat_answer_with_prose_before_the_fence_is_not_taken_as_a_continuation():
    """Chat rows carry the prompt's import lines as code_prefix; the reply's code is its fenced block."""
    reward = UnitTestReward()
    chat_prompt = [{"role": "user", "content": "Write add(a, b)."}]
    reply = [{"role": "assistant", "content": "Sure! Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."}]
    tests = json.dumps({"kind": "asserts", "asserts": ["assert add(1, 2) == 3"]})
    assert reward(prompts=[chat_prompt], completions=[reply], tests=[tests], code_prefix=["from typing import List\n"]) == [1.0]
    # a plain-text prompt with a prefix still continues it
    plain = reward(prompts=["def add(a, b):\n"], completions=["    return a + b\n"], tests=[tests], code_prefix=["def add(a, b):\n"])
    assert plain == [1.0]
