"""Which AmoCRM lead an event updates, where in the pipeline it goes, and whether it is stale.

Direct mode: the RDESK lead id is the AmoCRM lead id. Mock lead id mode (for pointing a
deployment at any AmoCRM account): RDESK lead id N stands for the AmoCRM lead named
``ID_N``, found by search or created in the flow's pipeline and stage, and remembered as
a ``LeadAlias`` so later events for N make no search at all.
"""

from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from integrations.amocrm import client as amocrm
from integrations.amocrm.client import AmoCRMClient, ApiCall
from integrations.amocrm.models import Pipeline
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.models import (
    CLOSED_STATUS_IDS,
    UNSORTED_STATUS_TYPE,
    EventStatus,
    Flow,
    InboundEvent,
    LeadAlias,
)

SEARCH_PAGE_SIZE = 250
# AmoCRM's query is a substring search, so ID_1 also finds ID_10, ID_100...; past this
# many pages the search gives up rather than create a duplicate on a guess.
MAX_SEARCH_PAGES = 40


class LeadTargetError(Exception):
    """The lead to update can be neither found nor created; retrying will not help."""


def mock_lead_name(rdesk_lead_id: int) -> str:
    """The name of the AmoCRM lead that stands for an RDESK lead in mock lead id mode."""
    return f"ID_{rdesk_lead_id}"


def lead_target(*, flow: Flow, rdesk_lead_id: int, client: AmoCRMClient) -> int:
    """The id of the AmoCRM lead that an event of ``flow`` about ``rdesk_lead_id`` updates.

    One lead through the batch path (``lead_targets``): the alias, else a search by name,
    else a creation. Raises ``LeadTargetError`` when AmoCRM refuses to create it,
    ``AmoCRMError`` when a call fails otherwise.
    """
    if not flow.mock_lead_id:
        return rdesk_lead_id
    results, _calls = lead_targets(flows={rdesk_lead_id: flow}, client=client, batch_size=1)
    result = results[rdesk_lead_id]
    if isinstance(result, Exception):
        raise result
    return result


def status_move_build(*, flow: Flow, values: dict, stages: dict | None = None) -> dict:
    """The ``pipeline_id`` and ``status_id`` to add to the lead update, or ``{}``.

    Only when the flow maps the payload's booking status to a stage: an unmapped status
    (and a flow kind without a booking status) leaves the lead where it is. ``stages``
    (booking status -> the pair) saves the query when the caller has read them already.
    """
    source = FLOW_KINDS[flow.kind].status_source
    if source is None or not values.get(source):
        return {}
    if stages is not None:
        return dict(stages.get(values[source], {}))
    mapping = flow.status_mappings.filter(booking_status=values[source]).first()
    if mapping is None:
        return {}
    # Sent together always: won (142) and lost (143) exist in every pipeline, so the
    # status alone would not say which one the lead belongs to.
    return {"pipeline_id": mapping.pipeline_id, "status_id": mapping.status_id}


def newer_event_find(*, event: InboundEvent) -> InboundEvent | None:
    """The latest delivered event about the same lead that arrived after ``event``.

    "Same lead" is the same AmoCRM account and RDESK lead id, whichever flow brought the
    event: both flows write the shared fields (created at, paid, RDESK id). "After" is
    arrival order: ``received_at``, then id for events of one request.
    """
    if not event.lead_id:
        return None
    return (
        InboundEvent.objects.filter(
            flow__account_id=event.flow.account_id,
            lead_id=event.lead_id,
            status=EventStatus.DELIVERED,
        )
        .filter(
            Q(received_at__gt=event.received_at) | Q(received_at=event.received_at, pk__gt=event.pk)
        )
        .order_by("-received_at", "-pk")
        .first()
    )


def newest_delivered(*, account_id: int, lead_ids: list[str]) -> dict[str, InboundEvent]:
    """Per RDESK lead id, the latest delivered event about it (``newer_event_find`` for
    many leads in two queries)."""
    delivered = InboundEvent.objects.filter(
        flow__account_id=account_id, lead_id__in=lead_ids, status=EventStatus.DELIVERED
    )
    latest = (
        delivered.values("lead_id").annotate(at=Max("received_at")).values_list("lead_id", "at")
    )
    condition = Q(pk__in=[])
    for lead_id, at in latest:
        condition |= Q(lead_id=lead_id, received_at=at)
    newest = {}
    # Only their arrival is compared and named: the bodies are left unread (and packed).
    arrivals = delivered.filter(condition).only("pk", "lead_id", "received_at")
    for event in arrivals.order_by("received_at", "pk"):
        newest[event.lead_id] = event  # the last of a request's items wins a tie
    return newest


def _alias(account_id: int, rdesk_lead_id: int) -> int | None:
    return (
        LeadAlias.objects.filter(account_id=account_id, rdesk_lead_id=rdesk_lead_id)
        .values_list("amocrm_lead_id", flat=True)
        .first()
    )


