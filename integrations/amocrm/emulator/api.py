"""The /api/v4 handlers: account, leads, lead custom fields, pipelines and statuses.

Shapes follow the reference (sections 3, 6, 7, 8): HAL bodies with ``_links`` and
``_embedded``, 204 with an empty body when nothing is found, problem+json otherwise.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any
from urllib.parse import urlencode

from .leads import matches_query
from .messages import Request, Response
from .problems import Problem, ValidationFailed
from .seed import DATETIME_SETTINGS
from .state import State
from .validation import (
    FIELD_MISSING,
    INVALID_TYPE,
    NOT_SUPPORTED_CHOICE,
    Errors,
    is_int,
    validate_lead,
)

MAX_LIMIT = 250
LEADS_DEFAULT_LIMIT = 50
CUSTOM_FIELDS_DEFAULT_LIMIT = 50
_FILTER_ID = re.compile(r"^filter\[id\](\[\d*\])?$")


def account(state: State, request: Request) -> Response:
    body = copy.deepcopy(state.account)
    if "datetime_settings" in _with(request):
        body["_embedded"] = {"datetime_settings": dict(DATETIME_SETTINGS)}
    return Response.hal(body)


# --- leads ----------------------------------------------------------------------------
def list_leads(state: State, request: Request) -> Response:
    page, limit = _paging(request, LEADS_DEFAULT_LIMIT)
    wanted_ids = _filter_ids(request)
    query = request.param("query")
    found = [
        lead
        for lead_id, lead in sorted(state.leads.items())
        if not lead["is_deleted"]
        and (wanted_ids is None or lead_id in wanted_ids)
        and (not query or matches_query(lead, query))
    ]
    chunk = found[(page - 1) * limit : page * limit]
    if not chunk:
        return Response.empty()
    links = {"self": {"href": _page_href(state, request, page, limit)}}
    if page * limit < len(found):
        links["next"] = {"href": _page_href(state, request, page + 1, limit)}
    links["first"] = {"href": _page_href(state, request, 1, limit)}
    if page > 1:
        links["prev"] = {"href": _page_href(state, request, page - 1, limit)}
    with_contacts = "contacts" in _with(request)
    return Response.hal(
        {
            "_page": page,
            "_links": links,
            "_embedded": {"leads": [_render_lead(state, lead, with_contacts) for lead in chunk]},
        }
    )


def get_lead(state: State, request: Request, lead_id: str) -> Response:
    lead = state.leads.get(int(lead_id))
    if lead is None or lead["is_deleted"]:
        return Response.empty()
    return Response.hal(_render_lead(state, lead, "contacts" in _with(request)))


def create_leads(state: State, request: Request) -> Response:
    items = _batch(request)
    _fault(state, len(items))
    catalogue = state.catalogue()
    writes = _validated(
        [
            validate_lead(item, n, catalogue, current=None, updating=False)
            for n, item in enumerate(items)
        ]
    )
    created = []
    for write in writes:
        lead = state.create_lead(write)
        state.counters["leads_created"] += 1
        created.append({"id": lead["id"], "request_id": write.request_id, "_links": lead["_links"]})
    return Response.hal(
        {"_links": _self_link(state, "/api/v4/leads"), "_embedded": {"leads": created}}
    )


def update_leads(state: State, request: Request) -> Response:
    items = _batch(request)
    _fault(state, len(items))
    id_errors = []
    for n, item in enumerate(items):
        request_id = item.get("request_id", str(n)) if isinstance(item, dict) else str(n)
        if not isinstance(item, dict) or "id" not in item:
            id_errors.append(_entry(request_id, FIELD_MISSING, "id"))
        elif not is_int(item["id"]):
            id_errors.append(_entry(request_id, INVALID_TYPE, "id", "int"))
    if id_errors:
        raise ValidationFailed(id_errors)
    _require_existing(state, [item["id"] for item in items])
    catalogue = state.catalogue()
    writes = _validated(
        [
            validate_lead(item, n, catalogue, current=state.leads[item["id"]], updating=True)
            for n, item in enumerate(items)
        ]
    )
    updated = []
    for write in writes:
        lead = state.update_lead(write)
        state.counters["leads_updated"] += 1
        answer = {"id": lead["id"], "updated_at": lead["updated_at"]}
        if write.request_id_sent:
            answer["request_id"] = write.request_id
        updated.append({**answer, "_links": lead["_links"]})
    return Response.hal(
        {"_links": _self_link(state, "/api/v4/leads"), "_embedded": {"leads": updated}}
    )


def update_lead(state: State, request: Request, lead_id: str) -> Response:
    item = _body(request)
    if not isinstance(item, dict):
        raise Problem(400, "Request data must be an object")
    if not item:
        raise Problem(400, "Request data can not be empty")
    _fault(state, 1)
    lead_id = int(lead_id)
    if "id" in item and item["id"] != lead_id:
        raise ValidationFailed([_entry("0", NOT_SUPPORTED_CHOICE, "id")])
    _require_existing(state, [lead_id])
    item = {**item, "id": lead_id}
    (write,) = _validated(
        [validate_lead(item, 0, state.catalogue(), current=state.leads[lead_id], updating=True)]
    )
    lead = state.update_lead(write)
    state.counters["leads_updated"] += 1
    return Response.hal(
        {"id": lead["id"], "updated_at": lead["updated_at"], "_links": lead["_links"]}
    )


def _render_lead(state: State, lead: dict, with_contacts: bool) -> dict:
    rendered = copy.deepcopy(lead)
    if with_contacts:
        rendered["_embedded"]["contacts"] = [
            {
                **contact,
                "_links": {"self": {"href": f"{state.base_url}/api/v4/contacts/{contact['id']}"}},
            }
            for contact in state.lead_contacts.get(lead["id"], [])
        ]
    return rendered


def _body(request: Request) -> Any:
    if not request.body.strip():
        raise Problem(400, "Request data can not be empty")
    try:
        return request.json()
    except ValueError:
        raise Problem(400, "Request body is not valid JSON") from None


def _batch(request: Request) -> list:
    items = _body(request)
    if not isinstance(items, list):
        raise Problem(400, "Request data must be an array of objects")
    if not items:
        raise Problem(400, "Request data can not be empty")
    if len(items) > MAX_LIMIT:
        raise Problem(422, "Limit 250 per page")
    return items


def _validated(results: list) -> list:
    """The writes when every item is valid; otherwise a 400 naming each failing item."""
    failures = [
        {"request_id": write.request_id, "errors": errors} for write, errors in results if errors
    ]
    if failures:
        raise ValidationFailed(failures)
    return [write for write, _ in results]


def _entry(request_id: str, code: str, path: str, type_name: str = "") -> dict:
    errors = Errors()
    errors.add(code, path, type_name)
    return {"request_id": request_id, "errors": errors}


def _fault(state: State, items: int) -> None:
    """A fault the control API asked for: 504 (batch too heavy), 413, or any status."""
    status = state.fault_for(items)
    if status == 504:
        raise Problem(504, "Gateway Timeout")
    if status == 413:
        raise Problem(413, "Request Entity Too Large")
    if status is not None:
        raise Problem(status, "Fault injected by the emulator's control API")


def _require_existing(state: State, lead_ids: list[int]) -> None:
    # A deleted lead (in the trash) cannot be written, as if it did not exist.
    missing = sorted({i for i in lead_ids if i not in state.leads or state.leads[i]["is_deleted"]})
    if len(missing) == 1:
        raise Problem(404, f"Lead {missing[0]} not found")
    if missing:
        raise Problem(404, f"Leads {', '.join(map(str, missing))} not found")


def _filter_ids(request: Request) -> set[int] | None:
    values = [
        value for key, values in request.query.items() if _FILTER_ID.match(key) for value in values
    ]
    if not values:
        return None
    try:
        return {int(part) for value in values for part in value.split(",") if part}
    except ValueError:
        raise Problem(400, "filter[id] must hold lead ids") from None


# --- catalogue ------------------------------------------------------------------------
def list_custom_fields(state: State, request: Request) -> Response:
    page, limit = _paging(request, CUSTOM_FIELDS_DEFAULT_LIMIT)
    types = {
        value
        for key, values in request.query.items()
        if key.startswith("filter[type]")
        for value in values
    }
    fields = [f for f in state.custom_fields.values() if not types or f["type"] in types]
    page_count = max(1, math.ceil(len(fields) / limit))
    chunk = fields[(page - 1) * limit : page * limit]
    if not chunk:
        return Response.empty()
    links = {"self": {"href": _page_href(state, request, page, limit)}}
    if page < page_count:
        links["next"] = {"href": _page_href(state, request, page + 1, limit)}
    links["last"] = {"href": _page_href(state, request, page_count, limit)}
    return Response.hal(
        {
            "_total_items": len(fields),
            "_page": page,
            "_page_count": page_count,
            "_links": links,
            "_embedded": {"custom_fields": copy.deepcopy(chunk)},
        }
    )


def get_custom_field(state: State, request: Request, field_id: str) -> Response:
    definition = state.custom_fields.get(int(field_id))
    if definition is None:
        raise Problem(404, "Custom field not found")
    return Response.hal(copy.deepcopy(definition))


def list_pipelines(state: State, request: Request) -> Response:
    pipelines = copy.deepcopy(list(state.pipelines.values()))
    return Response.hal(
        {
            "_total_items": len(pipelines),
            "_links": _self_link(state, "/api/v4/leads/pipelines"),
            "_embedded": {"pipelines": pipelines},
        }
    )


def get_pipeline(state: State, request: Request, pipeline_id: str) -> Response:
    return Response.hal(copy.deepcopy(_pipeline(state, pipeline_id)))


def list_statuses(state: State, request: Request, pipeline_id: str) -> Response:
    pipeline = _pipeline(state, pipeline_id)
    statuses = copy.deepcopy(pipeline["_embedded"]["statuses"])
    return Response.hal(
        {
            "_total_items": len(statuses),
            "_links": _self_link(state, f"/api/v4/leads/pipelines/{pipeline['id']}/statuses"),
            "_embedded": {"statuses": statuses},
        }
    )


def get_status(state: State, request: Request, pipeline_id: str, status_id: str) -> Response:
    pipeline = _pipeline(state, pipeline_id)
    status = next((s for s in pipeline["_embedded"]["statuses"] if s["id"] == int(status_id)), None)
    if status is None:
        raise Problem(404, "Status not found")
    return Response.hal(copy.deepcopy(status))


def _pipeline(state: State, pipeline_id: str) -> dict:
    pipeline = state.pipelines.get(int(pipeline_id))
    if pipeline is None:
        raise Problem(404, "Pipeline not found")
    return pipeline


# --- query strings and links ----------------------------------------------------------
def _with(request: Request) -> set[str]:
    return {part.strip() for part in (request.param("with") or "").split(",") if part.strip()}


def _paging(request: Request, default_limit: int) -> tuple[int, int]:
    try:
        page = int(request.param("page") or 1)
        limit = int(request.param("limit") or default_limit)
    except ValueError:
        raise Problem(400, "page and limit must be integers") from None
    if page < 1:
        raise Problem(400, "page must be 1 or more")
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, f"limit must be between 1 and {MAX_LIMIT}")
    return page, limit


def _page_href(state: State, request: Request, page: int, limit: int) -> str:
    params = [(k, v) for k, v in _query_pairs(request) if k not in ("page", "limit")]
    params += [("limit", str(limit)), ("page", str(page))]
    return f"{state.base_url}{request.path}?{urlencode(params)}"


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return [(key, value) for key, values in request.query.items() for value in values]


def _self_link(state: State, path: str) -> dict:
    return {"self": {"href": f"{state.base_url}{path}"}}
