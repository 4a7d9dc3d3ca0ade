"""The scratch folder of programs confined by Landlock: the only place they may write (stdlib only).

Without a mount namespace there is no private tmpfs to bound what a program writes, so the
zygote makes one folder in the host's temporary directory; programs run in it one at a time and
may create files there but no folders (the Landlock rule grants no ``MAKE_DIR``), so it stays
flat: :func:`over_quota` reads it in one listing while a program runs (a program over the quota,
or over :data:`MAX_ENTRIES` files, is stopped as over a resource limit), and :func:`empty`
clears it after each program. The executor removes the folder when it stops the worker
(:func:`remove`).

Example::

    path = create(-1)                 # /tmp/tcf-job-scratch-abc123, mode 0700
    over_quota(path, 512 << 20)       # False
    empty(path); remove(path)
"""

from __future__ import annotations

import os
import shutil
import tempfile

PREFIX = "tcf-job-scratch-"
MAX_ENTRIES = 10_000


def create(uid: int) -> str:
    """A fresh private folder in the temporary directory, owned by ``uid`` when > 0."""
    path = tempfile.mkdtemp(prefix=PREFIX)
    if uid > 0:
        os.chown(path, uid, uid)
    return os.path.realpath(path)


def over_quota(path: str, quota_bytes: int) -> bool:
    """Whether the folder's files take more than ``quota_bytes`` (allocated blocks) or number more
    than :data:`MAX_ENTRIES`."""
    used, seen = 0, set()
    try:
        with os.scandir(path) as it:
            for n, entry in enumerate(it, 1):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_ino not in seen:  # hard links share their blocks
                    seen.add(st.st_ino)
                    used += st.st_blocks * 512
                if used > quota_bytes or n > MAX_ENTRIES:
                    return True
    except OSError:
        return False
    return False


def empty(path: str) -> None:
    """Remove everything in the folder."""
    for name in os.listdir(path):
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):  # none can be made; for safety
            shutil.rmtree(target, ignore_errors=True)
        else:
            try:
                os.unlink(target)
            except OSError:
                pass


def remove(path: str | None) -> None:
    """Remove the folder itself (the executor, once the worker is gone)."""
    if path and os.path.basename(path).startswith(PREFIX) and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
