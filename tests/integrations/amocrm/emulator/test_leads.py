"""Leads: reading, searching, creating and updating, with values stored as AmoCRM keeps them."""

import pytest

BOOKING_LEAD = 23392663
MC_LEAD = 11642589


def field_values(lead, field_id):
    item = next(i for i in lead["custom_fields_values"] or [] if i["field_id"] == field_id)
    return item["values"]


def test_get_lead_returns_the_flat_model(emulator, api):
    response = api.get(f"/api/v4/leads/{BOOKING_LEAD}")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/hal+json")
    lead = response.json()
    assert lead == emulator.state.lead(BOOKING_LEAD)
    assert lead["name"] == "Бронь Фамилия1"
    assert (lead["pipeline_id"], lead["status_id"]) == (10156066, 80453094)
    assert lead["custom_fields_values"] is None
    assert lead["account_id"] == 30000001
    assert lead["_links"]["self"]["href"] == f"{emulator.base_url}/api/v4/leads/{BOOKING_LEAD}"
    assert lead["_embedded"] == {"tags": [], "companies": []}


def test_get_missing_lead_is_204_with_an_empty_body(api):
    response = api.get("/api/v4/leads/999")

    assert response.status_code == 204
    assert response.content == b""


def test_patch_single_lead_changes_only_the_sent_keys(emulator, api):
    before = emulator.state.lead(BOOKING_LEAD)

    response = api.patch(f"/api/v4/leads/{BOOKING_LEAD}", json={"price": 153887})

    after = emulator.state.lead(BOOKING_LEAD)
    assert response.status_code == 200
    assert response.json() == {
        "id": BOOKING_LEAD,
        "updated_at": after["updated_at"],
        "_links": {"self": {"href": f"{emulator.base_url}/api/v4/leads/{BOOKING_LEAD}"}},
    }
    assert after["price"] == 153887
    assert after["updated_at"] > before["updated_at"]
    unchanged = {k: v for k, v in after.items() if k not in ("price", "updated_at")}
    assert unchanged == {k: v for k, v in before.items() if k not in ("price", "updated_at")}


SELECT_PHONE = {"value": "Телефон", "enum_id": 5002, "enum_code": "PHONE"}


@pytest.mark.parametrize(
    ("field_id", "sent", "stored"),
    [
        pytest.param(1305111, [{"value": "88888"}], [{"value": "88888"}], id="text"),
        pytest.param(
            1304335, [{"value": "Гость 1\nГость 2"}], [{"value": "Гость 1\nГость 2"}], id="textarea"
        ),
        pytest.param(
            1305307,
            [{"value": "https://zdrav.example"}],
            [{"value": "https://zdrav.example"}],
            id="url",
        ),
        pytest.param(1305167, [{"value": "61361"}], [{"value": "61361"}], id="numeric-string"),
        pytest.param(1305167, [{"value": 61361}], [{"value": "61361"}], id="numeric-int"),
        pytest.param(1305203, [{"value": 147966.3}], [{"value": "147966.3"}], id="numeric-float"),
        pytest.param(1305305, [{"value": True}], [{"value": True}], id="checkbox"),
        pytest.param(
            1287599,
            [{"value": "2022-09-05T14:22:33+03:00"}],
            [{"value": 1662376953}],
            id="date_time-rfc3339",
        ),
        pytest.param(
            1287599,
            [{"value": "2022-09-05T11:22:33Z"}],
            [{"value": 1662376953}],
            id="date_time-utc",
        ),
        pytest.param(1305059, [{"value": 1787605200}], [{"value": 1787605200}], id="date-int"),
        pytest.param(
            1305201,
            [{"value": "1950-12-01T00:00:00+03:00"}],
            [{"value": -602305200}],
            id="birthday",
        ),
        pytest.param(1305301, [{"enum_id": 5002}], [SELECT_PHONE], id="select-enum_id"),
        pytest.param(1305301, [{"value": "Телефон"}], [SELECT_PHONE], id="select-value"),
        pytest.param(1305301, [{"enum_code": "PHONE"}], [SELECT_PHONE], id="select-enum_code"),
        pytest.param(
            1305303,
            [{"enum_id": 5011}, {"value": "Трансфер"}],
            [
                {"value": "Лечение", "enum_id": 5011, "enum_code": None},
                {"value": "Трансфер", "enum_id": 5013, "enum_code": None},
            ],
            id="multiselect",
        ),
    ],
)
def test_patch_stores_each_field_type_as_amocrm_returns_it(emulator, api, field_id, sent, stored):
    response = api.patch(
        f"/api/v4/leads/{BOOKING_LEAD}",
        json={"custom_fields_values": [{"field_id": field_id, "values": sent}]},
    )

    assert response.status_code == 200, response.text
    lead = api.get(f"/api/v4/leads/{BOOKING_LEAD}").json()
    (item,) = lead["custom_fields_values"]
    definition = emulator.state.custom_fields[field_id]
    assert item == {
        "field_id": field_id,
        "field_name": definition["name"],
        "field_code": definition["code"],
        "field_type": definition["type"],
        "values": stored,
    }


