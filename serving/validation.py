"""Edge checks on untrusted strings and JSON: no lone surrogates or control characters, bounded metadata.

Everything a client sends is checked here before it reaches the scorer, the outbox (SQLite cannot store a lone
surrogate) or a log line. Messages name the position and code point, never echo the value.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Metadata is passed through to reviewers: small, shallow, JSON.
METADATA_MAX_BYTES = 8 * 1024
METADATA_MAX_DEPTH = 4
METADATA_MAX_KEYS = 64
# A Label Studio body (/ml/*, webhook) may nest deeper but not without end.
JSON_MAX_DEPTH = 16

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls except tab, newline, carriage return; DEL; C1 controls.
_CONTROL_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# In ids and keys no control character at all (a newline in an id could forge a log line).
_CONTROL_ANY = re.compile("[\x00-\x1f\x7f-\x9f]")
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def problem(value: str, allow_newlines: bool = True) -> str | None:
    """What is wrong with a string (lone surrogate, control character), or None; the value is never echoed."""
    m = _SURROGATE.search(value)
    if m:
        return f"contains a lone surrogate U+{ord(m.group()):04X} at position {m.start()} (not valid Unicode)"
    m = (_CONTROL_TEXT if allow_newlines else _CONTROL_ANY).search(value)
    if m:
        return f"contains the control character U+{ord(m.group()):04X} at position {m.start()}"
    return None


def surrogate_problem(value: str) -> str | None:
    """A lone surrogate's position and code point (the one thing no text may hold), or None."""
    m = _SURROGATE.search(value)
    if m is None:
        return None
    return f"contains a lone surrogate U+{ord(m.group()):04X} at position {m.start()} (not valid Unicode)"


def printable(value: str) -> str:
    """`value` with lone surrogates and control characters escaped (\\uXXXX), safe for a log line or a JSON body."""
    return _BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def check_text(value: str) -> str:
    """A ticket text: valid Unicode (a lone surrogate is refused); control characters other than tab and newlines,
    common in real exports (form feeds, C1 mojibake), become spaces, as the model would read them anyway."""
    reason = surrogate_problem(value)
    if reason:
        raise ValueError(reason)
    return _CONTROL_TEXT.sub(" ", value)


def check_id(value: str) -> str:
    """An id or key: Unicode without any control character."""
    reason = problem(value, allow_newlines=False)
    if reason:
        raise ValueError(reason)
    return value


def json_problem(value: Any, max_depth: int = JSON_MAX_DEPTH, path: str = "") -> str | None:
    """The first lone surrogate (in a key or a value) or over-deep nesting in a JSON value, as 'path: reason'.

    Control characters are allowed in free-form JSON (stored as JSON, never logged); a lone surrogate is not,
    since it cannot be encoded as UTF-8 (SQLite, a response body).
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > max_depth:
            return f"{where or 'body'}: nested deeper than {max_depth} levels"
        if isinstance(node, str):
            m = _SURROGATE.search(node)
            if m:
                return f"{where or 'body'}: {problem(node)}"
        elif isinstance(node, dict):
            for k, v in node.items():
                key = str(k)
                if _SURROGATE.search(key):
                    return f"{where or 'body'}: a key {problem(key)}"
                stack.append((v, f"{where}.{printable(key)[:64]}" if where else printable(key)[:64], depth + 1))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))
    return None


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Ticket metadata: at most METADATA_MAX_KEYS keys, METADATA_MAX_DEPTH levels, METADATA_MAX_BYTES as JSON."""
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"has {len(value)} keys, over the limit of {METADATA_MAX_KEYS}")
    reason = json_problem(value, METADATA_MAX_DEPTH)
    if reason:
        raise ValueError(reason)
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False, default=str).encode())
    except ValueError:
        raise ValueError("contains NaN or an infinite number (not JSON)") from None
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"is {size:,} bytes as JSON, over the limit of {METADATA_MAX_BYTES:,}")
    return value
