"""The recipes run two steps under the DeepSpeed accelerate configs (ZeRO-2, ZeRO-3), 2 processes on CPU.

Each run is the README's smoke line for the recipe, started with ``accelerate launch --config_file
recipes/accelerate/deepspeed_zero{2,3}.yaml`` instead of ``python``, with the GPU-oriented values of the
yaml overridden on the command line (``--num_processes 2 --mixed_precision no``) and, for the recipe,
``--use_cpu false --ddp_backend gloo``: ``use_cpu`` turns DeepSpeed off in accelerate (it would train as
plain DDP), and without a GPU accelerate picks no process-group backend for DeepSpeed (each process would
see a world of one). DeepSpeed's CPU accelerator then runs ZeRO over gloo; the first run on a machine
JIT-compiles its shared-memory comm op (about 2 minutes on 2 cores, cached in ~/.cache/torch_extensions).

The default suite runs ``DEFAULT`` (each stage, the full fine-tune, LoRA and 4-bit + LoRA, our PPO trainer
under ZeRO-3); ``TRL_CODEFEEDBACK_DEEPSPEED_ALL=1`` runs every recipe under both stages.
"""

import os
import shlex
import shutil
import socket
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("deepspeed", reason="deepspeed is not installed (pip install deepspeed): the ZeRO configs are not run")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_recipes import RECIPE_LINES, SETUP, _bash, smoke_dir  # noqa: E402, F401  (smoke_dir: the fixture)

# Per recipe: flags added after the README line. PPO: 4 rows x 1 generation fill a global batch of 8 on
# 2 processes only at 2 per device (at 4, the run would end after 0 steps).
EXTRA = {
    "smoke/grpo-apps": "",
    "smoke/grpo-mbpp": "",
    "smoke/sft-mbpp": "",
    "smoke/ppo-mbjp": "--per_device_train_batch_size 2",
}
DEFAULT = {("smoke/grpo-apps", 2), ("smoke/grpo-apps", 3), ("smoke/sft-mbpp", 2), ("smoke/ppo-mbjp", 3)}
ALL = os.environ.get("TRL_CODEFEEDBACK_DEEPSPEED_ALL") == "1"
CASES = [
    pytest.param(name, stage, id=f"{name.split('/')[1]}-zero{stage}",
                 marks=[] if ALL or (name, stage) in DEFAULT else [pytest.mark.skip(reason="TRL_CODEFEEDBACK_DEEPSPEED_ALL=1 runs it")])
    for name in EXTRA for stage in (2, 3)
]


def deepspeed_command(name: str, stage: int, port: int) -> str:
    """The README's line for ``name`` under ``accelerate launch`` with the ZeRO-``stage`` config, 2 CPU processes."""
    words = shlex.split(RECIPE_LINES[name])
    assert words[0] == "python" and words[1].startswith("recipes/")
    launch = (f"python -m accelerate.commands.launch --config_file recipes/accelerate/deepspeed_zero{stage}.yaml "
              f"--num_processes 2 --mixed_precision no --main_process_port {port}")
    out = f"{name}-zero{stage}"
    return f"{launch} {RECIPE_LINES[name][len('python '):]} --use_cpu false --ddp_backend gloo {EXTRA[name]} --output_dir {out}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name,stage", CASES)
def test_recipe_under_deepspeed(name, stage, smoke_dir, monkeypatch):  # noqa: F811
    if name == "smoke/ppo-mbjp" and shutil.which("javac") is None:
        pytest.skip("no JDK")
    if name in ("smoke/ppo-mbjp", "smoke/grpo-mbpp"):
        pytest.importorskip("bitsandbytes")
    # CPU only, also on a GPU machine: DeepSpeed's CPU accelerator, and no CUDA for accelerate to pick.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    variables = [line for line in SETUP if not line.startswith("trl-codefeedback ")]
    proc = _bash([*variables, deepspeed_command(name, stage, _free_port())], smoke_dir)
    # printed by the recipe from the engine that trained
    assert f"distributed: DEEPSPEED, 2 process(es) on cpu, ZeRO stage {stage}, 2 steps" in proc.stdout, proc.stdout[-2000:]
    out = smoke_dir / f"{name}-zero{stage}"
    if name == "smoke/grpo-apps":
        _assert_full_weights(out / "model.safetensors", smoke_dir / "tiny-model" / "model.safetensors")
    else:
        _assert_full_weights(out / "adapter_model.safetensors")
    if name == "smoke/ppo-mbjp":
        _assert_full_weights(out / "critic" / "adapter_model.safetensors")
        head = _assert_full_weights(out / "critic" / "value_head.safetensors")
        assert tuple(head["weight"].shape) == (1, 64)  # the tiny model's hidden size: whole under ZeRO-3 too


def _assert_full_weights(path: Path, like: Path | None = None) -> dict:
    """Saved tensors are whole (ZeRO-3 shards gathered), and have the shapes of ``like``'s when given."""
    from safetensors.torch import load_file

    assert path.is_file(), path
    tensors = load_file(path)
    assert tensors and all(t.numel() > 0 for t in tensors.values()), {k: tuple(t.shape) for k, t in tensors.items()}
    if like is not None:
        ref = load_file(like)
        assert {k: tuple(t.shape) for k, t in ref.items()} == {k: tuple(tensors[k].shape) for k in ref}
    return tensors
