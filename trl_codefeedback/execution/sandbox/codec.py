"""Plain, type-tagged data between the candidate's process and the trusted side.

The candidate side turns a value into JSON-ready data with :func:`encode`; the trusted side
turns it back into *fresh* objects of exact built-in types with :func:`decode`. Whatever the
candidate sends, the trusted side only ever holds ``None``, ``bool``, ``int``, ``float``,
``complex``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset`` built by
itself, so comparisons in the test code keep their ordinary meaning (no lying ``__eq__``).

Every JSON array is tagged by its first element:

| tag | value |
|---|---|
| ``["l", ...]`` / ``["t", ...]`` / ``["s", ...]`` / ``["fs", ...]`` | list / tuple / set / frozenset |
| ``["d", k1, v1, ...]`` | dict |
| ``["i", "<hex>"]`` | an int too large for a plain JSON number |
| ``["f", "nan" / "inf" / "-inf"]`` | a float that JSON cannot spell |
| ``["c", real, imag]`` | complex |
| ``["b", "<base64>"]`` | bytes |
| ``["ty", name]`` | a built-in type (MBPP 533 passes ``int``) |
| ``["r", id, type name, truth]`` | a non-plain object left in the candidate's process (a handle); ``truth`` is its ``bool()`` |
| ``["n", name]`` | a global name of the candidate's program (trusted side -> candidate) |

Example:
    >>> decode(encode({1: [2.5, (3, "x")], "k": {b"z"}}))
    {1: [2.5, (3, 'x')], 'k': {b'z'}}
    >>> decode(["s", ["l", 1]])
    Traceback (most recent call last):
    ...
    codec.DecodeError: set element is not hashable: list
"""

from __future__ import annotations

import base64
import collections
import math

MAX_DEPTH = 100
# Distinct elements of one set or dict sharing a hash value. Plain data never comes near it (two ints
# share a hash only when they differ by a multiple of 2**61 - 1); a sender that collides on purpose
# would make building the set quadratic on the trusted side, where no clock of the program runs.
MAX_SAME_HASH = 32
_SMALL_INT = 1 << 62
# Subclasses from the standard library that compare like the plain type they extend.
_DICT_LIKE = (collections.OrderedDict, collections.defaultdict, collections.Counter)
_CONTAINER_TAGS = {"l": list, "t": tuple, "s": set, "fs": frozenset}
_TYPES = {t.__name__: t for t in (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)}


class NotPlain(TypeError):
    """The value holds something that is not plain data (and no handle table was given)."""


class DecodeError(ValueError):
    """The data does not follow the encoding (a broken or hostile sender)."""


DecodeError.__module__ = NotPlain.__module__ = "codec"


