"""The admin as a superuser sees it: pages render, the audit trail filters, secrets stay hidden."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from integrations.amocrm.models import Account, Token
from integrations.sync.models import EventStatus, Flow, InboundEvent
from tests.factories import (
    CustomFieldFactory,
    DeliveryAttemptFactory,
    InboundEventFactory,
    LeadAliasFactory,
    PipelineFactory,
    StatusFactory,
)
from tests.integrations.rdesk.payloads import load_item

LONG_LIVED = "long-lived-token-value"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # admin_client creates a superuser per test; the real hasher makes that take 0.5 s.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def audit_trail(booked_flow, mc_flow):
    """A delivered booking with its attempt, a failed booking and a failed mc card."""
    item = load_item("rdesk-booked.json")
    delivered = InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.DELIVERED,
        payload=item,
        raw_body=b'[{"id": 88888, "lead_id": "23392663", "marker": "raw-body-marker"}]',
        rdesk_id="88888",
        lead_id="23392663",
    )
    DeliveryAttemptFactory(event=delivered)
    failed = InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.FAILED,
        last_error="Lead 777 not found in AmoCRM",
        rdesk_id="90001",
        lead_id="777",
    )
    failed_mc = InboundEventFactory(
        flow=mc_flow,
        status=EventStatus.FAILED,
        rdesk_id="185588",
        lead_id="11642589",
        received_at=timezone.now() - timedelta(days=40),
    )
    return {"delivered": delivered, "failed": failed, "failed_mc": failed_mc}


@pytest.fixture
def catalogue(account):
    CustomFieldFactory(account=account, field_id=1305167, name="Оплачено", type="numeric")
    StatusFactory(pipeline__account=account)
    LeadAliasFactory(account=account)


def changelist(model: str) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_changelist")


def change(model: str, pk: int) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_change", args=[pk])


def listed(response) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


MODELS = [
    "sync.flow",
    "sync.fieldmapping",
    "sync.inboundevent",
    "sync.deliveryattempt",
    "sync.leadalias",
    "amocrm.account",
    "amocrm.token",
    "amocrm.customfield",
    "amocrm.pipeline",
    "amocrm.status",
]


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_a_change_page_render(admin_client, audit_trail, catalogue, model):
    from django.apps import apps

    obj = apps.get_model(model).objects.first()

    assert admin_client.get(changelist(model)).status_code == 200
    assert admin_client.get(change(model, obj.pk)).status_code == 200


def test_flow_change_page_shows_its_field_mappings_inline(admin_client, booked_flow):
    response = admin_client.get(change("sync.flow", booked_flow.pk))

    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.model.__name__ == "FieldMapping"
    assert {form.instance.field_id for form in formset.forms} == set(
        booked_flow.mappings.values_list("field_id", flat=True)
    )
    assert "Booking status (status)" in response.content.decode()


def test_flow_mapping_offers_only_writable_catalogue_fields_by_name(admin_client, booked_flow):
    CustomFieldFactory(account=booked_flow.account, field_id=1, name="Оплачено")
    CustomFieldFactory(account=booked_flow.account, field_id=2, name="Формула", is_computed=True)

    response = admin_client.get(change("sync.flow", booked_flow.pk))

    form = response.context["inline_admin_formsets"][0].formset.empty_form
    choices = dict(form.fields["field_id"].choices)
    assert choices[1] == "Оплачено — text, 1"
    assert 2 not in choices


@pytest.mark.parametrize("model", ["sync.inboundevent", "sync.deliveryattempt"])
def test_audit_trail_cannot_be_added_or_deleted(admin_client, audit_trail, model):
    from django.apps import apps

    obj = apps.get_model(model).objects.first()

    assert admin_client.get(reverse(f"admin:{model.replace('.', '_')}_add")).status_code == 403
    delete = reverse(f"admin:{model.replace('.', '_')}_delete", args=[obj.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert apps.get_model(model).objects.filter(pk=obj.pk).exists()


def test_event_page_is_read_only_and_shows_raw_body_and_payload(admin_client, audit_trail):
    event = audit_trail["delivered"]

    response = admin_client.get(change("sync.inboundevent", event.pk))

    content = response.content.decode()
    assert "raw-body-marker" in content
    assert "Фамилия1 Имя1 Отчество1" in content  # from the parsed payload
    assert response.context["adminform"].form.fields == {}  # every field read-only
    assert 'name="_save"' not in content


def test_events_filter_by_status(admin_client, audit_trail):
    response = admin_client.get(changelist("sync.inboundevent"), {"status__exact": "failed"})

    assert listed(response) == {audit_trail["failed"].pk, audit_trail["failed_mc"].pk}


def test_events_filter_by_flow(admin_client, audit_trail, mc_flow):
    response = admin_client.get(changelist("sync.inboundevent"), {"flow__id__exact": mc_flow.pk})

    assert listed(response) == {audit_trail["failed_mc"].pk}


def test_events_filter_by_date(admin_client, audit_trail):
    # As the admin's own date filter links them: aware datetimes.
    since = timezone.now() - timedelta(days=7)
    until = timezone.now() + timedelta(days=1)

    response = admin_client.get(
        changelist("sync.inboundevent"),
        {"received_at__gte": since.isoformat(), "received_at__lt": until.isoformat()},
    )

    assert listed(response) == {audit_trail["delivered"].pk, audit_trail["failed"].pk}


@pytest.mark.parametrize(("query", "key"), [("23392663", "delivered"), ("185588", "failed_mc")])
def test_events_search_by_lead_id_and_rdesk_id(admin_client, audit_trail, query, key):
    response = admin_client.get(changelist("sync.inboundevent"), {"q": query})

    assert listed(response) == {audit_trail[key].pk}


def test_search_matches_whole_ids_only(admin_client, audit_trail):
    response = admin_client.get(changelist("sync.inboundevent"), {"q": "2339"})

    assert listed(response) == set()


def test_replay_action_queues_the_selected_failed_events(
    admin_client, audit_trail, enqueued, django_capture_on_commit_callbacks
):
    failed, failed_mc = audit_trail["failed"], audit_trail["failed_mc"]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist("sync.inboundevent"),
            {"action": "replay", ACTION_CHECKBOX_NAME: [failed.pk, failed_mc.pk]},
            follow=True,
        )

    assert "2 events queued for delivery." in response.content.decode()
    statuses = dict(InboundEvent.objects.values_list("pk", "status"))
    assert statuses[failed.pk] == statuses[failed_mc.pk] == EventStatus.QUEUED
    assert statuses[audit_trail["delivered"].pk] == EventStatus.DELIVERED
    accounts = {failed.flow.account_id, failed_mc.flow.account_id}
    assert sorted(call.args[0][0] for call in enqueued.call_args_list) == sorted(accounts)


# --- secrets --------------------------------------------------------------------------


@pytest.fixture
def secret_account(account) -> Account:
    account.long_lived_token = LONG_LIVED
    account.save()
    return account


def secrets_of(account: Account) -> list[str]:
    token = Token.objects.get(account=account)
    return [
        account.client_secret,
        account.long_lived_token,
        token.access_token,
        token.refresh_token,
    ]


@pytest.mark.parametrize(
    "page",
    [
        lambda account: change("amocrm.account", account.pk),
        lambda account: changelist("amocrm.account"),
        lambda account: change("amocrm.token", account.token.pk),
        lambda account: changelist("amocrm.token"),
    ],
    ids=["account", "accounts", "token", "tokens"],
)
def test_account_and_token_pages_never_show_a_secret(admin_client, secret_account, page):
    content = admin_client.get(page(secret_account)).content.decode()

    for secret in secrets_of(secret_account):
        assert secret not in content


def account_form(account: Account, **changes) -> dict:
    data = {
        "name": account.name,
        "subdomain": account.subdomain,
        "base_url": account.base_url,
        "client_id": account.client_id,
        "client_secret": "",
        "redirect_uri": account.redirect_uri,
        "long_lived_token": "",
        "timezone": account.timezone,
        "_save": "Save",
    }
    return {**data, **changes}


def test_saving_the_account_with_empty_secret_fields_keeps_the_stored_secrets(
    admin_client, secret_account
):
    response = admin_client.post(
        change("amocrm.account", secret_account.pk),
        account_form(secret_account, client_id="edited-client-id"),
    )

    assert response.status_code == 302
    secret_account.refresh_from_db()
    assert secret_account.client_id == "edited-client-id"
    assert secret_account.client_secret == "client-secret-value"
    assert secret_account.long_lived_token == LONG_LIVED


def test_typing_a_new_secret_replaces_the_stored_one(admin_client, secret_account):
    admin_client.post(
        change("amocrm.account", secret_account.pk),
        account_form(secret_account, client_secret="rotated-secret"),
    )

    secret_account.refresh_from_db()
    assert secret_account.client_secret == "rotated-secret"
    assert secret_account.long_lived_token == LONG_LIVED


def test_clearing_the_long_lived_token_removes_it(admin_client, secret_account):
    admin_client.post(
        change("amocrm.account", secret_account.pk),
        account_form(secret_account, clear_long_lived_token="on"),
    )

    secret_account.refresh_from_db()
    assert secret_account.long_lived_token == ""
    assert secret_account.client_secret == "client-secret-value"


def test_flow_admin_lists_the_seeded_flows(admin_client, db):
    response = admin_client.get(changelist("sync.flow"))

    assert listed(response) == set(Flow.objects.values_list("pk", flat=True))


# --- pipeline stages ------------------------------------------------------------------


@pytest.fixture
def pipelines(account):
    """The account's catalogue: a bookings pipeline with two stages."""
    pipeline = PipelineFactory(account=account, pipeline_id=10156066, name="Бронирования")
    StatusFactory(pipeline=pipeline, status_id=80453094, name="Новая бронь")
    StatusFactory(pipeline=pipeline, status_id=80453096, name="Заезд")
    return pipeline


