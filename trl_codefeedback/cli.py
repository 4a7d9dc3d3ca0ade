"""`trl-codefeedback` command line.

    trl-codefeedback execute INPUT.jsonl -o OUTPUT.jsonl [--workers N] [--timeout S]
    trl-codefeedback execute --examples          # bundled examples, summary on stdout
    trl-codefeedback demo [--seed S] [--output-dir DIR]   # a tiny model learns from unit-test feedback (CPU)
    trl-codefeedback sandbox-info                # what the sandbox guarantees on this host
    trl-codefeedback tiny-model DIR              # a tiny random model + tokenizer for smoke runs (no Hub, no GPU)
    trl-codefeedback evaluate --model PATH_OR_NAME --dataset mbpp|humaneval|apps|mbxp-python|mbjp|mathqa-java
                              [--n-samples K] [--temperature T] [--output-dir DIR]

Each input row: ``{"language": "python", "code": str, "tests": {"kind": ...} | null}``
plus any other fields (passed through; ``truncated: bool`` is honoured). Each output
row: the input's fields plus the Feedback fields.

Errors of the set-up (the sandbox refuses this host, no JDK, a missing data file, a malformed
test spec or input row) print one ``error: ...`` paragraph and exit with status 1 (the host) or
2 (the input); ``--debug`` (or ``TRL_CODEFEEDBACK_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.specs import check_kind_for_language

EXAMPLES = "execute_examples.jsonl"
MAX_REPORTED_ERRORS = 20
DEBUG_ENV = "TRL_CODEFEEDBACK_DEBUG"


class InputError(ValueError):
    """A malformed input file: the message names the line and what is wrong."""


def _row_to_program(row: Any, where: str):
    from trl_codefeedback.execution import LANGUAGES, Program, TestSpecError, parse_test_spec
    from trl_codefeedback.execution.program import language_name

    if not isinstance(row, dict):
        raise InputError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    language = language_name(row.get("language", "python"))
    if language not in LANGUAGES:
        raise InputError(f"{where}: unknown language {language!r} (supported: {', '.join(LANGUAGES)})")
    code = row.get("code")
    if not isinstance(code, str):
        raise InputError(f"{where}: 'code' must be a string, got {type(code).__name__ if 'code' in row else 'nothing'}")
    if "tests" not in row:
        raise InputError(f"{where}: missing 'tests' (a test spec object, or null for a compile-only check)")
    tests = row["tests"]
    if tests is not None:
        try:
            check_kind_for_language(parse_test_spec(tests), language)
        except TestSpecError as e:
            raise InputError(f"{where}: {e}") from None
    truncated = row.get("truncated", False)
    if not isinstance(truncated, bool):
        raise InputError(f"{where}: 'truncated' must be true or false")
    return Program(code=code, tests=tests, language=language, truncated=truncated)


def _json_error(e: json.JSONDecodeError, text: str) -> str:
    """What is wrong and where, as a column of the line (``e.pos`` counts from the line's start)."""
    if e.pos >= len(text.rstrip()):
        return f"{e.msg} at column {e.pos + 1}: the line ends before the object does (truncated?)"
    return f"{e.msg} at column {e.pos + 1}"


def read_rows(path: Path) -> tuple[list[dict], list]:
    """Parse and validate every row before anything runs; all problems are reported at once."""
    rows, programs, errors = [], [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            text = line.rstrip("\r\n")
            try:
                row = json.loads(text)
                program = _row_to_program(row, where)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: not valid JSON ({_json_error(e, text)})")
                continue
            except InputError as e:
                errors.append(str(e))
                continue
            rows.append(row)
            programs.append(program)
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise InputError(f"{len(errors)} malformed row(s); nothing was executed:\n" + "\n".join(shown) + more)
    return rows, programs


def _summary(feedbacks: list[Feedback]) -> str:
    counts = Counter(fb.status.value for fb in feedbacks)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def cmd_execute(args: argparse.Namespace) -> int:
    from trl_codefeedback.execution import Executor, Limits

    if args.examples:
        path = Path(str(resources.files("trl_codefeedback") / "examples" / EXAMPLES))
    elif args.input is None:
        print("error: give INPUT.jsonl, or --examples to run the bundled examples", file=sys.stderr)
        return 2
    else:
        path = Path(args.input)
        if not path.is_file():
            print(f"error: input file {path} does not exist", file=sys.stderr)
            return 2
    try:
        rows, programs = read_rows(path)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limits = Limits(
        test_timeout_s=args.timeout,
        program_timeout_s=max(args.program_timeout, args.timeout),
        memory_mb=args.memory_mb,
    )
    with Executor(workers=args.workers, limits=limits) as executor:
        feedbacks = executor.run(programs, progress=not args.quiet)
    out_rows = [{**row, **fb.to_dict()} for row, fb in zip(rows, feedbacks)]
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            for r in out_rows:
                f.write(json.dumps(r) + "\n")
    if args.examples or not args.output:
        for r in out_rows:
            label = r.get("id", "")
            where = f" line {r['error_line']}" if r.get("error_line") else ""
            scope = f" [scope {r['error_scope']}]" if r.get("error_scope") else ""
            err = f"  {r['error_type']}{where}{scope}" if r.get("error_type") else ""
            print(f"{label:<18} {r['status']:<15} {r['tests_passed']}/{r['tests_total']}{err}")
        sys.stdout.flush()
    print(f"{len(feedbacks)} programs: {_summary(feedbacks)}" + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def cmd_sandbox_info(args: argparse.Namespace) -> int:
    """Which sandbox guarantees hold on this host; for each that does not, why and how to get it."""
    from trl_codefeedback.execution import Executor
    from trl_codefeedback.execution.sandbox import policy

    with warnings.catch_warnings():  # weak only to report instead of refusing: not the user's choice, no warning
        warnings.filterwarnings("ignore", message=".*running with weak isolation", category=RuntimeWarning)
        with Executor(workers=1, isolate="weak") as executor:
            iso = executor.isolation
    missing = policy.missing(iso)
    if iso.get("mode") == "landlock":
        how = ("no socket at all (seccomp)", "Landlock allow-list: system and interpreter folders read-only, a scratch folder "
               "emptied after each program", "Landlock domain + seccomp")
    else:
        how = ("network namespace", "minimal read-only file-system view; private /tmp, /var/tmp, /dev/shm per program",
               "PID namespace or dedicated uid")
    rows = [
        (f"no network ({how[0]})", iso.get("network"), "network"),
        (how[1], iso.get("filesystem"), "filesystem"),
        (f"programs cannot signal or outlive their run ({how[2]})", "processes" not in missing, "processes"),
        ("programs run as a dedicated uid", iso.get("setuid"), None),
        ("aggregate memory / process limit per program (cgroup)", bool(iso.get("cgroup")), None),
    ]
    landlock = iso.get("mode") == "landlock"
    print(f"sandbox mode: {iso.get('mode')}  (cgroup: {iso.get('cgroup') or 'none'})")
    for label, holds, key in rows:
        line = f"  [{'yes' if holds else 'NO '}] {label}"
        if not holds and key:
            line += f"\n        why: {policy.REASONS[key]}"
        elif not holds and "cgroup" in label:
            line += ("\n        instead: programs may not create processes (seccomp), so one process's memory limit bounds them"
                     if iso.get("no_fork") else "\n        instead: per-process limits only")
        elif not holds and "uid" in label and landlock and os.geteuid() == 0:
            line += ("\n        instead: programs run as uid 0 without capabilities (the sandbox uid cannot read the "
                     "interpreter's folders); files only root may read are left out of what they may open")
        print(line)
    if landlock:
        print("  programs may not create processes or folders, nor chmod; they may keep 512 MB / 10 000 files and hold "
              "64 open files (docs/sandbox.md, Landlock mode)")
        print("  Java programs need namespaces: refused on this host unless weak isolation is asked for")
        print("  no namespace could be made (expected in default Docker and where user namespaces are off):")
    for err in iso.get("errors", []):
        print(f"  note: {err}")
    if missing:
        print("The executor refuses to run programs here unless asked for weak isolation.\n" + policy.HOW)
    if getattr(args, "json", False):
        print(json.dumps(iso, indent=2))
    return 0 if not missing else 1


def cmd_demo(args: argparse.Namespace) -> int:
    import logging
    import warnings

    from trl_codefeedback.demo import DemoConfig, run_demo

    warnings.filterwarnings("ignore")
    for name in ("transformers", "trl", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        import datasets

        datasets.disable_progress_bars()  # the demo prints its own progress, one line per phase / step
    except ImportError:  # pragma: no cover
        pass
    overrides = {k: v for k, v in (("seed", args.seed), ("output_dir", args.output_dir), ("sft_steps", args.sft_steps), ("rl_steps", args.rl_steps)) if v is not None}
    cfg = DemoConfig(**overrides)
    summary = run_demo(cfg)
    return 0 if summary["heldout_pass@1_after_rl"] >= 0 else 1


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from trl_codefeedback.demo import make_readable
    from trl_codefeedback.tiny_model import build_tiny_model

    path = build_tiny_model(args.output_dir, seed=args.seed)
    make_readable(path)  # the weights file is written 0600; others (another user, a container) must read it
    print(f"tiny model written to {path} (random weights: for smoke runs, not for results)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from trl_codefeedback.evaluation import EvalConfig, evaluate_model, format_results

    try:
        cfg = EvalConfig(
            model=args.model, dataset=args.dataset, split=args.split, data_path=args.data_path,
            max_problems=args.max_problems, n_samples=args.n_samples, temperature=args.temperature,
            top_p=args.top_p, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, chat=args.chat,
            ks=tuple(args.ks), workers=args.workers, test_timeout_s=args.timeout, device=args.device,
            seed=args.seed, output_dir=args.output_dir or f"eval-{args.dataset}",
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = evaluate_model(cfg, progress=not args.quiet)
    print(format_results(results))
    print(f"results: {Path(cfg.output_dir) / 'results.json'}; samples: {Path(cfg.output_dir) / 'samples.jsonl'}", file=sys.stderr)
    return 0


class _HelpWithDefaults(argparse.HelpFormatter):
    """Shows ``(default: X)`` after each option's help, unless the help already says its default or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)) or not action.option_strings:
            return text
        value = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else action.default
        return f"{text} (default: {value})".strip()


def _eval_help(name: str) -> str:
    """The help of an ``evaluate`` flag: the matching :class:`EvalConfig` field's (one source for both)."""
    from trl_codefeedback.evaluation import EvalConfig

    return EvalConfig.__dataclass_fields__[name].metadata["help"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trl-codefeedback", description="Execution feedback for training code LLMs with TRL.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help=f"on an error, show the traceback instead of one line (also: {DEBUG_ENV}=1)")
    fmt = {"formatter_class": _HelpWithDefaults, "parents": [common]}
    ex = sub.add_parser("execute", help="run programs from a JSONL file in the sandbox and write their Feedback", **fmt)
    ex.add_argument("input", nargs="?", help="input JSONL: one {language, code, tests} object per line")
    ex.add_argument("-o", "--output", help="output JSONL (input fields + Feedback fields)")
    ex.add_argument("--examples", action="store_true", help="run the bundled examples instead of INPUT")
    ex.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    ex.add_argument("--timeout", type=float, default=3.0, help="time limit per test, seconds")
    ex.add_argument("--program-timeout", type=float, default=10.0, help="time limit per program, seconds")
    ex.add_argument("--memory-mb", type=int, default=1024, help="memory limit per program, MiB")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(func=cmd_execute)
    from trl_codefeedback.evaluation import BENCHMARKS

    ev = sub.add_parser("evaluate", help="generate with a model (or LoRA adapter) on a benchmark, execute, report pass@k", **fmt)
    ev.add_argument("--model", required=True, help=_eval_help("model"))
    ev.add_argument("--dataset", required=True, choices=BENCHMARKS, help="benchmark")
    ev.add_argument("--split", default=None, help=_eval_help("split"))
    ev.add_argument("--data-path", default=None, help=_eval_help("data_path"))
    ev.add_argument("--max-problems", type=int, default=None, help=_eval_help("max_problems") + " (default: all)")
    ev.add_argument("--n-samples", type=int, default=1, help=_eval_help("n_samples"))
    ev.add_argument("--temperature", type=float, default=0.0, help=_eval_help("temperature"))
    ev.add_argument("--top-p", type=float, default=0.95, help=_eval_help("top_p"))
    ev.add_argument("--max-new-tokens", type=int, default=512, help=_eval_help("max_new_tokens"))
    ev.add_argument("--batch-size", type=int, default=8, help=_eval_help("batch_size"))
    ev.add_argument("--chat", action="store_true", help=_eval_help("chat"))
    ev.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100], help=_eval_help("ks"))
    ev.add_argument("--workers", type=int, default=None, help=_eval_help("workers"))
    ev.add_argument("--timeout", type=float, default=3.0, help=_eval_help("test_timeout_s") + ", seconds")
    ev.add_argument("--device", default=None, help=_eval_help("device"))
    ev.add_argument("--seed", type=int, default=0, help=_eval_help("seed"))
    ev.add_argument("--output-dir", default=None, help=_eval_help("output_dir") + " (default: eval-DATASET)")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_evaluate)
    demo = sub.add_parser("demo", help="train a tiny model with unit-test feedback on CPU and show held-out pass@1 before/after", **fmt)
    demo.add_argument("--seed", type=int, default=None, help="seed (default: 0)")
    demo.add_argument("--output-dir", default=None, help="where the model, summary.json and reward_curve.png go (default: a new temporary folder, printed)")
    demo.add_argument("--sft-steps", type=int, default=None, help="SFT warm-up steps (default: DemoConfig.sft_steps, 400)")
    demo.add_argument("--rl-steps", type=int, default=None, help="RL steps (default: DemoConfig.rl_steps, 120)")
    demo.set_defaults(func=cmd_demo)
    info = sub.add_parser("sandbox-info", help="print what the sandbox guarantees on this host", **fmt)
    info.add_argument("--json", action="store_true", help="also print the isolation facts as JSON")
    info.set_defaults(func=cmd_sandbox_info)
    tiny = sub.add_parser("tiny-model", help="build a tiny random causal LM + tokenizer locally, for smoke runs on a laptop", **fmt)
    tiny.add_argument("output_dir", help="folder to write the model and tokenizer to")
    tiny.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    tiny.set_defaults(func=cmd_tiny_model)
    return parser


def user_error(e: BaseException) -> tuple[int, str] | None:
    """``(exit status, message)`` for an error of the user's set-up or input, ``None`` for anything else (a bug).

    Status 1: this host cannot run the programs (the sandbox refuses it, no JDK). Status 2: the
    input (a data file or folder, a test spec, a language, an input row).
    """
    from trl_codefeedback.data import DataLoadError
    from trl_codefeedback.execution.program import UnknownLanguageError
    from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError
    from trl_codefeedback.execution.specs import TestSpecError
    from trl_codefeedback.feedback.base import configuration_error_message

    if isinstance(e, SandboxUnavailableError) or type(e).__name__ == "JavaUnavailableError":
        return 1, configuration_error_message(e) or str(e)
    if isinstance(e, (DataLoadError, TestSpecError, UnknownLanguageError, InputError)):
        return 2, str(e)
    if isinstance(e, FileNotFoundError):
        return 2, str(e) if e.filename is None else f"no such file or folder: {e.filename}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    try:
        return args.func(args)
    except Exception as e:  # user errors get one paragraph, everything else its traceback
        known = None if debug else user_error(e)
        if known is None:
            raise
        status, message = known
        print(f"error: {message.strip()}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
