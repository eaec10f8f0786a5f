"""The Russian catalogue is complete and compiled, and the admin speaks it.

CI has no gettext tools: the compiled ``django.mo`` is committed next to ``django.po``,
so these tests read both with the standard library and check that they agree.
"""

import gettext
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation

from integrations.sync.models import EventStatus, InboundEvent
from tests.factories import InboundEventFactory
from tests.integrations.amocrm.consent import connect

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES"
PO_FILE = CATALOGUE / "django.po"
MO_FILE = CATALOGUE / "django.mo"
NO_BREAK_SPACE = "\u00a0"
# For nplurals=3: one number that picks each Russian form (1 событие, 2 события, 5 событий).
PLURAL_SAMPLES = (1, 2, 5)


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        return f"{self.msgctxt}|{self.msgid}" if self.msgctxt else self.msgid


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+"(.*)"$')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda match: _ESCAPES[match.group(1)], text)


def po_entries(path: Path = PO_FILE) -> tuple[str, list[Entry]]:
    """The header and the entries of a .po file (the subset of the format xgettext writes)."""
    entries, entry, target = [], Entry(), None

    def close():
        nonlocal entry, target
        if target is not None:
            entries.append(entry)
        entry, target = Entry(), None

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            close()
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif match := _KEYWORD.match(line):
            keyword, index, text = match.groups()
            target = (keyword, int(index or 0))
            _append(entry, target, _unquote(text))
        else:
            _append(entry, target, _unquote(line.strip()[1:-1]))
    close()
    header = next(e for e in entries if e.msgid == "" and e.msgctxt is None)
    return header.msgstr[0], [e for e in entries if e is not header]


def _append(entry: Entry, target: tuple[str, int], text: str) -> None:
    keyword, index = target
    if keyword == "msgstr":
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    else:
        setattr(entry, keyword, (getattr(entry, keyword) or "") + text)


@pytest.fixture(scope="module")
def catalogue():
    return po_entries()


@pytest.fixture
def russian(settings):
    settings.LANGUAGE_CODE = "ru"


# --- The catalogue ---------------------------------------------------------------------


def test_the_catalogue_has_russian_plural_forms(catalogue):
    header, _ = catalogue

    assert "Language: ru\n" in header
    assert "Plural-Forms: nplurals=3;" in header


def test_every_message_is_translated_and_none_is_fuzzy(catalogue):
    _, entries = catalogue
    forms = lambda entry: 3 if entry.msgid_plural else 1  # noqa: E731

    untranslated = [
        str(entry)
        for entry in entries
        if len(entry.msgstr) != forms(entry) or not all(entry.msgstr.values())
    ]
    fuzzy = [str(entry) for entry in entries if "fuzzy" in entry.flags]

    assert entries
    assert untranslated == []
    assert fuzzy == []


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)[sd]", text)) | set(re.findall(r"\{(\w+)\}", text))


def test_translations_keep_every_placeholder(catalogue):
    _, entries = catalogue

    broken = [
        (str(entry), form)
        for entry in entries
        for form in entry.msgstr.values()
        if _placeholders(form) != _placeholders(entry.msgid_plural or entry.msgid)
    ]

    assert broken == []


def test_the_compiled_catalogue_matches_the_po_file(catalogue):
    _, entries = catalogue
    with MO_FILE.open("rb") as compiled:
        mo = gettext.GNUTranslations(compiled)

    stale = []
    for entry in entries:
        if entry.msgid_plural is None:
            found = [
                mo.pgettext(entry.msgctxt, entry.msgid)
                if entry.msgctxt is not None
                else mo.gettext(entry.msgid)
            ]
        else:
            found = [
                mo.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, n)
                if entry.msgctxt is not None
                else mo.ngettext(entry.msgid, entry.msgid_plural, n)
                for n in PLURAL_SAMPLES
            ]
        if found != [entry.msgstr[index] for index in sorted(entry.msgstr)]:
            stale.append(str(entry))

    assert stale == [], "run `make messages` to compile locale/ru/LC_MESSAGES/django.mo"


# --- The admin in Russian --------------------------------------------------------------


def test_the_admin_index_names_sections_and_models_in_russian(russian, admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    for words in (
        "Синхронизация",
        "Входящие события",
        "Попытки доставки",
        "Потоки",
        "Сопоставления полей",
        "Аккаунты",
    ):
        assert words in html


def test_the_flow_page_explains_its_fields_in_russian(russian, admin_client, booked_flow):
    page = admin_client.get(reverse("admin:sync_flow_change", args=[booked_flow.pk]))

    html = page.content.decode()

    assert "Путь приёма" in html
    assert "Выключенный поток сохраняет всё, что приходит, но ничего не доставляет." in html
    assert "Режим подмены ID сделок" in html


def test_an_event_shows_its_status_and_date_in_russian(russian, admin_client, booked_flow):
    event = InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.FAILED,
        received_at=datetime(2026, 12, 1, 16, 27, tzinfo=UTC),
    )

    page = admin_client.get(reverse("admin:sync_inboundevent_preview", args=[event.pk]))

    html = page.content.decode()

    assert '<th scope="row">Статус</th><td>Ошибка</td>' in html
    # 16:27 UTC in the account's zone, Moscow.
    assert "01.12.2026 19:27" in html


def test_the_dashboard_writes_numbers_the_russian_way(russian, admin_client, booked_flow):
    now = timezone.now()
    InboundEvent.objects.bulk_create(
        InboundEvent(flow=booked_flow, raw_body=b"{}", body_hash="0" * 64, received_at=now)
        for _ in range(1234)
    )
    InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.DELIVERED,
        received_at=now - timedelta(minutes=5),
        delivered_at=now - timedelta(minutes=5) + timedelta(seconds=1.5),
    )

    html = admin_client.get(reverse("admin:index")).content.decode()

    assert f"1{NO_BREAK_SPACE}234" in html  # events waiting to be delivered
    assert "1,5 с" in html  # delivery time


