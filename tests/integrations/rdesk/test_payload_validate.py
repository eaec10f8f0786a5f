"""``payload_validate`` (a reused serializer) gives exactly what a fresh DRF serializer gives.

Checked over every fixture item and, for each, over variants where one value at a time
(nested ones included) is left out, null, blank, of the wrong type or malformed: the
validated data is equal, and a refused payload reads the same errors.
"""

import copy
import threading

import pytest

from integrations.rdesk.schemas import (
    BookingSerializer,
    MedicalCentreSerializer,
    PayloadInvalid,
    errors_describe,
    payload_validate,
)
from tests.integrations.rdesk.payloads import kind_items, variants

SCHEMAS = (BookingSerializer, MedicalCentreSerializer)
KIND_OF = {BookingSerializer: "booked", MedicalCentreSerializer: "mc"}


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
    for item in kind_items(KIND_OF[schema]):
        for variant in variants(item):
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
    good = kind_items(KIND_OF[schema])[0]
    expected = _fresh(schema, copy.deepcopy(good))
    with pytest.raises(PayloadInvalid):
        payload_validate(schema, {**good, "lead_id": "abc"})
    assert _reused(schema, copy.deepcopy(good)) == expected


def test_threads_validate_side_by_side():
    expected = [
        (_fresh(schema, copy.deepcopy(item)), schema, item)
        for schema in SCHEMAS
        for item in kind_items(KIND_OF[schema])
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
