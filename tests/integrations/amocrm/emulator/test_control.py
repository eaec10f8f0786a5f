"""The /_emulator control endpoints used by end-to-end tests and the demo."""

from .conftest import Api


def test_codes_endpoint_gives_a_code_the_token_endpoint_accepts(emulator, anonymous, token_form):
    code = anonymous.post("/_emulator/codes").json()["code"]

    response = anonymous.post("/oauth2/access_token", json={**token_form, "code": code})

    assert response.status_code == 200


def test_tokens_endpoint_gives_a_working_pair(emulator, anonymous):
    pair = anonymous.post("/_emulator/tokens").json()

    assert set(pair) == {"access_token", "refresh_token", "expires_in"}
    assert Api(emulator.base_url, pair["access_token"]).get("/api/v4/account").status_code == 200


def test_tokens_endpoint_gives_a_long_lived_token_on_request(emulator, anonymous):
    pair = anonymous.post("/_emulator/tokens", json={"long_lived": True}).json()

    assert pair["refresh_token"] is None
    assert emulator.state.access_tokens[pair["access_token"]].expires_at is None


def test_requests_endpoint_lists_api_calls_but_not_control_calls(api):
    api.get("/api/v4/leads/23392663")
    api.get("/_emulator/counters")

    logged = api.get("/_emulator/requests").json()["requests"]

    assert [(r["method"], r["path"], r["status"]) for r in logged] == [
        ("GET", "/api/v4/leads/23392663", 200)
    ]


def test_counters_endpoint_reports_the_counters(api):
    api.get("/api/v4/account")

    counters = api.get("/_emulator/counters").json()

    assert counters["requests"] == 1
    assert {"refresh", "invalid_grant", "rate_limited", "authorization_code"} <= set(counters)


def test_reset_restores_the_seeded_account(emulator, api):
    api.patch("/api/v4/leads/23392663", json={"name": "changed"})
    api.post("/api/v4/leads", json=[{"name": "new"}])

    response = api.post("/_emulator/reset")

    assert response.status_code == 200
    assert sorted(emulator.state.leads) == [11642589, 23392663]
    assert emulator.state.lead(23392663)["name"] == "Бронь Фамилия1"
    assert emulator.state.requests == []
    assert api.get("/api/v4/account").status_code == 401


def test_expire_tokens_endpoint_makes_access_tokens_401(api):
    response = api.post("/_emulator/expire-tokens")

    assert response.json() == {"expired": 1}
    assert api.get("/api/v4/account").status_code == 401


def test_leads_endpoint_shows_every_lead(api):
    leads = api.get("/_emulator/leads").json()["leads"]

    assert [lead["id"] for lead in leads] == [11642589, 23392663]


def test_lead_endpoint_shows_one_lead_as_the_api_returns_it(api):
    lead = api.get("/_emulator/leads/23392663").json()

    assert (lead["id"], lead["name"]) == (23392663, "Бронь Фамилия1")


def test_lead_endpoint_answers_404_for_a_missing_lead(api):
    assert api.get("/_emulator/leads/1").status_code == 404


# --- faults on demand -----------------------------------------------------------------


def test_faults_endpoint_answers_504_for_batches_over_the_size(api):
    api.post("/_emulator/faults", json={"status": 504, "over": 1})

    heavy = api.patch("/api/v4/leads", json=[{"id": 23392663}, {"id": 23392663}])
    light = api.patch("/api/v4/leads", json=[{"id": 23392663, "price": 5}])

    assert (heavy.status_code, heavy.json()["title"]) == (504, "Gateway Timeout")
    assert light.status_code == 200


def test_faults_endpoint_answers_413_a_given_number_of_times(api):
    api.post("/_emulator/faults", json={"status": 413, "times": 1})

    first = api.patch("/api/v4/leads/23392663", json={"price": 5})
    second = api.patch("/api/v4/leads/23392663", json={"price": 6})

    assert [first.status_code, second.status_code] == [413, 200]


def test_faults_endpoint_delays_api_answers_and_clears(api, emulator):
    api.post("/_emulator/faults", json={"delay": 0.3})
    slow = api.get("/api/v4/account")
    api.post("/_emulator/faults", json={})
    fast = api.get("/api/v4/account")

    assert slow.elapsed.total_seconds() >= 0.3
    assert fast.elapsed.total_seconds() < 0.3


def test_deleted_lead_cannot_be_patched_alone_or_in_a_batch(api):
    assert api.post("/_emulator/leads/23392663/delete").status_code == 200

    alone = api.patch("/api/v4/leads/23392663", json={"price": 5})
    batch = api.patch("/api/v4/leads", json=[{"id": 23392663, "price": 5}])

    assert alone.status_code == batch.status_code == 404
    assert batch.json()["detail"] == "Lead 23392663 not found"
    assert api.get("/api/v4/leads/23392663").status_code == 204
