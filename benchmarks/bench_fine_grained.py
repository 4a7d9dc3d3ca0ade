"""Ablation of RLTF feedback on the demo's multi-line task family (CPU, tiny model).

Task: ``trl_codefeedback.demo_tasks`` ``loops`` (functions of 6 lines described in words, 12
held-out unseen combinations). Per seed, one tokenizer + tiny model is built and warmed up
with SFT on data carrying one habitual bug per accumulator, on one line (a wrong variable, an
off-by-one index, a wrong operator: runtime errors RLTF locates on the buggy line; a wrong
initial value: a wrong answer, no error line). Every variant then runs the same RL steps from
the same SFT weights, with the same seed:

* ``coarse``: TRL's plain ``GRPOTrainer`` + ``UnitTestReward(mode="coarse")``;
* ``fine``: ``CodeFeedbackGRPOTrainer`` (RLTF's penalty on the error line's tokens), coarse reward;
* ``fine+adaptive``: the same with ``UnitTestReward(mode="adaptive")``;
* ``fine+adaptive+mask``: plus StepCoder's masking of never-executed lines;
* ``fine/no-alpha``, ``fine+adaptive/no-alpha``: ``fine_grained_alpha_scaling=False``
  (the penalty stays -0.3 per token instead of -0.3 * T / (E - S)).

Measured per seed and variant: held-out pass@1 (greedy, every ``--eval-every`` steps), the
first RL step where it reaches ``--target`` (sample efficiency; ``-`` when never), the final
held-out pass@1 and its mean over the last 5 evaluations, the mean training reward on the coarse scale (so variants compare), the
share of completion tokens penalised, the wall time. Printed as per-seed rows and a summary
with median (min..max) over seeds; ``--json OUT`` writes everything. A toy: it shows the
direction of the effects on a ~150k-parameter model, not RLTF's gains on real code models.

    python benchmarks/bench_fine_grained.py                                  # 5 seeds, all variants
    python benchmarks/bench_fine_grained.py --seeds 0 1 --variants coarse fine --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

VARIANTS = {
    "coarse": dict(fine_grained=False, reward_mode="coarse"),
    "fine": dict(fine_grained=True, reward_mode="coarse"),
    "fine+adaptive": dict(fine_grained=True, reward_mode="adaptive"),
    "fine+adaptive+mask": dict(fine_grained=True, reward_mode="adaptive", mask_unexecuted=True),
    "fine/no-alpha": dict(fine_grained=True, reward_mode="coarse", alpha_scaling=False),
    "fine+adaptive/no-alpha": dict(fine_grained=True, reward_mode="adaptive", alpha_scaling=False),
}
STATUSES = ("passed", "failed", "runtime_error", "timeout", "resource_limit", "compile_error")


def steps_to(curve: list[dict], target: float) -> int | None:
    """First RL step whose held-out pass@1 is >= target (step 0 = the SFT model), else None.

    >>> steps_to([{"step": 0, "pass@1": 0.2}, {"step": 5, "pass@1": 0.8}], 0.8)
    5
    """
    return next((c["step"] for c in curve if c["pass@1"] >= target - 1e-9), None)


def coarse_scale_reward(history: list[dict]) -> float:
    """Mean training reward re-expressed on the coarse scale (status fractions x RLTF coarse values)."""
    from trl_codefeedback.feedback.config import RLTFRewardValues

    values = RLTFRewardValues()
    rewards = []
    for h in history:
        key = next((k.rsplit("/", 1)[0] for k in h if k.endswith("/passed")), None)
        if key is not None:
            rewards.append(sum(h.get(f"{key}/{s}", 0.0) * getattr(values, s) for s in STATUSES))
    return statistics.mean(rewards) if rewards else float("nan")


def run_seed(seed: int, variants: list[str], args, executor, tmp: Path) -> dict[str, dict]:
    from transformers import AutoModelForCausalLM, set_seed

    from trl_codefeedback.demo import DemoConfig, build_tiny_model, heldout_callback, heldout_pass_at_1, rl_train, sft_warmup
    from trl_codefeedback.demo_tasks import split_tasks

    base = DemoConfig(seed=seed, eval_every=args.eval_every, log_every=args.eval_every, **_overrides(args))
    set_seed(seed)
    train, heldout = split_tasks(base.family, seed)
    model, tok = build_tiny_model(tmp / f"init{seed}", [r["prompt"] + r["completion"] for r in train + heldout], base.hidden_size, base.num_layers, seed)
    model = sft_warmup(model, tok, train, base, tmp)
    sft_dir = tmp / f"sft{seed}"
    model.save_pretrained(sft_dir)
    p0, _ = heldout_pass_at_1(model, tok, heldout, base.max_completion_length, executor)
    print(f"seed {seed}: held-out pass@1 after SFT {p0:.2f}", flush=True)
    out = {}
    for name in variants:
        cfg = DemoConfig(**{**base.__dict__, **VARIANTS[name]})
        set_seed(seed)
        policy = AutoModelForCausalLM.from_pretrained(sft_dir)  # the same SFT weights for every variant
        curve = [{"step": 0, "pass@1": p0}]
        t0 = time.perf_counter()
        history = rl_train(policy, tok, train, cfg, tmp / name, executor,
                           callbacks=[heldout_callback(tok, heldout, cfg.max_completion_length, executor, cfg.eval_every, curve)])
        final, _ = heldout_pass_at_1(policy, tok, heldout, cfg.max_completion_length, executor)
        pen = [h["codefeedback/penalized_token_frac"] for h in history if "codefeedback/penalized_token_frac" in h]
        harness = [v for h in history for k, v in h.items() if k.endswith("/harness_error")]
        out[name] = {
            "steps_to_target": steps_to(curve, args.target),
            "final_pass@1": final,
            "late_mean_pass@1": statistics.mean(c["pass@1"] for c in curve[-5:]),  # last 5 evaluations: less noisy than one
            "train_reward_coarse_scale": coarse_scale_reward(history),
            "penalized_token_frac": statistics.mean(pen) if pen else 0.0,
            "harness_error_frac": statistics.mean(harness) if harness else 0.0,  # must be 0: else the sandbox, not the variant, shaped the run
            "heldout_curve": curve,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        r = out[name]
        print(f"  {name:<24} steps to {args.target:.1f}: {str(r['steps_to_target']):>4}   final held-out pass@1 {final:.2f}   "
              f"train reward (coarse scale) {r['train_reward_coarse_scale']:+.3f}   penalised tokens {r['penalized_token_frac']:.3f}   "
              f"{r['seconds']:.0f} s" + (f"   HARNESS ERRORS {r['harness_error_frac']:.3f}" if r["harness_error_frac"] else ""), flush=True)
    return {"sft_pass@1": p0, "variants": out}


def _overrides(args) -> dict:
    names = (("sft_steps", args.sft_steps), ("rl_steps", args.rl_steps), ("buggy_fraction", args.buggy_fraction))
    return {k: v for k, v in names if v is not None}


def _spread(xs: list[float], fmt: str) -> str:
    return f"{format(statistics.median(xs), fmt)} ({format(min(xs), fmt)}..{format(max(xs), fmt)})"


def summary_lines(results: dict[int, dict], variants: list[str], target: float, rl_steps: int) -> list[str]:
    lines = [f"{'variant':<24} {'steps to ' + format(target, '.1f') + ', per seed':<30} {'reached':>7}  {'final held-out pass@1':<22} {'last 5 evaluations':<22} {'train reward':<22}"]
    for name in variants:
        rows = [results[s]["variants"][name] for s in results]
        steps = [r["steps_to_target"] for r in rows]
        reached = [s for s in steps if s is not None]
        per_seed = ", ".join("-" if s is None else str(s) for s in steps)
        lines.append(
            f"{name:<24} {per_seed:<30} {len(reached)}/{len(steps):<5}  "
            f"{_spread([r['final_pass@1'] for r in rows], '.2f'):<22} {_spread([r['late_mean_pass@1'] for r in rows], '.2f'):<22} "
            f"{_spread([r['train_reward_coarse_scale'] for r in rows], '+.3f'):<22}"
        )
    lines.append(f"median (min..max) over seeds {list(results)}; steps: first held-out evaluation >= {target} within {rl_steps} RL steps ('-': never)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--rl-steps", type=int, default=None, help="RL steps (default: the demo's)")
    ap.add_argument("--sft-steps", type=int, default=None, help="SFT warm-up steps (default: the demo's)")
    ap.add_argument("--buggy-fraction", type=float, default=None, help="share of SFT examples with the habitual bug (default: the demo's 0.6)")
    ap.add_argument("--eval-every", type=int, default=5, help="held-out pass@1 every N RL steps")
    ap.add_argument("--target", type=float, default=0.8, help="held-out pass@1 for the sample-efficiency count")
    ap.add_argument("--json", default=None, metavar="OUT", help="write the per-seed figures to OUT")
    args = ap.parse_args()

    warnings.filterwarnings("ignore")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)  # as the demo: a tiny model runs fastest on one thread
    from trl_codefeedback.demo import DemoConfig
    from trl_codefeedback.execution import Executor

    rl_steps = args.rl_steps or DemoConfig().rl_steps
    results: dict[int, dict] = {}
    t0 = time.perf_counter()
    with Executor() as executor, tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results[seed] = run_seed(seed, args.variants, args, executor, Path(tmp))
            if args.json:  # written after every seed, so a cut-short run keeps what it measured
                _write_json(args, results, rl_steps, time.perf_counter() - t0)
    print()
    print("\n".join(summary_lines(results, args.variants, args.target, rl_steps)))
    if args.json:
        print(f"per-seed figures written to {args.json}")


def _write_json(args, results: dict[int, dict], rl_steps: int, seconds: float) -> None:
    from trl_codefeedback.demo import DemoConfig

    cfg = DemoConfig(**_overrides(args))
    doc = {
        "benchmark": "bench_fine_grained",
        "family": cfg.family,
        "seeds": list(results),
        "rl_steps": rl_steps,
        "sft_steps": cfg.sft_steps,
        "buggy_fraction": cfg.buggy_fraction,
        "eval_every": args.eval_every,
        "target": args.target,
        "variants": {name: VARIANTS[name] for name in args.variants},
        "results": {str(s): r for s, r in results.items()},
        "seconds": round(seconds, 1),
    }
    Path(args.json).write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
