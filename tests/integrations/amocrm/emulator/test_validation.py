"""Refused lead writes: AmoCRM's 400 validation body, with codes and dot-notation paths."""

import pytest

BOOKING_LEAD = 23392663
LEAD_PATH = f"/api/v4/leads/{BOOKING_LEAD}"


def field(field_id, *values):
    return {"custom_fields_values": [{"field_id": field_id, "values": list(values)}]}


def only_error(response):
    (entry,) = response.json()["validation-errors"]
    (error,) = entry["errors"]
    return error["code"], error["path"]


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        pytest.param({"colour": "red"}, "FieldNotExpected", "colour", id="unknown-key"),
        pytest.param({"name": 5}, "InvalidType", "name", id="name-not-string"),
        pytest.param({"price": "100"}, "InvalidType", "price", id="price-not-int"),
        pytest.param({"price": 1.5}, "InvalidType", "price", id="price-float"),
        pytest.param({"status_id": 999}, "NotSupportedChoice", "status_id", id="unknown-status"),
        pytest.param(
            {"pipeline_id": 999}, "NotSupportedChoice", "pipeline_id", id="unknown-pipeline"
        ),
        pytest.param(
            {"pipeline_id": 10164486, "status_id": 80453096},
            "NotSupportedChoice",
            "status_id",
            id="status-of-another-pipeline",
        ),
        pytest.param(
            {"status_id": 80453090}, "NotSupportedChoice", "status_id", id="unsorted-status"
        ),
        pytest.param(
            {"custom_fields_values": {"field_id": 1305111}},
            "InvalidType",
            "custom_fields_values",
            id="fields-not-a-list",
        ),
        pytest.param(
            field(999, {"value": "x"}),
            "NotSupportedChoice",
            "custom_fields_values.0.field_id",
            id="unknown-field",
        ),
        pytest.param(
            {"custom_fields_values": [{"values": [{"value": "x"}]}]},
            "FieldMissing",
            "custom_fields_values.0.field_id",
            id="no-field-id",
        ),
        pytest.param(
            field(1305309, {"value": "1"}),
            "FieldNotExpected",
            "custom_fields_values.0.field_id",
            id="computed-field",
        ),
        pytest.param(
            field(1305111, {"value": 88888}),
            "InvalidType",
            "custom_fields_values.0.values.0.value",
            id="text-not-string",
        ),
        pytest.param(
            field(1305111, {"value": "x", "enum_code": "WORK"}),
            "FieldNotExpected",
            "custom_fields_values.0.values.0.enum_code",
            id="unexpected-value-key",
        ),
        pytest.param(
            field(1305167, {"value": "12,5"}),
            "InvalidType",
            "custom_fields_values.0.values.0.value",
            id="numeric-not-a-number",
        ),
        pytest.param(
            field(1305305, {"value": "yes"}),
            "InvalidType",
            "custom_fields_values.0.values.0.value",
            id="checkbox-not-bool",
        ),
        pytest.param(
            field(1305059, {"value": "2026-08-25"}),
            "InvalidType",
            "custom_fields_values.0.values.0.value",
            id="date-without-offset",
        ),
        pytest.param(
            field(1287599, {"value": "2026-08-25T10:00:00"}),
            "InvalidType",
            "custom_fields_values.0.values.0.value",
            id="date_time-without-offset",
        ),
        pytest.param(
            field(1305201, {"value": "01.12.1950"}),
            "InvalidType",
            "custom_fields_values.0.values.0.value",
            id="birthday-unparsable",
        ),
        pytest.param(
            field(1305301, {"value": "Почта"}),
            "NotSupportedChoice",
            "custom_fields_values.0.values.0.value",
            id="select-value-not-in-enums",
        ),
        pytest.param(
            field(1305301, {"enum_id": 5013}),
            "NotSupportedChoice",
            "custom_fields_values.0.values.0.enum_id",
            id="select-enum-of-another-field",
        ),
        pytest.param(
            field(1305301, {"value": "Сайт", "enum_id": 5001}),
            "FieldNotExpected",
            "custom_fields_values.0.values.0.value",
            id="select-named-twice",
        ),
        pytest.param(
            field(1305111, {"value": "a"}, {"value": "b"}),
            "FieldNotExpected",
            "custom_fields_values.0.values.1",
            id="two-values-for-a-single-value-field",
        ),
        pytest.param(
            field(1305303, {"enum_id": 5011}, {"enum_id": 5001}),
            "NotSupportedChoice",
            "custom_fields_values.0.values.1.enum_id",
            id="multiselect-unknown-enum",
        ),
    ],
)
def test_refused_write_names_the_code_and_path(api, body, code, path):
    response = api.patch(LEAD_PATH, json=body)

    assert response.status_code == 400, response.text
    assert only_error(response) == (code, path)


def test_validation_body_has_amocrms_shape(api):
    response = api.patch(LEAD_PATH, json=field(999, {"value": "x"}))

    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json() == {
        "validation-errors": [
            {
                "request_id": "0",
                "errors": [
                    {
                        "code": "NotSupportedChoice",
                        "path": "custom_fields_values.0.field_id",
                        "detail": "The value you selected is not a valid choice.",
                    }
                ],
            }
        ],
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Request validation failed",
    }


def test_validation_errors_are_keyed_by_the_failing_items_request_id(api):
    response = api.post(
        "/api/v4/leads",
        json=[{"name": "ok"}, {"price": "x"}, {"name": 1, "request_id": "third"}],
    )

    entries = response.json()["validation-errors"]
    assert [entry["request_id"] for entry in entries] == ["1", "third"]


def test_a_refused_batch_changes_nothing(emulator, api):
    before = emulator.state.lead(BOOKING_LEAD)

    response = api.patch(
        "/api/v4/leads", json=[{"id": BOOKING_LEAD, "price": 5}, {"id": 11642589, "price": "5"}]
    )

    assert response.status_code == 400
    assert emulator.state.lead(BOOKING_LEAD) == before


def test_echoing_a_select_value_from_get_is_refused(emulator, api):
    api.patch(LEAD_PATH, json=field(1305301, {"enum_id": 5001}))
    echoed = emulator.state.lead(BOOKING_LEAD)["custom_fields_values"][0]["values"]

    response = api.patch(LEAD_PATH, json=field(1305301, *echoed))

    codes = [error["code"] for error in response.json()["validation-errors"][0]["errors"]]
    assert codes == ["FieldNotExpected", "FieldNotExpected"]


def test_add_lead_refuses_invalid_fields(emulator):
    with pytest.raises(ValueError, match="InvalidType"):
        emulator.state.add_lead(price="free")
