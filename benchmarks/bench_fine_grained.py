"""Coarse vs coarse + fine-grained vs coarse + fine-grained + adaptive RLTF feedback on a tiny task (CPU).

The task: ``def add_k(x): return x + K`` for one K per prompt, tests ``assert add_k(i) == i + K``.
A tiny local Qwen2 (hidden 64, 2 layers) is first fitted (SFT, fixed seed) on a noisy mix of
solutions: correct, wrong constant (runs, fails), NameError on the return line, so the policy
starts with all three outcomes. Then each variant runs the same GRPO steps from the same
SFT weights and seed, and we print its mean training reward (unit-test reward, coarse values
for comparability) and the greedy pass rate on held-out K values.

Caveat of this task: a wrong constant fails every assert of a row, so the pass ratio is 0 or 1
and adaptive feedback equals coarse here (the two fine-grained variants coincide).

A toy: it checks the plumbing and the direction of effects on a model of 100k parameters; it
says nothing about RLTF's gains on real code models.

Usage:
    python benchmarks/bench_fine_grained.py                 # default, ~4 min on 2 cores
    python benchmarks/bench_fine_grained.py --steps 60 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

TRAIN_K = list(range(0, 20))
HELDOUT_K = list(range(20, 30))


def prompt(k: int) -> str:
    return f"# add {k}\n"


def tests(k: int) -> str:
    return json.dumps({"kind": "asserts", "asserts": [f"assert add_k({i}) == {i + k}" for i in (0, 1, 5)]})


def sft_text(k: int, rng: random.Random) -> str:
    u = rng.random()
    if u < 0.5:
        body = f"    return x + {k}\n"
    elif u < 0.75:
        body = f"    return x + {k + rng.choice([1, 2, -1])}\n"
    else:
        body = f"    return x + K{k}\n"  # NameError on line 2
    return prompt(k) + "def add_k(x):\n" + body


def sft(model_dir: Path, steps: int, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        texts = [sft_text(rng.choice(TRAIN_K + HELDOUT_K), rng) + tok.eos_token for _ in range(16)]
        batch = tok(texts, return_tensors="pt", padding=True)
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(model_dir)


def heldout_pass_rate(model, tok) -> float:
    import torch

    from trl_codefeedback.feedback import UnitTestReward

    reward = UnitTestReward(mode="coarse")
    completions = []
    model.eval()
    for k in HELDOUT_K:
        ids = tok(prompt(k), return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)
        completions.append(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    rewards = reward(completions=completions, tests=[tests(k) for k in HELDOUT_K])
    return sum(r == 1.0 for r in rewards) / len(rewards)


def run_variant(name: str, model_dir: Path, out: Path, steps: int, seed: int) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_codefeedback.feedback import UnitTestReward
    from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer

    mode = "adaptive" if name.endswith("adaptive") else "coarse"
    fine = name != "coarse"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    reward = UnitTestReward(mode=mode)
    rows = [{"prompt": prompt(k), "tests": tests(k)} for k in TRAIN_K]
    args = CodeFeedbackGRPOConfig(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=24, learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, bf16=False, fp16=False, seed=seed, data_seed=seed, dataloader_num_workers=0,
        fine_grained=fine, temperature=1.0, disable_tqdm=True,
    )
    trainer = CodeFeedbackGRPOTrainer(
        model=model, reward_funcs=[reward], args=args, processing_class=tok, train_dataset=Dataset.from_list(rows)
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    coarse = UnitTestReward(mode="coarse").values
    train_rewards = []
    orig = reward._score

    def record(fb):  # log the coarse value whatever the mode, so the variants compare on one scale
        train_rewards.append(coarse.value(fb, mode="coarse"))
        return orig(fb)

    reward._score = record
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    pen = [e["codefeedback/penalized_token_frac"] for e in trainer.state.log_history if "codefeedback/penalized_token_frac" in e]
    scored = [r for r in train_rewards if r is not None]
    half = len(scored) // 2
    return {
        "variant": name,
        "seed": seed,
        "train_reward_mean": sum(scored) / len(scored),
        "train_reward_last_half": sum(scored[half:]) / max(1, len(scored) - half),
        "heldout_pass": heldout_pass_rate(trainer.model, tok),
        "penalized_token_frac": sum(pen) / max(1, len(pen)),
        "seconds": time.perf_counter() - t0,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40, help="GRPO steps per variant")
    p.add_argument("--sft-steps", type=int, default=300)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="+", default=["coarse", "coarse+fine", "coarse+fine+adaptive"])
    a = p.parse_args(argv)

    from tiny_models import build_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in a.seeds:
            base = build_tiny_model(tmp / f"base{seed}", seed=seed)
            sft(base, a.sft_steps, seed)
            tok = AutoTokenizer.from_pretrained(base)
            start = heldout_pass_rate(AutoModelForCausalLM.from_pretrained(base), tok)
            print(f"seed {seed}: SFT model held-out pass rate {start:.2f}", flush=True)
            for v in a.variants:
                r = run_variant(v, base, tmp / f"{v}-{seed}", a.steps, seed)
                results.append(r)
                print(json.dumps(r), flush=True)
    print("\nvariant                 seed  train_reward(mean/last half)  heldout_pass  penalized_frac  s")
    for r in results:
        print(
            f"{r['variant']:<22} {r['seed']:>5}  {r['train_reward_mean']:>+8.3f} / {r['train_reward_last_half']:>+7.3f}"
            f"        {r['heldout_pass']:>8.2f}  {r['penalized_token_frac']:>14.3f}  {r['seconds']:.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