def inline_formset(response, model_name: str):
    return next(
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model.__name__ == model_name
    )


def test_booked_flow_page_maps_booking_statuses_to_stages_chosen_by_name(
    admin_client, booked_flow, pipelines
):
    response = admin_client.get(change("sync.flow", booked_flow.pk))

    form = inline_formset(response, "FlowStatusMapping").empty_form
    assert dict(form.fields["pipeline_id"].choices)[10156066] == "Бронирования (10156066)"
    stages = dict(form.fields["status_id"].choices)["Бронирования (10156066)"]
    assert (80453096, "Заезд (80453096)") in stages


def test_booked_flow_page_takes_stage_ids_by_hand_before_the_catalogue_is_fetched(
    admin_client, booked_flow
):
    response = admin_client.get(change("sync.flow", booked_flow.pk))

    form = inline_formset(response, "FlowStatusMapping").empty_form
    assert not hasattr(form.fields["status_id"], "choices")


def test_mc_flow_page_has_no_booking_status_mappings(admin_client, mc_flow):
    response = admin_client.get(change("sync.flow", mc_flow.pk))

    models = [i.formset.model.__name__ for i in response.context["inline_admin_formsets"]]
    assert models == ["FieldMapping"]


def test_mock_pipeline_and_stage_are_chosen_by_name_once_the_catalogue_is_fetched(
    admin_client, booked_flow, pipelines
):
    response = admin_client.get(change("sync.flow", booked_flow.pk))

    fields = response.context["adminform"].form.fields
    assert dict(fields["mock_pipeline_id"].choices)[""] == "(the main one)"
    assert dict(fields["mock_pipeline_id"].choices)[10156066] == "Бронирования (10156066)"
    assert fields["mock_status_id"].required is False


