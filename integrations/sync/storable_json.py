"""JSON the way PostgreSQL stores it: what ``jsonb`` and ``text`` columns refuse is refused
here first, so that a refusal can still be stored and answered 4xx, never a 500.

Python's parser accepts more than ``jsonb`` does: NaN and Infinity, numbers too large for
a float, ``\\u0000`` and unpaired surrogates in strings, and nesting deep enough to
exhaust the stack.
"""

import json
import math
import re

# NUL, which no PostgreSQL text holds, and unpaired UTF-16 surrogates (paired ones are
# decoded by the parser into one character and never reach a string).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class NotStorable(ValueError):
    """The text is not JSON that PostgreSQL can store; the message says why (no values)."""


def json_parse(text: str):
    """``text`` parsed as JSON that a ``jsonb`` column takes; raises ``NotStorable``."""
    try:
        if text.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        data = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise NotStorable(f"Body is not valid JSON: {error}.") from error
    except RecursionError as error:
        raise NotStorable("Body is not valid JSON: it is nested too deeply.") from error
    except ValueError as error:  # a constant, an infinite float, a number too long
        raise NotStorable(f"Body is not valid JSON: {error}") from error
    # Such a character in a parsed string came from the text itself, or from a \u escape
    # (JSON refuses control characters unescaped): text with neither needs no walk.
    if (_UNSTORABLE.search(text) or "\\u" in text) and _holds_unstorable(data):
        raise NotStorable(
            "Body is not valid JSON here: a string holds \\u0000 or an unpaired surrogate, "
            "which cannot be stored."
        )
    return data


def text_storable(text: str) -> str:
    """``text`` without the characters a PostgreSQL text column refuses."""
    return _UNSTORABLE.sub("", text)


def _constant_refuse(name: str):
    raise ValueError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("a number is too large to store.")
    return number


# One decoder for every body: json.loads with these hooks would build a new one each time.
_DECODER = json.JSONDecoder(parse_constant=_constant_refuse, parse_float=_finite_float)


def _holds_unstorable(data) -> bool:
    # Iterative: the parser already bounded the depth, but no need to spend the stack.
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False
