"""RLCF-style PPO (Jain et al. 2023) with a learned critic on MBJP: compile + unit-test feedback, token-level
RLTF penalties at error lines, KL to the reference in the per-token reward. One 4-bit base holds the policy
(LoRA), the reference (adapters disabled) and the critic (second LoRA adapter + value head).

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/ppo_rlcf.py --config recipes/configs/ppo_mbjp.yaml

Any YAML key can be overridden on the command line (``--max_steps 10``). The policy adapter is saved in
``output_dir`` (the critic adapter and value head in ``output_dir/critic``) with a model card that records
the feedback configuration; ``--push_to_hub true`` pushes the policy alone.

Smoke run on a laptop (CPU, a tiny random model from ``trl-codefeedback tiny-model``, two steps): the
README's "Recipes" section has the command line for this recipe; the tests run exactly that line.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CodeFeedbackScriptArguments, run_rl_recipe  # noqa: E402
from trl import ModelConfig, TrlParser  # noqa: E402

from trl_codefeedback.trainers import CodeFeedbackPPOConfig, CodeFeedbackPPOTrainer  # noqa: E402


def main(script_args: CodeFeedbackScriptArguments, training_args: CodeFeedbackPPOConfig, model_args: ModelConfig) -> None:
    run_rl_recipe(CodeFeedbackPPOTrainer, script_args, training_args, model_args)


if __name__ == "__main__":
    parser = TrlParser((CodeFeedbackScriptArguments, CodeFeedbackPPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
