"""A serializer's validation without DRF's plumbing, for the payloads DRF accepts.

Most of the time DRF takes over a valid payload goes to its machinery rather than to
checking values: it rebuilds the writable fields for every object, looks up a
``validate_<name>`` method per field, collects errors nobody raised, runs the empty
validator lists and checks text for surrogates one character at a time in Python. This
module walks the same bound fields and calls the same methods DRF calls, in DRF's
order, leaving out only steps that cannot change the result: a field with no validators,
a serializer whose ``validate`` is DRF's own. Text gets one shortcut, the same checks
done by a regular expression.

It never words an error: wherever DRF might refuse a value it gives up (``Unsure``, or
the error DRF raised), and the caller asks DRF itself. So every payload either gets the
validated data DRF gives it, or goes through DRF. A serializer or field that overrides
DRF's validation in a way this module does not know is simply handed to DRF's own
``run_validation``. Equivalence with DRF is tested over every fixture variant and over
random payloads (tests/integrations/rdesk/test_lean_validation.py).
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.fields import Field, SkipField, empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

# What DRF's text validators refuse: NUL and UTF-16 surrogates.
_REFUSED_IN_TEXT = re.compile("[\x00\ud800-\udfff]")
_TEXT_VALIDATORS = (ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)
# An int whose str() and int() round trip, as IntegerField's conversion makes it.
_INT_LIMIT = 10**18

Check = Callable[[Any], Any]


class Unsure(Exception):
    """The lean walk cannot say what DRF would give: ask DRF."""


def lean_validator(serializer: serializers.BaseSerializer) -> Check:
    """A function giving ``serializer.run_validation(data)`` for data DRF accepts.

    For anything else it raises (``Unsure``, ``ValidationError`` or whatever DRF would):
    the caller then runs DRF for the verdict and its errors.
    """
    return _check(serializer)


def _check(field: Field) -> Check:
    if isinstance(field, serializers.ListSerializer):
        return _list_check(field)
    if isinstance(field, serializers.Serializer):
        return _serializer_check(field)
    if _plain(field, serializers.CharField) and _only_text_validators(field):
        return _text_check(field)
    if _plain(field, serializers.IntegerField) and not field.validators:
        return _integer_check(field)
    if _plain(field, Field):
        return _leaf_check(field)
    return field.run_validation


def _plain(field: Field, base: type) -> bool:
    """``field`` validates as ``base`` does (empty values aside): the same entry point,
    conversion and running of validators."""
    kind = type(field)
    return (
        kind.run_validation is base.run_validation
        and (base is Field or kind.to_internal_value is base.to_internal_value)
        and kind.run_validators is Field.run_validators
    )


def _validators_run(node: Field, base: type):
    """``node.run_validators``, or None where it cannot refuse anything (DRF's own,
    with no validators)."""
    if node.validators or type(node).run_validators is not base.run_validators:
        return node.run_validators
    return None


def _only_text_validators(field: Field) -> bool:
    return all(isinstance(validator, _TEXT_VALIDATORS) for validator in field.validators)


def _serializer_check(serializer: serializers.Serializer) -> Check:
    kind = type(serializer)
    base = serializers.Serializer
    if (
        kind.run_validation is not base.run_validation
        or kind.to_internal_value is not base.to_internal_value
    ):
        return serializer.run_validation
    fields = []
    for field in serializer.fields.values():
        if field.read_only:
            continue  # not among DRF's writable fields
        if field.source_attrs != [field.field_name] or type(field).get_value not in (
            Field.get_value,
            base.get_value,
            serializers.ListSerializer.get_value,
        ):
            return serializer.run_validation
        method = getattr(serializer, f"validate_{field.field_name}", None)
        fields.append((field.field_name, _check(field), method))
    empty_values = serializer.validate_empty_values
    finish = _finishing(serializer, base, validators_base=base)

    def check(data):
        is_empty, data = empty_values(data)
        if is_empty:
            return data
        # Form input (a QueryDict) is read by DRF with keys of its own: DRF's to read.
        if not isinstance(data, Mapping) or hasattr(data, "getlist"):
            raise Unsure
        result = {}
        for name, field_check, method in fields:
            try:
                value = field_check(data.get(name, empty))
                if method is not None:
                    value = method(value)
            except SkipField:
                continue
            result[name] = value
        return result if finish is None else finish(result)

    return check


def _list_check(many: serializers.ListSerializer) -> Check:
    kind = type(many)
    base = serializers.ListSerializer
    if (
        kind.run_validation is not base.run_validation
        or kind.to_internal_value is not base.to_internal_value
        or kind.run_child_validation is not base.run_child_validation
    ):
        return many.run_validation
    child = _check(many.child)
    empty_values = many.validate_empty_values
    lowest = max(many.min_length or 0, 0 if many.allow_empty else 1)
    highest = many.max_length
    finish = _finishing(many, base, validators_base=Field)

    def check(data):
        is_empty, data = empty_values(data)
        if is_empty:
            return data
        if not isinstance(data, list) or len(data) < lowest:
            raise Unsure
        if highest is not None and len(data) > highest:
            raise Unsure
        result = [child(item) for item in data]
        return result if finish is None else finish(result)

    return check


def _finishing(node: Field, base: type, *, validators_base: type) -> Check | None:
    """What DRF's ``run_validation`` does to a (list) serializer's converted data: its
    validators, then its ``validate``; None where both are DRF's own and do nothing."""
    validators = _validators_run(node, validators_base)
    validate = node.validate if type(node).validate is not base.validate else None
    if validators is None and validate is None:
        return None

    def finish(result):
        if validators is not None:
            validators(result)
        if validate is None:
            return result
        validated = validate(result)
        if validated is None:
            raise Unsure  # DRF asserts that validate() returned the data
        return validated

    return finish


def _text_check(field: serializers.CharField) -> Check:
    # CharField.run_validation: blank first, then the empty values, str(), strip and the
    # NUL and surrogate validators, here one regular expression.
    trim, allow_blank = field.trim_whitespace, field.allow_blank
    empty_values, slow = field.validate_empty_values, field.run_validation

    def check(data):
        if type(data) is not str:
            return slow(data)
        if data == "" or (trim and not data.strip()):
            if not allow_blank:
                raise Unsure
            return ""
        is_empty, value = empty_values(data)
        if is_empty:
            return value
        if type(value) is not str:
            return slow(data)
        text = value.strip() if trim else value
        if _REFUSED_IN_TEXT.search(text):
            raise Unsure
        return text

    return check


def _integer_check(field: serializers.IntegerField) -> Check:
    empty_values, slow = field.validate_empty_values, field.run_validation

    def check(data):
        if type(data) is not int or not -_INT_LIMIT < data < _INT_LIMIT:
            return slow(data)
        is_empty, value = empty_values(data)
        if is_empty:
            return value
        if value is not data:
            return slow(data)
        return data  # IntegerField's int(str(data)) of a plain int

    return check


def _leaf_check(field: Field) -> Check:
    # Field.run_validation, without running an empty list of validators.
    empty_values, convert = field.validate_empty_values, field.to_internal_value
    validators = _validators_run(field, Field)

    def check(data):
        is_empty, value = empty_values(data)
        if is_empty:
            return value
        value = convert(value)
        if validators is not None:
            validators(value)
        return value

    return check
