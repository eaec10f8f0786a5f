"""Who may open which admin page and run which action: every role against every URL.

The pages come from the site as it is served: for each ModelAdmin its standard pages,
its own URLs and its actions, the admin's app pages, and the AmoCRM OAuth views. What
each role may do comes from the tables below, keyed by URL name or action. A page or
action the tables do not name fails its tests, so whoever adds one decides who may use
it; an entry for a page that does not exist (yet) is simply not checked.

Allowed: 200 or a redirect that is not to the login page. Refused: the login page for
anonymous visitors, 403 for staff (404 for an app page the role sees nothing of, as
Django answers), and nothing written to the database, no call made to AmoCRM. An action
the role is not offered is refused with 403 too, and not run.
"""

import html
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, resolve, reverse
from django.utils import timezone
from django_celery_beat import models as beat

import hub.urls  # the site as served: some admins are set up where the URLs are built
from hub.admin_site import BEAT_ADMINS, SuperusersOnly
from integrations.amocrm.models import Account, ApiCallRecord
from integrations.amocrm.oauth import SESSION_KEY
from integrations.monitoring.models import AlertChannel, Incident, SentAlert
from integrations.sync.models import (
    BatchCall,
    BookingStatus,
    EventStatus,
    FieldMapping,
    Flow,
    FlowStatusMapping,
    PersonalDataAccess,
    Replay,
)
from integrations.sync.roles import AUDITORS, HUB_ADMINS, OPERATORS
from tests.conftest import fixture_json
from tests.factories import (
    AccountFactory,
    CustomFieldFactory,
    DeliveryAttemptFactory,
    InboundEventFactory,
    LeadAliasFactory,
    PipelineFactory,
    StatusFactory,
    TokenFactory,
    UserFactory,
)
from tests.integrations.rdesk.payloads import load_item

ROLES = ("anonymous", "staff", "auditor", "operator", "hub_admin", "superuser")

# --- who may: the table -------------------------------------------------------------

STAFF = frozenset(ROLES) - {"anonymous"}
READ = frozenset({"auditor", "operator", "hub_admin", "superuser"})
OPERATE = frozenset({"operator", "hub_admin", "superuser"})
CONFIGURE = frozenset({"hub_admin", "superuser"})
SUPERUSER = frozenset({"superuser"})
NOBODY = frozenset()
# The alert history: hub admins and auditors (operators act on the dashboard instead).
ALERTS = frozenset({"auditor", "hub_admin", "superuser"})

PREVIEW = READ  # sync.preview_event
EXPORT = OPERATE  # sync.export_events
REPLAY = OPERATE  # sync.replay_event
CONNECT = CONFIGURE  # amocrm.connect_account


def model_pages(info: str, *, view, add, change, delete) -> dict[str, frozenset]:
    """A ModelAdmin's standard pages: reading them needs view, saving needs change."""
    return {
        f"GET admin:{info}_changelist": view,
        f"GET admin:{info}_add": add,
        f"GET admin:{info}_change": view | change,
        f"POST admin:{info}_change": change,
        f"GET admin:{info}_delete": delete,
        f"GET admin:{info}_history": view | change,
    }


def configuration(info: str) -> dict[str, frozenset]:
    return model_pages(info, view=READ, add=CONFIGURE, change=CONFIGURE, delete=CONFIGURE)


def audit_trail(info: str) -> dict[str, frozenset]:
    """Written by the hub only: everyone with a role reads it, nobody edits it."""
    return model_pages(info, view=READ, add=NOBODY, change=NOBODY, delete=NOBODY)


def superusers_only(info: str) -> dict[str, frozenset]:
    return model_pages(info, view=SUPERUSER, add=SUPERUSER, change=SUPERUSER, delete=SUPERUSER)


def login_records(info: str) -> dict[str, frozenset]:
    return model_pages(info, view=SUPERUSER, add=NOBODY, change=SUPERUSER, delete=SUPERUSER)