def form_values(form) -> dict:
    """What the browser would post back for a rendered form, unchanged."""
    values = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        values[form.add_prefix(name)] = "on" if value is True else value
    return values


def flow_page_data(response) -> dict:
    data = form_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        data.update(form_values(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(form_values(form))
    return {**data, "_save": "Save"}


def test_mock_mode_and_a_stage_move_are_switched_on_in_the_flow_admin(
    admin_client, booked_flow, pipelines
):
    page = change("sync.flow", booked_flow.pk)
    data = flow_page_data(admin_client.get(page))
    data.update(
        {
            "mock_lead_id": "on",
            "mock_pipeline_id": "10156066",
            "status_mappings-TOTAL_FORMS": "1",
            "status_mappings-0-booking_status": "checkin",
            "status_mappings-0-pipeline_id": "10156066",
            "status_mappings-0-status_id": "80453096",
        }
    )

    response = admin_client.post(page, data)

    assert response.status_code == 302, response.context["errors"]
    booked_flow.refresh_from_db()
    assert (booked_flow.mock_lead_id, booked_flow.mock_pipeline_id) == (True, 10156066)
    assert booked_flow.mock_status_id is None
    mapping = booked_flow.status_mappings.get()
    assert (mapping.booking_status, mapping.pipeline_id, mapping.status_id) == (
        "checkin",
        10156066,
        80453096,
    )


def test_flow_admin_refuses_a_stage_of_another_pipeline(admin_client, booked_flow, pipelines):
    other = PipelineFactory(account=booked_flow.account, pipeline_id=10164486, name="Медцентр")
    StatusFactory(pipeline=other, status_id=80512652, name="Оплачено")
    page = change("sync.flow", booked_flow.pk)
    data = flow_page_data(admin_client.get(page))
    data.update(
        {
            "status_mappings-TOTAL_FORMS": "1",
            "status_mappings-0-booking_status": "checkin",
            "status_mappings-0-pipeline_id": "10156066",
            "status_mappings-0-status_id": "80512652",
        }
    )

    response = admin_client.post(page, data)

    assert response.status_code == 200
    assert "Status 80512652 is not a stage of pipeline 10156066." in response.content.decode()
    assert not booked_flow.status_mappings.exists()
