"""Lead records, kept in exactly the shape GET /api/v4/leads/{id} returns (section 3.2)."""

from __future__ import annotations

from collections.abc import Callable

from .seed import ACCOUNT_ID, CURRENT_USER_ID, LOST_STATUS_ID, WON_STATUS_ID
from .validation import LeadWrite


def lead_href(base_url: str, lead_id: int) -> str:
    return f"{base_url}/api/v4/leads/{lead_id}"


def blank_lead(lead_id: int, *, base_url: str, now: int) -> dict:
    return {
        "id": lead_id,
        "name": "",
        "price": 0,
        "responsible_user_id": CURRENT_USER_ID,
        "group_id": 0,
        "status_id": None,
        "pipeline_id": None,
        "loss_reason_id": None,
        "source_id": None,
        "created_by": CURRENT_USER_ID,
        "updated_by": CURRENT_USER_ID,
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": None,
        "score": None,
        "account_id": ACCOUNT_ID,
        "labor_cost": None,
        "_links": {"self": {"href": lead_href(base_url, lead_id)}},
        "_embedded": {"tags": [], "companies": []},
    }


def apply_write(
    lead: dict,
    write: LeadWrite,
    *,
    now: int,
    base_url: str,
    resolve_tag: Callable[[dict], dict | None],
) -> None:
    """Changes only what the write names; custom fields merge per field id."""
    status_before = lead["status_id"]
    lead.update(write.attributes)
    if "updated_at" not in write.attributes:
        lead["updated_at"] = now
    closing = lead["status_id"] in (WON_STATUS_ID, LOST_STATUS_ID)
    if closing and status_before != lead["status_id"] and "closed_at" not in write.attributes:
        lead["closed_at"] = now

    if write.custom_fields:
        by_field = {item["field_id"]: item for item in lead["custom_fields_values"] or []}
        for definition, values in write.custom_fields:
            if values is None:
                by_field.pop(definition["id"], None)
            else:
                by_field[definition["id"]] = {
                    "field_id": definition["id"],
                    "field_name": definition["name"],
                    "field_code": definition["code"],
                    "field_type": definition["type"],
                    "values": values,
                }
        # AmoCRM answers null, never [], for a lead without filled fields.
        lead["custom_fields_values"] = list(by_field.values()) or None

    tags = lead["_embedded"]["tags"]
    if write.replace_tags:
        tags = []
    for ref in [*write.tags, *write.tags_to_add]:
        tag = resolve_tag(ref)
        if tag is not None and tag["id"] not in {t["id"] for t in tags}:
            tags.append(tag)
    for ref in write.tags_to_delete:
        tags = [t for t in tags if not _same_tag(t, ref)]
    lead["_embedded"]["tags"] = tags

    if write.companies is not None:
        lead["_embedded"]["companies"] = [
            {"id": cid, "_links": {"self": {"href": f"{base_url}/api/v4/companies/{cid}"}}}
            for cid in write.companies
        ]


def _same_tag(tag: dict, ref: dict) -> bool:
    if "id" in ref:
        return tag["id"] == ref["id"]
    return tag["name"].casefold() == ref["name"].casefold()


def matches_query(lead: dict, query: str) -> bool:
    """AmoCRM's ``query``: a substring of the name or of any filled field value."""
    needle = query.casefold()
    haystack = [lead["name"]]
    for item in lead["custom_fields_values"] or []:
        haystack.extend(str(value.get("value", "")) for value in item["values"])
    return any(needle in text.casefold() for text in haystack)