URLS: dict[str, frozenset] = {
    "GET admin:index": STAFF,
    "GET admin:app_list auth": SUPERUSER,
    "GET admin:app_list django_celery_beat": SUPERUSER,
    "GET admin:app_list auditlog": READ,
    "GET admin:app_list amocrm": READ,
    "GET admin:app_list sync": READ,
    # Users and groups: superusers manage who holds which role.
    **superusers_only("auth_user"),
    "GET admin:auth_user_password_change": SUPERUSER,
    **superusers_only("auth_group"),
    # Beat's schedule comes from settings; only superusers see it.
    **superusers_only("django_celery_beat_periodictask"),
    **superusers_only("django_celery_beat_clockedschedule"),
    **superusers_only("django_celery_beat_crontabschedule"),
    **superusers_only("django_celery_beat_solarschedule"),
    **superusers_only("django_celery_beat_intervalschedule"),
    # Login attempts and lockouts (django-axes) name people and addresses: superusers only;
    # axes itself writes them, so nobody adds one.
    "GET admin:app_list axes": SUPERUSER,
    **login_records("axes_accessattempt"),
    **login_records("axes_accesslog"),
    **login_records("axes_accessfailurelog"),
    # Who changed the configuration: read-only for everyone.
    **audit_trail("auditlog_logentry"),
    # AmoCRM accounts and what the hub fetched of them.
    **configuration("amocrm_account"),
    "POST admin:amocrm_account_test_connection": CONNECT,
    "GET amocrm:oauth-start": CONNECT,
    "GET amocrm:oauth-callback": CONNECT,
    **audit_trail("amocrm_apicallrecord"),
    # Deleting a token pair disconnects the account: left to superusers.
    **model_pages("amocrm_token", view=READ, add=NOBODY, change=NOBODY, delete=SUPERUSER),
    # The catalogue mirrors AmoCRM: fetched, not edited.
    **model_pages("amocrm_customfield", view=READ, add=NOBODY, change=NOBODY, delete=SUPERUSER),
    **model_pages("amocrm_pipeline", view=READ, add=NOBODY, change=NOBODY, delete=SUPERUSER),
    **model_pages("amocrm_status", view=READ, add=NOBODY, change=NOBODY, delete=SUPERUSER),
    # Flows and their mappings.
    **configuration("sync_flow"),
    "GET admin:sync_flow_preview": PREVIEW,
    "POST admin:sync_flow_preview": PREVIEW,
    "POST admin:sync_flow_intake_security": CONFIGURE,  # sync.change_flow
    **configuration("sync_fieldmapping"),
    **configuration("sync_flowstatusmapping"),
    **configuration("sync_leadalias"),
    # The audit trail of deliveries.
    **audit_trail("sync_inboundevent"),
    "GET admin:sync_inboundevent_preview": PREVIEW,
    "GET admin:sync_inboundevent_export": EXPORT,
    "POST admin:sync_inboundevent_replay": REPLAY,
    "POST admin:sync_inboundevent_replay_filtered": REPLAY,
    **audit_trail("sync_deliveryattempt"),
    **audit_trail("sync_batchcall"),
    **audit_trail("sync_replay"),
    **audit_trail("sync_personaldataaccess"),
    # Alerts: channels hold bot tokens, so only those who configure them see them.
    "GET admin:app_list monitoring": ALERTS,
    **model_pages(
        "monitoring_alertchannel", view=CONFIGURE, add=CONFIGURE, change=CONFIGURE, delete=CONFIGURE
    ),
    **model_pages("monitoring_incident", view=ALERTS, add=NOBODY, change=NOBODY, delete=NOBODY),
    **model_pages("monitoring_sentalert", view=ALERTS, add=NOBODY, change=NOBODY, delete=NOBODY),
}