def test_patch_batch_updates_every_lead_and_answers_each(emulator, api):
    response = api.patch(
        "/api/v4/leads",
        json=[
            {"id": BOOKING_LEAD, "name": "Бронь 88888"},
            {"id": MC_LEAD, "status_id": 80512652, "request_id": "mc"},
        ],
    )

    assert response.status_code == 200
    answers = response.json()["_embedded"]["leads"]
    assert [a["id"] for a in answers] == [BOOKING_LEAD, MC_LEAD]
    assert "request_id" not in answers[0]
    assert answers[1]["request_id"] == "mc"
    assert answers[1]["updated_at"] == emulator.state.lead(MC_LEAD)["updated_at"]
    assert emulator.state.lead(BOOKING_LEAD)["name"] == "Бронь 88888"
    assert emulator.state.lead(MC_LEAD)["status_id"] == 80512652


def test_custom_fields_merge_per_field_and_null_values_clear_one(emulator, api):
    path = f"/api/v4/leads/{BOOKING_LEAD}"
    api.patch(
        path,
        json={
            "custom_fields_values": [
                {"field_id": 1305111, "values": [{"value": "88888"}]},
                {"field_id": 1304923, "values": [{"value": "waiting"}]},
            ]
        },
    )

    api.patch(
        path,
        json={
            "custom_fields_values": [
                {"field_id": 1304923, "values": [{"value": "paid"}]},
                {"field_id": 1305111, "values": None},
                {"field_id": 1305167, "values": [{"value": "100"}]},
            ]
        },
    )

    lead = emulator.state.lead(BOOKING_LEAD)
    assert [i["field_id"] for i in lead["custom_fields_values"]] == [1304923, 1305167]
    assert field_values(lead, 1304923) == [{"value": "paid"}]


def test_clearing_the_last_field_leaves_null(emulator, api):
    path = f"/api/v4/leads/{BOOKING_LEAD}"
    api.patch(
        path, json={"custom_fields_values": [{"field_id": 1305111, "values": [{"value": "1"}]}]}
    )

    api.patch(path, json={"custom_fields_values": [{"field_id": 1305111, "values": None}]})

    assert emulator.state.lead(BOOKING_LEAD)["custom_fields_values"] is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/api/v4/leads/555", {"price": 1}),
        ("PATCH", "/api/v4/leads", [{"id": BOOKING_LEAD}, {"id": 555, "price": 1}]),
    ],
)
def test_patch_of_a_missing_lead_is_404_naming_it(emulator, api, method, path, body):
    before = emulator.state.lead(BOOKING_LEAD)

    response = api.request(method, path, json=body)

    assert response.status_code == 404
    assert response.json()["detail"] == "Lead 555 not found"
    assert emulator.state.lead(BOOKING_LEAD) == before


def test_moving_to_a_status_of_another_pipeline_moves_the_lead(emulator, api):
    api.patch(f"/api/v4/leads/{BOOKING_LEAD}", json={"status_id": 80512652})

    lead = emulator.state.lead(BOOKING_LEAD)
    assert (lead["pipeline_id"], lead["status_id"]) == (10164486, 80512652)


def test_closing_a_lead_sets_closed_at(emulator, api):
    api.patch(f"/api/v4/leads/{BOOKING_LEAD}", json={"status_id": 142})

    lead = emulator.state.lead(BOOKING_LEAD)
    assert (lead["pipeline_id"], lead["status_id"]) == (10156066, 142)
    assert lead["closed_at"] == lead["updated_at"]


