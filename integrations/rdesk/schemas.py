"""What an RDESK webhook item must look like, as DRF serializers.

RDESK posts a JSON array; each item is validated on its own at delivery time with
``BookingSerializer`` (``/zdrav/booked``) or ``MedicalCentreSerializer`` (``/zdrav/mc``).
The validated data has one shape whatever RDESK left out: optional text is ``""``,
optional lists are ``[]``, optional dates and prices are ``None``. Transforms rely on
that and never guard against missing keys. Unknown keys are ignored.
"""

import re
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from integrations.rdesk.lean_validation import lean_validator

# RDESK is a Russian system: a time it sends without an offset is sanatorium time.
RDESK_TIME_ZONE = ZoneInfo("Europe/Moscow")

BOOKING_STATUSES = ("booked", "checkin", "checkout", "cancel", "waiting")


class LeadIdField(serializers.Field):
    """An AmoCRM lead id sent as a number or a string of digits; validates to an int."""

    default_error_messages = {"invalid": "Must be a positive integer; got {input}."}

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            number = data
        elif isinstance(data, str) and re.fullmatch(r"\s*\d+\s*", data):
            number = int(data)
        else:
            number = None
        if number is None or number <= 0:
            self.fail("invalid", input=_quote(data))
        return number

    def to_representation(self, value):
        return value


class OptionalTextField(serializers.CharField):
    """Free text RDESK may leave out, send blank or send as null: all become ``""``.

    Numbers are accepted and kept as text (RDESK sends document numbers either way).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", "")
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        is_empty, value = super().validate_empty_values(data)
        return is_empty, ("" if value is None else value)


class OptionalDateField(serializers.DateField):
    """A YYYY-MM-DD date RDESK may leave out or send blank or null: those become None."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", None)
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        if isinstance(value, str) and not value.strip():
            return None
        return super().to_internal_value(value)


class VisitDateField(serializers.Field):
    """A visit day (YYYY-MM-DD, gives a date) or moment (ISO 8601, gives an aware datetime).

    Missing, blank and null all give None.
    """

    default_error_messages = {
        "invalid": "Use a date (YYYY-MM-DD) or an ISO 8601 date and time; got {input}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", None)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", input=_quote(data))
        text = data.strip()
        if not text:
            return None
        try:
            day = parse_date(text)
            moment = None if day else parse_datetime(text)
        except ValueError:
            day = moment = None
        if day:
            return day
        if moment is None:
            self.fail("invalid", input=_quote(data))
        if timezone.is_naive(moment):
            return moment.replace(tzinfo=RDESK_TIME_ZONE)
        return moment.astimezone(RDESK_TIME_ZONE)

    def to_representation(self, value):
        return None if value is None else value.isoformat()


class OptionalListSerializer(serializers.ListSerializer):
    """A list RDESK may leave out or send as null: both become ``[]``."""

    def validate_empty_values(self, data):
        if data is empty or data is None:
            return True, []
        return super().validate_empty_values(data)


def _money(**kwargs) -> serializers.DecimalField:
    # No fixed precision: amounts are kept exactly as RDESK sent them.
    return serializers.DecimalField(max_digits=None, decimal_places=None, **kwargs)


def _optional_price() -> serializers.DecimalField:
    return _money(required=False, allow_null=True, default=None)


def _optional_flag() -> serializers.BooleanField:
    # None, not False, when absent: the summary then says nothing rather than "unpaid".
    return serializers.BooleanField(required=False, allow_null=True, default=None)


