"""Named values computed from a validated RDESK item, for admins to map to AmoCRM fields.

``booked_values`` and ``mc_values`` take ``serializer.validated_data`` from
``schemas.BookingSerializer`` / ``schemas.MedicalCentreSerializer`` and return a dict
of plain Python values (str, int, Decimal, date, aware datetime, or None for "nothing
to send"). Which AmoCRM field each name goes to is a ``sync.FieldMapping`` row; the
``*_SOURCES`` tables list the names with a label (lazy translations, read in the admin's
language), the ``*_FIELD_TYPES`` tables the AmoCRM field type each one suits. Pure
functions: no I/O, no settings.

Texts are in Russian because they are read by the sanatorium's managers in AmoCRM.
Money is written the Russian way: ``147 966,30 ₽`` with a no-break space (U+00A0)
between digit groups and before the sign, so an amount never wraps across lines.
"""

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from integrations.amocrm.encoding import FieldType

NO_BREAK_SPACE = "\u00a0"
MOSCOW = ZoneInfo("Europe/Moscow")

BOOKED_SOURCES: dict[str, Promise] = {
    "created_at": _("Booking created at"),
    "status": _("Booking status"),
    "check_in": _("Check-in date"),
    "check_out": _("Check-out date"),
    "nights": _("Nights"),
    "total": _("Total amount"),
    "paid": _("Amount paid"),
    "zdrav_id": _("RDESK booking id"),
    "doc_num": _("Document number"),
    "name": _("Customer name"),
    "phone": _("Phone"),
    "email": _("Email"),
    "guests_count": _("Number of guests"),
    "guests_text": _("Guests (text)"),
    "bills_text": _("Bills (text)"),
}

BOOKED_FIELD_TYPES: dict[str, str] = {
    "created_at": FieldType.DATE_TIME,
    # Text, not select: a select field refuses any status missing from its options.
    "status": FieldType.TEXT,
    "check_in": FieldType.DATE,
    "check_out": FieldType.DATE,
    "nights": FieldType.NUMERIC,
    "total": FieldType.NUMERIC,
    "paid": FieldType.NUMERIC,
    "zdrav_id": FieldType.TEXT,
    "doc_num": FieldType.TEXT,
    "name": FieldType.TEXT,
    "phone": FieldType.TEXT,
    "email": FieldType.TEXT,
    "guests_count": FieldType.NUMERIC,
    "guests_text": FieldType.TEXTAREA,
    "bills_text": FieldType.TEXTAREA,
}

MC_SOURCES: dict[str, Promise] = {
    "created_at": _("Card created at"),
    "birthday": _("Patient birthday"),
    "zdrav_id": _("RDESK card id"),
    "name": _("Patient name"),
    "phone": _("Phone"),
    "email": _("Email"),
    "total": _("Total of services"),
    "paid": _("Amount paid"),
    "unpaid": _("Amount unpaid"),
    "treatments_count": _("Number of treatments"),
    "labs_count": _("Number of lab tests"),
    "packets_count": _("Number of packets"),
    "complexes_count": _("Number of complexes"),
    "treatments_text": _("Treatments (text)"),
    "labs_text": _("Lab tests (text)"),
    "packets_text": _("Packets (text)"),
    "complexes_text": _("Complexes (text)"),
}

MC_FIELD_TYPES: dict[str, str] = {
    "created_at": FieldType.DATE_TIME,
    "birthday": FieldType.BIRTHDAY,
    "zdrav_id": FieldType.TEXT,
    "name": FieldType.TEXT,
    "phone": FieldType.TEXT,
    "email": FieldType.TEXT,
    "total": FieldType.NUMERIC,
    "paid": FieldType.NUMERIC,
    "unpaid": FieldType.NUMERIC,
    "treatments_count": FieldType.NUMERIC,
    "labs_count": FieldType.NUMERIC,
    "packets_count": FieldType.NUMERIC,
    "complexes_count": FieldType.NUMERIC,
    "treatments_text": FieldType.TEXTAREA,
    "labs_text": FieldType.TEXTAREA,
    "packets_text": FieldType.TEXTAREA,
    "complexes_text": FieldType.TEXTAREA,
}

STATUS_WORDS = {
    "set": "назначено",
    "done": "выполнено",
    "cancel": "отменено",
    "cancelled": "отменено",
    "canceled": "отменено",
}
CANCELLED_STATUSES = frozenset({"cancel", "cancelled", "canceled"})

_NESTED_PREFIX = "   - "


def booked_values(booking: dict) -> dict[str, object]:
    """Named values for one validated ``/zdrav/booked`` item (see ``BOOKED_SOURCES``)."""
    guests = booking["extData"]["guests"]
    return {
        "created_at": booking["bookedAt"],
        "status": booking["status"],
        "check_in": booking["checkin"],
        "check_out": booking["checkout"],
        "nights": (booking["checkout"] - booking["checkin"]).days,
        "total": booking["money"]["total"],
        "paid": booking["money"]["paid"],
        "zdrav_id": str(booking["id"]),
        "doc_num": booking["docNum"] or None,
        "name": booking["name"] or None,
        "phone": booking["phone"] or None,
        "email": booking["email"] or None,
        "guests_count": len(guests),
        "guests_text": _join_lines(
            _guest_line(number, guest) for number, guest in enumerate(guests, start=1)
        ),
        "bills_text": _join_lines(_bill_line(bill) for bill in booking["billData"]),
    }


