"""DiscriminatorReward: the pairwise scorer (inputs, training, what it learns), the zero-shot judge,
the reward call, saving and LoRA, and the refresh callback. Tiny models built locally, real training."""

from __future__ import annotations

import ast
import builtins
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import ModelInputRecorder, build_tiny_classifier

from trl_codefeedback.feedback import (
    DiscriminatorRefreshCallback,
    DiscriminatorReward,
    DiscriminatorTrainingConfig,
    Rollout,
    evaluate_discriminator,
    program_pairs,
    train_discriminator,
)

# ---- data: MBPP rows when the data dir has them, else a built-in family ------------------------

FALLBACK_ROWS = [
    {
        "prompt": f"Write a function f{i} that returns x plus {i}.",
        "reference": f"def f{i}(x):\n    y = x + {i}\n    return y\n",
        "setup": "",
        "asserts": [f"assert f{i}(1) == {1 + i}"],
    }
    for i in range(48)
]


def _data_dir() -> Path | None:
    import os

    env = os.environ.get("TRL_CODEFEEDBACK_DATA")
    data = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return data if data.is_dir() else None


def _rows(n: int = 48) -> list[dict]:
    """MBPP's first ``n`` rows (prompt, reference, setup, asserts), or the built-in family without the data dir."""
    mbpp = (_data_dir() or Path("/nonexistent")) / "mbpp" / "mbpp.jsonl"
    if not mbpp.is_file():
        return FALLBACK_ROWS[:n]
    with mbpp.open() as f:
        raw = [json.loads(line) for _, line in zip(range(n), f)]
    return [
        {"prompt": r["text"], "reference": r["code"].replace("\r\n", "\n"), "setup": r["test_setup_code"], "asserts": r["test_list"]}
        for r in raw
    ]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


def corrupt(code: str) -> str:
    """A broken program: the text of every line written backwards, indentation and trailing spaces kept
    (so that "ends with whitespace" or "indentation looks odd" cannot tell it from a reference)."""
    lines = []
    for line in code.split("\n"):
        indent, body, trail = re.match(r"(\s*)(.*?)(\s*)$", line).groups()
        lines.append(indent + body[::-1] + trail)
    return "\n".join(lines)


NAME_POOL = ["acc", "item", "value", "total", "idx", "left", "right", "count", "result", "tmp", "cur", "seq"]