def _quote(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


# Booked flow: one booking and its bills.


class MoneySerializer(serializers.Serializer):
    total = _money(min_value=Decimal(0))
    paid = _money(min_value=Decimal(0))


class BillSerializer(serializers.Serializer):
    billNum = serializers.CharField(allow_blank=True)
    billSum = _money()
    billPaidSum = _money()

    class Meta:
        list_serializer_class = OptionalListSerializer


class GuestSerializer(serializers.Serializer):
    fio = serializers.CharField(allow_blank=True)
    birthday = OptionalDateField()
    stayCount = serializers.IntegerField(required=False, allow_null=True, default=None)
    roomCategory = OptionalTextField()
    ageGroup = OptionalTextField()
    cure = OptionalTextField()
    uid = OptionalTextField()
    billNum = OptionalTextField()

    class Meta:
        list_serializer_class = OptionalListSerializer


class ExtDataSerializer(serializers.Serializer):
    guests = GuestSerializer(many=True, required=False)

    def validate_empty_values(self, data):
        if data is empty or data is None:
            return True, {"guests": []}
        return super().validate_empty_values(data)


class BookingSerializer(serializers.Serializer):
    """One item of the ``/zdrav/booked`` webhook: a booking whose bills changed."""

    status = serializers.ChoiceField(
        choices=BOOKING_STATUSES,
        error_messages={
            "invalid_choice": (
                '"{input}" is not a valid status; expected one of: '
                + ", ".join(BOOKING_STATUSES)
                + "."
            ),
        },
    )
    bookedAt = serializers.DateTimeField(default_timezone=RDESK_TIME_ZONE)
    name = OptionalTextField()
    phone = OptionalTextField()
    # Kept as text: RDESK sometimes sends junk here and a booking must not fail for it.
    email = OptionalTextField()
    checkin = serializers.DateField()
    checkout = serializers.DateField()
    money = MoneySerializer()
    id = serializers.IntegerField()
    lead_id = LeadIdField()
    docNum = OptionalTextField()
    billData = BillSerializer(many=True, required=False)
    extData = ExtDataSerializer(required=False)

    def validate(self, attrs):
        if attrs["checkout"] < attrs["checkin"]:
            raise serializers.ValidationError(
                {"checkout": "Check-out date must not be before the check-in date."}
            )
        return attrs


# Medical-centre flow: one patient card with its treatments, labs, packets and complexes.


class TreatmentSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    # Free text: RDESK adds statuses over time and an unknown one must not lose a card.
    status = serializers.CharField(allow_blank=True)
    action = serializers.CharField(allow_blank=True)
    visit_date = VisitDateField()
    pay = _optional_flag()
    price = _optional_price()
    paid = _optional_flag()

    class Meta:
        list_serializer_class = OptionalListSerializer


class LabSerializer(serializers.Serializer):
    lab_item_id = serializers.IntegerField()
    status = serializers.CharField(allow_blank=True)
    lab = serializers.CharField(allow_blank=True)
    visit_date = VisitDateField()
    pay = _optional_flag()
    price = _optional_price()
    paid = _optional_flag()
    treatment_item_id = serializers.IntegerField(required=False, allow_null=True, default=None)

    class Meta:
        list_serializer_class = OptionalListSerializer


class PacketSerializer(serializers.Serializer):
    packet_id = serializers.IntegerField()
    packet = serializers.CharField(allow_blank=True)
    # Not in the sample, but accepted so a cancelled packet can be told apart.
    status = OptionalTextField()
    pay = _optional_flag()
    price = _optional_price()
    paid = _optional_flag()
    treatments = TreatmentSerializer(many=True, required=False)

    class Meta:
        list_serializer_class = OptionalListSerializer


class ComplexSerializer(serializers.Serializer):
    complex_id = serializers.IntegerField()
    complex = serializers.CharField(allow_blank=True)
    status = OptionalTextField()
    pay = _optional_flag()
    price = _optional_price()
    paid = _optional_flag()
    treatments = TreatmentSerializer(many=True, required=False)
    labs = LabSerializer(many=True, required=False)

    class Meta:
        list_serializer_class = OptionalListSerializer


class MedicalCentreSerializer(serializers.Serializer):
    """One item of the ``/zdrav/mc`` webhook: a medical-centre card that changed."""

    createdAt = serializers.DateTimeField(default_timezone=RDESK_TIME_ZONE)
    name = OptionalTextField()
    birthday = OptionalDateField()
    phone = OptionalTextField()
    email = OptionalTextField()
    id = serializers.IntegerField()
    lead_id = LeadIdField()
    treatments = TreatmentSerializer(many=True, required=False)
    labs = LabSerializer(many=True, required=False)
    packets = PacketSerializer(many=True, required=False)
    complex = ComplexSerializer(many=True, required=False)


def errors_describe(errors) -> str:
    """Flatten DRF ``serializer.errors`` into one line: ``path.to.field: message. ...``.

    List indexes become path parts (``billData.0.billSum``); non-field errors take the
    path of the object they belong to.
    """
    return " ".join(
        f"{path}: {message}" if path else message for path, message in _flatten_errors(errors, ())
    )


def _flatten_errors(errors, path: tuple[str, ...]):
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = path if key == api_settings.NON_FIELD_ERRORS_KEY else (*path, str(key))
            yield from _flatten_errors(value, inner)
    elif isinstance(errors, list):
        if all(isinstance(item, str) for item in errors):
            for message in errors:
                yield ".".join(path), _sentence(message)
        else:
            # A list serializer reports one entry per item, {} for the valid ones.
            for index, item in enumerate(errors):
                yield from _flatten_errors(item, (*path, str(index)))
    else:
        yield ".".join(path), _sentence(errors)


def _sentence(message) -> str:
    text = str(message).strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


class PayloadInvalid(ValueError):
    """The payload does not fit its schema; ``errors`` is DRF's ``serializer.errors``."""

    def __init__(self, errors):
        super().__init__(errors_describe(errors))
        self.errors = errors


# One bound serializer per schema and thread, reused for every payload: building a DRF
# serializer deep-copies all of its fields, nested ones included, which costs more than
# validating. ``run_validation`` keeps no state on the instance (the fields are bound
# once; nothing reads ``initial_data``), so reuse gives the same validated data. With it,
# the lean walk of the same fields (lean_validation.py), which gives DRF's result for
# the payloads DRF accepts at a fraction of the cost.
_reusable = threading.local()


def payload_validate(
    schema: type[serializers.Serializer], payload, *, language: str | None = None
) -> dict:
    """``schema``'s validated data for ``payload``, as ``schema(data=payload)`` gives it.

    Raises ``PayloadInvalid`` with exactly the errors a fresh serializer reports, worded
    in ``language`` (else the active one): a payload the lean walk is unsure of is
    validated by DRF, and a refused one again the usual way, for its error texts (rare).
    """
    validators = getattr(_reusable, "validators", None)
    if validators is None:
        validators = _reusable.validators = {}
    reused = validators.get(schema)
    if reused is None:
        serializer = schema()
        reused = validators[schema] = (serializer, lean_validator(serializer))
    serializer, lean = reused
    try:
        return lean(payload)
    except Exception:  # DRF alone decides, and words, anything else
        pass
    if language is not None:
        with translation.override(language):
            return _drf_validate(schema, serializer, payload)
    return _drf_validate(schema, serializer, payload)


def _drf_validate(schema, serializer, payload) -> dict:
    try:
        return serializer.run_validation(payload)
    except serializers.ValidationError:
        pass
    fresh = schema(data=payload)
    if fresh.is_valid():  # never seen; the fresh serializer is the reference
        return fresh.validated_data
    raise PayloadInvalid(fresh.errors)
