"""``payload_validate`` (a reused serializer) gives exactly what a fresh DRF serializer gives.

Checked over every fixture item and, for each, over variants where one value at a time
(nested ones included) is left out, null, blank, of the wrong type or malformed: the
validated data is equal, and a refused payload reads the same errors.
"""

import copy
import json
import threading
from pathlib import Path

import pytest

from integrations.rdesk.schemas import (
    BookingSerializer,
    MedicalCentreSerializer,
    PayloadInvalid,
    errors_describe,
    payload_validate,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rdesk"
SCHEMAS = (BookingSerializer, MedicalCentreSerializer)
# Each schema is checked over its own kind's fixtures (named rdesk-booked*, booked*, ...)
# and over the malformed ones that belong to no kind (bad-*).
KIND_OF = {BookingSerializer: "booked", MedicalCentreSerializer: "mc"}
REPLACEMENTS = (None, "", "  ", "x", 0, -1, 1.5, True, [], {}, "2026-02-30", "12.0", "\x00")


def _items(kind: str) -> list:
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


def _variants(item):
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


_MISSING = object()


def _fresh(schema, payload):
    serializer = schema(data=payload)
    if serializer.is_valid():
        return "valid", serializer.validated_data
    return "invalid", errors_describe(serializer.errors)


def _reused(schema, payload):
    try:
        return "valid", payload_validate(schema, payload)
    except PayloadInvalid as invalid:
        return "invalid", errors_describe(invalid.errors)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
def test_same_result_as_a_fresh_serializer_for_every_fixture_and_variant(schema):
    checked = 0
    for item in _items(KIND_OF[schema]):
        for variant in _variants(item):
            expected = _fresh(schema, copy.deepcopy(variant))
            assert _reused(schema, copy.deepcopy(variant)) == expected, variant
            checked += 1
    assert checked > 500


def test_errors_are_the_fresh_serializers_own():
    for payload in (None, [], "x", {}, {"lead_id": "abc"}):
        with pytest.raises(PayloadInvalid) as raised:
            payload_validate(BookingSerializer, payload)
        fresh = BookingSerializer(data=payload)
        assert not fresh.is_valid()
        assert raised.value.errors == fresh.errors
        assert str(raised.value) == errors_describe(fresh.errors)


def test_a_refused_payload_leaves_nothing_behind_for_the_next():
    schema = BookingSerializer
    good = _items(KIND_OF[schema])[0]
    expected = _fresh(schema, copy.deepcopy(good))
    with pytest.raises(PayloadInvalid):
        payload_validate(schema, {**good, "lead_id": "abc"})
    assert _reused(schema, copy.deepcopy(good)) == expected


def test_threads_validate_side_by_side():
    expected = [
        (_fresh(schema, copy.deepcopy(item)), schema, item)
        for schema in SCHEMAS
        for item in _items(KIND_OF[schema])
        if isinstance(item, dict)
    ]
    failures = []

    def run():
        for _ in range(20):
            for result, schema, item in expected:
                if _reused(schema, copy.deepcopy(item)) != result:
                    failures.append(item)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
