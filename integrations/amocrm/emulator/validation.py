"""Validation of lead writes (POST/PATCH /api/v4/leads) the way AmoCRM refuses them.

Each item is checked on its own and gives a ``LeadWrite`` (what to change, already in the
stored form) and a list of errors ``{"code", "path", "detail"}`` with dot-notation paths
into the submitted item (reference sections 4 and 5). Nothing here touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .seed import LOST_STATUS_ID, UNSORTED_STATUS_TYPE, WON_STATUS_ID

INVALID_TYPE = "InvalidType"
NOT_SUPPORTED_CHOICE = "NotSupportedChoice"
FIELD_NOT_EXPECTED = "FieldNotExpected"
FIELD_MISSING = "FieldMissing"

# AmoCRM's details are Symfony validator messages.
_DETAILS = {
    NOT_SUPPORTED_CHOICE: "The value you selected is not a valid choice.",
    FIELD_NOT_EXPECTED: "This field was not expected.",
    FIELD_MISSING: "This field is missing.",
}

CREATE_KEYS = frozenset(
    {
        "name",
        "price",
        "status_id",
        "pipeline_id",
        "responsible_user_id",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
        "closed_at",
        "loss_reason_id",
        "custom_fields_values",
        "tags_to_add",
        "_embedded",
        "request_id",
    }
)
UPDATE_KEYS = CREATE_KEYS | {"id", "tags_to_delete"}
INTEGER_KEYS = (
    "price",
    "responsible_user_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
)
NULLABLE_INTEGER_KEYS = ("closed_at", "loss_reason_id")
EMBEDDED_KEYS = frozenset({"tags", "companies", "contacts"})

TEXT_TYPES = frozenset({"text", "textarea", "url", "streetaddress"})
DECIMAL_TYPES = frozenset({"numeric", "price", "monetary"})
TIMESTAMP_TYPES = frozenset({"date", "date_time", "birthday"})
CHOICE_TYPES = frozenset({"select", "radiobutton", "category"})
MULTIPLE_TYPES = frozenset({"multiselect"})


@dataclass(frozen=True)
class Catalogue:
    """What a write is checked against: the account's fields, pipelines and tags."""

    fields: dict[int, dict]
    pipelines: dict[int, dict]
    tag_ids: frozenset[int]

    def field_by_code(self, code: str) -> dict | None:
        return next((f for f in self.fields.values() if f["code"] == code), None)

    def main_pipeline(self) -> dict:
        return next(p for p in self.pipelines.values() if p["is_main"])


@dataclass
class LeadWrite:
    """One validated item: plain attributes to set and the collection changes to make."""

    request_id: str
    request_id_sent: bool = False
    lead_id: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # (field definition, stored values or None to clear the field)
    custom_fields: list[tuple[dict, list | None]] = field(default_factory=list)
    replace_tags: bool = False
    tags: list[dict] = field(default_factory=list)
    tags_to_add: list[dict] = field(default_factory=list)
    tags_to_delete: list[dict] = field(default_factory=list)
    companies: list[int] | None = None
    contacts: list[dict] | None = None


class Errors(list):
    """The errors of one item, with AmoCRM's detail text for each code."""

    def add(self, code: str, path: str, type_name: str = "") -> None:
        if code == INVALID_TYPE:
            detail = f"This value should be of type {type_name}."
        else:
            detail = _DETAILS[code]
        self.append({"code": code, "path": path, "detail": detail})


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def first_stage(pipeline: dict) -> dict:
    """The stage a lead lands in when only the pipeline is given."""
    statuses = sorted(pipeline["_embedded"]["statuses"], key=lambda s: s["sort"])
    return next(
        s
        for s in statuses
        if s["type"] != UNSORTED_STATUS_TYPE and s["id"] not in (WON_STATUS_ID, LOST_STATUS_ID)
    )


