"""Peak memory and time per PPO step: one shared 4-bit base vs separate policy, reference and critic.

Setups (both run through CodeFeedbackPPOTrainer itself, on a randomly initialised Qwen2 model):

* ``shared``: 4-bit NF4 base + LoRA policy adapter + LoRA critic adapter + value head; the reference is the
  base with adapters disabled (one base model in memory).
* ``separate``: full-precision policy (trained), frozen copy as reference, separate critic (a copy of the
  decoder + value head, trained): the classic PPO setup of TRL's removed PPOTrainer.

One PPO step = the rollout scoring forwards (policy log-probs, reference log-probs, critic values, GAE) plus
one optimisation pass (critic forward, policy forward, backward, AdamW step) on a synthetic batch of
``--batch`` sequences of ``--seq-len`` tokens (half prompt, half completion). Generation is left out: it is the
same in both setups. Each setup runs in a fresh subprocess so peak numbers do not mix.

Memory: on CPU, the process's peak resident set size (``ru_maxrss``) and the RSS after imports (the
difference is what the models and the step cost), plus the exact bytes of parameters + buffers + optimizer
state; on CUDA, ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved``.

    python benchmarks/bench_ppo_memory.py                            # small config on CPU (hidden 256, 4 layers, seq 256)
    python benchmarks/bench_ppo_memory.py --config 7b --device cuda  # Qwen2.5-Coder-7B shapes, seq 1024; target: shared < 20 GiB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    # small: fast on 2 CPU cores
    "small": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=32768, max_position_embeddings=4096, tie_word_embeddings=False),
    # Qwen2.5-Coder-7B(-Instruct) config.json values
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768, rope_theta=1000000.0,
               rms_norm_eps=1e-6, tie_word_embeddings=False),
}
DEFAULT_SEQ = {"small": 256, "7b": 1024}
GIB = 1024**3


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 1, "a": 2}, unk_token="a"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def zero_reward(prompts, completions, **kwargs):
    return [0.0 for _ in completions]


def _state_bytes(trainer) -> int:
    import torch

    seen, total = set(), 0
    mods = [trainer.model] + ([trainer._ref_model] if trainer._ref_model is not None else [])
    for m in mods:
        for t in list(m.parameters()) + list(m.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    for state in trainer.optimizer.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                total += v.numel() * v.element_size()
    return total


def worker(args) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Qwen2Config, Qwen2ForCausalLM

    from trl_codefeedback.trainers import CodeFeedbackPPOConfig, CodeFeedbackPPOTrainer

    cuda = args.device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    rss_imports = _rss_bytes()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    config = Qwen2Config(**CONFIGS[args.config], pad_token_id=0, eos_token_id=1, bos_token_id=1)
    tmp = tempfile.mkdtemp(prefix="bench_ppo_")
    peft_config = None
    t_build = time.perf_counter()
    if args.setup == "shared":
        from peft import LoraConfig

        # bitsandbytes quantises at load time: write the random init once, load it back in 4 bit
        with torch.device("cuda" if cuda else "cpu"):
            init = Qwen2ForCausalLM(config).to(dtype)
        init.save_pretrained(os.path.join(tmp, "init"))
        del init
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                                 bnb_4bit_use_double_quant=True)
        model = AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "init"), quantization_config=bnb, dtype=dtype,
                                                     device_map={"": 0} if cuda else None)
        peft_config = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear", task_type="CAUSAL_LM")
    else:
        with torch.device("cuda" if cuda else "cpu"):
            model = Qwen2ForCausalLM(config).to(dtype)
    P = args.seq_len // 2
    C = args.seq_len - P
    cfg = CodeFeedbackPPOConfig(
        output_dir=os.path.join(tmp, "out"), per_device_train_batch_size=args.batch, num_generations=1,
        max_completion_length=C, num_ppo_epochs=1, learning_rate=1e-5, report_to="none", use_cpu=not cuda,
        bf16=cuda, gradient_checkpointing=args.gradient_checkpointing, save_strategy="no", logging_steps=1,
    )
    trainer = CodeFeedbackPPOTrainer(
        model=model, reward_funcs=[zero_reward], args=cfg, train_dataset=Dataset.from_list([{"prompt": "a"}] * args.batch),
        processing_class=_tokenizer(), peft_config=peft_config,
    )
    trainer.create_optimizer()
    if args.gradient_checkpointing:
        trainer.model.gradient_checkpointing_enable(cfg.gradient_checkpointing_kwargs or {"use_reentrant": False})
        if hasattr(trainer.model, "enable_input_require_grads"):
            trainer.model.enable_input_require_grads()
    trainer.current_gradient_accumulation_steps = 1
    build_s = time.perf_counter() - t_build
    rss_built = _rss_bytes()
    device = next(trainer.model.parameters()).device
    g = torch.Generator().manual_seed(0)
    batch = {
        "prompt_ids": torch.randint(2, config.vocab_size, (args.batch, P), generator=g).to(device),
        "prompt_mask": torch.ones(args.batch, P, dtype=torch.long, device=device),
        "completion_ids": torch.randint(2, config.vocab_size, (args.batch, C), generator=g).to(device),
        "completion_mask": torch.ones(args.batch, C, dtype=torch.long, device=device),
    }
    model = trainer.model
    opt = trainer.optimizer
    times = []
    for _ in range(args.steps + 1):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train()
        out = trainer.ppo_rollout(dict(batch), "train")
        loss = trainer.compute_loss(model, out)
        trainer.accelerator.backward(loss)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step_times = sorted(times[1:])  # first step = warm-up
    result = {
        "setup": args.setup, "config": args.config, "device": args.device, "batch": args.batch, "seq_len": args.seq_len,
        "gradient_checkpointing": args.gradient_checkpointing, "critic_mode": trainer.critic_mode,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "state_bytes": _state_bytes(trainer),
        "build_s": build_s,
        "step_s_median": step_times[len(step_times) // 2], "step_s_min": step_times[0],
        "rss_after_imports": rss_imports, "rss_after_build": rss_built,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "value_loss": trainer._metrics["train"]["ppo/value_loss"][-1],
    }
    if cuda:
        result["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
        result["cuda_max_reserved"] = torch.cuda.max_memory_reserved()
        result["gpu"] = torch.cuda.get_device_name()
    return result


def _fmt(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 4 else f"{n / 1024**2:.0f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="small")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--setups", default="shared,separate", help="comma-separated: shared, separate")
    p.add_argument("--batch", type=int, default=None, help="sequences per step (default: 4 small, 2 7b)")
    p.add_argument("--seq-len", type=int, default=None, help="prompt + completion tokens (default: 256 small, 1024 7b)")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on for 7b, off for small")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.seq_len = args.seq_len or DEFAULT_SEQ[args.config]
    args.batch = args.batch or (4 if args.config == "small" else 2)
    if args.gradient_checkpointing is None:
        args.gradient_checkpointing = args.config == "7b"
    if args.worker:
        args.setup = args.worker
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    results = []
    for setup in args.setups.split(","):
        cmd = [sys.executable, __file__, "--worker", setup, "--config", args.config, "--device", args.device,
               "--batch", str(args.batch), "--seq-len", str(args.seq_len), "--steps", str(args.steps),
               "--lora-r", str(args.lora_r), "--gradient-checkpointing" if args.gradient_checkpointing else "--no-gradient-checkpointing"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            err = proc.stderr.strip().splitlines()[-1:] or ["?"]
            oom = "out of memory" in proc.stderr.lower() or proc.returncode in (-9, 137)
            results.append({"setup": setup, "error": "OOM" if oom else err[0][:300]})
            continue
        results.append(json.loads(line[-1][len("RESULT "):]))
    print(f"PPO step, config={args.config} device={args.device} batch={args.batch} seq_len={args.seq_len} "
          f"gradient_checkpointing={args.gradient_checkpointing} steps={args.steps} (median after 1 warm-up)")
    for r in results:
        if "error" in r:
            print(f"  {r['setup']:9s} FAILED: {r['error']}")
            continue
        mem = (f"peak RSS {_fmt(r['peak_rss'])} (after imports {_fmt(r['rss_after_imports'])}, "
               f"peak - imports {_fmt(r['peak_rss'] - r['rss_after_imports'])})")
        if "cuda_max_allocated" in r:
            mem = f"CUDA max allocated {_fmt(r['cuda_max_allocated'])}, max reserved {_fmt(r['cuda_max_reserved'])}; " + mem
        print(f"  {r['setup']:9s} step {r['step_s_median']:.3f} s (min {r['step_s_min']:.3f}); {mem}; "
              f"params+buffers+optimizer state {_fmt(r['state_bytes'])}; trainable {r['trainable_params']:,}")
    if args.config == "7b" and results and "cuda_max_reserved" in results[0]:
        print(f"  target: shared setup under 20 GiB -> {'met' if results[0]['cuda_max_reserved'] < 20 * GIB else 'NOT met'} "
              f"(max reserved {_fmt(results[0]['cuda_max_reserved'])})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
