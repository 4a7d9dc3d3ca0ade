"""Coarse vs coarse + fine-grained vs coarse + fine-grained + adaptive RLTF feedback (CPU, tiny model).

Task: the demo's task family (``trl_codefeedback.demo``: one-line functions described in
words, 12 held-out operation/constant pairs). Per seed, one tokenizer + tiny model is built
and warmed up with SFT on data that carries a habitual bug (the wrong parameter name in 60%
of the examples: a ``NameError`` on the return line). Each variant then runs the same RL
steps from a copy of the same SFT weights, with the same seed:

* ``coarse``: TRL's plain ``GRPOTrainer`` with ``UnitTestReward(mode="coarse")``;
* ``coarse+fine``: ``CodeFeedbackGRPOTrainer`` (RLTF's token-level penalty on the error line);
* ``coarse+fine+adaptive``: the same with ``UnitTestReward(mode="adaptive")``.

Printed per variant: mean training reward over the RL steps (the coarse reward values, so
the variants are comparable) and greedy pass@1 on the held-out tasks after RL, per seed and
as a mean. A toy: it shows the direction of the effects on a model of ~150k parameters, not
RLTF's gains on real code models.

    python benchmarks/bench_fine_grained.py                       # 3 seeds, 60 RL steps
    python benchmarks/bench_fine_grained.py --seeds 0 1 --rl-steps 60
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

VARIANTS = {
    "coarse": dict(fine_grained=False, reward_mode="coarse"),
    "coarse+fine": dict(fine_grained=True, reward_mode="coarse"),
    "coarse+fine+adaptive": dict(fine_grained=True, reward_mode="adaptive"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rl-steps", type=int, default=60)
    ap.add_argument("--sft-steps", type=int, default=250)
    args = ap.parse_args()

    warnings.filterwarnings("ignore")
    import transformers
    from transformers import AutoModelForCausalLM, set_seed

    transformers.logging.set_verbosity_error()
    from trl_codefeedback.demo import DemoConfig, build_tiny_model, heldout_pass_at_1, rl_train, sft_warmup, split_tasks
    from trl_codefeedback.execution import Executor
    from trl_codefeedback.feedback.config import RLTFRewardValues

    coarse = RLTFRewardValues()
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with Executor() as executor, tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            base_cfg = DemoConfig(output_dir=tmp, seed=seed, sft_steps=args.sft_steps, rl_steps=args.rl_steps)
            set_seed(seed)
            train, heldout = split_tasks(seed, base_cfg.heldout_per_operation)
            model, tok = build_tiny_model(Path(tmp) / f"init{seed}", [r["prompt"] + r["completion"] for r in train + heldout], base_cfg.hidden_size, base_cfg.num_layers, seed)
            model = sft_warmup(model, tok, train, base_cfg, Path(tmp))
            sft_dir = Path(tmp) / f"sft{seed}"
            model.save_pretrained(sft_dir)
            p0, _ = heldout_pass_at_1(model, tok, heldout, base_cfg.max_completion_length, executor)
            print(f"seed {seed}: held-out pass@1 after SFT {p0:.2f}", flush=True)
            for name, overrides in VARIANTS.items():
                cfg = DemoConfig(**{**base_cfg.__dict__, **overrides, "output_dir": str(Path(tmp) / name)})
                set_seed(seed)
                policy = AutoModelForCausalLM.from_pretrained(sft_dir)  # the same SFT weights for every variant
                history = rl_train(policy, tok, train, cfg, Path(cfg.output_dir), executor)
                # training reward on the coarse scale: fraction of statuses x coarse values
                rewards = []
                for h in history:
                    key = next((k.rsplit("/", 1)[0] for k in h if k.endswith("/passed")), None)
                    if key is None:
                        continue
                    rewards.append(sum(h.get(f"{key}/{s}", 0.0) * getattr(coarse, s) for s in ("passed", "failed", "runtime_error", "timeout", "resource_limit", "compile_error")))
                p, _ = heldout_pass_at_1(policy, tok, heldout, cfg.max_completion_length, executor)
                mean_r = statistics.mean(rewards) if rewards else float("nan")
                results[name].append((mean_r, p))
                print(f"  {name:<22} train reward (coarse scale, mean over RL) {mean_r:+.3f}   held-out pass@1 {p:.2f}", flush=True)
    print()
    print(f"{'variant':<22} {'train reward':>13} {'held-out pass@1':>16}   (mean over seeds {args.seeds}, {args.rl_steps} RL steps)")
    for name, rows in results.items():
        print(f"{name:<22} {statistics.mean(r for r, _ in rows):>+13.3f} {statistics.mean(p for _, p in rows):>16.2f}   per seed: {', '.join(f'{p:.2f}' for _, p in rows)}")


if __name__ == "__main__":
    main()
