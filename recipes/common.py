"""Shared pieces of the recipes: script arguments, dataset loading, model loading kwargs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CodeFeedbackScriptArguments:
    """Dataset and reward selection (every field is a CLI flag and a YAML key)."""

    dataset_name: str = field(default="mbpp", metadata={"help": "benchmark: mbpp, apps, humaneval, mbxp-python, mbjp, mathqa-java"})
    dataset_path: str | None = field(default=None, metadata={"help": "local file/folder (default: TRL_CODEFEEDBACK_DATA / ../shared/data, else the Hub)"})
    dataset_split: str = field(default="train", metadata={"help": "split to train on"})
    max_train_samples: int | None = field(default=None, metadata={"help": "keep only the first N rows"})
    conversational: bool = field(default=False, metadata={"help": "chat prompts (needs a chat template)"})
    reward_funcs: list[str] = field(default_factory=lambda: ["unit_test_adaptive"], metadata={"help": "rewards by name (trl_codefeedback.feedback.REWARD_REGISTRY)"})
    language: str = field(default="python", metadata={"help": "program language: python or java"})
    test_timeout_s: float = field(default=3.0, metadata={"help": "time limit per test when executing completions"})


def load_train_dataset(args: CodeFeedbackScriptArguments):
    from trl_codefeedback.evaluation import load_benchmark

    split = args.dataset_split if args.dataset_name in ("mbpp", "apps") else None
    return load_benchmark(args.dataset_name, split=split, path=args.dataset_path, max_problems=args.max_train_samples, chat=args.conversational)


def model_init_kwargs(model_args) -> dict:
    """dtype / 4-bit quantization / device map from TRL's ModelConfig."""
    import torch
    from trl import get_quantization_config

    kwargs: dict = {}
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = getattr(torch, model_args.dtype)
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        if _zero3():
            # ZeRO-3 places and shards the weights itself (transformers refuses a device_map under it) and shards
            # the 4-bit weights as one dtype with the rest: store them in the compute dtype (PEFT's ZeRO-3 QLoRA setup).
            if model_args.bnb_4bit_quant_storage is None and "dtype" in kwargs:
                quantization.bnb_4bit_quant_storage = kwargs["dtype"]
        elif torch.cuda.is_available():
            from accelerate import PartialState

            kwargs["device_map"] = {"": PartialState().local_process_index}
    return kwargs


def _zero3() -> bool:
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


def check_launch(training_args) -> None:
    """Refuse a run that ``accelerate launch`` started for DeepSpeed but that would silently train without it."""
    import os

    from accelerate.utils import DistributedType

    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return
    training_args.device  # noqa: B018  (sets up the distributed state)
    state = training_args.distributed_state
    if state.distributed_type != DistributedType.DEEPSPEED:
        raise ValueError(
            f"accelerate launched DeepSpeed, but this run would train as {state.distributed_type.value} without it: "
            "--use_cpu true (or ACCELERATE_USE_CPU) turns DeepSpeed off in accelerate. "
            "DeepSpeed on CPU: --use_cpu false --ddp_backend gloo")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if state.num_processes != world:
        raise ValueError(
            f"DeepSpeed launched {world} processes but each one sees {state.num_processes}: without a GPU accelerate "
            "picks no process-group backend; add --ddp_backend gloo")


def describe_run(trainer) -> str:
    """One line on how the run was distributed, read from the engine that trained (printed by the recipes)."""
    acc = trainer.accelerator
    text = f"{acc.distributed_type.value}, {acc.num_processes} process(es) on {acc.device.type}"
    engine = getattr(trainer, "deepspeed", None)
    if engine is not None:
        text += f", ZeRO stage {engine.zero_optimization_stage()}"
    return text


def run_rl_recipe(trainer_cls, script_args: CodeFeedbackScriptArguments, training_args, model_args) -> None:
    """Load data and rewards, train with ``trainer_cls`` (our GRPO or PPO trainer), save with a model card."""
    from trl import get_peft_config

    from trl_codefeedback.execution import Limits
    from trl_codefeedback.feedback import get_reward_funcs
    from trl_codefeedback.hub import push_with_card, save_model_card

    check_launch(training_args)
    dataset = load_train_dataset(script_args)
    training_args.model_init_kwargs = {**(training_args.model_init_kwargs or {}), **model_init_kwargs(model_args)}
    limits = Limits(test_timeout_s=script_args.test_timeout_s, program_timeout_s=max(10.0, script_args.test_timeout_s))
    rewards = get_reward_funcs(script_args.reward_funcs, language=script_args.language, limits=limits)
    trainer = trainer_cls(
        model=model_args.model_name_or_path,
        reward_funcs=rewards,
        args=training_args,
        train_dataset=dataset,
        peft_config=get_peft_config(model_args),
    )
    for reward in rewards:
        reward.attach_trainer(trainer)
    trainer.train()
    if trainer.accelerator.is_main_process:
        print(f"distributed: {describe_run(trainer)}, {trainer.state.global_step} steps", flush=True)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        save_model_card(training_args.output_dir, base_model=model_args.model_name_or_path, dataset=script_args.dataset_name,
                        reward_funcs=rewards, trainer_args=training_args)
        if training_args.push_to_hub:
            if hasattr(trainer, "save_critic"):  # PPO: push the policy alone, with its card
                trainer.push_to_hub(dataset=script_args.dataset_name)
            else:
                push_with_card(trainer, dataset=script_args.dataset_name)
    # Destroys the process group while the interpreter is alive: a gloo group left to interpreter teardown
    # can abort the process (SIGABRT, "terminate called without an active exception") after training succeeded.
    trainer.accelerator.end_training()
