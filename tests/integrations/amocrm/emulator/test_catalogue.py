"""The account, lead custom fields, pipelines and statuses, as the hub reads them."""

import pytest

FIELD_COUNT = 16


def test_account_describes_the_emulated_account(emulator, api):
    account = api.get("/api/v4/account").json()

    assert account["id"] == 30000001
    assert account["name"] == "Здравница (emulator)"
    assert account["subdomain"] == "emulator"
    assert "_embedded" not in account


def test_account_with_datetime_settings_has_moscow_time(api):
    account = api.get("/api/v4/account", params={"with": "datetime_settings"}).json()

    settings = account["_embedded"]["datetime_settings"]
    assert settings["timezone"] == "Europe/Moscow"
    assert settings["timezone_offset"] == "+03:00"


def test_custom_fields_default_page_holds_every_field(api):
    body = api.get("/api/v4/leads/custom_fields").json()

    assert body["_total_items"] == FIELD_COUNT
    assert (body["_page"], body["_page_count"]) == (1, 1)
    assert "next" not in body["_links"]
    fields = {f["id"]: f for f in body["_embedded"]["custom_fields"]}
    assert fields[1305167]["type"] == "numeric"
    assert fields[1305059]["type"] == "date"
    assert fields[1305309]["is_computed"] is True
    assert [e["value"] for e in fields[1305301]["enums"]] == ["Сайт", "Телефон"]


def test_custom_fields_paginate_with_a_next_link(api):
    first = api.get("/api/v4/leads/custom_fields", params={"limit": 10}).json()
    second = api.session.get(first["_links"]["next"]["href"], timeout=5)

    assert first["_page_count"] == 2
    assert len(first["_embedded"]["custom_fields"]) == 10
    assert second.status_code == 200
    assert len(second.json()["_embedded"]["custom_fields"]) == FIELD_COUNT - 10
    assert "next" not in second.json()["_links"]


def test_custom_fields_past_the_last_page_is_204(api):
    response = api.get("/api/v4/leads/custom_fields", params={"limit": 10, "page": 3})

    assert response.status_code == 204


def test_pipelines_list_every_pipeline_with_its_statuses(api):
    body = api.get("/api/v4/leads/pipelines").json()

    pipelines = {p["id"]: p for p in body["_embedded"]["pipelines"]}
    assert body["_total_items"] == 3
    assert sorted(pipelines) == [7000000, 10156066, 10164486]
    assert pipelines[7000000]["is_main"] is True
    statuses = [s["id"] for s in pipelines[10156066]["_embedded"]["statuses"]]
    assert statuses == [80453090, 80453094, 80453096, 80453098, 142, 143]


def test_one_pipeline_by_id(api):
    pipeline = api.get("/api/v4/leads/pipelines/10164486").json()

    assert pipeline["name"] == "Медцентр"


def test_statuses_of_a_pipeline(api):
    statuses = api.get("/api/v4/leads/pipelines/10164486/statuses").json()["_embedded"]["statuses"]

    by_id = {s["id"]: s for s in statuses}
    assert by_id[80512640]["type"] == 1
    assert by_id[80512652]["name"] == "Оплачено"
    assert {s["pipeline_id"] for s in statuses} == {10164486}


@pytest.mark.parametrize(
    "path", ["/api/v4/leads/pipelines/999", "/api/v4/leads/pipelines/999/statuses"]
)
def test_unknown_pipeline_is_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response.json()["detail"] == "Pipeline not found"
