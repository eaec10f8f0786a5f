"""Turns plain Python values into AmoCRM ``custom_fields_values`` entries.

One encoder per AmoCRM field type, all pure functions. The value formats follow the
API reference (``reference/amocrm-api.md``, section 4): numbers travel as strings,
dates as RFC-3339 strings carrying the account's offset, checkboxes as booleans.
Deciding which fields may be written (read-only, computed) is the caller's job.
"""

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.db import models
from django.utils.translation import pgettext_lazy


class FieldType(models.TextChoices):
    """AmoCRM's custom field types, labelled with the names of AmoCRM's own interface."""

    TEXT = "text", pgettext_lazy("field type", "Text")
    TEXTAREA = "textarea", pgettext_lazy("field type", "Text area")
    NUMERIC = "numeric", pgettext_lazy("field type", "Number")
    DATE = "date", pgettext_lazy("field type", "Date")
    DATE_TIME = "date_time", pgettext_lazy("field type", "Date and time")
    BIRTHDAY = "birthday", pgettext_lazy("field type", "Birthday")
    SELECT = "select", pgettext_lazy("field type", "Select")
    MULTISELECT = "multiselect", pgettext_lazy("field type", "Multiselect")
    CHECKBOX = "checkbox", pgettext_lazy("field type", "Checkbox")
    URL = "url", pgettext_lazy("field type", "URL")
    PRICE = "price", pgettext_lazy("field type", "Price")


class EncodingError(ValueError):
    """A value cannot be written to an AmoCRM field of the given type."""


_TRUE_WORDS = {"true", "1", "yes"}
_FALSE_WORDS = {"false", "0", "no"}


def encode_values(field_type: str, value, *, tz: ZoneInfo) -> list[dict] | None:
    """Return the ``values`` list for one custom field, or None to leave the field out.

    Empty values (None, a blank string, an empty list) give None: AmoCRM keeps the old
    value when a field is absent, whereas sending an empty value may be refused or
    ignored. Raises EncodingError for an unknown field type or a value that does not fit.
    """
    try:
        encoder = _ENCODERS[field_type]
    except (KeyError, TypeError):
        raise EncodingError(f"unknown AmoCRM field type {field_type!r}") from None
    if _is_empty(value):
        return None
    return encoder(value, tz)


def encode_field(field_id: int, field_type: str, value, *, tz: ZoneInfo) -> dict | None:
    """Return one ``custom_fields_values`` entry, or None when the value is empty."""
    values = encode_values(field_type, value, tz=tz)
    if values is None:
        return None
    return {"field_id": field_id, "values": values}


def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return all(_is_empty(item) for item in value)
    return False


def _encode_text(value, tz: ZoneInfo) -> list[dict]:
    if isinstance(value, list | tuple):
        lines = [_scalar_text(item) for item in value if not _is_empty(item)]
        return [{"value": "\n".join(lines)}]
    return [{"value": _scalar_text(value)}]


def _encode_number(value, tz: ZoneInfo) -> list[dict]:
    return [{"value": _decimal_text(value)}]


def _encode_date(value, tz: ZoneInfo) -> list[dict]:
    day = _to_date(value, tz)
    return [{"value": _rfc3339(datetime.combine(day, time(), tzinfo=tz))}]


def _encode_date_time(value, tz: ZoneInfo) -> list[dict]:
    return [{"value": _rfc3339(_to_datetime(value, tz))}]


def _encode_checkbox(value, tz: ZoneInfo) -> list[dict]:
    return [{"value": _to_bool(value)}]


def _encode_select(value, tz: ZoneInfo) -> list[dict]:
    if isinstance(value, list | tuple):
        raise EncodingError(f"{value!r} is several values; a select field takes one")
    return [{"value": _scalar_text(value)}]


def _encode_multiselect(value, tz: ZoneInfo) -> list[dict]:
    items = value if isinstance(value, list | tuple) else [value]
    return [{"value": _scalar_text(item)} for item in items if not _is_empty(item)]


def _scalar_text(value) -> str:
    if isinstance(value, dict | list | tuple | set):
        raise EncodingError(f"{_show(value)} is not text")
    return value.strip() if isinstance(value, str) else str(value)


def _decimal_text(value) -> str:
    # bool is an int subclass; True must not become "1" in a money field.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise EncodingError(f"{_show(value)} is not a number")
    try:
        # str() first so a float keeps its shortest form (147966.3, not 147966.29999...).
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise EncodingError(f"{_show(value)} is not a number") from None
    if not number.is_finite():
        raise EncodingError(f"{_show(value)} is not a number")
    if number.is_zero():
        return "0"
    # normalize() drops trailing zeros but may switch to an exponent ("1E+2");
    # the "f" format writes it back out positionally.
    return format(number.normalize(), "f")


def _to_date(value, tz: ZoneInfo) -> date:
    if isinstance(value, str):
        value = _parse_iso(value, "a date")
    if isinstance(value, datetime):
        return _in_zone(value, tz).date()
    if isinstance(value, date):
        return value
    raise EncodingError(f"{_show(value)} is not a date")


def _to_datetime(value, tz: ZoneInfo) -> datetime:
    if isinstance(value, str):
        value = _parse_iso(value, "a date and time")
    if isinstance(value, datetime):
        return _in_zone(value, tz)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz)
    raise EncodingError(f"{_show(value)} is not a date and time")


def _parse_iso(text: str, what: str) -> date | datetime:
    text = text.strip()
    try:
        if len(text) == len("YYYY-MM-DD"):
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise EncodingError(f"{text!r} is not {what}") from None


def _in_zone(moment: datetime, tz: ZoneInfo) -> datetime:
    # A naive datetime has no offset to convert from: RDESK means local time.
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise EncodingError(f"{_show(value)} is not a yes/no value")


def _show(value) -> str:
    if isinstance(value, Iterable) and not isinstance(value, str):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            pass
    return repr(value)


_ENCODERS: dict[str, Callable[[object, ZoneInfo], list[dict]]] = {
    FieldType.TEXT: _encode_text,
    FieldType.TEXTAREA: _encode_text,
    FieldType.URL: _encode_text,
    FieldType.NUMERIC: _encode_number,
    FieldType.PRICE: _encode_number,
    FieldType.DATE: _encode_date,
    FieldType.BIRTHDAY: _encode_date,
    FieldType.DATE_TIME: _encode_date_time,
    FieldType.CHECKBOX: _encode_checkbox,
    FieldType.SELECT: _encode_select,
    FieldType.MULTISELECT: _encode_multiselect,
}