def rewrite(code: str) -> str:
    """A semantically equal program: parameters and locals of every function renamed, re-formatted by ``ast.unparse``."""
    tree = ast.parse(code)
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    taken |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    fresh = (f"{w}{k or ''}" for k in range(1000) for w in NAME_POOL)
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    mapping: dict[str, str] = {}
    for fn in funcs:
        a = fn.args
        local = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, *(v for v in (a.vararg, a.kwarg) if v)]]
        local += [n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        shared = {g for n in ast.walk(fn) if isinstance(n, (ast.Global, ast.Nonlocal)) for g in n.names}
        for name in local:
            if name not in shared and name not in mapping and not hasattr(builtins, name):
                mapping[name] = next(x for x in fresh if x not in taken)
    for fn in funcs:
        for node in ast.walk(fn):
            if isinstance(node, ast.arg) and node.arg in mapping:
                node.arg = mapping[node.arg]
            elif isinstance(node, ast.Name) and node.id in mapping:
                node.id = mapping[node.id]
    return ast.unparse(tree) + "\n"


def failing_rows(rows: list[dict], codes: list[str]) -> list[str]:
    """Prompts whose code fails its row's asserts, all run in one fresh interpreter (one namespace per row)."""
    jobs = [{"code": r["setup"] + "\n" + c, "asserts": r["asserts"], "prompt": r["prompt"]} for r, c in zip(rows, codes)]
    script = (
        "import json, sys\nbad = []\nfor job in json.load(sys.stdin):\n    ns = {}\n    try:\n"
        "        exec(job['code'], ns)\n        [exec(a, ns) for a in job['asserts']]\n"
        "    except BaseException:\n        bad.append(job['prompt'])\nprint(json.dumps(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(jobs), capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---- models ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer_path(tmp_path_factory, data_dir_or_none) -> Path:
    """A tiny Qwen2 decoder with a one-logit head: the pairwise scorer ``f``."""
    return build_tiny_classifier(tmp_path_factory.mktemp("scorer"), data_dir=data_dir_or_none, num_labels=1)


@pytest.fixture(scope="module")
def encoder_scorer_path(tmp_path_factory, data_dir_or_none) -> Path:
    """A tiny BERT encoder with a one-logit head."""
    return build_tiny_classifier(tmp_path_factory.mktemp("bert_scorer"), data_dir=data_dir_or_none, arch="bert", num_labels=1)


@pytest.fixture(scope="module")
def data_dir_or_none() -> Path | None:
    return _data_dir()


def assert_one_program_per_input(texts: list[str], pool: list[str]) -> None:
    """Every input holds exactly one program of ``pool``, once (programs of the pool are not substrings of one another)."""
    assert texts, "no model input was recorded"
    for a in pool:
        assert not any(a != b and a in b for b in pool), f"test setup: {a!r} is inside another program"
    for text in texts:
        found = {p: text.count(p) for p in pool if p in text}
        assert sum(found.values()) == 1, f"an input holds {sum(found.values())} programs: {text!r}"


# ---- what the scorer reads ----------------------------------------------------------------------

STRUCT_PROMPTS = [f"Task {i}: return the sum of the first {i + 2} squares." for i in range(4)]
STRUCT_REFS = [f"def squares_{i}(n):\n    total = 0\n    for k in range({i + 2}):\n        total += k * k\n    return total\n" for i in range(4)]
STRUCT_SAMPLES = [f"def squares_{i}(n):\n    return sum(range({i + 2}))\n" for i in range(4)]
STRUCT_NEGATIVES = [Rollout(p, f"print('no squares here {i}')\n", r) for i, (p, r) in enumerate(zip(STRUCT_PROMPTS, STRUCT_REFS))]


def test_train_discriminator_feeds_one_program_per_input(scorer_path):
    disc = DiscriminatorReward(str(scorer_path), max_length=256)
    prompts = STRUCT_PROMPTS + STRUCT_PROMPTS[:1]
    refs = STRUCT_REFS + STRUCT_REFS[:1]
    samples = STRUCT_SAMPLES + ["\n" + STRUCT_REFS[0] + "  "]  # the policy copied the reference: no pair
    cfg = DiscriminatorTrainingConfig(epochs=2, batch_size=3)
    with ModelInputRecorder(disc.model, disc.tokenizer) as rec:
        out = train_discriminator(disc, prompts, refs, samples, cfg, negatives=STRUCT_NEGATIVES)
        evaluate_discriminator(disc, prompts, refs, samples, negatives=STRUCT_NEGATIVES)
    assert out["pairs"] == 8 and out["skipped_copies"] == 1 and out["steps"] == 6
    pool = STRUCT_REFS + STRUCT_SAMPLES + [n.code for n in STRUCT_NEGATIVES]
    assert_one_program_per_input(rec.texts, pool)
    # the decoded inputs are exactly the scorer's texts, and every program was read
    assert set(rec.texts) == {disc.scorer_input(p, c) for p, c in zip(STRUCT_PROMPTS * 3, pool)}


def test_program_pairs_reject_bad_input():
    built = program_pairs(["p", "p"], ["r = 1\n", "r = 1\n"], ["r = 1", "r = 2\n"])
    assert [(x.reference, x.other) for x in built.pairs] == [("r = 1\n", "r = 2\n")] and built.skipped_copies == 1
    with pytest.raises(ValueError, match="2 prompts, 1 references"):
        program_pairs(["p", "q"], ["r"], ["g"])
    with pytest.raises(TypeError, match=r"negatives\[0\] is tuple"):
        program_pairs([], [], [], negatives=[("p", "g", "r")])


def test_score_is_the_pairwise_probability(scorer_path):
    disc = DiscriminatorReward(str(scorer_path), batch_size=3)
    prompts, codes, refs = STRUCT_PROMPTS, STRUCT_SAMPLES, STRUCT_REFS
    d = disc.score(prompts, codes, refs)
    with torch.no_grad():
        f_code, f_ref = disc.program_scores(prompts, codes), disc.program_scores(prompts, refs)
    expected = torch.sigmoid(f_code - f_ref).tolist()
    assert d == pytest.approx(expected, abs=1e-5)
    assert disc.score(prompts[:1], refs[:1], refs[:1]) == [0.5]  # a copy of the reference: indistinguishable
    assert [disc.score([p], [c], [r])[0] for p, c, r in zip(prompts, codes, refs)] == pytest.approx(d, abs=1e-5)
    logit = disc.logits(prompts, codes, refs)
    assert logit.requires_grad and torch.sigmoid(logit).tolist() == pytest.approx(d, abs=1e-5)
    disc.tokenizer.padding_side = "left"  # a decoder tokenizer's usual setting: inputs are padded on the right anyway
    assert disc.score(prompts, codes, refs) == pytest.approx(d, abs=1e-5) and disc.tokenizer.padding_side == "left"
    assert disc.score([], [], []) == []


def test_two_label_classifier_works_as_scorer(tiny_classifier_path):
    disc = DiscriminatorReward(str(tiny_classifier_path))  # num_labels=2: f = log-odds of positive_label
    d = disc.score(STRUCT_PROMPTS, STRUCT_SAMPLES, STRUCT_REFS)
    assert all(0.0 < s < 1.0 for s in d) and len({round(s, 6) for s in d}) > 1


# ---- what the scorer learns --------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["qwen2", "bert"])
def test_scorer_ranks_references_above_broken_programs_on_held_out_prompts(arch, rows, scorer_path, encoder_scorer_path):
    disc = DiscriminatorReward(str(scorer_path if arch == "qwen2" else encoder_scorer_path), max_length=128, batch_size=32)
    prompts = [r["prompt"] for r in rows]
    refs = [r["reference"] for r in rows]
    bad = [corrupt(c) for c in refs]
    train, test = slice(0, 32), slice(32, 48)
    before = evaluate_discriminator(disc, prompts[test], refs[test], bad[test])
    cfg = DiscriminatorTrainingConfig(epochs=6, batch_size=8, learning_rate=3e-3)
    out = train_discriminator(disc, prompts[train], refs[train], bad[train], cfg)
    assert out["steps"] == 24 and out["pairs"] == 32
    held_out = evaluate_discriminator(disc, prompts[test], refs[test], bad[test])
    assert held_out["accuracy"] >= 0.9, (before, held_out)
    assert held_out["generated_score"] < min(0.4, before["generated_score"] - 0.1), (before, held_out)


def test_rewrite_of_held_out_reference_scores_like_the_reference(rows, scorer_path):
    """Train on references and renamed / re-formatted rewrites of them, each against its broken version;
    on held-out prompts a rewrite must then score like its reference, and broken programs far below.

    What it took (measured on seeds 0-2, docs/rlcf.md): broken programs that keep the indentation and
    trailing spaces (else the scorer keys on whitespace), and the rewrites in training. Without them
    the same scorer, trained as long, put one or two held-out rewrites per seed next to the broken
    programs (d about 0.007); with them no rewrite falls below its reference. What stays: about one held-out
    reference per seed in an odd style (1-space indents, trailing semicolons) that the scorer itself
    scores like a broken program; its rewrite then scores above it, hence "15 of 16" below."""
    disc = DiscriminatorReward(str(scorer_path), max_length=128, batch_size=32)
    train, test = rows[:32], rows[32:48]
    assert failing_rows(test, [rewrite(r["reference"]) for r in test]) == []  # the rewrites do what the references do
    ref_side = [r["reference"] for r in train] + [rewrite(r["reference"]) for r in train]
    prompts = [r["prompt"] for r in train] * 2
    train_discriminator(disc, prompts, ref_side, [corrupt(c) for c in ref_side],
                        DiscriminatorTrainingConfig(epochs=4, batch_size=8, learning_rate=3e-3))

    x = [r["prompt"] for r in test]
    ref = [r["reference"] for r in test]
    rw = [rewrite(c) for c in ref]
    bad = [corrupt(c) for c in ref]
    assert all(a.strip() != b.strip() for a, b in zip(ref, rw))  # really rewritten
    with torch.no_grad():
        f_ref, f_rw, f_bad = (disc.program_scores(x, p).tolist() for p in (ref, rw, bad))
    close = [abs(w - r) < 0.25 * (r - b) for r, w, b in zip(f_ref, f_rw, f_bad)]
    assert sum(close) >= 15, list(zip(f_ref, f_rw, f_bad))
    d_rw, d_bad = disc.score(x, rw, ref), disc.score(x, bad, ref)
    assert min(d_rw) > 0.4 and 0.4 <= sum(d_rw) / len(d_rw) <= 0.6, d_rw  # no rewrite scores below its reference
    assert sum(d_bad) / len(d_bad) < 0.2, d_bad
    ranked = sum(w > b for w in f_rw for b in f_bad) / (len(f_rw) * len(f_bad))
    assert ranked >= 0.95, ranked  # rewrites rank above broken programs (AUC)


# ---- the judge: zero-shot, a different thing ----------------------------------------------------


def test_judge_probabilities_in_unit_interval_and_respond_to_input(tiny_model_path):
    disc = DiscriminatorReward(str(tiny_model_path), backend="judge", max_length=128)
    prompts = ["Add one.", "Add one.", "Reverse a list."]
    codes = ["def f(x):\n    return x + 1\n", "print('hello world')\n", "def r(a):\n    return a[::-1]\n"]
    refs = ["def f(x):\n    return 1 + x\n", "def f(x):\n    return x + 1\n", "def r(a):\n    return list(reversed(a))\n"]
    with ModelInputRecorder(disc.model, disc.tokenizer) as rec:
        scores = disc.score(prompts, codes, refs)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert len({round(s, 6) for s in scores}) > 1, scores  # depends on the input
    assert "### Reference solution" in rec.texts[0] and "### Candidate solution" in rec.texts[0]  # one prompt, both programs
    one_by_one = [disc.score([p], [c], [r])[0] for p, c, r in zip(prompts, codes, refs)]
    assert one_by_one == pytest.approx(scores, abs=1e-4)  # batching does not change the result
    with pytest.raises(ValueError, match="zero-shot"):
        train_discriminator(disc, prompts, refs, codes)
    with pytest.raises(ValueError, match="zero-shot"):
        DiscriminatorRefreshCallback(disc)
    assert 0.0 <= evaluate_discriminator(disc, prompts, refs, codes)["accuracy"] <= 1.0


# ---- the reward call -----------------------------------------------------------------------------


def test_reward_call_reads_reference_column_and_records_rollouts(scorer_path):
    disc = DiscriminatorReward(str(scorer_path), rollout_buffer_size=3)
    logged = {}
    out = disc(
        prompts=[[{"role": "user", "content": "Add one."}]] * 2,
        completions=[[{"role": "assistant", "content": "```python\ndef f(x):\n    return x + 1\n```"}], "x = 1"],
        reference=["def f(x):\n    return x + 1\n"] * 2,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert len(out) == 2 and all(0.0 <= s <= 1.0 for s in out)
    assert out[0] == 0.5  # the completion's code is the reference
    assert disc.__name__ == "discriminator_reward"
    assert [r.code for r in disc.rollouts] == ["def f(x):\n    return x + 1\n", "x = 1"]
    assert disc.rollouts[0].prompt == "Add one."
    assert "discriminator/score" in logged


def test_missing_reference_column_names_it(scorer_path):
    disc = DiscriminatorReward(str(scorer_path))
    with pytest.raises(KeyError, match=r"'reference'.*available columns: \['solution', 'tests'\]"):
        disc(prompts=["p"], completions=["x = 1"], solution=["x = 2"], tests=["{}"], log_metric=print)
    assert not disc.rollouts  # raised before scoring


def test_bad_settings_are_rejected(scorer_path):
    with pytest.raises(ValueError, match="unknown discriminator backend"):
        DiscriminatorReward(str(scorer_path), backend="oracle")
    with pytest.raises(ValueError, match=r"must hold \{code\}"):
        DiscriminatorReward(str(scorer_path), template="{prompt} {reference}")
    with pytest.raises(ValueError, match=r"must not hold \{reference\}"):
        DiscriminatorReward(str(scorer_path), template="{prompt} {reference} {code}")
    with pytest.raises(ValueError, match=">= 1"):
        DiscriminatorTrainingConfig(epochs=0)
    assert DiscriminatorReward(str(scorer_path), backend="classifier").backend == "scorer"  # the old name


def test_save_and_load_round_trip(scorer_path, tmp_path):
    disc = DiscriminatorReward(str(scorer_path), max_length=96, template="T:{prompt}\nP:{code}")
    args = (["Add one."], ["def f(x): return x + 1"], ["def f(x):\n    return x + 1\n"])
    before = disc.score(*args)
    disc.save_pretrained(tmp_path / "disc")
    loaded = DiscriminatorReward.from_pretrained(tmp_path / "disc", device="cpu")
    assert loaded.backend == "scorer" and loaded.max_length == 96 and loaded.template.startswith("T:")
    assert loaded.score(*args) == pytest.approx(before, abs=1e-5)
    with pytest.raises(FileNotFoundError, match="discriminator_config.json"):
        DiscriminatorReward.from_pretrained(tmp_path)
    old = json.loads((tmp_path / "disc" / "discriminator_config.json").read_text())  # a pre-pairwise save
    old.update(backend="classifier", template="### Task\n{prompt}\n### Reference\n{reference}\n### Candidate\n{code}")
    (tmp_path / "disc" / "discriminator_config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="before the scorer became pairwise"):
        DiscriminatorReward.from_pretrained(tmp_path / "disc")


def test_lora_scorer_trains_adapters_and_round_trips(scorer_path, tmp_path):
    peft = pytest.importorskip("peft")
    cfg = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    disc = DiscriminatorReward(str(scorer_path), peft_config=cfg)
    frozen = {n: p.detach().clone() for n, p in disc.model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in disc.model.named_parameters() if p.requires_grad}
    assert frozen and any("lora_" in n for n in trainable) and any("score" in n for n in trainable)
    train_discriminator(disc, STRUCT_PROMPTS, STRUCT_REFS, STRUCT_SAMPLES, DiscriminatorTrainingConfig(epochs=3, learning_rate=1e-2))
    params = dict(disc.model.named_parameters())
    assert all(torch.equal(params[n], p) for n, p in frozen.items())  # the base stays as it was
    assert any(not torch.equal(params[n], p) for n, p in trainable.items())
    args = (STRUCT_PROMPTS, STRUCT_SAMPLES, STRUCT_REFS)
    before = disc.score(*args)
    disc.save_pretrained(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    loaded = DiscriminatorReward.from_pretrained(tmp_path / "lora")
    assert loaded.score(*args) == pytest.approx(before, abs=1e-5)


def test_encoder_scorer_backend(encoder_scorer_path):
    disc = DiscriminatorReward(str(encoder_scorer_path))
    scores = disc.score(["p", "p"], ["x = 1", "y = [1, 2]"], ["x = 1", "x = 1"])
    assert scores[0] == 0.5 and 0.0 <= scores[1] <= 1.0


def test_code_prefix_is_stripped_from_the_reference(scorer_path):
    disc = DiscriminatorReward(str(scorer_path))
    header = "def f(x):\n"
    disc(prompts=["Add one."], completions=["    return x + 1\n"], code_prefix=[header],
         reference=[header + "    return 1 + x\n"])
    assert disc.rollouts[-1].code == "    return x + 1\n"
    assert disc.rollouts[-1].reference == "    return 1 + x\n"


# ---- the refresh callback ----------------------------------------------------------------------


def test_refresh_callback_trains_on_rollouts_one_program_per_input_and_logs(scorer_path):
    disc = DiscriminatorReward(str(scorer_path), max_length=256)
    cb = DiscriminatorRefreshCallback(disc, every_n_steps=2, config=DiscriminatorTrainingConfig(epochs=1, batch_size=2))
    state = SimpleNamespace(global_step=1, log_history=[])
    cb.on_step_end(None, state, None)
    assert state.log_history == []  # nothing buffered, and not a refresh step
    disc.record(STRUCT_PROMPTS, STRUCT_SAMPLES, STRUCT_REFS)
    disc.record(STRUCT_PROMPTS[:1], STRUCT_REFS[:1], STRUCT_REFS[:1])  # a rollout that copied the reference
    cb.on_step_end(None, state, None)  # step 1: not yet
    assert len(disc.rollouts) == 5 and not cb.history
    state.global_step = 2
    before = {n: p.detach().clone() for n, p in disc.model.named_parameters()}
    with ModelInputRecorder(disc.model, disc.tokenizer) as rec:
        cb.on_step_end(None, state, None)
    assert_one_program_per_input(rec.texts, STRUCT_REFS + STRUCT_SAMPLES)
    assert any(not torch.equal(p, before[n]) for n, p in disc.model.named_parameters())
    assert len(cb.history) == 1 and not disc.rollouts
    entry = state.log_history[-1]
    assert entry["step"] == 2 and 0.0 <= entry["discriminator/accuracy"] <= 1.0
    assert entry["discriminator/pairs"] == 4.0  # the copy made no pair
    assert {"discriminator/train_accuracy", "discriminator/loss", "discriminator/margin"} <= set(entry)
    assert disc.training_metrics["refreshes"] == 1.0
    disc.record(STRUCT_PROMPTS[:1], STRUCT_REFS[:1], STRUCT_REFS[:1])  # only copies: nothing to learn from
    assert cb.refresh(step=4) is None and not disc.rollouts
    cb.on_train_begin(None, state, None)  # every other TrainerCallback event is a no-op
    with pytest.raises(ValueError):
        DiscriminatorRefreshCallback(disc, every_n_steps=0)


def test_sigmoid_is_stable():
    from trl_codefeedback.feedback.discriminator import sigmoid

    assert sigmoid(0.0) == 0.5 and sigmoid(-1e6) == 0.0 and sigmoid(1e6) == 1.0 and sigmoid(math.nan) == 0.0
