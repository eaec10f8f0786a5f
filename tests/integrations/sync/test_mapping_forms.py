"""Field and stage mappings can only be made right: what the forms offer and what they refuse."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from integrations.amocrm.encoding import FieldType, encode_values
from integrations.amocrm.services import catalogue_refresh
from integrations.sync.admin.forms import FieldMappingForm
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.mapping_checks import mappings_missing_field
from integrations.sync.mapping_types import REFUSALS, WRITABLE
from integrations.sync.models import FieldMapping
from tests.factories import (
    AccountFactory,
    CustomFieldFactory,
    FieldMappingFactory,
    FlowFactory,
    PipelineFactory,
    StatusFactory,
)

MOSCOW = ZoneInfo("Europe/Moscow")

# One catalogue field per AmoCRM type, ids 1000 + position.
FIELD_IDS = {field_type: 1001 + n for n, field_type in enumerate(FieldType.values)}
COMPUTED_ID = 1101
UNSUPPORTED_ID = 1102

# A source of each value type: (flow kind, named value).
SOURCES = {
    FieldType.NUMERIC: ("booked", "paid"),
    FieldType.DATE: ("booked", "check_in"),
    FieldType.DATE_TIME: ("booked", "created_at"),
    FieldType.BIRTHDAY: ("mc", "birthday"),
    FieldType.TEXT: ("booked", "status"),
    FieldType.TEXTAREA: ("booked", "guests_text"),
}

# What the transforms produce for each value type (see integrations/rdesk/transforms.py).
SAMPLE_VALUES = {
    FieldType.NUMERIC: Decimal("147966.30"),
    FieldType.DATE: date(2026, 12, 1),
    FieldType.DATE_TIME: datetime(2026, 12, 1, 19, 27, tzinfo=MOSCOW),
    FieldType.BIRTHDAY: date(1980, 5, 17),
    FieldType.TEXT: "booked",
    FieldType.TEXTAREA: "1. Guest one\n2. Guest two",
}


@pytest.fixture
def catalogue_account(db):
    """An account whose catalogue holds one field of every type, and two that cannot be set."""
    account = AccountFactory(name="Здравница")
    for field_type, field_id in FIELD_IDS.items():
        CustomFieldFactory(
            account=account, field_id=field_id, name=f"Поле {field_type}", type=field_type
        )
    CustomFieldFactory(
        account=account,
        field_id=COMPUTED_ID,
        name="Итог по формуле",
        type="numeric",
        is_computed=True,
    )
    CustomFieldFactory(account=account, field_id=UNSUPPORTED_ID, name="Адрес", type="smart_address")
    return account


@pytest.fixture
def flows(catalogue_account):
    return {kind: FlowFactory(kind=kind, account=catalogue_account) for kind in ("booked", "mc")}


def mapping_form(flow, **data) -> FieldMappingForm:
    return FieldMappingForm(data={"flow": flow.pk, "enabled": "on", **data})


def form_for(flows, value_type: str, field_type: str) -> FieldMappingForm:
    kind, source = SOURCES[value_type]
    return mapping_form(flows[kind], source=source, field_id=FIELD_IDS[field_type])


REFUSED_PAIRS = [
    pytest.param(value_type, field_type, id=f"{value_type}->{field_type}")
    for value_type, refused in REFUSALS.items()
    for field_type in refused
]
WRITABLE_PAIRS = [
    pytest.param(value_type, field_type, id=f"{value_type}->{field_type}")
    for value_type, writable in WRITABLE.items()
    for field_type in sorted(writable)
]


# --- the table ------------------------------------------------------------------------


def test_every_value_type_a_flow_produces_is_in_the_table():
    produced = {t for spec in FLOW_KINDS.values() for t in spec.field_types.values()}

    assert produced <= REFUSALS.keys()
    assert set(SOURCES) == set(REFUSALS)


@pytest.mark.parametrize(("value_type", "field_type"), WRITABLE_PAIRS)
def test_a_writable_pair_is_one_the_encoder_can_write(value_type, field_type):
    values = encode_values(field_type, SAMPLE_VALUES[value_type], tz=MOSCOW)

    assert values
    assert values[0]["value"] not in ("", None)


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(("value_type", "field_type"), REFUSED_PAIRS)
def test_a_value_that_cannot_be_written_to_the_field_type_is_refused(flows, value_type, field_type):
    form = form_for(flows, value_type, field_type)

    assert not form.is_valid()
    (message,) = form.errors["field_id"]
    assert str(REFUSALS[value_type][field_type]) in message
    assert f"Поле {field_type}" in message


@pytest.mark.parametrize(("value_type", "field_type"), WRITABLE_PAIRS)
def test_a_value_goes_to_any_field_type_that_can_hold_it(flows, value_type, field_type):
    form = form_for(flows, value_type, field_type)

    assert form.is_valid(), form.errors
    assert form.save().field_type == field_type


def test_textarea_to_text_is_refused_as_too_long(flows):
    form = form_for(flows, FieldType.TEXTAREA, FieldType.TEXT)

    assert not form.is_valid()
    assert form.errors["field_id"] == [
        "Поле text is a text field; “Guests (text)” (text area) cannot be written to it: "
        "it is multi-line text, longer than a text field holds; use a text area field."
    ]


def test_an_unknown_field_id_is_refused(flows):
    form = mapping_form(flows["booked"], source="paid", field_id=999999)

    assert not form.is_valid()
    assert form.errors["field_id"] == [
        "Field 999999 is not in the catalogue of account Здравница; refresh the catalogue "
        "or pick a field from the list."
    ]


def test_a_computed_field_is_refused(flows):
    form = mapping_form(flows["booked"], source="paid", field_id=COMPUTED_ID)

    assert not form.is_valid()
    assert form.errors["field_id"] == [
        "Итог по формуле is computed by AmoCRM (read-only): nothing can be written to it."
    ]


def test_a_field_type_without_an_encoder_is_refused(flows):
    form = mapping_form(flows["booked"], source="status", field_id=UNSUPPORTED_ID)

    assert not form.is_valid()
    assert form.errors["field_id"] == [
        "Адрес is a field of type smart_address, which the hub cannot write."
    ]


def test_a_field_already_mapped_in_the_flow_is_refused(flows):
    flow = flows["booked"]
    FieldMappingFactory(flow=flow, source="total", field_id=FIELD_IDS["numeric"])

    form = mapping_form(flow, source="paid", field_id=FIELD_IDS["numeric"])

    assert not form.is_valid()
    assert form.errors["field_id"] == [
        "Поле numeric is already mapped in this flow; a field takes one value."
    ]


def test_the_same_field_in_another_flow_is_fine(flows, catalogue_account):
    other = FlowFactory(kind="booked", account=catalogue_account)
    FieldMappingFactory(flow=other, source="paid", field_id=FIELD_IDS["numeric"])

    assert mapping_form(flows["booked"], source="paid", field_id=FIELD_IDS["numeric"]).is_valid()


def test_no_mapping_is_saved_before_the_account_s_fields_are_fetched(db):
    flow = FlowFactory(kind="booked", account=AccountFactory(name="Новый аккаунт"))

    form = mapping_form(flow, source="paid", field_id=1305167)

    assert not form.is_valid()
    assert form.errors["field_id"] == [
        "Account Новый аккаунт has no fetched fields yet. Fetch the account's fields first: "
        "Accounts -> action “Fetch fields and pipelines from AmoCRM”."
    ]
    assert "Fetch the account's fields first" in form.fields["field_id"].help_text


def test_a_value_the_flow_does_not_produce_is_refused(flows):
    form = mapping_form(flows["mc"], source="check_in", field_id=FIELD_IDS["date"])

    assert not form.is_valid()
    assert "Select a valid choice" in form.errors["source"][0]


def test_a_model_form_of_its_own_gets_the_same_refusal(flows):
    # Any ModelForm is safe: the model's clean() judges, not only the admin's form.
    from django import forms

    class BareForm(forms.ModelForm):
        class Meta:
            model = FieldMapping
            fields = ["flow", "source", "field_id", "field_type"]

    form = BareForm(
        data={
            "flow": flows["booked"].pk,
            "source": "paid",
            "field_id": 999999,
            "field_type": "numeric",
        }
    )

    assert not form.is_valid()
    assert "Field 999999 is not in the catalogue" in form.errors["field_id"][0]


# --- the field type follows the catalogue ----------------------------------------------


def test_the_field_type_follows_from_the_catalogue_not_from_the_form(flows):
    form = FieldMappingForm(
        data={
            "flow": flows["booked"].pk,
            "source": "paid",
            "field_id": FIELD_IDS["price"],
            "field_type": "text",  # posted by hand: ignored
            "enabled": "on",
        }
    )

    assert "field_type" not in form.fields
    assert form.is_valid(), form.errors
    assert form.save().field_type == "price"


def test_the_form_offers_values_by_label_and_fields_by_name_type_and_id(flows):
    form = FieldMappingForm(initial={"flow": flows["booked"].pk})

    sources = dict(form.fields["source"].choices)
    fields = dict(form.fields["field_id"].choices)
    assert sources["check_in"] == "Check-in date (check_in)"
    assert fields[FIELD_IDS["date"]] == f"Поле date — date, {FIELD_IDS['date']}"
    assert COMPUTED_ID not in fields
    assert UNSUPPORTED_ID not in fields


# --- the standalone admin -------------------------------------------------------------


ADD = reverse("admin:sync_fieldmapping_add")


def test_adding_a_mapping_alone_asks_for_the_flow_first(hub_admin_client, flows):
    page = hub_admin_client.get(ADD)

    assert list(page.context["adminform"].form.fields) == ["flow"]
    response = hub_admin_client.post(ADD, {"flow": flows["booked"].pk})
    assert response.status_code == 302
    assert response.url == f"{ADD}?flow={flows['booked'].pk}"
    assert not flows["booked"].mappings.exists()


def test_a_valid_mapping_is_saved_through_the_admin_add_page(hub_admin_client, flows):
    flow = flows["booked"]
    url = f"{ADD}?flow={flow.pk}"
    page = hub_admin_client.get(url)
    assert f"Поле date — date, {FIELD_IDS['date']}" in page.content.decode()

    response = hub_admin_client.post(
        url,
        {"flow": flow.pk, "source": "check_in", "field_id": FIELD_IDS["date"], "enabled": "on"},
    )

    assert response.status_code == 302
    mapping = flow.mappings.get()
    assert (mapping.flow, mapping.source, mapping.field_id, mapping.field_type) == (
        flow,
        "check_in",
        FIELD_IDS["date"],
        "date",
    )


def test_the_admin_add_page_refuses_an_unknown_field_id(hub_admin_client, flows):
    flow = flows["booked"]

    response = hub_admin_client.post(
        f"{ADD}?flow={flow.pk}",
        {"flow": flow.pk, "source": "paid", "field_id": 999999, "enabled": "on"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["field_id"] == [
        "Field 999999 is not in the catalogue of account Здравница; refresh the catalogue "
        "or pick a field from the list."
    ]
    assert not flow.mappings.exists()


def test_the_admin_change_page_shows_the_field_type_read_only(hub_admin_client, flows):
    mapping = FieldMappingFactory(
        flow=flows["booked"], source="paid", field_id=FIELD_IDS["numeric"], field_type="numeric"
    )

    response = hub_admin_client.get(reverse("admin:sync_fieldmapping_change", args=[mapping.pk]))

    assert "field_type" not in response.context["adminform"].form.fields
    assert "Number" in response.content.decode()


def test_a_stored_mapping_that_does_not_fit_its_field_is_flagged_on_its_page(
    hub_admin_client, flows
):
    # As the old service's doc_num -> numeric field: "A-17" is no number.
    mapping = FieldMappingFactory(
        flow=flows["booked"], source="doc_num", field_id=FIELD_IDS["numeric"], field_type="numeric"
    )

    response = hub_admin_client.get(reverse("admin:sync_fieldmapping_change", args=[mapping.pk]))

    assert (
        "Поле numeric is a number field: AmoCRM accepts only a number there."
        in response.content.decode()
    )


def test_the_admin_refuses_a_duplicate_with_a_form_error(hub_admin_client, flows):
    flow = flows["booked"]
    FieldMappingFactory(flow=flow, source="total", field_id=FIELD_IDS["numeric"])

    response = hub_admin_client.post(
        f"{ADD}?flow={flow.pk}",
        {"flow": flow.pk, "source": "paid", "field_id": FIELD_IDS["numeric"], "enabled": "on"},
    )

    assert response.status_code == 200
    assert "already mapped in this flow" in response.context["adminform"].form.errors["field_id"][0]
    assert flow.mappings.count() == 1


def test_an_auditor_cannot_even_choose_the_flow_of_a_new_mapping(auditor_client, flows):
    response = auditor_client.post(ADD, {"flow": flows["booked"].pk})

    assert response.status_code == 403


# --- the flow page --------------------------------------------------------------------


def flow_page(flow) -> str:
    return reverse("admin:sync_flow_change", args=[flow.pk])


def flow_post(flow, *rows, initial: int = 0) -> dict:
    """A flow page post with its settings unchanged and ``rows`` as new mapping rows."""
    data = {
        "name": flow.name,
        "kind": flow.kind,
        "endpoint_path": flow.endpoint_path,
        "account": flow.account_id,
        "enabled": "on",
        "price_source": flow.price_source,
        "mappings-TOTAL_FORMS": str(len(rows)),
        "mappings-INITIAL_FORMS": str(initial),
        "status_mappings-TOTAL_FORMS": "0",
        "status_mappings-INITIAL_FORMS": "0",
        "_save": "Save",
    }
    for n, row in enumerate(rows):
        data.update({f"mappings-{n}-{key}": value for key, value in row.items()})
        data[f"mappings-{n}-enabled"] = "on"
    return data


def test_the_flow_page_refuses_an_unknown_field_id(hub_admin_client, flows):
    flow = flows["booked"]

    response = hub_admin_client.post(
        flow_page(flow), flow_post(flow, {"source": "paid", "field_id": "999999"})
    )

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors["field_id"] == [
        "Field 999999 is not in the catalogue of account Здравница; refresh the catalogue "
        "or pick a field from the list."
    ]
    assert not flow.mappings.exists()


def test_the_flow_page_refuses_a_field_chosen_twice(hub_admin_client, flows):
    flow = flows["booked"]
    row = {"source": "paid", "field_id": str(FIELD_IDS["numeric"])}

    response = hub_admin_client.post(
        flow_page(flow), flow_post(flow, row, {**row, "source": "total"})
    )

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[1].errors["field_id"] == [
        "This field is chosen twice in this flow; a field takes one value."
    ]
    assert not flow.mappings.exists()


def test_the_flow_page_saves_a_mapping_with_the_catalogue_s_type(hub_admin_client, flows):
    flow = flows["booked"]

    response = hub_admin_client.post(
        flow_page(flow),
        flow_post(flow, {"source": "check_in", "field_id": str(FIELD_IDS["date_time"])}),
    )

    assert response.status_code == 302
    assert list(flow.mappings.values_list("source", "field_id", "field_type")) == [
        ("check_in", FIELD_IDS["date_time"], "date_time")
    ]


def test_the_flow_page_still_saves_with_mappings_stored_before_the_catalogue(
    hub_admin_client, booked_flow
):
    # The seeded mappings predate any catalogue; an unrelated change must not be blocked.
    page = hub_admin_client.get(flow_page(booked_flow))
    formset = page.context["inline_admin_formsets"][0].formset
    data = flow_post(booked_flow, initial=len(formset.forms))
    data["mappings-TOTAL_FORMS"] = str(len(formset.forms))
    for form in formset.forms:
        for name in ("id", "source", "field_id"):
            data[form.add_prefix(name)] = form[name].value()
        data[form.add_prefix("enabled")] = "on"
    data["name"] = "Брони"

    response = hub_admin_client.post(flow_page(booked_flow), data)

    assert response.status_code == 302, response.context["errors"]
    booked_flow.refresh_from_db()
    assert booked_flow.name == "Брони"


def test_a_new_flow_is_saved_before_its_mappings_are_chosen(hub_admin_client, db):
    response = hub_admin_client.get(reverse("admin:sync_flow_add"))

    assert response.context["inline_admin_formsets"] == []
    assert "Save the flow first" in response.content.decode()


def test_the_flow_page_says_when_the_catalogue_was_never_fetched(hub_admin_client, booked_flow):
    response = hub_admin_client.get(flow_page(booked_flow))

    assert "Fetch the account&#x27;s fields first" in response.content.decode()


# --- fields that disappeared from AmoCRM ---------------------------------------------


@pytest.fixture
def vanished(flows):
    """A mapping whose field a catalogue refresh no longer found."""
    flow = flows["booked"]
    kept = FieldMappingFactory(flow=flow, source="paid", field_id=FIELD_IDS["numeric"])
    gone = FieldMappingFactory(flow=flow, source="check_in", field_id=4242, field_type="date")
    return {"flow": flow, "kept": kept, "gone": gone}


def test_a_refresh_that_no_longer_finds_a_field_flags_its_mapping(emulator, emulator_account):
    flow = FlowFactory(kind="booked", account=emulator_account)
    catalogue_refresh(account=emulator_account)
    mapping = FieldMappingFactory(flow=flow, source="paid", field_id=1305167)
    assert list(mappings_missing_field(flow_id=flow.pk)) == []

    del emulator.state.custom_fields[1305167]  # an AmoCRM admin deletes "Оплачено"
    catalogue_refresh(account=emulator_account)

    assert list(mappings_missing_field(flow_id=flow.pk)) == [mapping]
    assert list(mappings_missing_field()) == [mapping]


def test_the_flow_page_warns_of_a_mapping_whose_field_is_gone(hub_admin_client, vanished):
    response = hub_admin_client.get(flow_page(vanished["flow"]))

    warnings = [str(m) for m in response.context["messages"]]
    assert any(
        "no longer in AmoCRM" in w and "Check-in date (check_in) → field 4242" in w
        for w in warnings
    )
    assert not any("(paid)" in w for w in warnings)


def test_the_flow_page_marks_the_row_whose_field_is_gone(hub_admin_client, vanished):
    response = hub_admin_client.get(flow_page(vanished["flow"]))

    inline = response.context["inline_admin_formsets"][0]
    checks = {
        form.instance.source: inline.opts.catalogue_check(form.instance)
        for form in inline.formset.forms
    }
    assert "Field 4242 is no longer in AmoCRM" in checks["check_in"]
    assert checks["paid"] == "✓"


def test_the_flow_page_keeps_the_vanished_field_on_offer_so_the_row_posts_back(
    hub_admin_client, vanished
):
    response = hub_admin_client.get(flow_page(vanished["flow"]))

    form = next(
        f
        for f in response.context["inline_admin_formsets"][0].formset.forms
        if f.instance.source == "check_in"
    )
    assert dict(form.fields["field_id"].choices)[4242] == "Field 4242 — not in AmoCRM any more"


def test_the_flow_page_saves_with_a_vanished_row_left_as_it_was(hub_admin_client, vanished):
    flow = vanished["flow"]
    rows = [
        {"id": m.pk, "source": m.source, "field_id": m.field_id}
        for m in (vanished["kept"], vanished["gone"])
    ]

    response = hub_admin_client.post(
        flow_page(flow), {**flow_post(flow, *rows, initial=2), "name": "Брони"}
    )

    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.name == "Брони"
    assert flow.mappings.count() == 2


def test_the_mapping_list_has_a_column_for_fields_gone_from_amocrm(hub_admin_client, vanished):
    response = hub_admin_client.get(reverse("admin:sync_fieldmapping_changelist"))

    content = response.content.decode()
    assert "missing from AmoCRM" in content
    assert "Поле numeric" in content


def test_the_mapping_list_filters_the_mappings_whose_field_is_gone(hub_admin_client, vanished):
    response = hub_admin_client.get(
        reverse("admin:sync_fieldmapping_changelist"), {"in_amocrm": "no"}
    )

    assert [m.pk for m in response.context["cl"].result_list] == [vanished["gone"].pk]


# --- stages ---------------------------------------------------------------------------


@pytest.fixture
def stages(flows):
    """Two pipelines of the booked flow's account, one with an Unsorted stage."""
    account = flows["booked"].account
    bookings = PipelineFactory(account=account, pipeline_id=10156066, name="Бронирования")
    StatusFactory(pipeline=bookings, status_id=80453090, name="Неразобранное", type=1)
    StatusFactory(pipeline=bookings, status_id=80453096, name="Заезд")
    clinic = PipelineFactory(account=account, pipeline_id=10164486, name="Медцентр")
    StatusFactory(pipeline=clinic, status_id=80512652, name="Оплачено")
    return flows["booked"]


