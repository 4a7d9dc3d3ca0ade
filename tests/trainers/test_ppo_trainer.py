"""CodeFeedbackPPOTrainer end to end on a tiny local model (CPU): full precision with a separate critic,
LoRA and 4-bit + LoRA with one shared base, value loss on a fixed batch, checkpoint resume, push_to_hub."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from trl_codefeedback.feedback import UnitTestReward  # noqa: E402
from trl_codefeedback.trainers import CodeFeedbackPPOConfig, CodeFeedbackPPOTrainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _helpers import code_rows, config_kwargs, length_reward  # noqa: E402

pytestmark = pytest.mark.slow


class RecordingPPO(CodeFeedbackPPOTrainer):
    """Keeps each rollout's per-token rewards, KL-free parts and plans, and the state at the first update."""

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.rollouts = getattr(self, "rollouts", []) + [
            dict(
                rewards=out["ppo_rewards"].detach().clone(),
                mask=out["ppo_mask"].detach().clone(),
                logps=out["old_per_token_logps"].detach().clone(),
                plans=list(self._cf_last_plans or []),
                kl_coef=self.kl_ctl.value,
                scores=self._local_scores(out["completion_ids"].size(0), out["completion_ids"].device).clone(),
                advantages=out["advantages"].detach().clone(),
            )
        ]
        return out

    def training_step(self, model, inputs, num_items_in_batch):
        if not hasattr(self, "first_step_state"):
            self.first_step_state = {
                "params": {n: p.detach().float().clone() for n, p in self._unwrapped().named_parameters() if p.requires_grad},
                "optimizer_state": sum(1 for s in self.optimizer.state.values() if s),
                "kl_coef": self.kl_ctl.value,
            }
        return super().training_step(model, inputs, num_items_in_batch)


LORA = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")


def _bnb():
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)


def _make(model_path, out, setup="full", **overrides):
    peft_config = None
    kw = dict(num_generations=1, max_completion_length=16, num_ppo_epochs=1, kl_coef=0.05)
    if setup in ("lora", "4bit"):
        peft = pytest.importorskip("peft")
        peft_config = peft.LoraConfig(**LORA)
    if setup == "4bit":
        pytest.importorskip("bitsandbytes")
        kw["model_init_kwargs"] = {"quantization_config": _bnb(), "dtype": "float32"}
    kw.update(overrides)
    args = CodeFeedbackPPOConfig(**config_kwargs(out, **kw))
    return RecordingPPO(
        model=str(model_path),
        reward_funcs=[UnitTestReward(mode="adaptive"), length_reward],
        args=args,
        train_dataset=Dataset.from_list(code_rows(4)),
        peft_config=peft_config,
    )