def validate_lead(
    item: Any, index: int, catalogue: Catalogue, *, current: dict | None, updating: bool
) -> tuple[LeadWrite, list[dict]]:
    """Checks one submitted lead; ``current`` is the stored lead when updating."""
    sent_request_id = isinstance(item, dict) and "request_id" in item
    write = LeadWrite(
        request_id=str(item["request_id"]) if sent_request_id else str(index),
        request_id_sent=sent_request_id,
    )
    errors = Errors()
    if not isinstance(item, dict):
        errors.add(INVALID_TYPE, "", "array")
        return write, errors

    allowed = UPDATE_KEYS if updating else CREATE_KEYS
    for key in item:
        if key not in allowed:
            errors.add(FIELD_NOT_EXPECTED, key)
    if "request_id" in item and not isinstance(item["request_id"], str):
        errors.add(INVALID_TYPE, "request_id", "string")
    if updating:
        write.lead_id = item.get("id")
    if "name" in item:
        if isinstance(item["name"], str):
            write.attributes["name"] = item["name"]
        else:
            errors.add(INVALID_TYPE, "name", "string")
    for key in INTEGER_KEYS:
        if key in item:
            if is_int(item[key]):
                write.attributes[key] = item[key]
            else:
                errors.add(INVALID_TYPE, key, "int")
    for key in NULLABLE_INTEGER_KEYS:
        if key in item:
            if item[key] is None or is_int(item[key]):
                write.attributes[key] = item[key]
            else:
                errors.add(INVALID_TYPE, key, "int")
    _placement(item, catalogue, current, write, errors)
    if "custom_fields_values" in item:
        write.custom_fields = _custom_fields(item["custom_fields_values"], catalogue, errors)
    if "tags_to_add" in item:
        write.tags_to_add = _tag_refs(item["tags_to_add"], "tags_to_add", catalogue, errors)
    if "tags_to_delete" in item:
        write.tags_to_delete = _tag_refs(
            item["tags_to_delete"], "tags_to_delete", catalogue, errors
        )
    if "_embedded" in item:
        _embedded(item["_embedded"], catalogue, write, errors)
    return write, errors


def _placement(item, catalogue: Catalogue, current, write: LeadWrite, errors: Errors) -> None:
    """Resolves pipeline_id/status_id; 142/143 exist in every pipeline, other ids in one."""
    has_pipeline = "pipeline_id" in item
    has_status = "status_id" in item
    if has_pipeline and not is_int(item["pipeline_id"]):
        errors.add(INVALID_TYPE, "pipeline_id", "int")
        return
    if has_status and not is_int(item["status_id"]):
        errors.add(INVALID_TYPE, "status_id", "int")
        return
    if has_pipeline and item["pipeline_id"] not in catalogue.pipelines:
        errors.add(NOT_SUPPORTED_CHOICE, "pipeline_id")
        return

    if has_pipeline:
        pipeline = catalogue.pipelines[item["pipeline_id"]]
    elif current is not None:
        pipeline = catalogue.pipelines.get(current["pipeline_id"])
    else:
        pipeline = None

    if has_status:
        candidates = [pipeline] if pipeline else []
        if not has_pipeline:
            candidates += [catalogue.main_pipeline(), *catalogue.pipelines.values()]
        owner = next((p for p in candidates if _stage_of(p, item["status_id"])), None)
        if owner is None:
            errors.add(NOT_SUPPORTED_CHOICE, "status_id")
            return
        write.attributes["pipeline_id"] = owner["id"]
        write.attributes["status_id"] = item["status_id"]
    elif has_pipeline and (current is None or current["pipeline_id"] != pipeline["id"]):
        write.attributes["pipeline_id"] = pipeline["id"]
        write.attributes["status_id"] = first_stage(pipeline)["id"]
    elif current is None:
        main = catalogue.main_pipeline()
        write.attributes["pipeline_id"] = main["id"]
        write.attributes["status_id"] = first_stage(main)["id"]


def _stage_of(pipeline: dict, status_id: int) -> dict | None:
    # Leads reach Unsorted only through the unsorted API, never by a status write.
    return next(
        (
            s
            for s in pipeline["_embedded"]["statuses"]
            if s["id"] == status_id and s["type"] != UNSORTED_STATUS_TYPE
        ),
        None,
    )


def _custom_fields(raw: Any, catalogue: Catalogue, errors: Errors) -> list:
    if not isinstance(raw, list):
        errors.add(INVALID_TYPE, "custom_fields_values", "array")
        return []
    changes = []
    for n, entry in enumerate(raw):
        at = f"custom_fields_values.{n}"
        if not isinstance(entry, dict):
            errors.add(INVALID_TYPE, at, "array")
            continue
        for key in entry:
            if key not in ("field_id", "field_code", "values"):
                errors.add(FIELD_NOT_EXPECTED, f"{at}.{key}")
        definition = _field_definition(entry, at, catalogue, errors)
        if definition is None:
            continue
        if definition["is_computed"]:
            errors.add(FIELD_NOT_EXPECTED, f"{at}.field_id")
            continue
        if "values" not in entry:
            errors.add(FIELD_MISSING, f"{at}.values")
            continue
        values = entry["values"]
        # `values: null` is how the SDK clears a field; an empty list reads the same here.
        if values is None or values == []:
            changes.append((definition, None))
            continue
        if not isinstance(values, list):
            errors.add(INVALID_TYPE, f"{at}.values", "array")
            continue
        stored = _field_values(definition, values, f"{at}.values", errors)
        if stored is not None:
            changes.append((definition, stored))
    return changes


