"""Loads RDESK payload fixtures from ``tests/fixtures/rdesk/``, and variants of them."""

import copy
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rdesk"


def load_item(name: str) -> dict:
    """The single item of a fixture file (RDESK posts a JSON array of items)."""
    items = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert len(items) == 1, f"{name} should hold exactly one item"
    return items[0]


# What a variant puts in place of one value: null, blank, of the wrong type, malformed.
REPLACEMENTS = (None, "", "  ", "x", " x ", 0, -1, 1.5, True, [], {}, "2026-02-30", "12.0", "\x00")
_MISSING = object()


def kind_items(kind: str) -> list:
    """Every item of the fixtures of ``kind`` (named rdesk-booked*, booked*, ...) and of
    the malformed ones that belong to no kind (bad-*)."""
    items = []
    for path in sorted(FIXTURES.rglob("*.json")):
        name = path.name.removeprefix("rdesk-")
        if not name.startswith((kind, "bad-")):
            continue
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        items.extend(loaded if isinstance(loaded, list) else [loaded])
    return items


def variants(item):
    """``item``, then copies where one value at a time (nested ones included) is left out
    or replaced by each of ``REPLACEMENTS``."""
    yield item
    if not isinstance(item, dict):
        return
    for path in list(_paths(item)):
        *head, last = path
        for replacement in (_MISSING, *REPLACEMENTS):
            variant = copy.deepcopy(item)
            parent = variant
            for step in head:
                parent = parent[step]
            if replacement is _MISSING:
                if isinstance(parent, dict):
                    del parent[last]
                else:
                    parent.pop(last)
            else:
                parent[last] = replacement
            yield variant


def _paths(value, path=()):
    """Every key path and list index in a payload, nested ones included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key)
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*path, index)
            yield from _paths(inner, (*path, index))
