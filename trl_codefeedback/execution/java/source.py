"""The compilation unit a candidate JVM compiles: the program, then the test class (or its probe).

javac ends a line at ``\\n``, ``\\r\\n`` or a lone ``\\r``. The program is normalised to ``\\n``
first (:func:`normalize_newlines`), so every check that counts lines (which lines are the
program's, the shadowing check, error lines, the file name) sees the lines javac sees, and
``error_line`` counts lines as javac does. Only raw line terminators are touched: a Java string
literal cannot hold one, and a text block turns each into ``\\n`` anyway, so the program means
the same.

Example:
    >>> build_java_source("public class Add {}", "class Main {}")
    ('public class Add {}\\nclass Main {}', 1, 'Add')
    >>> build_java_source("class A {}\\rpublic class B {}\\r", None)
    ('class A {}\\npublic class B {}\\n', 2, 'B')
"""

from __future__ import annotations

import re

_PUBLIC_TYPE_RE = re.compile(r"^public\s+(?:(?:final|abstract|sealed|strictfp)\s+)*(?:class|interface|enum|record)\s+([A-Za-z_$][\w$]*)", re.M)


def normalize_newlines(text: str) -> str:
    """``\\r\\n`` and lone ``\\r`` (javac's other line terminators) as ``\\n``; nothing else changes."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def build_java_source(code: str, test: str | None) -> tuple[str, int, str]:
    """(source, candidate line count, file name). The file is named after the program's public type, else ``Main``."""
    code = normalize_newlines(code)
    if code and not code.endswith("\n"):
        code += "\n"
    lines = code.count("\n")
    m = _PUBLIC_TYPE_RE.search(code)
    return code + (test or ""), lines, (m.group(1) if m else "Main")
