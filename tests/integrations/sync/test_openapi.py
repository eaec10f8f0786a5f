"""The intake's OpenAPI description: valid, listing each flow's path with its schema."""

import yaml
from django.core.management import call_command

from tests.factories import FlowFactory

PATHS = {"/zdrav/booked", "/zdrav/booked/{token}", "/zdrav/mc", "/zdrav/mc/{token}"}


def generated(tmp_path) -> dict:
    target = tmp_path / "intake.yaml"
    # --validate checks the result against the OpenAPI 3 schema; warnings fail it too.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    return yaml.safe_load(target.read_text())


def test_the_command_writes_a_valid_description_of_the_seeded_flows(db, tmp_path):
    schema = generated(tmp_path)

    assert set(schema["paths"]) == PATHS
    assert all(set(operations) == {"post"} for operations in schema["paths"].values())


def test_each_path_takes_its_kinds_items_and_lists_the_answers(db, tmp_path):
    paths = generated(tmp_path)["paths"]

    booked = paths["/zdrav/booked"]["post"]
    body = booked["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"type": "array", "items": {"$ref": "#/components/schemas/Booking"}}
    mc = paths["/zdrav/mc"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert mc["items"] == {"$ref": "#/components/schemas/MedicalCentre"}
    answers = {"200", "400", "401", "403", "404", "413", "415", "422", "500"}
    assert set(booked["responses"]) == answers
    answer = booked["responses"]["422"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/InvalidItemsAnswer"}


def test_the_auth_options_are_described(db, tmp_path):
    schema = generated(tmp_path)

    post = schema["paths"]["/zdrav/booked"]["post"]
    assert post["security"] == [{"tokenQuery": []}, {"basicAuth": []}, {}]
    assert set(schema["components"]["securitySchemes"]) == {"tokenQuery", "basicAuth"}
    token = schema["paths"]["/zdrav/booked/{token}"]["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in token] == [("token", "path")]


def test_a_flow_added_by_an_admin_is_described(db, tmp_path):
    FlowFactory(endpoint_path="/rdesk/extra", kind="mc")

    assert {"/rdesk/extra", "/rdesk/extra/{token}"} <= set(generated(tmp_path)["paths"])


def test_the_description_is_served_to_staff(hub_admin_client):
    response = hub_admin_client.get("/api/schema/", headers={"Accept": "application/json"})

    assert response.status_code == 200
    assert set(response.json()["paths"]) == PATHS


def test_the_description_is_not_served_to_anonymous_callers(client, db):
    assert client.get("/api/schema/").status_code in (401, 403)