def _train(trainer, **kw):
    before = {n: p.detach().float().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(**kw)
    after = dict(trainer.model.named_parameters())
    return [n for n, p in before.items() if not torch.equal(p, after[n].detach().float())]


def _check_rewards(trainer):
    """Per-token rewards = score on the last token + RLTF penalty on the plan's tokens + KL term elsewhere."""
    for r in trainer.rollouts:
        rewards, mask = r["rewards"], r["mask"]
        last = mask.sum(1).long() - 1
        for b in range(rewards.size(0)):
            fine = torch.zeros(rewards.size(1))
            plan = r["plans"][b] if r["plans"] else None
            if plan is not None:
                fine[[i for i in plan.penalized if i < fine.numel()]] = plan.value
            rest = rewards[b].clone() - fine * mask[b]
            rest[last[b]] -= r["scores"][b]
            # what is left is the KL term: -kl_coef * (logp - ref_logp), bounded by |kl_coef| * |logp - ref|
            assert torch.all(rest[mask[b] == 0] == 0)
            if r["kl_coef"] == 0:
                assert torch.allclose(rest, torch.zeros_like(rest), atol=1e-6)


def test_full_precision_separate_critic(tiny_model_path, tmp_path):
    trainer = _make(tiny_model_path, tmp_path, "full", kl_coef=0.0)
    assert trainer.critic_mode == "separate" and trainer._ref_model is not None
    changed = _train(trainer)
    assert trainer.state.global_step == 2
    assert any(n.startswith("cf_critic.head") for n in changed)
    assert any(n.startswith("cf_critic.backbone") for n in changed)
    assert any(n.startswith("model.layers") for n in changed)  # the policy
    logs = {k for e in trainer.state.log_history for k in e}
    for key in ("ppo/policy_loss", "ppo/value_loss", "ppo/score", "codefeedback/penalized_token_frac"):
        assert key in logs, sorted(logs)
    assert "ppo/kl" not in logs  # kl_coef 0 and no target: no reference pass, no made-up 0
    _check_rewards(trainer)
    # the completions table shows the PPO advantage at each completion's first token
    last = trainer.rollouts[-1]["advantages"][:, 0].tolist()
    assert list(trainer._logs["advantages"])[-len(last):] == pytest.approx(last)
    assert any(a != 0 for r in trainer.rollouts for a in r["advantages"][:, 0].tolist())
    # the saved policy is the policy alone; the critic sits next to it
    trainer.save_model(str(tmp_path / "final"))
    from safetensors.torch import load_file

    keys = load_file(str(tmp_path / "final" / "model.safetensors")).keys()
    assert not [k for k in keys if "cf_critic" in k]
    assert (tmp_path / "final" / "critic" / "critic.safetensors").is_file()


def test_lora_shared_base_kl_to_disabled_adapters(tiny_model_path, tmp_path):
    # with gradient checkpointing: the critic forward (other adapter) must not be recomputed under the policy adapter
    trainer = _make(tiny_model_path, tmp_path, "lora", gradient_checkpointing=True)
    assert trainer.critic_mode == "shared" and trainer._ref_model is None
    changed = _train(trainer)
    assert any(".default." in n for n in changed), changed
    assert any(".critic." in n for n in changed), changed
    assert any("cf_value_head" in n for n in changed), changed
    _check_rewards(trainer)
    kls = [e["ppo/kl"] for e in trainer.state.log_history if "ppo/kl" in e]
    assert kls[0] == pytest.approx(0.0, abs=1e-5)  # LoRA B = 0 at start: policy == base
    assert kls[-1] != 0.0  # after one update the policy moved away from the base (adapters disabled)


def test_4bit_shared_base_value_loss_decreases(tiny_model_path, tmp_path):
    trainer = _make(tiny_model_path, tmp_path, "4bit", cliprange_value=None)
    model = trainer.model
    assert any("4bit" in type(m).__name__ for m in model.modules()), "not loaded in 4 bit"
    assert trainer.critic_mode == "shared" and trainer._ref_model is None
    assert sorted(model.peft_config) == ["critic", "default"]
    base_params = [p for n, p in model.named_parameters() if "lora_" not in n and "cf_value_head" not in n]
    assert all(not p.requires_grad for p in base_params)  # one frozen base for policy, reference and critic
    # a fixed rollout batch; PPO updates of critic + policy on it: the value loss goes down
    model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    inputs = trainer._generate_and_score_completions(batch)
    trainer.current_gradient_accumulation_steps = 1
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-2)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        trainer.compute_loss(model, inputs).backward()
        opt.step()
        losses.append(trainer._metrics["train"]["ppo/value_loss"][-1])
    assert losses[-1] < 0.5 * losses[0], losses
    # the policy adapter is active again after the critic forward, and both adapters stay trainable
    assert model.active_adapter == "default"
    assert all(p.requires_grad for n, p in model.named_parameters() if ".critic." in n or ".default." in n)


@pytest.mark.parametrize("setup", ["full", "4bit"])
def test_resume_from_checkpoint(tiny_model_path, tmp_path, setup):
    from safetensors.torch import load_file

    first = _make(tiny_model_path, tmp_path / "a", setup, save_strategy="steps", save_steps=1, kl_target=1.0)
    _train(first)
    ckpt = tmp_path / "a" / "checkpoint-1"
    assert (ckpt / "ppo_state.json").is_file() and (ckpt / "optimizer.pt").is_file()
    if setup == "4bit":
        assert (ckpt / "adapter_model.safetensors").is_file()
        assert (ckpt / "critic" / "adapter_model.safetensors").is_file()
        saved_head = load_file(str(ckpt / "critic" / "value_head.safetensors"))
        policy = load_file(str(ckpt / "adapter_model.safetensors"))
        critic = load_file(str(ckpt / "critic" / "adapter_model.safetensors"))
    else:
        saved_critic = load_file(str(ckpt / "critic" / "critic.safetensors"))
        saved_head = {k[len("head."):]: v for k, v in saved_critic.items() if k.startswith("head.")}
    second = _make(tiny_model_path, tmp_path / "b", setup, save_strategy="no", kl_target=1.0)
    _train(second, resume_from_checkpoint=str(ckpt))
    assert second.state.global_step == 2
    state = second.first_step_state
    assert state["optimizer_state"] > 0  # Adam moments restored (a fresh optimizer has none before its first step)
    import json

    assert state["kl_coef"] == pytest.approx(json.loads((ckpt / "ppo_state.json").read_text())["kl_ctl"]["value"])
    params = state["params"]
    head = {k.split("cf_value_head.")[-1].split("head.")[-1]: v for k, v in params.items()
            if "cf_value_head." in k or k.startswith("cf_critic.head.")}
    for k in ("weight", "bias"):
        assert torch.equal(head[k], saved_head[k].float()), k
    if setup == "4bit":
        # PEFT names: base_model.model.<module>.lora_A.weight in the file, .lora_A.<adapter>.weight in the model
        for saved, adapter in ((policy, "default"), (critic, "critic")):
            for k, v in saved.items():
                name = k.replace(".lora_A.weight", f".lora_A.{adapter}.weight").replace(".lora_B.weight", f".lora_B.{adapter}.weight")
                assert torch.equal(params[name], v.float()), name
    else:
        for k, v in saved_critic.items():
            if f"cf_critic.{k}" in params:
                assert torch.equal(params[f"cf_critic.{k}"], v.float()), k