def mc_values(card: dict, *, tz: ZoneInfo = MOSCOW) -> dict[str, object]:
    """Named values for one validated ``/zdrav/mc`` item (see ``MC_SOURCES``).

    Sums count the top-level treatments, labs, packets and complexes that are not
    cancelled; what is nested in a packet or complex is paid through it. Visit times
    in the texts are shown in ``tz``.
    """
    treatments, labs = card["treatments"], card["labs"]
    packets, complexes = card["packets"], card["complex"]
    billable = [item for item in (*treatments, *labs, *packets, *complexes) if _is_live(item)]
    total = sum((_price(item) for item in billable), Decimal(0))
    paid = sum((_price(item) for item in billable if item["paid"]), Decimal(0))
    return {
        "created_at": card["createdAt"],
        "birthday": card["birthday"],
        "zdrav_id": str(card["id"]),
        "name": card["name"] or None,
        "phone": card["phone"] or None,
        "email": card["email"] or None,
        "total": total,
        "paid": paid,
        "unpaid": total - paid,
        "treatments_count": _count_live(treatments),
        "labs_count": _count_live(labs),
        "packets_count": _count_live(packets),
        "complexes_count": _count_live(complexes),
        "treatments_text": _numbered(_treatment_line(item, tz) for item in treatments),
        "labs_text": _numbered(_lab_line(item, tz) for item in labs),
        "packets_text": _numbered(_packet_block(packet, tz) for packet in packets),
        "complexes_text": _numbered(_complex_block(complex_, tz) for complex_ in complexes),
    }


def format_money(amount: Decimal) -> str:
    """Write an amount in roubles the Russian way: ``147 966,30 ₽``."""
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    whole, fraction = f"{abs(cents):.2f}".split(".")
    grouped = f"{int(whole):,}".replace(",", NO_BREAK_SPACE)
    return f"{sign}{grouped},{fraction}{NO_BREAK_SPACE}₽"


def format_visit(moment: date | datetime, tz: ZoneInfo) -> str:
    """``19.09.2020`` for a day, ``19.09.2020 13:00`` for a moment (shown in ``tz``)."""
    if isinstance(moment, datetime):
        return moment.astimezone(tz).strftime("%d.%m.%Y %H:%M")
    return moment.strftime("%d.%m.%Y")


def status_word(status: str) -> str:
    """An RDESK item status in Russian words; an unknown status is shown as it came."""
    return STATUS_WORDS.get(status.strip().lower(), status.strip())


def _guest_line(number: int, guest: dict) -> str:
    details = [
        f"дата рождения {guest['birthday']:%d.%m.%Y}" if guest["birthday"] else "",
        guest["ageGroup"],
        guest["roomCategory"],
        guest["cure"],
        f"счёт {guest['billNum']}" if guest["billNum"] else "",
    ]
    described = ", ".join(part for part in details if part)
    line = " — ".join(part for part in (guest["fio"], described) if part)
    return f"{number}. {line}".rstrip()


def _bill_line(bill: dict) -> str:
    title = f"Счёт {bill['billNum']}" if bill["billNum"] else "Счёт"
    amount, paid = bill["billSum"], bill["billPaidSum"]
    return (
        f"{title}: сумма {format_money(amount)}, оплачено {format_money(paid)}, "
        f"к оплате {format_money(amount - paid)}"
    )


def _treatment_line(item: dict, tz: ZoneInfo) -> str:
    return _line(item["action"], item["status"], item["visit_date"], item, tz)


def _lab_line(item: dict, tz: ZoneInfo) -> str:
    return _line(item["lab"], item["status"], item["visit_date"], item, tz)


def _packet_block(packet: dict, tz: ZoneInfo) -> str:
    head = _line(packet["packet"], packet["status"], None, packet, tz)
    return head + _nested([_treatment_line(item, tz) for item in packet["treatments"]])


def _complex_block(complex_: dict, tz: ZoneInfo) -> str:
    head = _line(complex_["complex"], complex_["status"], None, complex_, tz)
    nested = [_treatment_line(item, tz) for item in complex_["treatments"]]
    nested += [_lab_line(item, tz) for item in complex_["labs"]]
    return head + _nested(nested)


def _line(name: str, status: str, visit: date | None, priced: dict, tz: ZoneInfo) -> str:
    """``Name — status, visit, price, paid``, leaving out what RDESK did not send."""
    details = [status_word(status)]
    if visit is not None:
        details.append(format_visit(visit, tz))
    if priced["price"] is not None:
        details.append(format_money(priced["price"]))
    if priced["paid"] is not None:
        details.append("оплачено" if priced["paid"] else "не оплачено")
    described = ", ".join(part for part in details if part)
    return " — ".join(part for part in (name, described) if part)


def _nested(lines: list[str]) -> str:
    return "".join(f"\n{_NESTED_PREFIX}{line}" for line in lines)


def _is_live(item: dict) -> bool:
    return item["status"].strip().lower() not in CANCELLED_STATUSES


def _count_live(items: list[dict]) -> int:
    return sum(1 for item in items if _is_live(item))


def _price(item: dict) -> Decimal:
    return item["price"] if item["price"] is not None else Decimal(0)


def _numbered(entries) -> str | None:
    return _join_lines(
        f"{number}. {entry}".rstrip() for number, entry in enumerate(entries, start=1)
    )


def _join_lines(lines) -> str | None:
    text = "\n".join(lines)
    return text or None
