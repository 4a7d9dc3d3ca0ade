"""Training RLCF's discriminator: a pairwise (Bradley-Terry) loss on (policy sample, reference) pairs.

For each prompt ``x``, its reference ``ref`` and a program ``y`` that is not the reference (a policy
sample, or an extra negative such as a failing program), the scorer ``f`` of a
:class:`~trl_codefeedback.feedback.discriminator.DiscriminatorReward` is trained to score the
reference higher:

``loss = -log sigmoid(f(x ∘ ref) - f(x ∘ y))``

``f(x ∘ ref)`` and ``f(x ∘ y)`` come from two separate inputs, so no training input holds two
programs, and a pair whose ``y`` is the reference itself (up to surrounding whitespace) is left
out: it carries no signal. What ``f`` learns is what tells references from the policy's programs.

* :func:`program_pairs`: the :class:`ProgramPair` list of a set of samples (+ extra negatives).
* :func:`train_discriminator`: a few epochs of the pairwise loss (scorer backend).
* :func:`evaluate_discriminator`: pairwise accuracy / margin on such a set, without training
  (either backend).

Example:
    >>> disc = DiscriminatorReward(scorer, tokenizer)                                      # doctest: +SKIP
    >>> train_discriminator(disc, prompts, references, generated, DiscriminatorTrainingConfig(epochs=3))  # doctest: +SKIP
    {'loss': 0.05, 'accuracy': 1.0, 'margin': 4.1, 'steps': 12.0, 'pairs': 64.0, 'skipped_copies': 0.0}
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from trl_codefeedback.feedback.discriminator import DiscriminatorReward, Rollout, prompt_text


@dataclass
class DiscriminatorTrainingConfig:
    """Optimisation settings of :func:`train_discriminator`."""

    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    epochs: int = field(default=1, metadata={"help": "Passes over the pairs."})
    batch_size: int = field(default=8, metadata={"help": "(sample, reference) pairs per optimizer step."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many optimizer steps (None: all epochs)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    seed: int = field(default=0, metadata={"help": "Seed of the pair order and of torch's RNG (dropout) while training."})

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1; got {self.epochs} and {self.batch_size}")


@dataclass(frozen=True)
class ProgramPair:
    """One pairwise example: for ``prompt``, ``reference`` should score above ``other``.

    The two programs are scored in separate inputs, never in one.
    """

    prompt: str
    reference: str
    other: str


@dataclass(frozen=True)
class PairSet:
    """The pairs built from a set of samples, and how many samples were dropped as copies of their reference."""

    pairs: list[ProgramPair]
    skipped_copies: int


def program_pairs(
    prompts: Sequence[Any],
    references: Sequence[str],
    generated: Sequence[str],
    negatives: Sequence[Rollout] = (),
) -> PairSet:
    """(sample, reference) pairs of the same prompt; extra ``negatives`` are (prompt, code, reference) rollouts.

    A sample equal to its reference (up to surrounding whitespace) is skipped and counted.

    Example:
        >>> program_pairs(["Add one."], ["return x + 1"], ["return x"]).pairs
        [ProgramPair(prompt='Add one.', reference='return x + 1', other='return x')]
    """
    if not (len(prompts) == len(references) == len(generated)):
        raise ValueError(f"got {len(prompts)} prompts, {len(references)} references, {len(generated)} generated programs")
    triples = [(prompt_text(p), r, g) for p, r, g in zip(prompts, references, generated)]
    for i, n in enumerate(negatives):
        if not isinstance(n, Rollout):
            raise TypeError(f"negatives[{i}] is {type(n).__name__}, expected Rollout(prompt, code, reference)")
        triples.append((n.prompt, n.reference, n.code))
    pairs, copies = [], 0
    for p, r, g in triples:
        if not isinstance(r, str) or not isinstance(g, str):
            raise TypeError(f"references and programs must be strings; got {type(r).__name__} and {type(g).__name__}")
        if g.strip() == r.strip():
            copies += 1
            continue
        pairs.append(ProgramPair(p, r, g))
    return PairSet(pairs, copies)


def _pair_margins(discriminator: DiscriminatorReward, pairs: Sequence[ProgramPair]) -> Any:
    """``f(x ∘ ref) - f(x ∘ other)`` per pair, differentiable; one forward pass, one program per input."""
    n = len(pairs)
    f = discriminator.program_scores(
        [p.prompt for p in pairs] * 2, [p.reference for p in pairs] + [p.other for p in pairs]
    )
    return f[:n] - f[n:]


@contextmanager
def _seeded_torch(seed: int, device: Any) -> Iterator[None]:
    """Run the block with torch's CPU generator (and ``device``'s, on CUDA) seeded, restoring them afterwards."""
    import torch

    cuda = [device] if getattr(device, "type", None) == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for d in cuda:
            with torch.cuda.device(d):
                torch.cuda.manual_seed(seed)
        yield


def _require_scorer(discriminator: DiscriminatorReward) -> None:
    if discriminator.backend != "scorer":
        raise ValueError(
            f"train_discriminator trains the pairwise scorer (backend='scorer'), not backend={discriminator.backend!r}: "
            "the judge is a zero-shot LLM asked about both programs at once and is used as is"
        )


def evaluate_discriminator(
    discriminator: DiscriminatorReward,
    prompts: Sequence[Any],
    references: Sequence[str],
    generated: Sequence[str],
    negatives: Sequence[Rollout] = (),
) -> dict[str, float]:
    """Pairwise accuracy on (sample, reference) pairs: how often the sample's score ``d`` is below 0.5.

    For the scorer ``d < 0.5`` means ``f(x ∘ ref) > f(x ∘ sample)`` (the reference is ranked above
    the sample); for the judge it means the judge says the sample does not do what the reference does.

    Returns:
        ``accuracy``, ``generated_score`` (mean ``d`` of the samples; 0.5 = indistinguishable),
        ``pairs`` and ``skipped_copies`` (samples equal to their reference, left out).

    Example:
        >>> evaluate_discriminator(disc, prompts, refs, samples)["accuracy"]  # doctest: +SKIP
        0.94
    """
    built = program_pairs(prompts, references, generated, negatives)
    if not built.pairs:
        raise ValueError(f"no (sample, reference) pair to evaluate ({built.skipped_copies} samples were copies of their reference)")
    pairs = built.pairs
    d = discriminator.score([p.prompt for p in pairs], [p.other for p in pairs], [p.reference for p in pairs])
    return {
        "accuracy": sum(s < 0.5 for s in d) / len(d),
        "generated_score": sum(d) / len(d),
        "pairs": float(len(pairs)),
        "skipped_copies": float(built.skipped_copies),
    }


def train_discriminator(
    discriminator: DiscriminatorReward,
    prompts: Sequence[Any],
    references: Sequence[str],
    generated: Sequence[str],
    config: DiscriminatorTrainingConfig | None = None,
    negatives: Sequence[Rollout] = (),
) -> dict[str, float]:
    """Train the scorer to rank each prompt's reference above the programs generated for it.

    Args:
        discriminator: the :class:`DiscriminatorReward` to train in place (backend ``"scorer"``).
        prompts, references, generated: one triple per policy sample; ``generated[i]`` is a program
            the policy wrote for ``prompts[i]``, ``references[i]`` that prompt's reference program.
        config: :class:`DiscriminatorTrainingConfig`.
        negatives: more programs that are not references, e.g. failing programs, as
            :class:`~trl_codefeedback.feedback.discriminator.Rollout` (prompt, code, reference).

    Returns:
        ``loss`` (mean of the last epoch), ``accuracy`` (pairs ranked right during the last epoch),
        ``margin`` (mean ``f(ref) - f(sample)`` of the last epoch), ``steps``, ``pairs`` and
        ``skipped_copies`` (samples equal to their reference, left out).
    """
    import torch

    _require_scorer(discriminator)
    cfg = config or DiscriminatorTrainingConfig()
    built = program_pairs(prompts, references, generated, negatives)
    pairs = built.pairs
    if not pairs:
        raise ValueError(f"no (sample, reference) pair to train on ({built.skipped_copies} samples were copies of their reference)")
    model = discriminator.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the discriminator model has no trainable parameters")
    optim = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    was_training = model.training
    model.train()
    steps, losses, margins = 0, [], []
    try:
        with _seeded_torch(cfg.seed, discriminator.model_device):  # dropout masks follow cfg.seed, global RNG untouched
            for _epoch in range(cfg.epochs):
                order = list(range(len(pairs)))
                rng.shuffle(order)
                losses, margins = [], []
                for i in range(0, len(order), cfg.batch_size):
                    margin = _pair_margins(discriminator, [pairs[j] for j in order[i : i + cfg.batch_size]])
                    loss = torch.nn.functional.softplus(-margin).mean()  # = -log sigmoid(f(ref) - f(other))
                    optim.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    optim.step()
                    steps += 1
                    losses.append(float(loss.detach()))
                    margins.extend(margin.detach().tolist())
                    if cfg.max_steps is not None and steps >= cfg.max_steps:
                        break
                if cfg.max_steps is not None and steps >= cfg.max_steps:
                    break
    finally:
        model.train(was_training)
        optim.zero_grad(set_to_none=True)
    return {
        "loss": sum(losses) / max(len(losses), 1),
        "accuracy": sum(m > 0 for m in margins) / max(len(margins), 1),
        "margin": sum(margins) / max(len(margins), 1),
        "steps": float(steps),
        "pairs": float(len(pairs)),
        "skipped_copies": float(built.skipped_copies),
    }
