"""Java through the rewards: CompilerReward / UnitTestReward(language="java") on MBJP rows, error lines -> tokens."""

from __future__ import annotations

import shutil

import pytest

from trl_codefeedback.data import load_mbjp
from trl_codefeedback.feedback import CompilerReward, UnitTestReward
from trl_codefeedback.feedback.token_mapping import tokens_in_span
from trl_codefeedback.trainers.fine_grained import FineGrainedSettings, token_plan

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")


@pytest.fixture(scope="module")
def row():
    ds = load_mbjp()
    return next(r for r in ds if r["task_id"] == "MBJP/1")


def _kwargs(row, n):
    return {k: [row[k]] * n for k in ("tests", "code_prefix", "language", "task_id")}


def completions(row):
    solution = row["reference"][len(row["prompt"]):]
    wrong = solution.replace("return T[m][n];", "return T[m][n] == 12 ? 0 : T[m][n];")
    broken = solution.replace("int[][] T = new int[m+1][n+1];", "int[][] T = new int[m+1][n+1];\n        int q = undefinedName;")
    throws = solution.replace("return T[m][n];", "return T[m + 5][n];")
    return [solution, wrong, broken, throws]


def test_unit_test_reward_java(executor, row):
    comps = completions(row)
    reward = UnitTestReward(language="java", executor=executor, mode="adaptive")
    rewards = reward(prompts=[row["prompt"]] * 4, completions=comps, **_kwargs(row, 4))
    assert rewards[0] == 1.0
    assert rewards[1] == pytest.approx(-0.3 + 1.3 * 2 / 3)
    assert rewards[2] == -1.0 and rewards[3] == -0.6
    res = reward.last_results
    # error lines are relative to the completion (the prompt is the code_prefix)
    assert res[2].feedback.error_line == 2 and res[2].feedback.error_type == "cant.resolve.location"
    assert res[2].program_error_line == res[2].prefix_lines + 2
    assert res[3].feedback.error_type == "ArrayIndexOutOfBoundsException"
    line = comps[3].splitlines()[res[3].feedback.error_line - 1]
    assert "T[m + 5][n]" in line


def test_compiler_reward_java(executor, row):
    comps = completions(row)
    reward = CompilerReward(language="java", executor=executor)
    assert reward(prompts=[row["prompt"]] * 4, completions=comps, **_kwargs(row, 4)) == [1.0, 1.0, -1.0, 1.0]
    assert reward.last_results[2].feedback.error_line == 2


def test_java_error_line_maps_to_tokens(executor, row):
    comps = completions(row)
    reward = UnitTestReward(language="java", executor=executor)
    reward(prompts=[row["prompt"]], completions=[comps[2]], **_kwargs(row, 1))
    r = reward.last_results[0]
    start, end = r.error_span()
    assert comps[2][start:end].strip() == "int q = undefinedName;"
    # whitespace "tokenizer": one token per run of non-space characters
    import re

    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", comps[2])]
    plan = token_plan(r, spans, len(spans), FineGrainedSettings())
    assert plan.scope == "line"
    assert [comps[2][spans[i][0]:spans[i][1]] for i in plan.penalized] == ["int", "q", "=", "undefinedName;"]
    assert plan.penalized == tokens_in_span(spans, start, end)


def test_fenced_java_completion_in_chat_mode(executor):
    ds = load_mbjp(conversational=True)
    row = next(r for r in ds if r["task_id"] == "MBJP/1")
    mbjp_plain = next(r for r in load_mbjp() if r["task_id"] == "MBJP/1")
    body = mbjp_plain["reference"]
    code = body[body.index("class MinCost"):]
    completion = f"```java\n{code.rstrip()}\n```\nThis uses dynamic programming.\n"
    reward = UnitTestReward(language="java", executor=executor)
    assert reward(prompts=[row["prompt"]], completions=[completion], **_kwargs(row, 1)) == [1.0]