ACTIONS: dict[str, frozenset] = {
    "auth_user.delete_selected": SUPERUSER,
    "auth_group.delete_selected": SUPERUSER,
    "django_celery_beat_periodictask.delete_selected": SUPERUSER,
    "django_celery_beat_periodictask.enable_tasks": SUPERUSER,
    "django_celery_beat_periodictask.disable_tasks": SUPERUSER,
    "django_celery_beat_periodictask.toggle_tasks": SUPERUSER,
    "django_celery_beat_periodictask.run_tasks": SUPERUSER,
    "django_celery_beat_clockedschedule.delete_selected": SUPERUSER,
    "django_celery_beat_crontabschedule.delete_selected": SUPERUSER,
    "django_celery_beat_solarschedule.delete_selected": SUPERUSER,
    "django_celery_beat_intervalschedule.delete_selected": SUPERUSER,
    "auditlog_logentry.delete_selected": NOBODY,
    "axes_accessattempt.delete_selected": SUPERUSER,
    "axes_accesslog.delete_selected": SUPERUSER,
    "axes_accessfailurelog.delete_selected": SUPERUSER,
    "amocrm_account.delete_selected": CONFIGURE,
    "amocrm_account.test_connection": CONNECT,
    "amocrm_account.refresh_catalogue": CONFIGURE,  # amocrm.change_account
    "amocrm_apicallrecord.delete_selected": NOBODY,
    "amocrm_token.delete_selected": SUPERUSER,
    "amocrm_customfield.delete_selected": SUPERUSER,
    "amocrm_pipeline.delete_selected": SUPERUSER,
    "amocrm_status.delete_selected": SUPERUSER,
    "sync_flow.delete_selected": CONFIGURE,
    "sync_fieldmapping.delete_selected": CONFIGURE,
    "sync_flowstatusmapping.delete_selected": CONFIGURE,
    "sync_leadalias.delete_selected": CONFIGURE,
    "sync_inboundevent.delete_selected": NOBODY,
    "sync_inboundevent.replay": REPLAY,
    "sync_inboundevent.replay_matching": REPLAY,
    "sync_inboundevent.revalidate": REPLAY,
    "sync_inboundevent.export_csv": EXPORT,
    "sync_deliveryattempt.delete_selected": NOBODY,
    "sync_batchcall.delete_selected": NOBODY,
    "sync_replay.delete_selected": NOBODY,
    "sync_personaldataaccess.delete_selected": NOBODY,
    "monitoring_alertchannel.delete_selected": CONFIGURE,
    "monitoring_alertchannel.send_test": CONFIGURE,
    "monitoring_incident.delete_selected": NOBODY,
    "monitoring_sentalert.delete_selected": NOBODY,
}

# The admin's own account pages (every staff user has them) and helper endpoints that
# answer only with their own query parameters; they show no hub data.
SITE_PLUMBING = frozenset(
    {
        "login",
        "logout",
        "password_change",
        "password_change_done",
        "jsi18n",
        "autocomplete",
        "view_on_site",
    }
)
STANDARD_PAGES = {"changelist": ["GET"], "add": ["GET"], "change": ["GET", "POST"]}
STANDARD_PAGES |= {"delete": ["GET"], "history": ["GET"]}
# The object a URL argument names, for URLs outside a ModelAdmin's own.
ARGUMENT_MODELS = {
    "account_id": "amocrm.account",
    "flow_id": "sync.flow",
    "event_id": "sync.inboundevent",
}
NAMESPACES = ("admin", "amocrm")

# --- what the site serves -----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One request to make: a URL (or an action on a changelist) with one method."""

    key: str
    url_name: str = ""
    method: str = "GET"
    arguments: tuple[tuple[str, str], ...] = ()  # (URL argument, label of its object's model)
    fixed: tuple[tuple[str, str], ...] = ()  # URL arguments with a given value
    action: str = ""
    model: str = ""  # the action's model

    @property
    def allowed(self) -> frozenset | None:
        return (ACTIONS if self.action else URLS).get(self.key)


