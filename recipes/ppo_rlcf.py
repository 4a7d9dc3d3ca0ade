"""RLCF-style PPO (Jain et al. 2023) with a learned critic on MBJP: compile + unit-test feedback, token-level
RLTF penalties at error lines, KL to the reference in the per-token reward. One 4-bit base holds the policy
(LoRA), the reference (adapters disabled) and the critic (second LoRA adapter + value head).

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/ppo_rlcf.py --config recipes/configs/ppo_mbjp.yaml

Any YAML key can be overridden on the command line (``--max_steps 10``). The policy adapter is saved in
``output_dir`` (the critic adapter and value head in ``output_dir/critic``) with a model card that records
the feedback configuration; ``--push_to_hub true`` pushes the policy alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CodeFeedbackScriptArguments, load_train_dataset, model_init_kwargs  # noqa: E402
from trl import ModelConfig, TrlParser, get_peft_config  # noqa: E402

from trl_codefeedback.execution import Limits  # noqa: E402
from trl_codefeedback.feedback import get_reward_funcs  # noqa: E402
from trl_codefeedback.hub import save_model_card  # noqa: E402
from trl_codefeedback.trainers import CodeFeedbackPPOConfig, CodeFeedbackPPOTrainer  # noqa: E402


def main(script_args: CodeFeedbackScriptArguments, training_args: CodeFeedbackPPOConfig, model_args: ModelConfig) -> None:
    dataset = load_train_dataset(script_args)
    training_args.model_init_kwargs = {**(training_args.model_init_kwargs or {}), **model_init_kwargs(model_args)}
    limits = Limits(test_timeout_s=script_args.test_timeout_s, program_timeout_s=max(10.0, script_args.test_timeout_s))
    rewards = get_reward_funcs(script_args.reward_funcs, language=script_args.language, limits=limits)
    trainer = CodeFeedbackPPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=rewards,
        args=training_args,
        train_dataset=dataset,
        peft_config=get_peft_config(model_args),
    )
    for reward in rewards:
        reward.attach_trainer(trainer)
    trainer.train()
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        save_model_card(training_args.output_dir, base_model=model_args.model_name_or_path, dataset=script_args.dataset_name,
                        reward_funcs=rewards, trainer_args=training_args)
        if training_args.push_to_hub:
            trainer.push_to_hub(dataset=script_args.dataset_name)


if __name__ == "__main__":
    parser = TrlParser((CodeFeedbackScriptArguments, CodeFeedbackPPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