def encode(value, ref_of=None, depth: int = 0):
    """JSON-ready data for ``value``; non-plain parts become handles via ``ref_of(obj) -> id``.

    Without ``ref_of`` a non-plain part raises :class:`NotPlain`. Only exact built-in types
    (and dict subclasses of the standard library) count as plain: a subclass of ``int`` or
    ``list`` defined by the program is a handle, never its base value.
    """
    if depth > MAX_DEPTH:
        raise NotPlain("value is nested too deeply (or contains itself)")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -_SMALL_INT < value < _SMALL_INT else ["i", format(value, "x")]
    if t is float:
        return value if math.isfinite(value) else ["f", repr(value)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = "l" if t is list else "t" if t is tuple else "s" if t is set else "fs"
        return [tag, *[encode(v, ref_of, depth + 1) for v in value]]
    if t is dict or t in _DICT_LIKE:
        out = ["d"]
        for k, v in dict.items(value):
            out.append(encode(k, ref_of, depth + 1))
            out.append(encode(v, ref_of, depth + 1))
        return out
    if t is complex:
        return ["c", encode(value.real), encode(value.imag)]
    if t is bytes:
        return ["b", base64.b64encode(value).decode("ascii")]
    if t is type and _TYPES.get(getattr(value, "__name__", None)) is value:
        return ["ty", value.__name__]
    if ref_of is None:
        raise NotPlain(f"{t.__name__} is not plain data")
    try:
        truth = True if value else False  # sanitized MBPP 737 returns an re.Match that the test only truth-tests
    except Exception:  # noqa: BLE001 - a __bool__ that raises: no truth value
        truth = None
    return ["r", ref_of(value), t.__name__[:100], truth]


def decode(data, make_ref=None, depth: int = 0):
    """Fresh objects of exact built-in types from :func:`encode`'s output.

    ``make_ref(id)`` turns a handle into the receiver's stand-in; without it handles are an
    error. Raises :class:`DecodeError` on anything malformed.
    """
    if depth > MAX_DEPTH:
        raise DecodeError("value is nested too deeply")
    t = type(data)
    if data is None or t is bool or t is int or t is float or t is str:
        return data
    if t is not list or not data or type(data[0]) is not str:
        raise DecodeError(f"untagged {t.__name__}")
    tag, rest = data[0], data[1:]
    if tag in _CONTAINER_TAGS:
        items = [decode(v, make_ref, depth + 1) for v in rest]
        if tag in ("s", "fs"):
            # Built the way a set display of constants is (a frozenset, then a set of it), so
            # iteration order matches the sender's in the common case (MBXP 341 turns a set into a tuple).
            _refuse_hash_flooding(items, "set element")
            frozen = frozenset(items)
            return set(frozen) if tag == "s" else frozen
        return _CONTAINER_TAGS[tag](items)
    if tag == "d":
        if len(rest) % 2:
            raise DecodeError("dict with an odd number of items")
        keys = [decode(rest[i], make_ref, depth + 1) for i in range(0, len(rest), 2)]
        _refuse_hash_flooding(keys, "dict key")
        return {key: decode(rest[i + 1], make_ref, depth + 1) for key, i in zip(keys, range(0, len(rest), 2))}
    if tag == "i" and len(rest) == 1 and type(rest[0]) is str:
        try:
            return int(rest[0], 16)
        except ValueError:
            raise DecodeError("bad big int") from None
    if tag == "f" and rest in (["nan"], ["inf"], ["-inf"]):
        return float(rest[0])
    if tag == "c" and len(rest) == 2:
        re_, im = decode(rest[0]), decode(rest[1])
        if type(re_) is not float or type(im) is not float:
            raise DecodeError("complex parts must be floats")
        return complex(re_, im)
    if tag == "b" and len(rest) == 1 and type(rest[0]) is str:
        try:
            return base64.b64decode(rest[0], validate=True)
        except ValueError:
            raise DecodeError("bad base64") from None
    if tag == "ty" and len(rest) == 1 and type(rest[0]) is str and rest[0] in _TYPES:
        return _TYPES[rest[0]]
    if tag in ("r", "n") and make_ref is not None and 1 <= len(rest) <= 3 and type(rest[0]) in (int, str):
        type_name = str(rest[1])[:100] if len(rest) >= 2 else None
        truth = rest[2] if len(rest) == 3 and type(rest[2]) is bool else None
        return make_ref(tag, rest[0], type_name, truth)
    raise DecodeError(f"unknown or malformed tag {tag!r}")


def _refuse_hash_flooding(items: list, what: str) -> None:
    """DecodeError unless every item is hashable and no hash value is shared by too many of them."""
    counts: dict[int, int] = {}
    for v in items:
        try:
            h = hash(v)
        except TypeError:
            raise DecodeError(f"{what} is not hashable: {type(v).__name__}") from None
        n = counts[h] = counts.get(h, 0) + 1
        if n > MAX_SAME_HASH:
            raise DecodeError(f"more than {MAX_SAME_HASH} {what}s share one hash value (a set or dict built to be slow)")