def test_amocrm_ids_read_as_typed_without_digit_groups(russian, admin_client, booked_flow):
    html = admin_client.get(reverse("admin:sync_fieldmapping_changelist")).content.decode()

    assert ">1287599<" in html
    assert f"1{NO_BREAK_SPACE}287{NO_BREAK_SPACE}599" not in html


def test_a_command_counts_in_russian_plural_forms(booked_flow):
    for _ in range(2):
        InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED)
    out = StringIO()

    with translation.override("ru"):
        call_command("replay_events", "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        "Найдено 2 события.",
        "  failed: 2",
        "Пробный запуск: повторно было бы отправлено 2 события; ничего не изменено.",
    ]


def _page(response) -> str:
    return html.unescape(response.content.decode())


def test_the_oauth_callback_page_says_in_russian_that_the_account_is_connected(
    russian, hub_admin_client, emulator_account
):
    response = connect(hub_admin_client, emulator_account)

    content = _page(response)

    assert response.status_code == 200
    assert "<h1>Подключено к AmoCRM</h1>" in content
    assert f"Аккаунт «{emulator_account}» ({emulator_account.api_base_url}) подключён." in content
    assert "Подключение к AmoCRM" in content  # the breadcrumb
    assert "Вернуться к аккаунту" in content


def test_the_language_switch_on_the_callback_page_leads_to_the_account_not_to_the_code(
    russian, hub_admin_client, emulator_account
):
    response = connect(hub_admin_client, emulator_account)

    content = _page(response)

    account_url = reverse("admin:amocrm_account_change", args=[emulator_account.pk])
    assert f'<input type="hidden" name="next" value="{account_url}">' in content
    assert response.wsgi_request.GET["code"] not in content


def test_a_refused_oauth_callback_explains_in_russian_what_to_do(russian, hub_admin_client):
    response = hub_admin_client.get(reverse("amocrm:oauth-callback"), {"state": "x", "code": "y"})

    content = _page(response)

    assert response.status_code == 400
    assert "<h1>Подключение отклонено: параметр state не совпадает</h1>" in content
    assert (
        "Из этого браузера подключение не начиналось или уже было завершено. Начните заново "
        "кнопкой «Подключить к AmoCRM» на странице аккаунта."
    ) in content


def test_the_account_page_labels_its_fields_in_russian(russian, hub_admin_client, account):
    response = hub_admin_client.get(reverse("admin:amocrm_account_change", args=[account.pk]))

    content = _page(response)

    for name, label in (
        ("base_url", "Адрес сервера:"),
        ("client_id", "ID интеграции:"),
        ("client_secret", "Секретный ключ:"),
        ("redirect_uri", "Ссылка для перенаправления:"),
        ("long_lived_token", "Долгосрочный токен:"),
    ):
        assert f'<label for="id_{name}">{label}</label>' in content
    assert (
        '<label class="vCheckboxLabel" for="id_clear_long_lived_token">'
        "Удалить долгосрочный токен</label>"
    ) in content
    assert "Оставьте пустым, чтобы сохранить текущий секретный ключ." in content


def test_the_event_list_speaks_russian(russian, hub_admin_client, booked_flow):
    InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, last_error="Boom")

    content = _page(hub_admin_client.get(reverse("admin:sync_inboundevent_changelist")))

    for words in (
        "Выберите входящее событие для просмотра",
        '<span class="sync-badge sync-badge--failed">Ошибка</span>',
        "Поиск по ID в RDESK, ID сделки или хешу тела запроса",
        "Выгрузить в CSV",
        "Отправить повторно все по этому фильтру (1)",
        "Отправить выбранные события повторно",
    ):
        assert words in content
    for sortable in ("Статус", "Получено", "Доставлено", "Попытки", "Поток", "Сделка"):
        assert f">{sortable}</a></div>" in content
    for header in ("Клиент", "Ошибка"):
        assert f'<div class="text"><span>{header}</span></div>' in content


def test_the_admin_header_offers_english_and_switching_shows_the_admin_in_english(
    russian, hub_admin_client
):
    russian_page = _page(hub_admin_client.get(reverse("admin:index")))
    assert f'<form id="language-form" method="post" action="{reverse("set_language")}"' in (
        russian_page
    )
    assert (
        '<button type="submit" name="language" value="en" lang="en" title="English">en</button>'
    ) in russian_page
    assert "Выйти" in russian_page

    response = hub_admin_client.post(
        reverse("set_language"), {"language": "en", "next": reverse("admin:index")}, follow=True
    )

    assert response.headers["Content-Language"] == "en"
    content = _page(response)
    assert "Log out" in content
    assert '<button type="submit" name="language" value="ru"' in content


# --- The intake does not follow the admin's language -------------------------------------


def test_a_get_on_the_intake_is_refused_in_english_on_a_russian_site(russian, client, booked_flow):
    response = client.get(booked_flow.endpoint_path)

    assert response.status_code == 405
    assert response.json() == {
        "status": "error",
        "error": "method_not_allowed",
        "detail": 'Method "GET" not allowed.',
    }
    assert response.headers["Content-Language"] == "en"


def test_an_intake_path_no_flow_serves_answers_in_english_on_a_russian_site(russian, client, db):
    response = client.post("/zdrav/nowhere", data=b"[]", content_type="application/json")

    assert response.status_code == 404
    assert response.json() == {
        "status": "error",
        "error": "not_found",
        "detail": "No flow serves this path.",
    }
    assert response.headers["Content-Language"] == "en"
