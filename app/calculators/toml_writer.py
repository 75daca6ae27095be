"""A small TOML writer for calculator definitions (the editor's raw view).

It writes what ``msgspec.to_builtins`` gives for a ``CalculatorDef``: top-level scalars first,
then each top-level table as ``[name]`` and each list of tables as ``[[name]]``; anything deeper
(options, table rows) is written inline. ``tomllib`` reads the result back to the same data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_LINE = 90  # arrays longer than this are written one item per line
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def dumps(data: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for key, value in data.items():
        if not _is_table(value) and not _is_table_list(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        if _is_table(value):
            lines += ["", f"[{_key(key)}]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in value.items()]
        elif _is_table_list(value):
            for item in value:
                lines += ["", f"[[{_key(key)}]]"]
                lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items()]
    return "\n".join(lines).strip() + "\n"


def _is_table(value: object) -> bool:
    return isinstance(value, dict)


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # Decoding into the Structs turns 90 back into 90.0; people read 90 better.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        items = [_value(v) for v in value]
        inline = "[" + ", ".join(items) + "]"
        if any(isinstance(v, list | dict) for v in value) or len(inline) > _LINE:
            return "[\n" + "".join(f"  {item},\n" for item in items) + "]"
        return inline
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
