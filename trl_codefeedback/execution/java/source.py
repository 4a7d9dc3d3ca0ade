"""The compilation unit a candidate JVM compiles: the program, then the test class (or its probe).

Example:
    >>> build_java_source("public class Add {}", "class Main {}")
    ('public class Add {}\\nclass Main {}', 1, 'Add')
"""

from __future__ import annotations

import re

_PUBLIC_TYPE_RE = re.compile(r"^public\s+(?:(?:final|abstract|sealed|strictfp)\s+)*(?:class|interface|enum|record)\s+([A-Za-z_$][\w$]*)", re.M)


def build_java_source(code: str, test: str | None) -> tuple[str, int, str]:
    """(source, candidate line count, file name). The file is named after the program's public type, else ``Main``."""
    if code and not code.endswith("\n"):
        code += "\n"
    lines = code.count("\n")
    m = _PUBLIC_TYPE_RE.search(code)
    return code + (test or ""), lines, (m.group(1) if m else "Main")
