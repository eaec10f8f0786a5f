"""The data migration seeds the old service's two flows, endpoints and field mappings."""

import importlib

import pytest
from django.apps import apps

from integrations.sync.models import Flow

seed_module = importlib.import_module("integrations.sync.migrations.0002_seed_flows")

# The old service's FIELD_* defaults, as (source, AmoCRM field id, field type).
OLD_BOOKED_FIELDS = [
    ("created_at", 1287599, "date_time"),
    ("paid", 1305167, "numeric"),
    ("zdrav_id", 1305111, "text"),
    ("status", 1304923, "text"),
    ("check_in", 1305059, "date"),
    ("check_out", 1305061, "date"),
    ("guests_text", 1304335, "textarea"),
    ("doc_num", 1305107, "numeric"),
    ("bills_text", 1304929, "textarea"),
]
OLD_MC_FIELDS = [
    ("created_at", 1287599, "date_time"),
    ("paid", 1305167, "numeric"),
    ("zdrav_id", 1305111, "text"),
]

pytestmark = pytest.mark.django_db


def mappings_of(flow: Flow) -> list[tuple[str, int, str]]:
    return [(m.source, m.field_id, m.field_type) for m in flow.mappings.order_by("id")]


def test_exactly_two_flows_are_seeded_on_the_old_paths():
    flows = {flow.kind: flow for flow in Flow.objects.all()}

    assert sorted(flows) == ["booked", "mc"]
    assert flows["booked"].endpoint_path == "/zdrav/booked"
    assert flows["mc"].endpoint_path == "/zdrav/mc"


@pytest.mark.parametrize("kind", ["booked", "mc"])
def test_seeded_flow_is_enabled_unattached_and_writes_the_total_as_price(kind):
    flow = Flow.objects.get(kind=kind)

    assert flow.enabled is True
    assert flow.account is None
    assert flow.price_source == "total"
    assert flow.mock_lead_id is False
    assert (flow.mock_pipeline_id, flow.mock_status_id) == (None, None)


def test_booked_flow_has_the_old_services_field_ids_and_types():
    flow = Flow.objects.get(kind="booked")

    assert mappings_of(flow) == OLD_BOOKED_FIELDS
    assert all(mapping.enabled for mapping in flow.mappings.all())


def test_mc_flow_has_the_shared_fields_and_no_birthday_without_its_variable():
    assert mappings_of(Flow.objects.get(kind="mc")) == OLD_MC_FIELDS


def test_old_services_variables_override_the_defaults(monkeypatch):
    Flow.objects.all().delete()
    monkeypatch.setenv("APP_INCOMING_BOOKED", "/legacy/booked")
    monkeypatch.setenv("FIELD_BOOKED_STATUS", "777001")
    monkeypatch.setenv("FIELD_MC_BIRTHDAY", "777002")
    monkeypatch.setenv("MOCK_PIPELINE_BOOKED_ID", "5555")
    monkeypatch.setenv("MOCK_PIPELINE_BOOKED_STATUS_ID", "6666")

    seed_module.seed(apps, None)

    booked = Flow.objects.get(kind="booked")
    assert booked.endpoint_path == "/legacy/booked"
    assert (booked.mock_pipeline_id, booked.mock_status_id) == (5555, 6666)
    assert ("status", 777001, "text") in mappings_of(booked)
    assert ("birthday", 777002, "birthday") in mappings_of(Flow.objects.get(kind="mc"))


def test_seeding_again_leaves_existing_flows_as_the_admin_left_them(monkeypatch):
    booked = Flow.objects.get(kind="booked")
    booked.endpoint_path = "/edited/in/admin"
    booked.save()
    booked.mappings.filter(source="doc_num").delete()
    monkeypatch.setenv("FIELD_BOOKED_DOC_NUM", "999")

    seed_module.seed(apps, None)

    assert Flow.objects.count() == 2
    booked.refresh_from_db()
    assert booked.endpoint_path == "/edited/in/admin"
    assert "doc_num" not in [source for source, _, _ in mappings_of(booked)]


def test_old_mock_pipeline_variables_seed_the_medical_centre_flow_too(monkeypatch):
    Flow.objects.all().delete()
    monkeypatch.setenv("MOCK_PIPELINE_MC_ID", "10164486")
    monkeypatch.setenv("MOCK_PIPELINE_MC_STATUS_ID", "80512650")

    seed_module.seed(apps, None)

    mc = Flow.objects.get(kind="mc")
    assert (mc.mock_pipeline_id, mc.mock_status_id) == (10164486, 80512650)
    assert mc.mock_lead_id is False  # the mode itself is the --mocked-lead-id flag's