def stage_post(flow, pipeline_id, status_id) -> dict:
    return {
        **flow_post(flow),
        "status_mappings-TOTAL_FORMS": "1",
        "status_mappings-0-booking_status": "checkin",
        "status_mappings-0-pipeline_id": str(pipeline_id),
        "status_mappings-0-status_id": str(status_id),
    }


def status_errors(response) -> dict:
    formset = next(
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model.__name__ == "FlowStatusMapping"
    )
    return formset.forms[0].errors


def test_a_stage_outside_the_chosen_pipeline_is_refused(hub_admin_client, stages):
    response = hub_admin_client.post(flow_page(stages), stage_post(stages, 10156066, 80512652))

    assert response.status_code == 200
    assert status_errors(response)["status_id"] == [
        "Status 80512652 is not a stage of pipeline 10156066."
    ]
    assert not stages.status_mappings.exists()


def test_the_unsorted_stage_is_refused(hub_admin_client, stages):
    response = hub_admin_client.post(flow_page(stages), stage_post(stages, 10156066, 80453090))

    assert status_errors(response)["status_id"] == ["Leads cannot be put into the Unsorted stage."]


def test_won_is_allowed_in_any_pipeline(hub_admin_client, stages):
    response = hub_admin_client.post(flow_page(stages), stage_post(stages, 10164486, 142))

    assert response.status_code == 302
    assert stages.status_mappings.get().status_id == 142


def test_stage_choices_are_grouped_by_pipeline_without_unsorted(hub_admin_client, stages):
    response = hub_admin_client.get(flow_page(stages))

    form = response.context["adminform"].form
    groups = dict(form.fields["mock_status_id"].choices)
    assert groups["Бронирования (10156066)"] == [(80453096, "Заезд (80453096)")]
    assert groups["Медцентр (10164486)"] == [(80512652, "Оплачено (80512652)")]


def test_a_mock_stage_outside_the_mock_pipeline_is_refused(hub_admin_client, stages):
    data = {**flow_post(stages), "mock_pipeline_id": "10156066", "mock_status_id": "80512652"}

    response = hub_admin_client.post(flow_page(stages), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["mock_status_id"] == [
        "Status 80512652 is not a stage of pipeline 10156066."
    ]