def _alias_save(account_id: int, rdesk_lead_id: int, lead_id: int) -> int:
    try:
        with transaction.atomic():
            LeadAlias.objects.create(
                account_id=account_id, rdesk_lead_id=rdesk_lead_id, amocrm_lead_id=lead_id
            )
    except IntegrityError:
        # Claims hold each lead exclusively, so this is a safety net: the alias saved
        # first wins, and every event still goes to one lead.
        return _alias(account_id, rdesk_lead_id)
    return lead_id


def _lead_named(client: AmoCRMClient, name: str) -> int | None:
    """The lead named exactly ``name``; the oldest one if an earlier tool made several."""
    matches = []
    for page in range(1, MAX_SEARCH_PAGES + 1):
        body = client.request(
            "GET",
            amocrm.LEADS_PATH,
            params={"query": name, "limit": SEARCH_PAGE_SIZE, "page": page},
        )
        if body is None:  # 204: nothing (more) found
            break
        leads = body.get("_embedded", {}).get("leads", [])
        matches.extend(lead["id"] for lead in leads if lead.get("name") == name)
        if "next" not in body.get("_links", {}):
            break
    else:
        raise LeadTargetError(
            f"Searching AmoCRM for {name} found more than "
            f"{MAX_SEARCH_PAGES * SEARCH_PAGE_SIZE} leads; create the lead by hand."
        )
    return min(matches) if matches else None


def mock_lead_body(*, flow: Flow, rdesk_lead_id: int, client: AmoCRMClient | None) -> dict | None:
    """The lead mock lead id mode creates for ``rdesk_lead_id``: ``ID_N``, in the flow's
    pipeline and stage, its ``request_id`` naming it in AmoCRM's answer to a batch.

    A pipeline or stage the flow leaves empty comes from the fetched catalogue, else from
    AmoCRM's list through ``client``. Without a client (a preview, which calls nothing)
    that last case gives None.
    """
    defaults_needed = flow.mock_pipeline_id is None or flow.mock_status_id is None
    if (
        client is None
        and defaults_needed
        and not Pipeline.objects.filter(account_id=flow.account_id).exists()
    ):
        return None
    pipeline_id, status_id = _mock_stage(flow=flow, client=client)
    return _mock_lead(rdesk_lead_id, pipeline_id, status_id)


def _mock_lead(rdesk_lead_id: int, pipeline_id: int | None, status_id: int | None) -> dict:
    lead = {"name": mock_lead_name(rdesk_lead_id), "request_id": str(rdesk_lead_id)}
    if pipeline_id is not None:
        lead["pipeline_id"] = pipeline_id
    if status_id is not None:
        lead["status_id"] = status_id
    return lead


def _mock_stage(*, flow: Flow, client: AmoCRMClient | None) -> tuple[int | None, int | None]:
    """The flow's pipeline and status for created leads, defaults filled in.

    No pipeline: the one holding the configured status, else the main one. No status:
    the pipeline's first working stage (not Unsorted, which rejects later updates, and
    not won or lost).
    """
    pipeline_id, status_id = flow.mock_pipeline_id, flow.mock_status_id
    if pipeline_id is not None and status_id is not None:
        return pipeline_id, status_id
    pipelines = _pipelines(account_id=flow.account_id, client=client)
    if pipeline_id is not None:
        pipeline = next((p for p in pipelines if p["id"] == pipeline_id), None)
        if pipeline is None:
            return pipeline_id, None  # AmoCRM will say what is wrong with it
    else:
        pipeline = _owner(pipelines, status_id) or _main(pipelines)
        if pipeline is None:
            return None, status_id
    if status_id is None:
        status_id = _first_stage(pipeline)
    return pipeline["id"], status_id


def _pipelines(*, account_id: int, client: AmoCRMClient | None) -> list[dict]:
    """The account's pipelines and stages: the fetched catalogue, else the API's list."""
    fetched = Pipeline.objects.filter(account_id=account_id).prefetch_related("statuses")
    if fetched:
        return [
            {
                "id": pipeline.pipeline_id,
                "is_main": pipeline.is_main,
                "sort": pipeline.sort,
                "statuses": [
                    {"id": s.status_id, "sort": s.sort, "type": s.type}
                    for s in pipeline.statuses.all()
                ],
            }
            for pipeline in fetched
        ]
    return [
        {
            "id": item["id"],
            "is_main": bool(item.get("is_main")),
            "sort": item.get("sort") or 0,
            "statuses": [
                {"id": s["id"], "sort": s.get("sort") or 0, "type": s.get("type") or 0}
                for s in item.get("_embedded", {}).get("statuses", [])
            ],
        }
        for item in client.pipelines_list()
    ]


def _main(pipelines: list[dict]) -> dict | None:
    if not pipelines:
        return None
    main = next((p for p in pipelines if p["is_main"]), None)
    return main or min(pipelines, key=lambda p: (p["sort"], p["id"]))