def _field_definition(entry: dict, at: str, catalogue: Catalogue, errors: Errors) -> dict | None:
    if "field_id" in entry:
        field_id = entry["field_id"]
        if not is_int(field_id):
            errors.add(INVALID_TYPE, f"{at}.field_id", "int")
            return None
        definition = catalogue.fields.get(field_id)
        if definition is None:
            errors.add(NOT_SUPPORTED_CHOICE, f"{at}.field_id")
            return None
        if "field_code" in entry and entry["field_code"] != definition["code"]:
            errors.add(NOT_SUPPORTED_CHOICE, f"{at}.field_code")
            return None
        return definition
    if "field_code" in entry:
        code = entry["field_code"]
        if not isinstance(code, str):
            errors.add(INVALID_TYPE, f"{at}.field_code", "string")
            return None
        definition = catalogue.field_by_code(code)
        if definition is None:
            errors.add(NOT_SUPPORTED_CHOICE, f"{at}.field_code")
        return definition
    errors.add(FIELD_MISSING, f"{at}.field_id")
    return None


def _field_values(definition: dict, values: list, at: str, errors: Errors) -> list | None:
    field_type = definition["type"]
    if field_type not in MULTIPLE_TYPES and len(values) > 1:
        errors.add(FIELD_NOT_EXPECTED, f"{at}.1")
        return None
    check = _VALUE_CHECKS.get(field_type, _text_value)
    stored = []
    before = len(errors)
    for m, value in enumerate(values):
        if not isinstance(value, dict):
            errors.add(INVALID_TYPE, f"{at}.{m}", "array")
            continue
        stored.append(check(value, definition, f"{at}.{m}", errors))
    return stored if len(errors) == before else None


def _unexpected_keys(value: dict, allowed: tuple[str, ...], at: str, errors: Errors) -> None:
    for key in value:
        if key not in allowed:
            errors.add(FIELD_NOT_EXPECTED, f"{at}.{key}")


def _plain_value(value: dict, at: str, errors: Errors) -> tuple[bool, Any]:
    _unexpected_keys(value, ("value",), at, errors)
    if "value" not in value:
        errors.add(FIELD_MISSING, f"{at}.value")
        return False, None
    return True, value["value"]


def _text_value(value: dict, definition: dict, at: str, errors: Errors) -> dict | None:
    present, text = _plain_value(value, at, errors)
    if present and not isinstance(text, str):
        errors.add(INVALID_TYPE, f"{at}.value", "string")
    return {"value": text}


def _decimal_value(value: dict, definition: dict, at: str, errors: Errors) -> dict | None:
    present, number = _plain_value(value, at, errors)
    if not present:
        return None
    text = _decimal_text(number)
    if text is None:
        errors.add(INVALID_TYPE, f"{at}.value", "string")
    return {"value": text}


def _decimal_text(number: Any) -> str | None:
    """The string AmoCRM keeps for a numeric value (it always answers with a string)."""
    if isinstance(number, bool) or not isinstance(number, int | float | str):
        return None
    try:
        parsed = Decimal(number.strip() if isinstance(number, str) else str(number))
    except InvalidOperation:
        return None
    if not parsed.is_finite():
        return None
    if isinstance(number, str):
        return number.strip()
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _checkbox_value(value: dict, definition: dict, at: str, errors: Errors) -> dict | None:
    present, flag = _plain_value(value, at, errors)
    if present and not isinstance(flag, bool):
        errors.add(INVALID_TYPE, f"{at}.value", "bool")
    return {"value": flag}


def _timestamp_value(value: dict, definition: dict, at: str, errors: Errors) -> dict | None:
    present, moment = _plain_value(value, at, errors)
    if not present:
        return None
    seconds = parse_timestamp(moment)
    if seconds is None:
        errors.add(INVALID_TYPE, f"{at}.value", "int")
    return {"value": seconds}


def parse_timestamp(moment: Any) -> int | None:
    """Unix seconds from an int or an RFC-3339 string that carries its UTC offset."""
    if is_int(moment):
        return moment
    if not isinstance(moment, str):
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    # Without an offset the moment is ambiguous; AmoCRM refuses it rather than guess.
    if parsed.utcoffset() is None:
        return None
    return int(parsed.timestamp())


