"""PPO building blocks: GAE / returns against hand-computed values, per-token rewards, losses, KL controller."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from trl_codefeedback.trainers.gae import (  # noqa: E402
    KLController,
    clipped_policy_loss,
    clipped_value_loss,
    compute_gae,
    last_token_index,
    masked_whiten,
    per_token_rewards,
)


def _reference_gae(rewards, values, n_real, gamma, lam):
    """Textbook GAE on one unpadded episode (python floats)."""
    adv = [0.0] * n_real
    last = 0.0
    for t in reversed(range(n_real)):
        next_v = values[t + 1] if t + 1 < n_real else 0.0
        delta = rewards[t] + gamma * next_v - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, [a + v for a, v in zip(adv, values)]


def test_gae_hand_computed_with_padding():
    rewards = torch.tensor([[1.0, 0.0, 2.0, 5.0], [0.0, 0.0, 0.0, 1.0], [3.0, 3.0, 3.0, 3.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 9.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    adv, ret = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0 by hand (the padded reward 5.0 and value 9.0 are ignored):
    #   t=2: delta = 2 - 0.1 = 1.9                      A2 = 1.9
    #   t=1: delta = 0 + 0.9*0.1 - 0.2 = -0.11          A1 = -0.11 + 0.72*1.9 = 1.258
    #   t=0: delta = 1 + 0.9*0.2 - 0.5 = 0.68           A0 = 0.68 + 0.72*1.258 = 1.58576
    assert adv[0].tolist() == pytest.approx([1.58576, 1.258, 1.9, 0.0])
    assert ret[0].tolist() == pytest.approx([2.08576, 1.458, 2.0, 0.0])
    # row 1: terminal reward only, V = 0: A_t = (gamma*lam)^(3-t)
    assert adv[1].tolist() == pytest.approx([0.72**3, 0.72**2, 0.72, 1.0])
    assert ret[1].tolist() == pytest.approx(adv[1].tolist())
    # row 2: no real token -> nothing
    assert adv[2].tolist() == [0.0] * 4 and ret[2].tolist() == [0.0] * 4


def test_gae_matches_reference_random():
    g = torch.Generator().manual_seed(0)
    B, T = 5, 7
    rewards, values = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    lengths = [7, 3, 1, 5, 6]
    mask = torch.tensor([[1] * n + [0] * (T - n) for n in lengths])
    for gamma, lam in [(1.0, 0.95), (0.99, 1.0), (0.5, 0.0)]:
        adv, ret = compute_gae(rewards, values, mask, gamma, lam)
        for b, n in enumerate(lengths):
            ref_adv, ref_ret = _reference_gae(rewards[b].tolist(), values[b].tolist(), n, gamma, lam)
            assert adv[b, :n].tolist() == pytest.approx(ref_adv, abs=1e-5)
            assert ret[b, :n].tolist() == pytest.approx(ref_ret, abs=1e-5)
            assert adv[b, n:].abs().sum() == 0 and ret[b, n:].abs().sum() == 0


def test_per_token_rewards_score_last_kl_elsewhere_fine_on_span():
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    logps = torch.tensor([[-1.0, -2.0, -1.0, -0.5, 0.0], [-1.0, -1.0, 0.0, 0.0, 0.0]])
    ref = torch.tensor([[-1.5, -2.0, -0.5, -1.0, -9.0], [-1.0, -3.0, -9.0, -9.0, -9.0]])
    fine = torch.tensor([[0.0, -0.6, -0.6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    rewards, kl = per_token_rewards(torch.tensor([1.0, -0.3]), logps, ref, mask, kl_coef=0.1, fine=fine)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, -0.5, 0.5, 0.0], [0.0, 2.0, 0.0, 0.0, 0.0]]))
    expected = torch.tensor([[-0.05, -0.6, 0.05 - 0.6, -0.05 + 1.0, 0.0], [0.0, -0.2 - 0.3, 0.0, 0.0, 0.0]])
    assert torch.allclose(rewards, expected, atol=1e-6)
    assert last_token_index(mask).tolist() == [3, 1]
    assert last_token_index(torch.zeros(1, 3)).tolist() == [-1]


def test_whiten_losses_and_kl_controller():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1, 1, 1, 0]])
    w = masked_whiten(x, m)
    assert w[0, :3].mean().item() == pytest.approx(0.0, abs=1e-6) and w[0, 3] == 0
    assert w[0, :3].std().item() == pytest.approx(1.0, abs=1e-4)
    # value loss: clipped term wins when the new value moves away from the return beyond the clip
    v, old, ret = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    loss, frac = clipped_value_loss(v, old, ret, torch.tensor([[1, 0]]), clip=0.2)
    assert loss.item() == pytest.approx(0.5 * max(1.0, 0.8**2)) and frac.item() == 0.0
    loss, frac = clipped_value_loss(torch.tensor([[-1.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(0.5 * 4.0) and frac.item() == 0.0
    loss, frac = clipped_value_loss(torch.tensor([[3.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]), torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(0.5 * 1.8**2) and frac.item() == 1.0
    # policy loss: ratio 2 with positive advantage is clipped at 1.2
    lp, old_lp = torch.tensor([[0.0]]), torch.tensor([[-0.6931472]])
    pl, clipfrac, _ = clipped_policy_loss(lp, old_lp, torch.tensor([[1.0]]), torch.ones(1, 1), 0.2, 0.2)
    assert pl.item() == pytest.approx(-1.2) and clipfrac.item() == 1.0
    fixed = KLController(0.1)
    assert fixed.update(100.0, 8) == 0.1
    adaptive = KLController(0.1, target=6.0, horizon=100)
    assert adaptive.update(12.0, 10) == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))
    assert adaptive.update(0.0, 10) < 0.1 * 1.02


def test_known_error_line_rewards(tiny_model_path):
    """A completion whose line 2 raises NameError: the penalty lands exactly on line 2's tokens, the score on the
    last token, the KL term on every other token (the trainer's pipeline: reward -> token spans -> plan -> rewards)."""
    from transformers import AutoTokenizer

    from trl_codefeedback.feedback import UnitTestReward
    from trl_codefeedback.feedback.token_mapping import token_char_spans
    from trl_codefeedback.trainers.fine_grained import FineGrainedSettings, per_token_advantages, token_plan

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    good = "def add(a, b):\n    return a + b\n"
    bad = "def add(a, b):\n    return a + c\n"
    reward = UnitTestReward(mode="adaptive")
    tests = json.dumps({"kind": "asserts", "asserts": ["assert add(1, 2) == 3"]})
    scores = reward(prompts=["p", "p"], completions=[bad, good], tests=[tests, tests])
    assert scores[1] == 1.0 and scores[0] == pytest.approx(-0.6)
    results = reward.last_results
    assert results[0].feedback.error_line == 2
    ids = [tok(t, add_special_tokens=False).input_ids for t in (bad, good)]
    T = max(map(len, ids)) + 2
    mask = torch.tensor([[1] * len(i) + [0] * (T - len(i)) for i in ids])
    settings = FineGrainedSettings()
    plans = [token_plan(r, token_char_spans(tok, i, t), len(i), settings) for r, i, t in zip(results, ids, (bad, good))]
    line_tokens = plans[0].penalized
    assert tok.decode([ids[0][i] for i in line_tokens]).strip() == "return a + c"
    fine = per_token_advantages(torch.zeros(2), mask, plans)
    g = torch.Generator().manual_seed(1)
    logps, ref = -torch.rand(2, T, generator=g), -torch.rand(2, T, generator=g)
    kl_coef = 0.05
    rewards, kl = per_token_rewards(torch.tensor(scores), logps, ref, mask, kl_coef, fine)
    alpha_value = -0.3 * len(ids[0]) / len(line_tokens)
    for b in range(2):
        last = len(ids[b]) - 1
        for t in range(T):
            expected = 0.0 if t > last else -kl_coef * float(logps[b, t] - ref[b, t])
            if b == 0 and t in line_tokens:
                expected += alpha_value
            if t == last:
                expected += scores[b]
            assert rewards[b, t].item() == pytest.approx(expected, abs=1e-6), (b, t)
    assert not plans[1].penalized