def _walk(patterns, *, namespace="", route="", model=""):
    """Every URL pattern under ``patterns``: (namespace, route, pattern, its admin's model)."""
    for pattern in patterns:
        here = route + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace]))
            owner = MODEL_ROUTES.get(here, model)
            yield from _walk(pattern.url_patterns, namespace=inner, route=here, model=owner)
        else:
            yield namespace, here, pattern, model


MODEL_ROUTES = {
    f"admin/{m._meta.app_label}/{m._meta.model_name}/": m._meta.label_lower
    for m in admin.site._registry
}


def _arguments(pattern: URLPattern, model: str) -> tuple[tuple[str, str], ...]:
    converters = getattr(pattern.pattern, "converters", None)
    names = list(converters) if converters else list(pattern.pattern.regex.groupindex)
    # Within a ModelAdmin's URLs an argument names its object (object_id, id, ...).
    return tuple((name, model or ARGUMENT_MODELS.get(name, "?")) for name in names)


def _is_djangos_own(pattern: URLPattern, route: str, model: str) -> bool:
    """Unnamed URLs Django adds: the catch-all and the old change URL's redirect."""
    return pattern.callback.__name__ == "catch_all_view" or (
        bool(model) and route.endswith("/<path:object_id>/")
    )


def url_targets() -> list[Target]:
    targets = []
    for namespace, route, pattern, model in _walk(hub.urls.urlpatterns):
        if namespace not in NAMESPACES:
            continue
        if pattern.name is None:
            if not _is_djangos_own(pattern, route, model):
                targets.append(Target(key=f"GET unnamed /{route}"))
            continue
        if namespace == "admin" and pattern.name in SITE_PLUMBING:
            continue
        name = f"{namespace}:{pattern.name}"
        if name == "admin:app_list":
            for app_label in sorted({m._meta.app_label for m in admin.site._registry}):
                key = f"GET {name} {app_label}"
                targets.append(Target(key=key, url_name=name, fixed=(("app_label", app_label),)))
            continue
        info = model.replace(".", "_")
        page = pattern.name.removeprefix(f"{info}_") if model else ""
        required = STANDARD_PAGES.get(page, [])
        # A URL the table does not name still gets a (failing) GET.
        methods = {m for m in ("GET", "POST") if f"{m} {name}" in URLS} | set(required)
        for method in sorted(methods or {"GET"}):
            targets.append(
                Target(
                    key=f"{method} {name}",
                    url_name=name,
                    method=method,
                    arguments=_arguments(pattern, model),
                )
            )
    return targets


def action_targets() -> list[Target]:
    targets = []
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        for _function, name, _description in model_admin._get_base_actions():
            targets.append(
                Target(
                    key=f"{info}.{name}",
                    url_name=f"admin:{info}_changelist",
                    method="POST",
                    action=name,
                    model=model._meta.label_lower,
                )
            )
    return targets


TARGETS = url_targets() + action_targets()
CASES = [(role, target) for target in TARGETS for role in ROLES]


# --- the front door, small things seen, what only superusers see --------------------
# (Before the matrix: these run without its module-wide objects.)

BEAT_LINK = 'href="/admin/django_celery_beat/'
BEAT_MODELS = [m for m in admin.site._registry if m._meta.app_label == "django_celery_beat"]


