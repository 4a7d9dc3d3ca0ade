"""DiscriminatorReward (classifier and judge backends), its training, saving and the refresh callback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from trl_codefeedback.feedback import (
    DiscriminatorRefreshCallback,
    DiscriminatorReward,
    DiscriminatorTrainingConfig,
    evaluate_discriminator,
    train_discriminator,
)

FALLBACK_ROWS = [
    (f"Write a function f{i} that returns x plus {i}.", f"def f{i}(x):\n    y = x + {i}\n    return y\n")
    for i in range(48)
]


def _rows(data_dir: Path | None, n: int = 48) -> list[tuple[str, str]]:
    mbpp = data_dir / "mbpp" / "mbpp.jsonl" if data_dir is not None else None
    if mbpp is None or not mbpp.is_file():
        return FALLBACK_ROWS[:n]
    with mbpp.open() as f:
        rows = [json.loads(line) for _, line in zip(range(n), f)]
    return [(r["text"], r["code"].replace("\r\n", "\n")) for r in rows]


def corrupt(code: str) -> str:
    """A clearly-not-a-reference program: every line written backwards."""
    return "\n".join(line[::-1] for line in code.splitlines())


@pytest.fixture(scope="module")
def rows():
    import os

    env = os.environ.get("TRL_CODEFEEDBACK_DATA")
    data = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return _rows(data if data.is_dir() else None)


def test_classifier_learns_references_vs_corrupted(tiny_classifier_path, rows):
    disc = DiscriminatorReward(str(tiny_classifier_path), max_length=128, batch_size=16)
    prompts = [p for p, _ in rows]
    refs = [c for _, c in rows]
    bad = [corrupt(c) for c in refs]
    train, test = slice(0, 32), slice(32, 48)
    cfg = DiscriminatorTrainingConfig(epochs=4, batch_size=8, learning_rate=3e-3)
    out = train_discriminator(disc, prompts[train], refs[train], bad[train], cfg)
    assert out["steps"] == 32 and out["examples"] == 64
    seen = evaluate_discriminator(disc, prompts[train], refs[train], bad[train])
    held_out = evaluate_discriminator(disc, prompts[test], refs[test], bad[test])
    assert seen["accuracy"] >= 0.9, seen
    assert held_out["accuracy"] >= 0.75, held_out
    assert held_out["reference_score"] > held_out["generated_score"] + 0.3


def test_judge_probabilities_in_unit_interval_and_respond_to_input(tiny_model_path):
    disc = DiscriminatorReward(str(tiny_model_path), backend="judge", max_length=128)
    prompts = ["Add one.", "Add one.", "Reverse a list."]
    codes = ["def f(x):\n    return x + 1\n", "print('hello world')\n", "def r(a):\n    return a[::-1]\n"]
    refs = ["def f(x):\n    return x + 1\n", "def f(x):\n    return x + 1\n", "def r(a):\n    return list(reversed(a))\n"]
    scores = disc.score(prompts, codes, refs)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert len({round(s, 6) for s in scores}) > 1, scores  # depends on the input
    # batching does not change the result
    one_by_one = [disc.score([p], [c], [r])[0] for p, c, r in zip(prompts, codes, refs)]
    assert one_by_one == pytest.approx(scores, abs=1e-4)
    # and the judge is trainable: a few steps move the reference's score up
    before = disc.score(prompts[:1], refs[:1], refs[:1])[0]
    train_discriminator(disc, prompts[:2], refs[:2], codes[1:3], DiscriminatorTrainingConfig(epochs=3, learning_rate=1e-2))
    assert disc.score(prompts[:1], refs[:1], refs[:1])[0] > before


def test_reward_call_reads_reference_column_and_records_rollouts(tiny_classifier_path):
    disc = DiscriminatorReward(str(tiny_classifier_path), rollout_buffer_size=3)
    logged = {}
    out = disc(
        prompts=[[{"role": "user", "content": "Add one."}]] * 2,
        completions=[[{"role": "assistant", "content": "```python\ndef f(x):\n    return x + 1\n```"}], "x = 1"],
        reference=["def f(x):\n    return x + 1\n"] * 2,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert len(out) == 2 and all(0.0 <= s <= 1.0 for s in out)
    assert disc.__name__ == "discriminator_reward"
    assert [r.code for r in disc.rollouts] == ["def f(x):\n    return x + 1\n", "x = 1"]
    assert disc.rollouts[0].prompt == "Add one."
    assert "discriminator/score" in logged


def test_missing_reference_column_names_it(tiny_classifier_path):
    disc = DiscriminatorReward(str(tiny_classifier_path))
    with pytest.raises(KeyError, match=r"'reference'.*available columns: \['solution', 'tests'\]"):
        disc(prompts=["p"], completions=["x = 1"], solution=["x = 2"], tests=["{}"], log_metric=print)
    assert not disc.rollouts  # raised before scoring


def test_bad_settings_are_rejected(tiny_classifier_path):
    with pytest.raises(ValueError, match="unknown discriminator backend"):
        DiscriminatorReward(str(tiny_classifier_path), backend="oracle")
    with pytest.raises(ValueError, match="must hold"):
        DiscriminatorReward(str(tiny_classifier_path), template="{prompt} {code}")


def test_save_and_load_round_trip(tiny_classifier_path, tmp_path):
    disc = DiscriminatorReward(str(tiny_classifier_path), max_length=96, template="T:{prompt}\nR:{reference}\nC:{code}")
    args = (["Add one."], ["def f(x): return x + 1"], ["def f(x):\n    return x + 1\n"])
    before = disc.score(*args)
    disc.save_pretrained(tmp_path / "disc")
    loaded = DiscriminatorReward.from_pretrained(tmp_path / "disc", device="cpu")
    assert loaded.backend == "classifier" and loaded.max_length == 96 and loaded.template.startswith("T:")
    assert loaded.score(*args) == pytest.approx(before, abs=1e-5)
    with pytest.raises(FileNotFoundError, match="discriminator_config.json"):
        DiscriminatorReward.from_pretrained(tmp_path)


def test_encoder_classifier_backend(tmp_path):
    from tiny_models import build_tiny_classifier

    path = build_tiny_classifier(tmp_path / "bert", arch="bert", num_labels=1)
    disc = DiscriminatorReward(str(path))
    scores = disc.score(["p", "p"], ["x = 1", "y = [1, 2]"], ["x = 1", "x = 1"])
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_refresh_callback_trains_on_rollouts_and_logs(tiny_classifier_path, rows):
    from types import SimpleNamespace

    disc = DiscriminatorReward(str(tiny_classifier_path), max_length=96)
    cb = DiscriminatorRefreshCallback(disc, every_n_steps=2, config=DiscriminatorTrainingConfig(epochs=1))
    state = SimpleNamespace(global_step=1, log_history=[])
    cb.on_step_end(None, state, None)
    assert state.log_history == []  # nothing buffered, and not a refresh step
    disc.record([p for p, _ in rows[:4]], [corrupt(c) for _, c in rows[:4]], [c for _, c in rows[:4]])
    cb.on_step_end(None, state, None)  # step 1: not yet
    assert len(disc.rollouts) == 4 and not cb.history
    state.global_step = 2
    cb.on_step_end(None, state, None)
    assert len(cb.history) == 1 and not disc.rollouts
    entry = state.log_history[-1]
    assert entry["step"] == 2 and 0.0 <= entry["discriminator/accuracy"] <= 1.0
    assert {"discriminator/train_accuracy", "discriminator/loss"} <= set(entry)
    assert disc.training_metrics["refreshes"] == 1.0
    cb.on_train_begin(None, state, None)  # every other TrainerCallback event is a no-op
    with pytest.raises(ValueError):
        DiscriminatorRefreshCallback(disc, every_n_steps=0)


def test_code_prefix_is_stripped_from_the_reference(tiny_classifier_path):
    disc = DiscriminatorReward(str(tiny_classifier_path))
    header = "def f(x):\n"
    disc(prompts=["Add one."], completions=["    return x + 1\n"], code_prefix=[header],
         reference=[header + "    return 1 + x\n"])
    assert disc.rollouts[-1].code == "    return x + 1\n"
    assert disc.rollouts[-1].reference == "    return 1 + x\n"
