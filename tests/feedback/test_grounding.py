"""GroundingReward: the documented value of each case of the RLCF grounding table."""

from __future__ import annotations

import json
import shutil

import pytest

from trl_codefeedback.execution.feedback import Feedback, Status
from trl_codefeedback.feedback import DiscriminatorReward, GroundingReward, GroundingRewardValues

TESTS = json.dumps({"kind": "asserts", "asserts": ["assert f(1) == 2", "assert f(2) == 3"]})
REFERENCE = "def f(x):\n    return x + 1\n"
CASES = {  # completion -> (status, execution value of the default table)
    "compile_error": ("```python\ndef f(x:\n    return x\n```", Status.COMPILE_ERROR, -1.0),
    "runtime_error": ("```python\ndef f(x):\n    return x / 0\n```", Status.RUNTIME_ERROR, -0.5),
    "failing": ("```python\ndef f(x):\n    return x\n```", Status.FAILED, 0.0),
    "passing": ("```python\ndef f(x):\n    return 1 + x\n```", Status.PASSED, 1.0),
    "no_code": ("", Status.COMPILE_ERROR, -1.0),
}


class FixedDiscriminator(DiscriminatorReward):
    """A DiscriminatorReward without a model: scores every program ``d``."""

    def __init__(self, d: float) -> None:
        self.d = d
        self.reference_column = "reference"
        self.code_prefix_column = "code_prefix"
        self.__name__ = "fixed_discriminator"
        self.scored: list[str] = []
        self.rollouts = []
        self.record_rollouts = True
        self.training_metrics = {"accuracy": 0.75}

    def score(self, prompts, codes, references):
        self.scored.extend(codes)
        return [self.d] * len(codes)

    def attach_trainer(self, trainer):
        return self


def _call(reward, names, **extra):
    completions = [CASES[k][0] for k in names]
    n = len(names)
    kwargs = {"tests": [TESTS] * n, "reference": [REFERENCE] * n, **extra}
    return reward(prompts=["Write f(x) returning x + 1."] * n, completions=completions, **kwargs)


def test_default_table_with_discriminator_scores():
    disc = FixedDiscriminator(0.8)
    reward = GroundingReward(discriminator=disc)
    names = list(CASES)
    out = _call(reward, names)
    expected = {
        "compile_error": -1.0,  # gated: the discriminator is not consulted
        "runtime_error": -0.5 + 0.5 * 0.8,
        "failing": 0.0 + 0.5 * 0.8,
        "passing": 1.0 + 0.5 * 0.8,
        "no_code": -1.0,
    }
    assert out == pytest.approx([expected[k] for k in names])
    assert [r.feedback.status for r in reward.last_results] == [CASES[k][1] for k in names]
    assert reward.last_discriminator_scores == [None, 0.8, 0.8, 0.8, None]
    assert len(disc.scored) == 3  # only the programs that compiled
    assert len(disc.rollouts) == 5  # every program is a negative for the next refresh


@pytest.mark.parametrize("d", [0.0, 1.0])
def test_discriminator_never_reorders_execution_levels(d):
    out = _call(GroundingReward(discriminator=FixedDiscriminator(d)), ["compile_error", "runtime_error", "failing", "passing"])
    assert out == sorted(out)
    assert out == pytest.approx([-1.0, -0.5 + 0.5 * d, 0.5 * d, 1.0 + 0.5 * d])


def test_without_discriminator_execution_values_only():
    out = _call(GroundingReward(), list(CASES))
    assert out == [CASES[k][2] for k in CASES]


def test_gates_and_weights_are_config_fields():
    execute_gate = GroundingReward(discriminator=FixedDiscriminator(1.0), values=GroundingRewardValues(gate="execute"))
    assert _call(execute_gate, ["runtime_error", "failing"]) == pytest.approx([-0.5, 0.5])
    no_gate = GroundingReward(discriminator=FixedDiscriminator(1.0), values=GroundingRewardValues(gate="none"))
    assert _call(no_gate, ["compile_error"]) == pytest.approx([-0.5])
    weighted = GroundingRewardValues(execution_weight=2.0, discriminator_weight=0.25, compile_error=-3.0)
    out = _call(GroundingReward(discriminator=FixedDiscriminator(1.0), values=weighted), ["compile_error", "passing"])
    assert out == pytest.approx([-3.0, 2.25])
    with pytest.raises(ValueError, match="unknown gate"):
        GroundingRewardValues(gate="sometimes")


