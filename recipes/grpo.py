"""RLTF-style GRPO with unit-test feedback and token-level penalties at error lines.

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/grpo.py --config recipes/configs/grpo_mbpp_qlora.yaml
    accelerate launch --config_file recipes/accelerate/multi_gpu_ddp.yaml recipes/grpo.py --config recipes/configs/grpo_apps.yaml

Any YAML key can be overridden on the command line (``--max_steps 10``).

Smoke run on a laptop (CPU, a tiny random model from ``trl-codefeedback tiny-model``, two steps): the
README's "Recipes" section has the command line for this recipe; the tests run exactly that line.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CodeFeedbackScriptArguments, run_rl_recipe  # noqa: E402
from trl import ModelConfig, TrlParser  # noqa: E402

from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer  # noqa: E402


def main(script_args: CodeFeedbackScriptArguments, training_args: CodeFeedbackGRPOConfig, model_args: ModelConfig) -> None:
    run_rl_recipe(CodeFeedbackGRPOTrainer, script_args, training_args, model_args)


if __name__ == "__main__":
    parser = TrlParser((CodeFeedbackScriptArguments, CodeFeedbackGRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