def _owner(pipelines: list[dict], status_id: int | None) -> dict | None:
    if status_id is None or status_id in CLOSED_STATUS_IDS:
        return None
    return next((p for p in pipelines if any(s["id"] == status_id for s in p["statuses"])), None)


def _first_stage(pipeline: dict) -> int | None:
    working = [
        s
        for s in pipeline["statuses"]
        if s["type"] != UNSORTED_STATUS_TYPE and s["id"] not in CLOSED_STATUS_IDS
    ]
    if not working:
        return None  # AmoCRM then picks the stage itself
    return min(working, key=lambda s: (s["sort"], s["id"]))["id"]


def lead_targets(
    *, flows: dict[int, Flow], client: AmoCRMClient, batch_size: int
) -> tuple[dict[int, int | Exception], list[tuple[ApiCall, dict[int, tuple]]]]:
    """Mock lead id mode for many leads at once: the AmoCRM lead of each RDESK lead id.

    ``flows`` maps each RDESK lead id to the flow of the event that will update it. Known
    aliases cost nothing; the others are searched for by name, and those not found are
    created ``batch_size`` at a time (``POST /api/v4/leads``). Returns the lead id, or the
    error that stopped it, per RDESK lead id; and every call made with, per RDESK lead id
    it concerned, (the item sent for it, its part of the answer) or ``()``.

    No creation lock is taken here: the delivery engine holds each lead exclusively
    (claims.py), so no other worker is creating the same mock lead meanwhile.
    """
    if not flows:
        return {}, []
    account_id = next(iter(flows.values())).account_id
    results: dict[int, int | Exception] = dict(
        LeadAlias.objects.filter(account_id=account_id, rdesk_lead_id__in=list(flows)).values_list(
            "rdesk_lead_id", "amocrm_lead_id"
        )
    )
    calls: list[tuple[ApiCall, dict[int, tuple]]] = []
    stop: Exception | None = None
    to_create: dict[int, list[int]] = {}  # flow id -> RDESK lead ids
    for rdesk_lead_id, flow in flows.items():
        if rdesk_lead_id in results:
            continue
        if stop is not None:
            results[rdesk_lead_id] = stop
            continue
        before = len(client.calls)
        try:
            found = _lead_named(client, mock_lead_name(rdesk_lead_id))
        except LeadTargetError as error:
            results[rdesk_lead_id] = error
        except Exception as error:  # an outage or a refused token stops the rest too
            results[rdesk_lead_id] = stop = error
        else:
            if found is not None:
                results[rdesk_lead_id] = _alias_save(account_id, rdesk_lead_id, found)
            else:
                to_create.setdefault(flow.pk, []).append(rdesk_lead_id)
        calls.extend((call, {rdesk_lead_id: ()}) for call in client.calls[before:])
    for rdesk_lead_ids in to_create.values():
        flow = flows[rdesk_lead_ids[0]]
        for start in range(0, len(rdesk_lead_ids), batch_size):
            chunk = rdesk_lead_ids[start : start + batch_size]
            if stop is not None:
                results.update(dict.fromkeys(chunk, stop))
                continue
            before = len(client.calls)
            try:
                created = _leads_create(flow=flow, rdesk_lead_ids=chunk, client=client)
            except LeadTargetError as error:
                results.update(dict.fromkeys(chunk, error))
                created = {}
            except Exception as error:
                results.update(dict.fromkeys(chunk, error))
                stop, created = error, {}
            for rdesk_lead_id, (lead_id, _sent, _answer) in created.items():
                results[rdesk_lead_id] = _alias_save(account_id, rdesk_lead_id, lead_id)
            new_calls = client.calls[before:]
            for call in new_calls:
                parts = {r: () for r in chunk}
                if call is new_calls[-1]:
                    parts.update({r: (sent, answer) for r, (_, sent, answer) in created.items()})
                calls.append((call, parts))
    return results, calls


def _leads_create(
    *, flow: Flow, rdesk_lead_ids: list[int], client: AmoCRMClient
) -> dict[int, tuple[int, dict, dict]]:
    """Creates the mock leads in one call: (lead id, item sent, answer) per RDESK lead id."""
    pipeline_id, status_id = _mock_stage(flow=flow, client=client)
    items = {r: _mock_lead(r, pipeline_id, status_id) for r in rdesk_lead_ids}
    try:
        created = client.leads_create(list(items.values()))
    except (amocrm.ValidationFailed, amocrm.NotFound) as error:
        names = ", ".join(mock_lead_name(r) for r in rdesk_lead_ids)
        noun = "lead" if len(rdesk_lead_ids) == 1 else "leads"
        raise LeadTargetError(
            f"AmoCRM refused to create {noun} {names} in pipeline {pipeline_id}, "
            f"status {status_id}: {error.detail}"
        ) from error
    by_request = {str(entry.get("request_id")): entry for entry in created}
    result = {}
    for n, (rdesk_lead_id, item) in enumerate(items.items()):
        entry = by_request.get(str(rdesk_lead_id)) or created[n]
        result[rdesk_lead_id] = (entry["id"], item, entry)
    return result
