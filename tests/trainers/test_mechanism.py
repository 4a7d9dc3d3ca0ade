"""The fine-grained term does what it claims: on a fixed batch, the error line loses more log-probability.

One prompt, two fixed completions (generation is replaced): one raises NameError on a known
line, one passes. The same optimizer steps are run with and without the fine-grained term;
we compare, inside the failing completion, the log-prob drop of the error-line tokens
against that of its other tokens.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from trl_codefeedback.feedback import UnitTestReward  # noqa: E402
from trl_codefeedback.feedback.token_mapping import token_char_spans, tokens_in_span  # noqa: E402
from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _helpers import config_kwargs  # noqa: E402

pytestmark = pytest.mark.slow

PROMPT = "Write a function f(x) that returns x + 1.\n"
BAD = "def f(x):\n    y = x + 1\n    return undefined_name\n"  # NameError on line 3
GOOD = "def f(x):\n    y = x + 1\n    return y\n"
TESTS = json.dumps({"kind": "asserts", "asserts": ["assert f(1) == 2"]})


def _logps(model, prompt_ids, completion_ids):
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(completion_ids)[:, None])[:, 0]


def _run(model_path, tmp_path, fine_grained: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    bad_ids = tok(BAD, add_special_tokens=False).input_ids + [tok.eos_token_id]
    good_ids = tok(GOOD, add_special_tokens=False).input_ids + [tok.eos_token_id]
    prompt_ids = tok(PROMPT, add_special_tokens=False).input_ids
    reward = UnitTestReward(mode="coarse")
    args = CodeFeedbackGRPOConfig(
        **config_kwargs(tmp_path, max_steps=3, per_device_train_batch_size=2, learning_rate=3e-3, fine_grained=fine_grained)
    )
    trainer = CodeFeedbackGRPOTrainer(
        model=model, reward_funcs=[reward], args=args, processing_class=tok,
        train_dataset=Dataset.from_list([{"prompt": PROMPT, "tests": TESTS}] * 8),
    )
    trainer._generate_single_turn = lambda prompt_ids, *a, **k: (
        [list(bad_ids) if i % 2 == 0 else list(good_ids) for i in range(len(prompt_ids))],
        None,
    )
    before = _logps(trainer.model, prompt_ids, bad_ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        trainer.train()
    after = _logps(trainer.model, prompt_ids, bad_ids)
    # the reward saw exactly our batch, with the error where we put it
    statuses = [r.feedback.status.value for r in reward.last_results]
    assert statuses == ["runtime_error", "passed"], statuses
    r = reward.last_results[0]
    assert r.feedback.error_line == 3 and r.feedback.error_type == "NameError"
    line = tokens_in_span(token_char_spans(tok, bad_ids, BAD), *r.error_span())
    other = [i for i in range(len(bad_ids)) if i not in line]
    delta = after - before
    return delta[line].mean().item() - delta[other].mean().item(), line


def test_error_line_logprob_drops_more_with_fine_grained(tiny_model_path, tmp_path):
    with_fine, line = _run(tiny_model_path, tmp_path / "fine", fine_grained=True)
    without, _ = _run(tiny_model_path, tmp_path / "coarse", fine_grained=False)
    assert line, "no error-line tokens"
    # relative drop of the error line vs the rest of the same completion
    assert with_fine < without - 0.05, (with_fine, without)
    assert with_fine < 0, with_fine
