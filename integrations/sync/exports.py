"""The sync history as a CSV file for Excel: one line per inbound event.

The file is made for Russian Excel, which opens it with a double click: UTF-8 with a byte
order mark (without it Excel reads Cyrillic as cp1251 and garbles it), ``;`` between
cells (the list separator of the Russian locale, where the comma is the decimal mark),
dates as ``01.12.2026 19:27:05`` in the hub's time zone.

Names, phones and error texts are masked unless the user may see personal data; an
unmasked export records, for every exported event, who exported it and when.
"""

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext

from integrations.sync.masking import Masker, name_mask, phone_mask
from integrations.sync.models import EventStatus, PersonalDataAccess

DELIMITER = ";"
BYTE_ORDER_MARK = "\ufeff"
DATE_FORMAT = "%d.%m.%Y %H:%M:%S"
CHUNK_SIZE = 2000
# Excel runs a cell starting with these as a formula; RDESK's texts are not trusted.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = (
    "id",
    "received",
    "flow",
    "status",
    "rdesk_id",
    "lead_id",
    "attempts",
    "delivered",
    "last_error",
    "name",
    "phone",
)


def _header() -> list[str]:
    labels = {
        "id": gettext("Event id"),
        "received": gettext("Received"),
        "flow": gettext("Flow"),
        "status": gettext("Status"),
        "rdesk_id": gettext("RDESK id"),
        "lead_id": gettext("Lead id"),
        "attempts": gettext("Attempts"),
        "delivered": gettext("Delivered"),
        "last_error": gettext("Last error"),
        "name": gettext("Client name"),
        "phone": gettext("Phone"),
    }
    return [labels[column] for column in COLUMNS]


class _Line:
    """A file-like object for ``csv.writer`` that hands back what it is given."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _moment(value) -> str:
    return timezone.localtime(value).strftime(DATE_FORMAT) if value else ""


def events_csv_rows(*, events: QuerySet, masked: bool, statuses: dict[str, str]) -> Iterator:
    """(event id, row) for each event, read in chunks from ``events``."""
    rows = events.values_list(
        "pk",
        "received_at",
        "flow__name",
        "status",
        "rdesk_id",
        "lead_id",
        "attempts",
        "delivered_at",
        "last_error",
        "payload",
    ).iterator(chunk_size=CHUNK_SIZE)
    for pk, received, flow, status, rdesk_id, lead_id, attempts, delivered, error, payload in rows:
        client = payload if isinstance(payload, dict) else {}
        name = str(client.get("name") or "").strip()
        phone = str(client.get("phone") or "").strip()
        if masked:
            name = name_mask(name) if name else ""
            phone = phone_mask(phone) if phone else ""
            # Building a masker costs a regular expression: only for rows with an error.
            error = Masker(payload).text(error) if error else ""
        yield (
            pk,
            [
                pk,
                _moment(received),
                flow,
                statuses.get(status, status),
                rdesk_id,
                lead_id,
                attempts,
                _moment(delivered),
                error,
                name,
                phone,
            ],
        )


def events_csv_lines(
    *, events: QuerySet, user, masked: bool, header: list[str], statuses: dict
) -> Iterable[str]:
    """The CSV text, line by line; unmasked events are recorded before they are written."""
    writer = csv.writer(_Line(), delimiter=DELIMITER)
    yield BYTE_ORDER_MARK + writer.writerow(header)
    chunk = []
    for pk, row in events_csv_rows(events=events, masked=masked, statuses=statuses):
        chunk.append((pk, row))
        if len(chunk) >= CHUNK_SIZE:
            yield from _chunk_write(chunk, writer=writer, user=user, masked=masked)
            chunk = []
    yield from _chunk_write(chunk, writer=writer, user=user, masked=masked)


def _chunk_write(chunk: list, *, writer, user, masked: bool) -> Iterator[str]:
    if chunk and not masked:
        PersonalDataAccess.objects.bulk_create(
            PersonalDataAccess(event_id=pk, user=user, kind=PersonalDataAccess.Kind.EXPORT)
            for pk, _ in chunk
        )
    for _, row in chunk:
        yield writer.writerow([_cell(value) for value in row])


def events_export_response(*, events: QuerySet, user) -> StreamingHttpResponse:
    """A streamed CSV download of ``events`` as ``user`` may see them."""
    # Words are translated now, in the request's language: the body is written later.
    header = _header()
    statuses = {value: str(label) for value, label in EventStatus.choices}
    filename = f"sync-history-{timezone.localdate():%Y-%m-%d}.csv"
    response = StreamingHttpResponse(
        events_csv_lines(
            events=events,
            user=user,
            masked=not user.has_perm("sync.view_personal_data"),
            header=header,
            statuses=statuses,
        ),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
