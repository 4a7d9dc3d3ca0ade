"""SFT warm-start on reference solutions (before RL), TRL's SFTTrainer with prompt-completion data.

    accelerate launch --config_file recipes/accelerate/single_gpu.yaml recipes/sft.py --config recipes/configs/sft_mbpp.yaml

Smoke run on a laptop (CPU, a tiny random model from ``trl-codefeedback tiny-model``, two steps): the
README's "Recipes" section has the command line for this recipe; the tests run exactly that line.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CodeFeedbackScriptArguments, check_launch, describe_run, load_train_dataset, model_init_kwargs  # noqa: E402
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config  # noqa: E402

from trl_codefeedback.hub import save_model_card  # noqa: E402


def to_prompt_completion(row: dict, eos: str) -> dict:
    """The reference, without the part the prompt already holds (``code_prefix``), as the completion."""
    ref, prefix = row["reference"], row.get("code_prefix") or ""
    body = ref[len(prefix):] if prefix and ref.startswith(prefix) else ref
    if isinstance(row["prompt"], list):  # chat: answer with a fenced block
        lang = row.get("language", "python")
        return {"prompt": row["prompt"], "completion": [{"role": "assistant", "content": f"```{lang}\n{body.strip()}\n```"}]}
    return {"prompt": row["prompt"], "completion": body + eos}


def main(script_args: CodeFeedbackScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> None:
    from transformers import AutoTokenizer

    check_launch(training_args)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    dataset = load_train_dataset(script_args)
    dataset = dataset.map(lambda r: to_prompt_completion(r, tokenizer.eos_token or ""), remove_columns=dataset.column_names)
    training_args.model_init_kwargs = {**(training_args.model_init_kwargs or {}), **model_init_kwargs(model_args)}
    trainer = SFTTrainer(model=model_args.model_name_or_path, args=training_args, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=get_peft_config(model_args))
    trainer.train()
    if trainer.accelerator.is_main_process:
        print(f"distributed: {describe_run(trainer)}, {trainer.state.global_step} steps", flush=True)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        save_model_card(training_args.output_dir, base_model=model_args.model_name_or_path, dataset=script_args.dataset_name,
                        reward_funcs=[], trainer_args=training_args, model_name="SFT warm-start")
        if training_args.push_to_hub:
            trainer.push_to_hub()
    trainer.accelerator.end_training()  # destroy the process group before interpreter teardown (see common.py)


if __name__ == "__main__":
    parser = TrlParser((CodeFeedbackScriptArguments, SFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())
