"""The lean walk gives DRF's validated data or gives up, never a result DRF would not give.

Checked over every fixture variant, over random payloads, and over serializers that
customise DRF's validation in the ways the walk must respect or hand back to DRF.
"""

import copy
import functools
from decimal import Decimal

import pytest
from django.http import QueryDict
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.fields import SkipField

from integrations.rdesk.lean_validation import Unsure, lean_validator
from integrations.rdesk.schemas import BookingSerializer, MedicalCentreSerializer
from tests.integrations.rdesk.payloads import REPLACEMENTS, kind_items, variants

SCHEMAS = {BookingSerializer: "booked", MedicalCentreSerializer: "mc"}


def _drf(schema, payload):
    serializer = schema(data=copy.deepcopy(payload))
    return serializer.validated_data if serializer.is_valid() else None


@functools.cache
def _reused(schema):
    return lean_validator(schema())


def _lean(schema, payload):
    try:
        return _reused(schema)(copy.deepcopy(payload))
    except Exception:  # any refusal sends the payload to DRF
        return Unsure


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
def test_every_fixture_variant_gets_drfs_data_or_goes_to_drf(schema):
    accepted = 0
    for item in kind_items(SCHEMAS[schema]):
        for variant in variants(item):
            lean = _lean(schema, variant)
            if lean is not Unsure:
                assert lean == _drf(schema, variant), variant
                accepted += 1
    assert accepted > 300


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
def test_every_fixture_drf_accepts_is_taken_by_the_lean_walk(schema):
    valid = [item for item in kind_items(SCHEMAS[schema]) if _drf(schema, item) is not None]

    assert valid
    assert [_lean(schema, item) for item in valid] == [_drf(schema, item) for item in valid]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([v for v in REPLACEMENTS if isinstance(v, str)] + ["2026-02-28", "7"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw, item):
    """``item`` with up to four values anywhere in it replaced by random JSON or removed."""
    item = copy.deepcopy(item)
    for _ in range(draw(st.integers(0, 4))):
        parent = item
        while True:
            keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            inner = parent[key]
            if isinstance(inner, dict | list) and inner and draw(st.booleans()):
                parent = inner
                continue
            if draw(st.integers(0, 3)) == 0:
                del parent[key]
            else:
                parent[key] = draw(json_values)
            break
    return item


@hypothesis_settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_payloads_get_drfs_data_or_go_to_drf(data):
    schema = data.draw(st.sampled_from(list(SCHEMAS)))
    item = data.draw(st.sampled_from(kind_items(SCHEMAS[schema])))
    payload = data.draw(mutated(item)) if isinstance(item, dict) else item

    lean = _lean(schema, payload)

    if lean is not Unsure:
        assert lean == _drf(schema, payload)


class _Tag(serializers.Serializer):
    code = serializers.CharField(max_length=3)
    weight = serializers.DecimalField(max_digits=4, decimal_places=1, min_value=Decimal(0))


class _Tags(serializers.ListSerializer):
    def validate(self, attrs):
        return attrs[::-1]  # any result of its own, to be seen in the data


class _Customised(serializers.Serializer):
    """Every way a serializer may take part in its own validation."""

    title = serializers.CharField(trim_whitespace=False)
    count = serializers.IntegerField(min_value=1)
    nick = serializers.CharField(source="alias", required=False)
    shown = serializers.CharField(read_only=True, default="never read")
    upper = serializers.CharField()
    tags = _Tag(many=True, required=False, max_length=2)
    ordered = serializers.ListSerializer(child=serializers.IntegerField(), required=False)
    reversed_tags = _Tags(child=_Tag(), required=False)

    def validate_upper(self, value):
        return value.upper()

    def validate(self, attrs):
        if attrs["count"] > 5:
            raise serializers.ValidationError("too many")
        return {**attrs, "checked": True}


CUSTOMISED_PAYLOADS = [
    {"title": "  spaced  ", "count": 2, "upper": "x"},
    {"title": "t", "count": 2, "upper": "x", "nick": "n", "shown": "sent anyway"},
    {"title": "t", "count": 0, "upper": "x"},
    {"title": "t", "count": 6, "upper": "x"},
    {"title": "t", "count": 2, "upper": "x", "tags": [{"code": "abcd", "weight": 1}]},
    {"title": "t", "count": 2, "upper": "x", "tags": [{"code": "ab", "weight": "12.25"}]},
    {"title": "t", "count": 2, "upper": "x", "tags": [{"code": "ab", "weight": "-1"}]},
    {"title": "t", "count": 2, "upper": "x", "tags": [{"code": "a", "weight": 1}] * 3},
    {"title": "t", "count": 2, "upper": "x", "tags": [{"code": "a", "weight": "2.5"}]},
    {"title": "t", "count": 2, "upper": "x", "ordered": [3, "4", 5.0]},
    {
        "title": "t",
        "count": 2,
        "upper": "x",
        "reversed_tags": [{"code": "a", "weight": 1}, {"code": "b", "weight": 2}],
    },
    {"title": "", "count": 2, "upper": "x"},
    {"title": "t", "count": True, "upper": "x"},
    {"title": "t", "count": 10**20, "upper": "x"},
]


@pytest.mark.parametrize("payload", CUSTOMISED_PAYLOADS)
def test_a_customised_serializer_gets_drfs_data_or_goes_to_drf(payload):
    lean = _lean(_Customised, payload)

    if lean is not Unsure:
        assert lean == _drf(_Customised, payload)
    else:
        assert _drf(_Customised, payload) is None or payload["count"] == 10**20


def test_a_customised_serializer_keeps_its_own_steps():
    payload = {
        "title": " t ",
        "count": 2,
        "upper": "x",
        "nick": "n",
        "shown": "sent anyway",
        "reversed_tags": [{"code": "a", "weight": 1}, {"code": "b", "weight": 2}],
    }

    lean = _lean(_Customised, payload)

    assert lean == _drf(_Customised, payload)
    assert lean["upper"] == "X"
    assert lean["alias"] == "n"
    assert lean["checked"] is True
    assert "shown" not in lean
    assert lean["title"] == " t "
    assert [tag["code"] for tag in lean["reversed_tags"]] == ["b", "a"]


def test_text_drf_refuses_is_never_taken():
    for text in ("a\x00b", "\ud800", "   "):
        assert _lean(_Tag, {"code": text, "weight": 1}) is Unsure


class _AtMostThree(serializers.IntegerField):
    def run_validators(self, value):
        if value > 3:
            raise serializers.ValidationError("more than three")
        super().run_validators(value)


class _Upper(serializers.CharField):
    def run_validators(self, value):
        if value != value.upper():
            raise serializers.ValidationError("not upper case")
        super().run_validators(value)


class _Skipping(serializers.Serializer):
    kept = serializers.CharField()
    dropped = serializers.CharField(required=False)

    def validate_dropped(self, value):
        raise SkipField()


class _Guarded(serializers.Serializer):
    small = _AtMostThree(required=False)
    upper = _Upper(required=False)
    inner = _Skipping(required=False)
    many = _Skipping(many=True, required=False)

    def run_validators(self, value):
        if value.get("small") == 2:
            raise serializers.ValidationError("two is refused by the serializer")
        super().run_validators(value)


class _Forgetful(serializers.Serializer):
    name = serializers.CharField()

    def validate(self, attrs):
        return None  # a bug DRF reports (an assertion), never a result


@pytest.mark.parametrize(
    "payload",
    [
        {"small": 5},
        {"small": 2},
        {"small": 1},
        {"upper": "abc"},
        {"upper": "ABC"},
        {"inner": {"kept": "k", "dropped": "d"}},
        {"many": [{"kept": "k", "dropped": "d"}]},
    ],
)
def test_validators_and_skips_of_a_serializers_own_are_kept(payload):
    lean, drf = _lean(_Guarded, payload), _drf(_Guarded, payload)

    assert lean == (Unsure if drf is None else drf)


def test_a_validate_that_returns_nothing_is_left_to_drf():
    assert _lean(_Forgetful, {"name": "n"}) is Unsure


def test_form_input_is_left_to_drf():
    form = QueryDict(
        "createdAt=2024-01-01T10:00:00&id=1&lead_id=2"
        "&treatments[0]item_id=5&treatments[0]status=x&treatments[0]action=y"
    )

    assert _lean(MedicalCentreSerializer, form) is Unsure
