"""Masks guests' personal and medical data (152-FZ) for people not allowed to see it.

RDESK payloads are masked by key (``name``, ``phone``, ``fio``, ``cure``, ``action``, ...).
Everything derived from a payload (the raw body, the named values, the request sent to
AmoCRM and its answer, error texts) is masked by value: every personal string found in
the payload is replaced wherever it appears, so a copy can never slip through under a
key the hub does not know.

The same masker, ``removing`` hints, writes the summary that retention keeps of an old
event (see ``retention.py``): every personal value becomes ``***``, no initials, no phone
tail, and everything else (ids, amounts, dates, statuses) stays where it was.
"""

import json
import re
from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

NAME_KEYS = frozenset({"name", "fio"})
PHONE_KEYS = frozenset({"phone"})
EMAIL_KEYS = frozenset({"email"})
BIRTHDAY_KEYS = frozenset({"birthday"})
# Treatments, lab tests, packets and programmes: health data, a special category.
HEALTH_KEYS = frozenset({"cure", "action", "lab", "packet", "complex"})
OPAQUE_KEYS = frozenset({"uid"})
PERSONAL_KEYS = NAME_KEYS | PHONE_KEYS | EMAIL_KEYS | BIRTHDAY_KEYS | HEALTH_KEYS | OPAQUE_KEYS

HIDDEN = "***"
UNREADABLE_BODY = _("[hidden: the body could not be read as JSON and may hold personal data]")

_WORD = re.compile(r"\w+", re.UNICODE)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def name_mask(value: str) -> str:
    """``Фамилия Имя`` -> ``Ф*** И***``."""
    return _WORD.sub(lambda m: m.group(0)[0] + HIDDEN, value)


def phone_mask(value: str) -> str:
    """``79123123123`` -> ``+7 *** *** 31 23``: the last four digits stay, to tell apart."""
    digits = re.sub(r"\D", "", value)
    if len(digits) < 4:
        return HIDDEN
    tail = f"{digits[-4:-2]} {digits[-2:]}"
    if len(digits) == 11 and digits[0] in "78":
        return f"+7 *** *** {tail}"
    return f"*** {tail}"


def email_mask(value: str) -> str:
    """``mail@example.ru`` -> ``m***@e***.ru``."""
    local, at, domain = value.partition("@")
    if not at:
        return name_mask(value)
    host, dot, tld = domain.rpartition(".")
    masked_domain = f"{host[:1]}{HIDDEN}{dot}{tld}" if dot else f"{domain[:1]}{HIDDEN}"
    return f"{local[:1]}{HIDDEN}@{masked_domain}"


def birthday_mask(value: str) -> str:
    """Every digit hidden, the shape kept: ``1950-12-01`` -> ``****-**-**``."""
    return re.sub(r"\d", "*", value)


def _mask_for_key(key: str, value: str) -> str:
    if key in NAME_KEYS:
        return name_mask(value)
    if key in PHONE_KEYS:
        return phone_mask(value)
    if key in EMAIL_KEYS:
        return email_mask(value)
    if key in BIRTHDAY_KEYS:
        return birthday_mask(value)
    return HIDDEN


def _removed(key: str, value: str) -> str:
    return HIDDEN


def _personal_pairs(value, mask, key: str | None = None) -> Iterable[tuple[str, str]]:
    """(original, masked) for every personal scalar in a payload."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _personal_pairs(v, mask, k)
    elif isinstance(value, list):
        for item in value:
            yield from _personal_pairs(item, mask, key)
    elif key in PERSONAL_KEYS and value not in (None, "", True, False):
        text = str(value).strip()
        if text:
            yield text, mask(key, text)


def _name_words(value, key: str | None = None) -> Iterable[str]:
    """Each word of every name in a payload: a surname alone is still a person."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _name_words(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _name_words(item, key)
    elif key in NAME_KEYS and isinstance(value, str):
        yield from (word for word in _WORD.findall(value) if len(word) >= 3)


