"""Shared machinery of the execution rewards: completions -> programs -> Feedback -> rewards.

:class:`ExecutionReward` is a TRL reward function (``(prompts, completions, **kwargs)
-> list[float | None]``). Subclasses say which tests a row carries and how a
:class:`Feedback` scores; everything else lives here: code extraction, the
``code_prefix`` column, truncation detection, the executor call, harness-error
handling and logging through TRL's ``log_metric`` / ``log_extra`` hooks.

After each call, :attr:`ExecutionReward.last_results` holds one
:class:`ScoredCompletion` per completion, for trainer subclasses that map error
lines to tokens.
"""

from __future__ import annotations

import abc
import functools
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trl_codefeedback.execution.feedback import ErrorScope, Feedback, Status
from trl_codefeedback.execution.program import LANGUAGES, Limits, Program, UnknownLanguageError, language_name
from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError
from trl_codefeedback.execution.specs import TestSpecError, check_kind_for_language, parse_test_spec
from trl_codefeedback.feedback.extract import ExtractedCode, count_line_breaks, extract_code

logger = logging.getLogger(__name__)

EMPTY_COMPLETION = "EmptyCompletion"  # Feedback.error_type of a completion that holds no code


@dataclass(frozen=True)
class ScoredCompletion:
    """What one completion turned into.

    Attributes:
        feedback: the executor's record, with ``error_line`` made relative to the
            *extracted code* (``None`` when the error lies in the ``code_prefix``).
        extracted: the code and its offsets in the completion text.
        prefix_lines: line breaks in the ``code_prefix`` put before the code
            (program line = code line + prefix_lines).
        program_error_line: the error line in the executed program (prefix + code).
        truncated: the completion was cut at the generation length limit.
        reward: the scalar reward (``None`` for a harness error).
    """

    feedback: Feedback
    extracted: ExtractedCode
    prefix_lines: int
    program_error_line: int | None
    truncated: bool
    reward: float | None

    def error_span(self) -> tuple[int, int] | None:
        """Char span in the completion text of the error line, or ``None`` when it is not in the completion."""
        line = self.feedback.error_line
        if line is None or not 1 <= line <= self.extracted.num_lines:
            return None
        return self.extracted.line_span(line)


JDK_REQUIREMENT = "a JDK 17 (javac and java; the Java worker needs a JDK from 12 to 23, JDK 17 is the one tested)"


def configuration_error_message(e: BaseException) -> str | None:
    """A user-facing message for an error of the set-up (not of one program), or ``None`` for other errors.

    Set-up errors: the sandbox refuses the host (:class:`SandboxUnavailableError`), no JDK for Java
    (``JavaUnavailableError``), tests that cannot test the program's language or are malformed
    (:class:`TestSpecError`), an unknown language. No reward can be computed after one of them, so
    the rewards raise them instead of turning them into ``harness_error`` / ``None``.
    """
    if isinstance(e, (SandboxUnavailableError, TestSpecError, UnknownLanguageError)):
        return str(e)
    if type(e).__name__ == "JavaUnavailableError":
        what = str(e).split(" (install", 1)[0]  # jdk.py's own hint names an older JDK than the worker needs
        return f"{what}: Java programs need {JDK_REQUIREMENT} on PATH or in JAVA_HOME"
    return None


def normalize_language(value: Any, where: str = "") -> str:
    """``"Python"`` / ``" java "`` -> ``"python"`` / ``"java"``; :class:`UnknownLanguageError` for a non-string."""
    if not isinstance(value, str):
        raise UnknownLanguageError(f"language must be a string{where}, got {type(value).__name__} {value!r}")
    return language_name(value)


def row_label(kwargs: dict[str, Any], i: int, where: str = "of this reward call's batch") -> str:
    """``"row 3 of this reward call's batch (task_id 'MBPP/11')"``: the row, named by its task id when there is one."""
    ids = kwargs.get("task_id")
    label = f"row {i} {where}"
    try:
        task_id = ids[i] if ids is not None else None
    except (IndexError, KeyError, TypeError):
        task_id = None
    return f"{label} (task_id {task_id!r})" if task_id is not None else label


def _column(kwargs: dict[str, Any], name: str | None, n: int) -> list[Any] | None:
    if name is None or name not in kwargs or kwargs[name] is None:
        return None
    values = list(kwargs[name])
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return values


def _column_or(kwargs: dict[str, Any], name: str | None, n: int, default: Any) -> list[Any]:
    """Column ``name`` with empty values (or the whole column, when absent) replaced by ``default``."""
    return [v or default for v in (_column(kwargs, name, n) or [default] * n)]


