"""An ``evaluate`` metric: run candidate programs against their tests, report pass@k and RLCF's rates.

Load it from its folder (no Hub access needed):

    >>> import evaluate
    >>> from trl_codefeedback.metrics import metric_path
    >>> metric = evaluate.load(metric_path())                                      # doctest: +SKIP
    >>> metric.compute(predictions=[["def f(x):\\n    return x + 1\\n"]],
    ...                references=[{"kind": "asserts", "asserts": ["assert f(1) == 2"]}], k=[1])  # doctest: +SKIP
    {'pass@1': 1.0, 'compile_rate': 1.0, 'execution_rate': 1.0, ...}

The programs run in ``trl_codefeedback``'s executor (separate sandboxed processes with
resource limits). It is not a security sandbox: see the executor's documentation.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import datasets
import evaluate

_DESCRIPTION = """\
Runs each candidate program through trl_codefeedback's executor against the task's test spec
(kinds asserts / check / stdio / call / java_main) and reports the unbiased pass@k estimator
(Chen et al. 2021), compile rate and execution rate (Jain et al. 2023, RLCF). Harness errors
(failures of the executor itself) are left out of every number and counted separately.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list (one per task) of lists of candidate programs (str). Each must be complete:
        for completion-style prompts, prepend the dataset's ``code_prefix`` yourself.
    references: list (one per task) of test specs: JSON text (the ``tests`` column of the
        trl_codefeedback loaders) or dicts.
    k: the k values of pass@k (default [1, 10, 100]); a k larger than a task's sample count is skipped.
    language: "python" (default) or "java".
    workers: executor worker processes (default: number of CPUs).
    test_timeout_s, program_timeout_s: per-test and per-program time limits (executor defaults if None).
Returns:
    dict with "pass@<k>" for each reported k, "compile_rate", "execution_rate", "status_counts",
    "num_tasks", "num_programs", "num_harness_errors".
"""

_CITATION = """\
@article{chen2021codex, title={Evaluating Large Language Models Trained on Code},
  author={Chen, Mark and others}, journal={arXiv:2107.03374}, year={2021}}
@article{jain2023rlcf, title={Coarse-Tuning Models of Code with Reinforcement Learning Feedback},
  author={Jain, Abhinav and others}, journal={arXiv:2305.18341}, year={2023}}
"""


class CodeFeedbackMetric(evaluate.Metric):
    """pass@k, compile rate and execution rate from executing candidate programs."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("string")), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/trl-codefeedback/trl-codefeedback",
        )

    def compute(self, *, predictions=None, references=None, **kwargs) -> dict[str, Any] | None:
        """As :meth:`evaluate.Metric.compute`; dict test specs are turned into JSON text first."""
        if references is not None:
            references = [r if isinstance(r, str) else json.dumps(r) for r in references]
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(
        self,
        predictions: Sequence[Sequence[str]],
        references: Sequence[str],
        k: Sequence[int] = (1, 10, 100),
        language: str = "python",
        workers: int | None = None,
        test_timeout_s: float | None = None,
        program_timeout_s: float | None = None,
    ) -> dict[str, Any]:
        from trl_codefeedback.execution import Limits, Program, execute
        from trl_codefeedback.metrics.summary import summarize

        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} prediction lists but {len(references)} references")
        limit_args = {name: value for name, value in
                      (("test_timeout_s", test_timeout_s), ("program_timeout_s", program_timeout_s)) if value is not None}
        limits = Limits(**limit_args) if limit_args else None
        programs, owners = [], []
        for task, (candidates, tests) in enumerate(zip(predictions, references)):
            for code in candidates:
                programs.append(Program(code=code, tests=tests, language=language))
                owners.append(task)
        feedbacks = execute(programs, workers=workers, limits=limits) if programs else []
        by_task: dict[str, list] = {str(t): [] for t in range(len(references))}
        for task, fb in zip(owners, feedbacks):
            by_task[str(task)].append(fb)
        return summarize(by_task, ks=k)