def test_root_redirects_to_the_admin(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_view_site_leads_to_the_admin_index(admin_client):
    content = admin_client.get("/admin/").content.decode()

    assert '<a href="/">View site</a>' in content
    assert admin_client.get("/", follow=True).redirect_chain == [("/admin/", 302)]


def test_intake_paths_are_still_the_intakes(db):
    assert resolve("/").url_name == "root"
    assert resolve("/zdrav/booked").url_name == "intake"
    assert resolve("/zdrav/mc").url_name == "intake"


def test_mock_mode_help_text_reads_whole_on_the_flow_page(admin_client):
    flow = Flow.objects.get(kind="booked")

    content = html.unescape(
        admin_client.get(reverse("admin:sync_flow_change", args=[flow.pk])).content.decode()
    )

    assert "Update the lead named ID_N, where N is the RDESK lead id" in content
    assert "ID_ (created" not in content


def test_every_beat_model_the_admin_shows_is_for_superusers_only():
    assert set(BEAT_MODELS) == set(BEAT_ADMINS)
    assert all(isinstance(admin.site._registry[model], SuperusersOnly) for model in BEAT_MODELS)


def test_beat_models_are_not_on_the_index_for_a_hub_admin(hub_admin_client):
    response = hub_admin_client.get("/admin/")

    assert response.status_code == 200
    assert BEAT_LINK not in response.content.decode()


def test_beat_pages_refuse_a_hub_admin_even_one_granted_their_rights(hub_admin_client, hub_admin):
    hub_admin.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_celery_beat")
    )

    assert BEAT_LINK not in hub_admin_client.get("/admin/").content.decode()
    for model in BEAT_MODELS:
        info = f"django_celery_beat_{model._meta.model_name}"
        assert hub_admin_client.get(reverse(f"admin:{info}_changelist")).status_code == 403
        assert hub_admin_client.get(reverse(f"admin:{info}_add")).status_code == 403
    assert hub_admin_client.get("/admin/django_celery_beat/").status_code == 404


def test_superuser_sees_and_opens_the_beat_models(admin_client):
    content = admin_client.get("/admin/").content.decode()

    for model in BEAT_MODELS:
        changelist = reverse(f"admin:django_celery_beat_{model._meta.model_name}_changelist")
        assert f'href="{changelist}"' in content
        assert admin_client.get(changelist).status_code == 200


def test_change_history_is_on_the_index_of_every_role(client, auditor, operator, hub_admin):
    for user in (auditor, operator, hub_admin):
        client.force_login(user)
        assert 'href="/admin/auditlog/logentry/"' in client.get("/admin/").content.decode()


def test_change_history_shows_who_changed_an_account_read_only(auditor_client, account):
    entry = LogEntry.objects.get_for_object(account).get()

    listing = auditor_client.get("/admin/auditlog/logentry/").content.decode()
    page = auditor_client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()

    assert str(account) in listing
    assert 'name="_save"' not in page
    assert "deletelink" not in page


def test_change_history_cannot_be_edited_even_by_a_superuser(admin_client, account):
    entry = LogEntry.objects.get_for_object(account).get()

    page = admin_client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()

    assert 'name="_save"' not in page
    assert "deletelink" not in page
    assert admin_client.get("/admin/auditlog/logentry/add/").status_code == 403


# --- the objects the pages show -----------------------------------------------------


@dataclass
class World:
    users: dict
    objects: dict  # model label -> one object of that model
    account: Account
    sessions: dict = field(default_factory=dict)  # role -> session key of its user


