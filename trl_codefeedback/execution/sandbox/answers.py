"""The shape of a program's answers, checked where they enter the trusted side.

Everything the program's process writes on its channel is hostile until checked: an answer is
one JSON object whose fields have the shapes :mod:`candidate` sends, or it is a protocol error
(the program's outcome). The oracle then only ever sees well-formed fields, so nothing the
program writes can make the trusted code itself fail (which would be a ``harness_error``).

| field | shape |
|---|---|
| ``ok`` | any JSON value (decoded by :mod:`codec`, or checked by the request that asked for it) |
| ``exc``, ``compile_error`` | ``{"type": str, "msg": str, "line": int or null}`` |
| ``compiled`` | ``true`` |
| ``args`` | a list (the mutated arguments, each decoded by :mod:`codec`) |
| ``covered`` | a list of ints |

Example:
    >>> well_formed({"exc": {"type": "ValueError", "msg": "boom", "line": 3}})
    {'exc': {'type': 'ValueError', 'msg': 'boom', 'line': 3}}
    >>> well_formed({"exc": {"type": "SyntaxError", "msg": 5, "line": None}}) is None
    True
"""

from __future__ import annotations

TYPE_NAME_LIMIT = 100
MESSAGE_LIMIT = 1000


def error_info(value) -> dict | None:
    """``{"type", "msg", "line"}`` with exact types, or None when ``value`` is not one."""
    if type(value) is not dict:
        return None
    name, msg, line = value.get("type"), value.get("msg", ""), value.get("line")
    if type(name) is not str or type(msg) is not str or not (line is None or type(line) is int):
        return None
    return {"type": name[:TYPE_NAME_LIMIT], "msg": msg[:MESSAGE_LIMIT], "line": line}


def _covered(value) -> list | None:
    return value if type(value) is list and all(type(x) is int for x in value) else None


def well_formed(answer) -> dict | None:
    """The answer with every field checked (and messages truncated), or None if anything is off."""
    if type(answer) is not dict or not answer:
        return None
    out = {}
    for key, value in answer.items():
        if key in ("exc", "compile_error"):
            value = error_info(value)
        elif key == "compiled":
            value = True if value is True else None
        elif key == "args":
            value = value if type(value) is list else None
        elif key == "covered":
            value = _covered(value)
        elif key != "ok":
            return None
        if value is None and key != "ok":
            return None
        out[key] = value
    return out


def names(value) -> list[str] | None:
    """The answer to a ``defined`` request: a list of names, or None when it is not one."""
    return value if type(value) is list and all(type(x) is str for x in value) else None