def _variants(original: str, masked: str, removing: bool) -> Iterable[tuple[str, str]]:
    """Other spellings of a personal value that texts derived from the payload use."""
    # A phone also travels as bare digits.
    digits = re.sub(r"\D", "", original)
    if len(digits) >= 7 and digits != original:
        yield digits, masked
    # A birthday is written the Russian way in the named values (``03.07.1985``).
    date = _ISO_DATE.match(original)
    if date:
        year, month, day = date.groups()
        russian = f"{day}.{month}.{year}"
        yield russian, HIDDEN if removing else birthday_mask(russian)
    # A JSON text (an answer from AmoCRM, a body kept as text) may carry \u escapes.
    escaped = json.dumps(original)[1:-1]
    if escaped != original:
        yield escaped, masked


class Masker:
    """Masks one event's data; a disabled masker returns everything as it is.

    ``removing`` replaces every personal value by ``***`` instead of a mask that keeps a
    hint (initials, a phone's last digits) for telling guests apart on a page, and also
    each word of a name wherever it stands alone.
    """

    def __init__(self, payload, *, enabled: bool = True, removing: bool = False):
        self.enabled = enabled
        self._payload = payload
        self._mask = _removed if removing else _mask_for_key
        pairs = dict(_personal_pairs(payload, self._mask)) if enabled else {}
        for original, masked in list(pairs.items()):
            for variant, variant_masked in _variants(original, masked, removing):
                pairs.setdefault(variant, variant_masked)
        if enabled and removing:
            for word in _name_words(payload):
                pairs.setdefault(word, HIDDEN)
        # Longest first, so a full name is replaced before a shorter name inside it.
        self._pairs = sorted(pairs.items(), key=lambda pair: -len(pair[0]))
        self._pattern = (
            re.compile("|".join(re.escape(original) for original, _ in self._pairs))
            if self._pairs
            else None
        )
        self._masked = dict(self._pairs)

    @property
    def source(self):
        """The payload (or list of payloads) whose personal values this masker knows."""
        return self._payload

    @classmethod
    def for_user(cls, user, payload) -> "Masker":
        """A masker that is off for users with ``sync.view_personal_data``."""
        return cls(payload, enabled=not user.has_perm("sync.view_personal_data"))

    @classmethod
    def for_raw(cls, user, raw_text: str, payload=None) -> "Masker":
        """A masker for an event whose payload may be missing (a rejected body)."""
        if payload is None:
            try:
                payload = json.loads(raw_text)
            except ValueError:
                payload = None
        return cls.for_user(user, payload)

    def payload(self):
        """The RDESK payload with personal values masked by key."""
        return self.json(self._payload, by_key=True)

    def json(self, value, *, by_key: bool = False):
        """A deep copy of a JSON value with personal data masked."""
        if not self.enabled:
            return value
        return self._walk(value, None, by_key)

    def _walk(self, value, key, by_key):
        if isinstance(value, dict):
            return {k: self._walk(v, k, by_key) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(item, key, by_key) for item in value]
        if by_key and key in PERSONAL_KEYS and value not in (None, "", True, False):
            return self._mask(key, str(value))
        if isinstance(value, str):
            return self.text(value)
        return value

    def text(self, value: str) -> str:
        """A text with every personal string of the payload replaced by its mask."""
        if not self.enabled or not value or self._pattern is None:
            return value
        return self._pattern.sub(lambda m: self._masked[m.group(0)], value)

    def raw(self, raw_text: str) -> str:
        """The raw body for reading; masked, it is re-indented JSON masked by key.

        Masking the text as received could miss a value written with JSON escapes
        (``\\u0424``), so a masked body is parsed and shown again, or hidden when unreadable.
        """
        if not self.enabled:
            return raw_text
        try:
            parsed = json.loads(raw_text)
        except ValueError:
            return str(UNREADABLE_BODY)
        return json.dumps(self.json(parsed, by_key=True), ensure_ascii=False, indent=2)

    def body(self, text: str, *, by_key: bool = False) -> str:
        """A body kept as text, masked in place: JSON stays JSON of the same shape.

        Parsing first undoes ``\\u`` escapes that would hide a value from the text masker.
        """
        if not self.enabled or not text:
            return text
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.text(text)
        return json.dumps(self.json(parsed, by_key=by_key), ensure_ascii=False)