def _available(kwargs: dict[str, Any]) -> list[str]:
    hooks = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}
    return sorted(k for k in kwargs if k not in hooks)


def _required_column(kwargs: dict[str, Any], name: str, n: int, *, owner: str, what: str, option: str, cls: str) -> list[Any]:
    """Column ``name`` of a reward call; ``KeyError`` naming it and the columns that did arrive when it is missing."""
    values = _column(kwargs, name, n)
    if values is None:
        raise KeyError(
            f"{owner} needs {what} in dataset column {name!r}, but the reward function received no such column; "
            f"available columns: {_available(kwargs)}. Add the column to the dataset or pass {option}=... to {cls}."
        )
    return values


class ExecutionReward(abc.ABC):
    """Base of the execution-feedback rewards. Subclasses implement :meth:`_row_tests` and :meth:`_score`.

    Args:
        language: language of the programs (case-insensitive). ``None`` (the default): each row's
            ``language`` column, ``"python"`` when there is none. Given explicitly, it must agree
            with the ``language`` column where there is one: a row that says otherwise raises
            ``ValueError`` naming the row (a Java reward on Python rows is a configuration error,
            never a reward).
        code_prefix_column: column with code put before the completion's code (completion-style
            prompts such as HumanEval's function header); ``None`` to ignore it.
        truncated_column: column (or reward kwarg) of booleans flagging truncated completions.
        max_completion_length: the trainer's ``max_completion_length``; with ``completion_ids``
            (which TRL passes) a completion that reached it without an EOS token is truncated.
            Default: read, with the EOS ids, from the TRL trainer that calls the reward (found
            through its ``log_metric`` hook), so no :meth:`attach_trainer` call is needed.
        eos_token_ids: ids that end a generation (default: any last token counts as "not EOS").
        limits: resource limits per program (default: the executor's own).
        executor: an :class:`~trl_codefeedback.execution.Executor` (or any object with
            ``run(programs, limits=None) -> list[Feedback]``); default: the shared executor.
        name: ``__name__`` (TRL names the reward's logged metrics after it).
        coverage: ask the executor for the candidate lines each program executed
            (``Feedback.covered_lines``, Python only); token-level trainers set it for StepCoder masking.
    """

    default_name = "execution_reward"
    supported_languages: tuple[str, ...] = LANGUAGES
    _warned_unknown_length = False  # set per instance on the first warning

    def __init__(
        self,
        *,
        language: str | None = None,
        code_prefix_column: str | None = "code_prefix",
        truncated_column: str | None = "truncated",
        max_completion_length: int | None = None,
        eos_token_ids: Sequence[int] | int | None = None,
        limits: Limits | None = None,
        executor: Any | None = None,
        name: str | None = None,
        coverage: bool = False,
    ) -> None:
        if language is not None:
            language = normalize_language(language)
            self._check_language(language)
        self.coverage = coverage
        self.language = language
        self.code_prefix_column = code_prefix_column
        self.truncated_column = truncated_column
        self.max_completion_length = max_completion_length
        self.eos_token_ids = self._as_ids(eos_token_ids)
        self.limits = limits
        self.executor = executor
        self.__name__ = name or self.default_name
        self.last_results: list[ScoredCompletion] = []
        self._validated_datasets: set[int] = set()  # id() of the data sets checked whole (validate_dataset)

    # ---- configuration -------------------------------------------------------------------

    @staticmethod
    def _as_ids(ids: Sequence[int] | int | None) -> frozenset[int] | None:
        if ids is None:
            return None
        return frozenset([ids] if isinstance(ids, int) else ids)

    def _check_language(self, language: str, where: str = "") -> None:
        if language not in self.supported_languages:
            raise UnknownLanguageError(
                f"{type(self).__name__} does not support language {language!r}{where}; "
                f"supported: {list(self.supported_languages)}"
            )

    def required_columns(self) -> dict[str, str]:
        """Dataset columns this reward cannot work without: ``{column: what it holds}``."""
        return {}

    def _rows(self, kwargs: dict[str, Any], n: int, label: Callable[[int], str]) -> tuple[list[Any], list[str]]:
        """Each row's test spec and language, validated before anything runs; raises naming the row.

        Checks: the subclass's columns (:meth:`_row_tests`), each row's language (the ``language``
        column, case-insensitive, agreeing with an explicit ``language=``), each spec's format and
        that its kind can test that language, and for Java that the trusted oracle can find the
        checks of its ``main``.
        """
        tests = self._row_tests(kwargs, n, label)
        column = _column(kwargs, "language", n)
        languages = []
        for i in range(n):
            raw = None if column is None else column[i]
            if raw is None or raw == "":
                lang = self.language or "python"
            else:
                lang = normalize_language(raw, where=f" ({label(i)}, column 'language')")
                if self.language is not None and lang != self.language:
                    raise ValueError(
                        f"{self.__name__}: {label(i)} says language {raw!r} in column 'language', but the reward was "
                        f"built with language={self.language!r}. An explicit language must agree with the column: drop "
                        f"the argument to follow the column, or fix the data set."
                    )
            self._check_language(lang, where=f" ({label(i)}, column 'language')")
            languages.append(lang)
        column_name = getattr(self, "tests_column", "tests")
        for i, (spec, lang) in enumerate(zip(tests, languages)):
            if spec is None:
                continue
            try:
                parsed = parse_test_spec(spec)
                check_kind_for_language(parsed, lang)
                if parsed.kind == "java_main":
                    problem = _java_test_problem(parsed.test)
                    if problem:
                        raise TestSpecError(problem)
            except TestSpecError as e:
                raise TestSpecError(f"{self.__name__}: {label(i)}: column {column_name!r} is not a valid test spec: {e}") from None
        return tests, languages

    def validate_dataset(self, dataset: Any, name: str = "train_dataset") -> None:
        """Check every row of ``dataset`` the way a reward call checks its batch, before anything runs.

        Raises ``KeyError`` for a missing column and ``ValueError`` (:class:`TestSpecError` for
        a spec) naming the data set's row index and its ``task_id``; ``JavaUnavailableError`` when
        rows are Java and there is no JDK here. Our trainers call it when they are built; with
        another trainer (TRL's ``GRPOTrainer``) the reward calls it on the calling trainer's
        ``train_dataset`` at its first call. Data sets without a length (streaming) are skipped.
        """
        if dataset is None or id(dataset) in self._validated_datasets:
            return
        columns = getattr(dataset, "column_names", None)
        if not isinstance(columns, (list, tuple)) or not hasattr(dataset, "__len__"):
            return  # an IterableDataset: rows are checked per batch
        for column, what in self.required_columns().items():
            if column not in columns:
                raise KeyError(
                    f"{self.__name__} needs {what} in dataset column {column!r}, but {name} has no such column; "
                    f"its columns: {sorted(columns)}. Add the column or pass {type(self).__name__}(tests_column=...)."
                )
        n = len(dataset)
        wanted = [c for c in (*self.required_columns(), "language", "task_id") if c in columns]
        kwargs = {c: list(dataset[c]) for c in wanted}
        _, languages = self._rows(kwargs, n, lambda i: row_label(kwargs, i, where=f"of {name}"))
        self.check_host(set(languages) | ({self.language} if self.language else set()))
        self._validated_datasets.add(id(dataset))

    def check_host(self, languages: set[str] | None = None) -> None:
        """Cheap checks that this host can run ``languages`` (default: the reward's): for Java, a JDK
        and namespaces to sandbox the worker JVMs in (a short probe process, ~0.1 s).

        Only for executors on this machine (the default one, or an ``Executor`` whose backend is not
        Ray); raises ``JavaUnavailableError`` with what to install, or ``SandboxUnavailableError``
        with the refusal the Java backend would give at its first program.
        """
        languages = languages if languages is not None else {self.language or "python"}
        if "java" not in languages or not self._executor_is_local():
            return
        from trl_codefeedback.execution.java.jdk import JavaUnavailableError, find_jdk

        try:
            find_jdk()
        except JavaUnavailableError as e:
            raise JavaUnavailableError(f"{self.__name__}: {configuration_error_message(e)}") from None
        from trl_codefeedback.execution.java.sandbox_check import java_sandbox_refusal

        refusal = java_sandbox_refusal(getattr(self.executor, "isolate", True))
        if refusal is not None:  # the Java backend would refuse at its first program
            raise SandboxUnavailableError(f"{self.__name__}: {refusal}")

    def _executor_is_local(self) -> bool:
        from trl_codefeedback.execution.executor import Executor, default_backend

        if self.executor is None:
            return default_backend() != "ray"
        return isinstance(self.executor, Executor) and getattr(self.executor, "backend", "local") != "ray"

    def as_async(self):
        """This reward as a coroutine function (see :mod:`trl_codefeedback.feedback.async_reward`):
        TRL then runs it concurrently with the step's other async rewards."""
        from trl_codefeedback.feedback.async_reward import AsyncReward

        return AsyncReward(self)

    def attach_trainer(self, trainer: Any) -> ExecutionReward:
        """Read ``max_completion_length`` and the EOS ids from a TRL trainer (for truncation detection).

        Not needed with TRL's GRPO-family trainers: the reward finds the trainer that calls it.
        For other callers that pass ``completion_ids``, call it once after building the trainer.

        Example:
            >>> reward = UnitTestReward()                                   # doctest: +SKIP
            >>> trainer = GRPOTrainer(model, reward_funcs=[reward], ...)    # doctest: +SKIP
            >>> reward.attach_trainer(trainer)                              # doctest: +SKIP
        """
        args = getattr(trainer, "args", None)
        self.max_completion_length = getattr(args, "max_completion_length", self.max_completion_length)
        eos = getattr(trainer, "eos_token_ids", None)
        if eos is None:
            tok = getattr(trainer, "processing_class", None)
            eos = getattr(tok, "eos_token_id", None)
        if eos is not None:
            self.eos_token_ids = self._as_ids(eos)
        return self

    @property
    def last_feedback(self) -> list[Feedback]:
        """The Feedback of each completion of the last call (``error_line`` relative to the extracted code)."""
        return [r.feedback for r in self.last_results]

    # ---- subclass hooks ------------------------------------------------------------------

    @abc.abstractmethod
    def _row_tests(self, kwargs: dict[str, Any], n: int, label: Callable[[int], str] = str) -> list[Any]:
        """One test spec (or ``None``: compile only) per completion; raise on a missing column or an empty row
        (``label(i)`` names row ``i``). The specs themselves are validated by :meth:`_rows`."""

    @abc.abstractmethod
    def _score(self, feedback: Feedback) -> float | None:
        """The reward of one completion's Feedback (``None`` leaves it out of the update)."""

    def _log_metrics(self, results: list[ScoredCompletion], log_metric: Callable[[str, float], None]) -> None:
        n = len(results)
        for status in Status:
            log_metric(f"{self.__name__}/{status.value}", sum(r.feedback.status is status for r in results) / n)
        log_metric(f"{self.__name__}/truncated", sum(r.truncated for r in results) / n)

    # ---- the call ------------------------------------------------------------------------

    def __call__(
        self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        if not self._validated_datasets:  # TRL's own trainers: the whole train_dataset, once
            trainer = self._calling_trainer(kwargs)
            if trainer is not None:
                self.validate_dataset(getattr(trainer, "train_dataset", None), "train_dataset")
        tests, languages = self._rows(kwargs, n, lambda i: row_label(kwargs, i))  # before anything runs
        prefixes = _column_or(kwargs, self.code_prefix_column, n, "")
        truncated = self._truncation(kwargs, n)

        # A completion continues its prefix (HumanEval-style) only when prompt and completion are
        # plain text; a chat answer is a full reply (often prose, then a fenced block) whose code
        # goes after the prefix (the prompt's import lines).
        prompt_list = list(prompts) if prompts is not None and len(prompts) == n else [None] * n
        extracted = [
            extract_code(c, language=lang, continuation=bool(p) and isinstance(c, str) and not isinstance(q, list))
            for c, lang, p, q in zip(completions, languages, prefixes, prompt_list)
        ]
        to_run = [i for i in range(n) if not extracted[i].is_empty]
        programs = [
            Program(
                code=prefixes[i] + extracted[i].code,
                tests=tests[i],
                language=languages[i],
                truncated=truncated[i],
                coverage=self.coverage,
            )
            for i in to_run
        ]
        ran = dict(zip(to_run, self._execute(programs)))

        results = []
        for i in range(n):
            prefix_lines = count_line_breaks(prefixes[i])
            fb = ran[i] if i in ran else self._empty_feedback(tests[i])
            program_line = fb.error_line
            code_line = None if program_line is None else program_line - prefix_lines
            if code_line is not None and code_line < 1:
                code_line = None  # the error lies in the prefix, not in the model's code
            fb = replace(fb, error_line=code_line)
            results.append(
                ScoredCompletion(
                    feedback=fb,
                    extracted=extracted[i],
                    prefix_lines=prefix_lines,
                    program_error_line=program_line,
                    truncated=truncated[i],
                    reward=self._score(fb),
                )
            )
        self.last_results = results
        self._report(results, kwargs)
        return [r.reward for r in results]

    def _truncation(self, kwargs: dict[str, Any], n: int) -> list[bool]:
        flags = _column(kwargs, self.truncated_column, n)
        if flags is not None:
            return [bool(f) for f in flags]
        ids = kwargs.get("completion_ids")
        if ids is not None and not self.max_completion_length:
            self._attach_calling_trainer(kwargs)
        if ids is not None and self.max_completion_length:
            eos = self.eos_token_ids
            return [
                len(x) >= self.max_completion_length and (eos is None or len(x) == 0 or x[-1] not in eos) for x in ids
            ]
        return [False] * n

    @staticmethod
    def _calling_trainer(kwargs: dict[str, Any]) -> Any | None:
        """The trainer whose ``log_metric`` / ``log_extra`` hooks (bound methods) came with the call, if any."""
        for hook in ("log_metric", "log_extra"):
            trainer = getattr(kwargs.get(hook), "__self__", None)
            if trainer is not None and hasattr(trainer, "args"):
                return trainer
        return None

    def _attach_calling_trainer(self, kwargs: dict[str, Any]) -> None:
        """Find the trainer behind TRL's ``log_metric`` / ``log_extra`` hooks (its bound methods) and attach it.

        TRL's GRPO-family trainers pass ``completion_ids`` but not the length limit; the hooks are
        methods of the trainer, which holds ``args.max_completion_length`` and ``eos_token_ids``.
        When no trainer can be found, warn once: a syntax error at a truncated last line would
        be blamed on that line instead of the whole program.
        """
        trainer = self._calling_trainer(kwargs)
        if getattr(getattr(trainer, "args", None), "max_completion_length", None):
            self.attach_trainer(trainer)
            return
        if not self._warned_unknown_length:
            self._warned_unknown_length = True
            msg = (
                f"{self.__name__}: completion_ids arrived but the generation length limit is unknown, so truncated "
                f"completions are not detected; call reward.attach_trainer(trainer) or pass max_completion_length=..."
            )
            logger.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=4)

    def _empty_feedback(self, tests: Any) -> Feedback:
        total = 0
        if tests is not None:
            try:
                from trl_codefeedback.execution.specs import parse_test_spec

                total = parse_test_spec(tests).num_tests
            except Exception:  # counting is best effort; the row was validated already
                total = 0
        return Feedback(
            status=Status.COMPILE_ERROR,
            tests_total=total,
            error_type=EMPTY_COMPLETION,
            error_message="the completion holds no code",
            error_scope=ErrorScope.GLOBAL,
        )

    def _execute(self, programs: list[Program]) -> list[Feedback]:
        if not programs:
            return []
        try:
            if self.executor is not None:
                run = self.executor.run
                out = list(run(programs) if self.limits is None else run(programs, limits=self.limits))
            else:
                from trl_codefeedback.execution import execute

                out = list(execute(programs, limits=self.limits))
            if len(out) != len(programs):
                raise RuntimeError(f"executor returned {len(out)} results for {len(programs)} programs")
            return out
        except Exception as e:
            message = configuration_error_message(e)
            if message is not None:  # the set-up's fault: no program can be scored, so stop here
                raise type(e)(f"{self.__name__}: {message}") from e
            # our fault, never the model's: no reward, loud log
            logger.exception("%s: the executor failed", self.__name__)
            return [Feedback.harness_error(f"executor raised {type(e).__name__}: {e}") for _ in programs]

    def _report(self, results: list[ScoredCompletion], kwargs: dict[str, Any]) -> None:
        harness = [r.feedback for r in results if r.feedback.status is Status.HARNESS_ERROR]
        if harness:
            msg = (
                f"{self.__name__}: {len(harness)} of {len(results)} programs hit a harness error (our fault, not "
                f"the model's); their reward is None so the trainer leaves them out. First error: "
                f"{harness[0].error_message}"
            )
            logger.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
        if not results:
            return
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            self._log_metrics(results, log_metric)
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra(f"{self.__name__}/status", [r.feedback.status.value for r in results])
            log_extra(f"{self.__name__}/error_type", [r.feedback.error_type for r in results])
            log_extra(f"{self.__name__}/error_line", [r.feedback.error_line for r in results])


@functools.lru_cache(maxsize=4096)
def _java_test_problem(test: str) -> str | None:
    """Why the trusted Java oracle cannot judge ``test`` apart from the program, when that shows without a JVM.

    Only the part of the plan builder that needs no ``javac`` (finding ``main`` and its checks);
    a check whose condition calls the program (declare the value first, docs/java.md) is found
    by the oracle's ``javac`` and reported per program as a harness error.
    """
    from trl_codefeedback.execution.java.split import main_checks  # pure Python

    if main_checks(test) is None:
        return ("the Java oracle cannot judge this test: it has no parsable `public static void main(String[] args)` "
                "whose checks it could split (see docs/java.md)")
    return None