def test_post_creates_leads_and_echoes_request_ids(emulator, api):
    response = api.post(
        "/api/v4/leads",
        json=[
            {"name": "ID_88888", "pipeline_id": 10156066, "status_id": 80453096},
            {"name": "ID_88889", "request_id": "booking-88889"},
        ],
    )

    assert response.status_code == 200
    created = response.json()["_embedded"]["leads"]
    assert [c["request_id"] for c in created] == ["0", "booking-88889"]
    first, second = (emulator.state.lead(c["id"]) for c in created)
    assert first["name"] == "ID_88888"
    assert (first["pipeline_id"], first["status_id"]) == (10156066, 80453096)
    assert created[0]["_links"]["self"]["href"] == first["_links"]["self"]["href"]
    assert second["name"] == "ID_88889"
    assert emulator.state.counters["leads_created"] == 2


def test_new_lead_without_pipeline_lands_in_the_main_pipelines_first_stage(emulator, api):
    response = api.post("/api/v4/leads", json=[{"name": "Без воронки"}])

    lead = emulator.state.lead(response.json()["_embedded"]["leads"][0]["id"])
    assert (lead["pipeline_id"], lead["status_id"]) == (7000000, 7000001)


def test_new_lead_with_only_a_pipeline_lands_in_its_first_stage(emulator, api):
    response = api.post("/api/v4/leads", json=[{"name": "МЦ", "pipeline_id": 10164486}])

    lead = emulator.state.lead(response.json()["_embedded"]["leads"][0]["id"])
    assert lead["status_id"] == 80512650


def test_search_by_query_finds_the_lead_with_that_name(emulator, api):
    emulator.state.add_lead(name="ID_12345")
    emulator.state.add_lead(name="ID_123456")

    response = api.get("/api/v4/leads", params={"query": "ID_123456"})

    assert response.status_code == 200
    leads = response.json()["_embedded"]["leads"]
    assert [lead["name"] for lead in leads] == ["ID_123456"]


def test_search_by_query_looks_in_filled_field_values(emulator, api):
    emulator.state.add_lead(
        name="Бронь", custom_fields_values=[{"field_id": 1305111, "values": [{"value": "88888"}]}]
    )

    response = api.get("/api/v4/leads", params={"query": "88888"})

    assert [lead["name"] for lead in response.json()["_embedded"]["leads"]] == ["Бронь"]


def test_search_without_a_match_is_204(api):
    response = api.get("/api/v4/leads", params={"query": "ID_404"})

    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize("key", ["filter[id][]", "filter[id]"])
def test_list_filters_by_id(api, key):
    response = api.get("/api/v4/leads", params={key: [MC_LEAD]})

    assert [lead["id"] for lead in response.json()["_embedded"]["leads"]] == [MC_LEAD]


def test_list_pages_with_links_and_answers_204_past_the_end(emulator, api):
    first = api.get("/api/v4/leads", params={"limit": 1})
    second = api.get("/api/v4/leads", params={"limit": 1, "page": 2})
    past_end = api.get("/api/v4/leads", params={"limit": 1, "page": 3})

    assert first.json()["_page"] == 1
    assert first.json()["_links"]["next"]["href"].endswith("limit=1&page=2")
    assert [lead["id"] for lead in first.json()["_embedded"]["leads"]] == [MC_LEAD]
    assert "next" not in second.json()["_links"]
    assert second.json()["_links"]["prev"]["href"].startswith(emulator.base_url)
    assert past_end.status_code == 204


def test_more_than_250_leads_in_one_request_is_422(api):
    response = api.patch("/api/v4/leads", json=[{"id": BOOKING_LEAD}] * 251)

    assert response.status_code == 422
    assert response.json() == {
        "title": "Unprocessable Entity",
        "type": "https://httpstatus.es/422",
        "status": 422,
        "detail": "Limit 250 per page",
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "Request data can not be empty"),
        (b"[]", "Request data can not be empty"),
        (b"{not json", "Request body is not valid JSON"),
    ],
)
def test_empty_or_unreadable_body_is_400(api, body, detail):
    response = api.post("/api/v4/leads", data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_tags_can_be_added_and_replaced(emulator, api):
    path = f"/api/v4/leads/{BOOKING_LEAD}"
    api.patch(path, json={"tags_to_add": [{"name": "rdesk"}, {"name": "vip"}]})

    api.patch(path, json={"_embedded": {"tags": [{"name": "rdesk"}]}})

    tags = emulator.state.lead(BOOKING_LEAD)["_embedded"]["tags"]
    assert [tag["name"] for tag in tags] == ["rdesk"]