def world_build() -> World:
    users = {
        "staff": UserFactory(username="matrix-staff"),
        "auditor": UserFactory(username="matrix-auditor", role=AUDITORS),
        "operator": UserFactory(username="matrix-operator", role=OPERATORS),
        "hub_admin": UserFactory(username="matrix-hub-admin", role=HUB_ADMINS),
        "superuser": UserFactory(username="matrix-superuser", is_superuser=True),
    }
    someone = UserFactory(username="matrix-someone")
    account = AccountFactory(name="Matrix clinic", base_url="https://clinic.amocrm.ru")
    token = TokenFactory(account=account)
    flow = Flow.objects.get(kind="booked")
    flow.account = account
    flow.save()
    pipeline = PipelineFactory(account=account)
    status = StatusFactory(pipeline=pipeline)
    item = load_item("rdesk-booked.json")
    event = InboundEventFactory(
        flow=flow,
        payload=item,
        status=EventStatus.FAILED,
        rdesk_id=str(item["id"]),
        lead_id=str(item["lead_id"]),
        attempts=1,
        last_error="HTTP 400: validation",
    )
    interval = beat.IntervalSchedule.objects.create(every=1, period=beat.IntervalSchedule.HOURS)
    incident = Incident.objects.create(key="backlog-age", summary="The oldest event waits")
    objects = {
        "auth.user": someone,
        "auth.group": Group.objects.get(name=AUDITORS),
        "auditlog.logentry": LogEntry.objects.get_for_object(account).first(),
        "amocrm.account": account,
        "amocrm.token": token,
        "amocrm.apicallrecord": ApiCallRecord.objects.create(
            account=account,
            request_method="GET",
            request_url="https://clinic.amocrm.ru/api/v4/account",
            response_status=200,
        ),
        "amocrm.customfield": CustomFieldFactory(account=account),
        "amocrm.pipeline": pipeline,
        "amocrm.status": status,
        "sync.flow": flow,
        "sync.fieldmapping": FieldMapping.objects.filter(flow=flow).first(),
        "sync.flowstatusmapping": FlowStatusMapping.objects.create(
            flow=flow,
            booking_status=BookingStatus.values[0],
            pipeline_id=pipeline.pipeline_id,
            status_id=status.status_id,
        ),
        "sync.leadalias": LeadAliasFactory(account=account),
        "sync.inboundevent": event,
        "sync.deliveryattempt": DeliveryAttemptFactory(event=event, response_status=400),
        "sync.batchcall": BatchCall.objects.create(
            account=account, request_method="PATCH", request_url="/api/v4/leads", item_count=2
        ),
        "sync.replay": Replay.objects.create(
            event=event,
            requested_by=someone,
            source=Replay.Source.ADMIN_ACTION,
            previous_status=EventStatus.FAILED,
        ),
        "sync.personaldataaccess": PersonalDataAccess.objects.create(
            event=event, user=someone, kind=PersonalDataAccess.Kind.VIEW
        ),
        "monitoring.alertchannel": AlertChannel.objects.create(
            name="Дежурные", kind=AlertChannel.Kind.EMAIL, email_recipients="ops@example.ru"
        ),
        "monitoring.incident": incident,
        "monitoring.sentalert": SentAlert.objects.create(
            incident=incident,
            kind=SentAlert.Kind.OPENED,
            channel="env:email",
            text="Problem: the oldest event waits",
            outcome=SentAlert.Outcome.SENT,
        ),
        "django_celery_beat.intervalschedule": interval,
        "django_celery_beat.crontabschedule": beat.CrontabSchedule.objects.create(minute="0"),
        "django_celery_beat.solarschedule": beat.SolarSchedule.objects.create(
            event="sunrise", latitude=55.75, longitude=37.62
        ),
        "django_celery_beat.clockedschedule": beat.ClockedSchedule.objects.create(
            clocked_time=timezone.now() + timedelta(days=1)
        ),
        "axes.accessattempt": AccessAttempt.objects.create(
            username="someone", ip_address="198.51.100.7", failures_since_start=1
        ),
        "axes.accesslog": AccessLog.objects.create(username="someone", ip_address="198.51.100.7"),
        "axes.accessfailurelog": AccessFailureLog.objects.create(
            username="someone", ip_address="198.51.100.7"
        ),
        # A task no worker knows: running it sends nothing.
        "django_celery_beat.periodictask": beat.PeriodicTask.objects.create(
            name="nightly check", task="hub.no_such_task", interval=interval
        ),
    }
    assert all(objects.values()), [label for label, obj in objects.items() if obj is None]
    return World(users=users, objects=objects, account=account)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One set of users and objects for the whole module, rolled back at its end."""
    fast_hasher = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=fast_hasher),
        transaction.atomic(),
    ):
        built = world_build()
        for role, user in built.users.items():
            client = Client()
            client.force_login(user)
            built.sessions[role] = client.session.session_key
        yield built
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def quiet_refusals():
    """Most of these requests are meant to be refused: their warnings would only slow the run.

    Set for each test: opening beat's pages sets Django up again, logging included.
    """
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


PAIR = fixture_json("amocrm/token-pair.json")


@pytest.fixture
def amocrm_http():
    """AmoCRM at its one seam: what an allowed role's request may call; records the calls."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            "https://clinic.amocrm.ru/api/v4/account",
            json={"id": 30000001, "name": "Clinic", "subdomain": "clinic"},
        )
        mock.post("https://clinic.amocrm.ru/oauth2/access_token", json=PAIR)
        yield mock