def test_values_table_directly():
    v = GroundingRewardValues()
    assert v.value(Feedback(status=Status.TIMEOUT), 0.2) == pytest.approx(-0.4)
    assert v.value(Feedback(status=Status.RESOURCE_LIMIT), 0.0) == -0.5
    assert v.value(Feedback(status=Status.HARNESS_ERROR), 1.0) is None
    assert v.value(Feedback(status=Status.PASSED)) == 1.0  # no discriminator score


def test_harness_error_is_none():
    class Broken:
        def run(self, programs, limits=None):
            return [Feedback.harness_error("worker died") for _ in programs]

    disc = FixedDiscriminator(0.5)
    reward = GroundingReward(discriminator=disc, executor=Broken())
    with pytest.warns(RuntimeWarning, match="harness error"):
        assert _call(reward, ["passing"]) == [None]
    assert not disc.scored and not disc.rollouts


def test_missing_reference_column_named_before_running():
    class Exploding:
        def run(self, programs, limits=None):
            raise AssertionError("must not run")

    reward = GroundingReward(discriminator=FixedDiscriminator(0.5), executor=Exploding())
    with pytest.raises(KeyError, match=r"grounding_reward.*'reference'.*available columns: \['solution', 'tests'\]"):
        reward(prompts=["p"], completions=["x = 1"], tests=[TESTS], solution=["x = 2"])


def test_logs_rates_and_discriminator_metrics():
    logged: dict[str, float] = {}
    _call(GroundingReward(discriminator=FixedDiscriminator(0.8)), ["compile_error", "failing", "passing", "runtime_error"],
          log_metric=lambda k, v: logged.__setitem__(k, v))
    assert logged["grounding_reward/compile_rate"] == 0.75
    assert logged["grounding_reward/execution_rate"] == 0.5
    assert logged["grounding_reward/pass_rate"] == 0.25
    assert logged["grounding_reward/discriminator_score"] == pytest.approx(0.8)
    assert logged["discriminator/accuracy"] == 0.75
    assert logged["grounding_reward/compile_error"] == 0.25


def test_with_real_tiny_classifier(tiny_classifier_path):
    disc = DiscriminatorReward(str(tiny_classifier_path))
    out = _call(GroundingReward(discriminator=disc), ["compile_error", "failing", "passing"])
    assert out[0] == -1.0
    assert 0.0 <= out[1] <= 0.5 and 1.0 <= out[2] <= 1.5


JAVA_PREFIX = "class Add {\n    public static int add(int a, int b) {\n"
JAVA_TESTS = json.dumps({  # the MBJP form the trusted Java oracle reads: value declared, then compared
    "kind": "java_main",
    "test": "class Main {\n"
            "    public static boolean compare(Object a, Object b) {\n"
            "        return a == null ? b == null : a.equals(b);\n    }\n"
            "    public static void main(String[] args) throws Exception {\n"
            "        int x0 = Add.add(1, 2);\n        int v0 = 3;\n"
            "        if (!(compare(x0, v0))) {\n            throw new java.lang.Exception(\"test 0 failed\");\n        }\n"
            "    }\n}\n",
})


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac not installed")
def test_java_programs_follow_the_same_table():
    disc = FixedDiscriminator(0.5)
    reward = GroundingReward(discriminator=disc, language="java")
    completions = [
        "        return a + b;\n    }\n}\n",  # passes
        "        return a - b;\n    }\n}\n",  # fails the check
        "        return a + ;\n    }\n}\n",  # does not compile
    ]
    out = reward(
        prompts=["Add two ints."] * 3,
        completions=completions,
        tests=[JAVA_TESTS] * 3,
        code_prefix=[JAVA_PREFIX] * 3,
        reference=[JAVA_PREFIX + completions[0]] * 3,
        language=["java"] * 3,
    )
    statuses = [r.feedback.status for r in reward.last_results]
    if Status.HARNESS_ERROR in statuses:
        pytest.fail(f"Java harness error: {reward.last_results[0].feedback.error_message}")
    assert statuses[2] is Status.COMPILE_ERROR and out[2] == -1.0
    assert statuses[0] is Status.PASSED and out[0] == pytest.approx(1.25)
    assert statuses[1] is Status.FAILED and out[1] == pytest.approx(0.25)  # the check throws: a failed test
    assert disc.scored[0] == completions[0]  # the discriminator compares the model's code ...
    assert disc.rollouts[0].reference == completions[0]  # ... with the reference minus the shared prefix
