"""The /_emulator control endpoints: what tests and the demo use to drive and observe it.

No auth and no rate limit, and they stay out of the request log, so observing the
emulator never changes what it records.
"""

from __future__ import annotations

import copy

from .messages import Request, Response
from .problems import Problem
from .state import State


def issue_code(state: State, request: Request) -> Response:
    return Response.json({"code": state.issue_code()})


def issue_token(state: State, request: Request) -> Response:
    options = {}
    if request.body.strip():
        try:
            options = request.json()
        except ValueError:
            raise Problem(400, "Request body is not valid JSON") from None
    if not isinstance(options, dict):
        raise Problem(400, "Request data must be an object")
    return Response.json(state.issue_token(long_lived=bool(options.get("long_lived", False))))


def list_requests(state: State, request: Request) -> Response:
    return Response.json({"requests": copy.deepcopy(state.requests)})


def counters(state: State, request: Request) -> Response:
    return Response.json(dict(state.counters))


def list_leads(state: State, request: Request) -> Response:
    return Response.json({"leads": [state.lead(lead_id) for lead_id in sorted(state.leads)]})


def get_lead(state: State, request: Request, lead_id: str) -> Response:
    lead = state.lead(int(lead_id))
    if lead is None:
        raise Problem(404, f"Lead {lead_id} not found")
    return Response.json(lead)


def reset(state: State, request: Request) -> Response:
    state.reset()
    return Response.json({"reset": True})


def expire_tokens(state: State, request: Request) -> Response:
    return Response.json({"expired": state.expire_access_tokens()})


def delete_lead(state: State, request: Request, lead_id: str) -> Response:
    if not state.delete_lead(int(lead_id)):
        raise Problem(404, f"Lead {lead_id} not found")
    return Response.json({"deleted": int(lead_id)})


def set_faults(state: State, request: Request) -> Response:
    """``{"status": 504, "over": 10, "times": 3, "delay": 0.5}``; ``{}`` clears them."""
    try:
        options = request.json() if request.body.strip() else {}
    except ValueError:
        raise Problem(400, "Request body is not valid JSON") from None
    if not isinstance(options, dict):
        raise Problem(400, "Request data must be an object")
    state.fault_set(
        status=options.get("status"),
        over=int(options.get("over", 0)),
        times=options.get("times"),
        delay=float(options.get("delay", 0.0)),
    )
    return Response.json({"faults": state.faults})