# --- the requests ---------------------------------------------------------------------


_CLIENT = Client()  # one handler for the module: loading the middleware is not free


def client_for(world, role: str) -> Client:
    """The module's client, holding only the role's session cookie."""
    _CLIENT.cookies = SimpleCookie()
    if role != "anonymous":
        _CLIENT.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return _CLIENT


def path_of(target: Target, world) -> str:
    kwargs = dict(target.fixed)
    for name, label in target.arguments:
        obj = world.objects.get(label)
        if obj is None:
            pytest.fail(f"{target.key}: no object for its argument {name} ({label}); add one")
        kwargs[name] = obj.pk
    return reverse(target.url_name, kwargs=kwargs)


def send(client: Client, target: Target, world):
    path = path_of(target, world)
    if target.url_name == "amocrm:oauth-callback":
        state = "s" * 32
        if settings.SESSION_COOKIE_NAME in client.cookies:
            session = client.session
            session[SESSION_KEY] = {
                "state": state,
                "account_id": world.account.pk,
                "issued": timezone.now().timestamp(),
            }
            session.save()
        return client.get(path, {"code": "def502-code", "state": state, "referer": ""})
    if target.action:
        obj = world.objects[target.model]
        data = {"action": target.action, ACTION_CHECKBOX_NAME: [obj.pk], "post": "yes"}
        return client.post(path, data)
    if target.method == "POST":
        return client.post(path, {})
    return client.get(path)


def writes(queries) -> list[str]:
    """The statements that changed something, sessions aside (they hold messages)."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "django_session" not in q["sql"]
    ]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


NO_ACTION = "No action selected."


def _ids(case) -> str:
    role, target = case
    return f"{role}-{target.key}"


@pytest.mark.parametrize(("role", "target"), CASES, ids=[_ids(c) for c in CASES])
def test_role_against_admin_url(world, db, amocrm_http, role, target):
    allowed = target.allowed
    if allowed is None:
        pytest.fail(f"{target.key!r} is served but not in the permission table: classify it")
    client = client_for(world, role)

    with CaptureQueriesContext(connection) as queries:
        response = send(client, target, world)

    status = response.status_code
    location = response.get("Location", "")
    if role == "anonymous":
        assert status == 302, status
        assert location.startswith("/admin/login/?next="), location
    elif role in allowed:
        assert status in (200, 302), (status, html.unescape(response.content.decode()[:500]))
        assert not location.startswith("/admin/login/"), location
        if target.action:
            assert NO_ACTION not in messages_of(response)
    else:
        refused = 404 if target.url_name == "admin:app_list" else 403
        assert status == refused, status
    if role not in allowed:
        assert writes(queries.captured_queries) == []
        assert len(amocrm_http.calls) == 0
        if target.url_name == "amocrm:oauth-start":
            assert SESSION_KEY not in client.session


def test_every_admin_url_and_action_is_classified():
    unclassified = sorted({t.key for t in TARGETS if t.allowed is None})

    assert unclassified == []


def test_the_matrix_covers_the_account_pages_and_actions():
    keys = {t.key for t in TARGETS}

    assert {
        "GET admin:amocrm_account_change",
        "POST admin:amocrm_account_change",
        "POST admin:amocrm_account_test_connection",
        "amocrm_account.test_connection",
        "amocrm_account.refresh_catalogue",
        "GET amocrm:oauth-start",
        "GET amocrm:oauth-callback",
    } <= keys