def _choice_value(value: dict, definition: dict, at: str, errors: Errors) -> dict | None:
    keys = ("enum_id", "value", "enum_code")
    _unexpected_keys(value, keys, at, errors)
    given = [key for key in keys if key in value]
    if not given:
        errors.add(FIELD_MISSING, f"{at}.value")
        return None
    # One way of naming the choice; echoing a GET item back (all three keys) is refused.
    for key in given[1:]:
        errors.add(FIELD_NOT_EXPECTED, f"{at}.{key}")
    key = given[0]
    wanted = value[key]
    if key == "enum_id" and not is_int(wanted):
        errors.add(INVALID_TYPE, f"{at}.{key}", "int")
        return None
    if key != "enum_id" and not isinstance(wanted, str):
        errors.add(INVALID_TYPE, f"{at}.{key}", "string")
        return None
    enum_key = {"enum_id": "id", "value": "value", "enum_code": "code"}[key]
    enum = next((e for e in definition["enums"] or [] if e[enum_key] == wanted), None)
    if enum is None:
        errors.add(NOT_SUPPORTED_CHOICE, f"{at}.{key}")
        return None
    return {"value": enum["value"], "enum_id": enum["id"], "enum_code": enum["code"]}


_VALUE_CHECKS = {
    **dict.fromkeys(TEXT_TYPES, _text_value),
    **dict.fromkeys(DECIMAL_TYPES, _decimal_value),
    **dict.fromkeys(TIMESTAMP_TYPES, _timestamp_value),
    **dict.fromkeys(CHOICE_TYPES | MULTIPLE_TYPES, _choice_value),
    "checkbox": _checkbox_value,
}


def _tag_refs(raw: Any, path: str, catalogue: Catalogue, errors: Errors) -> list[dict]:
    if not isinstance(raw, list):
        errors.add(INVALID_TYPE, path, "array")
        return []
    refs = []
    for n, ref in enumerate(raw):
        at = f"{path}.{n}"
        if not isinstance(ref, dict):
            errors.add(INVALID_TYPE, at, "array")
            continue
        _unexpected_keys(ref, ("id", "name"), at, errors)
        if "id" in ref:
            if not is_int(ref["id"]):
                errors.add(INVALID_TYPE, f"{at}.id", "int")
            elif ref["id"] not in catalogue.tag_ids:
                errors.add(NOT_SUPPORTED_CHOICE, f"{at}.id")
            else:
                refs.append({"id": ref["id"]})
        elif isinstance(ref.get("name"), str) and ref["name"]:
            refs.append({"name": ref["name"]})
        else:
            errors.add(INVALID_TYPE if "name" in ref else FIELD_MISSING, f"{at}.name", "string")
    return refs


def _embedded(raw: Any, catalogue: Catalogue, write: LeadWrite, errors: Errors) -> None:
    if not isinstance(raw, dict):
        errors.add(INVALID_TYPE, "_embedded", "array")
        return
    for key in raw:
        if key not in EMBEDDED_KEYS:
            errors.add(FIELD_NOT_EXPECTED, f"_embedded.{key}")
    if "tags" in raw:
        write.replace_tags = True
        # `_embedded.tags: null` removes every tag.
        if raw["tags"] is not None:
            write.tags = _tag_refs(raw["tags"], "_embedded.tags", catalogue, errors)
    if "companies" in raw:
        write.companies = [ref["id"] for ref in _id_refs(raw["companies"], "companies", errors)]
    if "contacts" in raw:
        write.contacts = [
            {"id": ref["id"], "is_main": bool(ref.get("is_main", False))}
            for ref in _id_refs(raw["contacts"], "contacts", errors, ("id", "is_main"))
        ]


def _id_refs(raw: Any, name: str, errors: Errors, allowed: tuple[str, ...] = ("id",)) -> list[dict]:
    path = f"_embedded.{name}"
    if not isinstance(raw, list):
        errors.add(INVALID_TYPE, path, "array")
        return []
    refs = []
    for n, ref in enumerate(raw):
        at = f"{path}.{n}"
        if not isinstance(ref, dict):
            errors.add(INVALID_TYPE, at, "array")
            continue
        _unexpected_keys(ref, allowed, at, errors)
        if is_int(ref.get("id")):
            refs.append(ref)
        else:
            errors.add(INVALID_TYPE if "id" in ref else FIELD_MISSING, f"{at}.id", "int")
    return refs
