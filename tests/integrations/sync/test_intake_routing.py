"""Which paths the intake serves: the flows' own (and a token segment after them), POST only."""

import pytest
from django.db import OperationalError

from integrations.sync import flow_routes
from integrations.sync.flow_routes import flow_route, flow_routes_forget
from integrations.sync.intake_auth import flow_token_issue
from integrations.sync.models import Flow, InboundEvent
from tests.factories import FlowFactory

NOT_FOUND = {"status": "error", "error": "not_found", "detail": "No flow serves this path."}


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico", "/zdrav/unknown", "/zdrav"])
def test_a_path_no_flow_serves_is_not_found_for_every_method(client, db, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert response.headers["Content-Language"] == "en"
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options", "head"])
def test_other_methods_on_a_flows_path_are_answered_405_allowing_post(client, db, method):
    response = getattr(client, method)("/zdrav/booked")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    if method != "head":
        assert response.json()["error"] == "method_not_allowed"
    assert not InboundEvent.objects.exists()


def test_a_flows_path_with_a_token_segment_reaches_that_flow_if_it_has_a_token(db):
    flow = Flow.objects.get(endpoint_path="/zdrav/booked")
    assert flow_route("/zdrav/booked/s3cret-token") is None

    flow_token_issue(flow=flow)

    assert flow_route("/zdrav/booked/s3cret-token") == (flow, "s3cret-token")
    assert flow_route("/zdrav/booked") == (flow, "")


@pytest.mark.parametrize("path", ["/zdrav/booked/a/b", "/zdrav/booked/", "/zdrav/other/token"])
def test_only_one_token_segment_after_a_flows_path_is_routed(client, db, path):
    assert flow_route(path) is None
    assert client.post(path, b"[]", content_type="application/json").status_code == 404


def test_the_token_segment_is_passed_to_the_intake(client, db, monkeypatch):
    seen = []

    def receive(*, flow, request):
        seen.append((flow.endpoint_path, request.path_token))
        return 200, {"status": "ok"}

    monkeypatch.setattr("integrations.sync.views.request_receive", receive)
    flow_token_issue(flow=Flow.objects.get(endpoint_path="/zdrav/mc"))

    client.post("/zdrav/mc/abc123", b"[]", content_type="application/json")

    assert seen == [("/zdrav/mc", "abc123")]


def test_a_flow_saved_in_this_process_is_served_at_once(client, db, booked_body):
    flow = Flow.objects.get(endpoint_path="/zdrav/booked")
    assert flow_route("/zdrav/booked") is not None

    flow.endpoint_path = "/rdesk/bookings"
    flow.save()

    assert (
        client.post("/zdrav/booked", booked_body, content_type="application/json").status_code
        == 404
    )
    response = client.post("/rdesk/bookings", booked_body, content_type="application/json")
    assert response.status_code == 200


def test_a_new_and_a_deleted_flow_are_seen_at_once(db):
    assert flow_route("/zdrav/extra") is None
    flow = FlowFactory(endpoint_path="/zdrav/extra")
    assert flow_route("/zdrav/extra") == (flow, "")

    flow.delete()

    assert flow_route("/zdrav/extra") is None


def test_a_change_made_by_another_process_is_seen_once_the_copy_expires(db, settings, monkeypatch):
    settings.HUB_FLOW_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(flow_routes.time, "monotonic", lambda: clock[0])
    flow_routes_forget()
    assert flow_route("/zdrav/mc") is not None

    # An update without signals: what this process sees of another's admin change.
    Flow.objects.filter(endpoint_path="/zdrav/mc").update(endpoint_path="/zdrav/cards")
    clock[0] += 4.9
    assert flow_route("/zdrav/cards") is None
    clock[0] += 0.2

    assert flow_route("/zdrav/cards") is not None
    assert flow_route("/zdrav/mc") is None


def test_each_answer_is_counted_by_flow_name_and_status(client, db, booked_body, monkeypatch):
    counted = []
    monkeypatch.setattr(
        "integrations.sync.views.intake_answered",
        lambda flow, status: counted.append((flow, status)),
    )
    name = Flow.objects.get(endpoint_path="/zdrav/booked").name

    client.post("/zdrav/booked", booked_body, content_type="application/json")
    client.get("/zdrav/booked")
    client.post("/zdrav/nowhere", booked_body, content_type="application/json")

    assert counted == [(name, 200), (name, 405), ("", 404)]


def test_a_request_the_database_cannot_take_is_answered_500_as_json(client, db, monkeypatch):
    def database_down(*, flow, request):
        raise OperationalError("connection refused")

    monkeypatch.setattr("integrations.sync.views.request_receive", database_down)

    answer = client.post("/zdrav/booked", b"[]", content_type="application/json")

    assert (answer.status_code, answer.json()["error"]) == (500, "not_stored")
