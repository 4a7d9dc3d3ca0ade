"""Executor throughput by isolation mode: namespaces (root) vs Landlock (default Docker; non-root without user namespaces).

Runs the mixed HumanEval workload (canonical solutions plus four broken variants, 820 programs)
through ``Executor(workers=2)`` in a child process per mode, the modes interleaved over
``--repeats`` rounds, and prints programs/s per mode (median and range) and whether every mode's
verdicts equal the namespace mode's. The modes are built as the containment tests build them
(``tests/execution/containment_probe.py``): ``landlock_root`` is root without CAP_SYS_ADMIN and
with user namespaces blocked by seccomp (Docker's default); ``landlock_user`` is a non-root user
with user namespaces blocked. Needs root.

    sudo python benchmarks/bench_landlock.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "execution"))

import containment_probe  # noqa: E402
from humaneval_workload import workload  # noqa: E402

MODES = {"namespaces": "root", "landlock_root": "docker_default", "landlock_user": "user_no_userns"}
CHILD = r"""
import json, sys, time
from trl_codefeedback.execution import Executor, Program
specs = json.load(open(sys.argv[1]))
programs = [Program(code=s["code"], tests=s["tests"]) for s in specs]
with Executor(workers=2, cache_size=0) as ex:
    mode = ex.isolation.get("mode")
    ex.run(programs[:40])  # warm-up
    t0 = time.perf_counter()
    fbs = ex.run(programs)
    elapsed = time.perf_counter() - t0
print(json.dumps({"mode": mode, "rate": len(programs) / elapsed, "statuses": [f.status.value for f in fbs]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the modes are built with setpriv and seccomp (see the docstring)")
    specs = [{"code": p["prompt"] + c, "tests": {"kind": "check", "test": p["test"], "entry_point": p["entry_point"], "prelude": p["prompt"]}}
             for _, _, p, c in workload()]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(specs, f)
    os.chmod(f.name, 0o644)  # the non-root mode reads it
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    statuses: dict[str, list] = {}
    try:
        for _ in range(args.repeats):
            for name, mode in MODES.items():
                prefix, env = containment_probe.mode_command(mode)
                proc = subprocess.run([*prefix, "-c", CHILD, f.name], env=env, capture_output=True, text=True, cwd="/", timeout=900)
                if proc.returncode != 0:
                    sys.exit(f"{name} failed: {proc.stderr[-2000:]}")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                rates[name].append(out["rate"])
                statuses[name] = out["statuses"]
                print(f"  {name:14s} (mode {out['mode']}): {out['rate']:.1f} programs/s", flush=True)
    finally:
        os.unlink(f.name)
    print(f"{len(specs)} programs (HumanEval canonical + 4 broken variants), Executor(workers=2), {args.repeats} rounds:")
    for name, values in rates.items():
        agree = sum(a == b for a, b in zip(statuses[name], statuses["namespaces"]))
        print(f"{name:14s} median {statistics.median(values):6.1f} programs/s (range {min(values):.1f}-{max(values):.1f}); "
              f"verdicts equal to the namespace mode's: {agree}/{len(specs)}")


if __name__ == "__main__":
    main()
