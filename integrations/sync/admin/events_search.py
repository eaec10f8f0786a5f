"""Finding inbound events by a guest's or client's name or phone (personal data).

Only for users allowed to see personal data: the admin calls this for them alone, so a
search by others can never tell whether a name occurs in the history.
"""

import json
import re

from django.db import connection
from django.db.models import F, Func, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Replace

# A phone as people type it: digits and separators, e.g. "+7 912 312-31-23".
_PHONE_TERM = re.compile(r"^[\d\s()+\-.]+$")
_PHONE_SEPARATORS = (" ", "-", "(", ")", "+", ".")
# Fewer digits would match a part of almost any id or phone.
MIN_PHONE_DIGITS = 7
_LETTER = re.compile(r"[^\W\d_]")
_BODY_HASH = re.compile(r"^[0-9a-fA-F]{64}$")
# Every name and fio in a payload, as a JSON array's text (migration sync/0015).
EVENT_NAMES_FUNCTION = "amohub_event_names"


def phone_digits(term: str) -> str:
    """The digits to look for: a leading 7 or 8 of a Russian number is dropped (+7 = 8)."""
    digits = re.sub(r"\D", "", term)
    if len(digits) == 11 and digits[0] in "78":
        digits = digits[1:]
    return digits


def _digits_only(expression):
    for separator in _PHONE_SEPARATORS:
        expression = Replace(expression, Value(separator), Value(""), output_field=TextField())
    return expression


def _name_pattern(term: str) -> str:
    """A regular expression for ``term`` inside a ``name`` or ``fio`` value of the JSON text
    (SQLite, without the names function of PostgreSQL).

    SQLite keeps the JSON as Python wrote it, non-ASCII letters as ``\\u`` escapes, so the
    term is looked for in that spelling (and matches only in the case typed).
    """
    return r'"(name|fio)": "[^"]*' + re.escape(json.dumps(term)[1:-1])


def _json_spelling(term: str) -> str:
    # As PostgreSQL's jsonb output escapes: quote, backslash and control characters.
    return json.dumps(term, ensure_ascii=False)[1:-1]


def events_personal_search(events: QuerySet, term: str) -> QuerySet | None:
    """The events whose client's phone or a guest's or client's name matches ``term``.

    None when ``term`` looks like neither a name nor a phone.
    """
    term = " ".join(term.split())
    if _PHONE_TERM.match(term):
        digits = phone_digits(term)
        if len(digits) < MIN_PHONE_DIGITS:
            return None
        return events.alias(
            client_phone_digits=_digits_only(KeyTextTransform("phone", "payload"))
        ).filter(client_phone_digits__contains=digits)
    if not _LETTER.search(term) or _BODY_HASH.match(term):
        return None
    if connection.vendor == "postgresql":
        # The names alone, as the trigram index holds them (sync/0015): the term as
        # PostgreSQL writes a string in JSON, so a name with a quote is found too.
        names = Func(F("payload"), function=EVENT_NAMES_FUNCTION, output_field=TextField())
        return events.alias(payload_names=names).filter(
            payload_names__iregex=re.escape(_json_spelling(term))
        )
    return events.alias(payload_text=Cast(F("payload"), TextField())).filter(
        payload_text__iregex=_name_pattern(term)
    )
