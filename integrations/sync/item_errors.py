"""Why posted items do not fit their flow's schema, per item and field, without the values.

The intake answers RDESK with these errors and stores them as the rejected event's
reason. Neither may carry what RDESK sent: a bad value can be a name, a phone or a
birthday, and last_error is shown in the admin, exported and kept for months. DRF's
messages are kept where they name only the field's rules; a message built from the sent
value (``"{input}" is not a valid status``) is rewritten from its template without it.
"""

import re
from functools import cache

from rest_framework import serializers
from rest_framework.settings import api_settings

# A message template that quotes the sent value; the value-free wording replaces it.
_QUOTED_INPUT = re.compile(r'^"?\{input\}"?\s+is\s+not\s+')
_GOT_INPUT = re.compile(r"[;,]\s*got\s+\{input\}")
_UNKNOWN_VALUE = "Not a valid value."
NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


def item_errors(schema: type[serializers.Serializer], errors) -> dict[str, list[str]]:
    """DRF's ``serializer.errors`` for one item as ``{"field.path": [message, ...]}``.

    List indexes are path parts (``billData.0.billSum``); an object's own errors take its
    path (the item's own: ``non_field_errors``). Messages never contain the sent values.
    """
    flat: dict[str, list[str]] = {}
    for path, detail in _flatten(errors, ()):
        key = ".".join(path) or NON_FIELD
        flat.setdefault(key, []).append(_value_free(schema, path, detail))
    return flat


def _flatten(errors, path: tuple[str, ...]):
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = path if key == NON_FIELD else (*path, str(key))
            yield from _flatten(value, inner)
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            if isinstance(value, dict | list):
                # A list serializer reports one entry per item, {} for the valid ones.
                yield from _flatten(value, (*path, str(index)))
            else:
                yield path, value
    else:
        yield path, errors


def _value_free(schema, path: tuple[str, ...], detail) -> str:
    code = getattr(detail, "code", None)
    field = _field_at(_unbound(schema), path)
    template = getattr(field, "error_messages", {}).get(code) if field is not None else None
    if template is None:
        # Not one of the field's own messages (a validate() of the schema's): those name
        # rules, never values, in this project's schemas.
        return _sentence(str(detail)) if field is not None else _UNKNOWN_VALUE
    template = str(template)
    if "{input}" not in template:
        return _sentence(str(detail))
    text = _GOT_INPUT.sub("", _QUOTED_INPUT.sub("Not ", template))
    return _UNKNOWN_VALUE if "{" in text else _sentence(text)


@cache
def _unbound(schema: type[serializers.Serializer]) -> serializers.Serializer:
    # Read-only use (field lookup and error templates), so one instance serves all threads.
    return schema()


def _field_at(field, path: tuple[str, ...]):
    """The serializer field a path of ``serializer.errors`` names, or None."""
    for part in path:
        if isinstance(field, serializers.ListSerializer | serializers.ListField):
            if not part.isdigit():
                return None
            field = field.child
        elif isinstance(field, serializers.Serializer):
            field = field.fields.get(part)
            if field is None:
                return None
        else:
            return None
    return field


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def errors_summary(invalid: list[dict], *, limit: int = 20) -> str:
    """The invalid items' errors in one line each, for the stored reason: at most ``limit``."""
    lines = []
    for entry in invalid[:limit]:
        fields = " ".join(
            f"{path}: {' '.join(messages)}" for path, messages in entry["errors"].items()
        )
        lines.append(f"Item {entry['index']}: {fields}")
    if len(invalid) > limit:
        lines.append(f"... and {len(invalid) - limit} more invalid items.")
    return "\n".join(lines)