def test_push_to_hub_policy_with_card(tiny_model_path, tmp_path, monkeypatch):
    import huggingface_hub

    uploads = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, exist_ok=True, private=None):
            uploads["repo"] = repo_id

        def upload_folder(self, folder_path, repo_id, revision=None, commit_message=None):
            uploads["files"] = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
            uploads["card"] = (Path(folder_path) / "README.md").read_text()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    trainer = _make(tiny_model_path, tmp_path, "lora", max_steps=1, hub_model_id="me/ppo-tiny")
    _train(trainer)
    assert trainer.push_to_hub(dataset="mbpp") == "me/ppo-tiny"
    assert "adapter_model.safetensors" in uploads["files"] and not [f for f in uploads["files"] if f.startswith("critic")]
    import json

    cfg = json.loads(uploads["card"].split("```json", 1)[1].split("```", 1)[0])
    assert cfg["trainer"] == "CodeFeedbackPPOConfig"
    assert cfg["settings"]["kl_coef"] == 0.05 and cfg["settings"]["fine_grained_penalty"] == -0.3
    assert cfg["settings"]["vf_coef"] == 0.1 and cfg["settings"]["gamma"] == 1.0


def test_shared_critic_gradients_same_with_gradient_checkpointing(tiny_model_path, tmp_path):
    """The critic adapter is active only inside the critic forward: a checkpointed recompute must not change grads."""
    trainer = _make(tiny_model_path, tmp_path, "lora")
    model = trainer.model
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or "cf_value_head.weight" in n:
                p.normal_(0, 0.5)  # both adapters and the value head non-trivial (a zero head passes no gradient)
    model.train()
    inputs = trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    trainer.current_gradient_accumulation_steps = 1

    def grads():
        model.train()
        model.zero_grad()
        trainer.compute_loss(model, inputs).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    model.gradient_checkpointing_enable({"use_reentrant": False})
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    assert trainer._inline_critic_backward()  # one process: critic backward inside the adapter switch, checkpointed
    inline = grads()
    trainer._inline_critic_backward = lambda: False  # the DDP path: critic forward without checkpointing
    stored = grads()
    assert {n.split(".")[-2] for n in plain} == {"default", "critic", "cf_value_head"}
    assert any(g.abs().sum() > 0 for n, g in plain.items() if ".critic." in n)
    for n, g in plain.items():
        assert torch.allclose(g, inline[n], atol=1e-5), n
        assert torch.allclose(g, stored[n], atol=1e-5), n


def test_trained_peft_model_warns_that_the_reference_is_the_base(tiny_model_path, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    def lora_model(trained: bool):
        model = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_path)), peft.LoraConfig(**LORA))
        if trained:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if "lora_B" in n:
                        p.fill_(0.01)
        return model

    def trainer_for(model, **kw):
        args = CodeFeedbackPPOConfig(**config_kwargs(tmp_path, num_generations=1, max_completion_length=8, **kw))
        return CodeFeedbackPPOTrainer(model=model, reward_funcs=[length_reward], args=args, train_dataset=Dataset.from_list(code_rows(4)))

    def ours(record):
        return [w for w in record if "reference is the base model" in str(w.message)]

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer_for(lora_model(trained=False), kl_coef=0.05)  # untrained adapter: policy == base
        trainer_for(lora_model(trained=True), kl_coef=0.0)  # no KL term: the reference is never used
    assert ours(record) == []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer_for(lora_model(trained=True), kl_coef=0.05)
    assert len(ours(record)) == 1
