"""Everything the emulator remembers, in memory, behind one lock.

The account and its catalogue, leads, authorization codes and tokens, the request log
and counters. The WSGI app holds ``lock`` for a whole request, so each request sees and
leaves a consistent state; the public methods take it too, for tests calling them while
the server runs in another thread.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from dataclasses import dataclass

from . import seed
from .leads import apply_write, blank_lead
from .ratelimit import SlidingWindow
from .validation import Catalogue, LeadWrite, validate_lead

CODE_LIFETIME = 20 * 60
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
# What a long-lived token reports as expires_in; it is never checked (5 years, the maximum).
LONG_LIVED_EXPIRES_IN = 5 * 365 * 24 * 3600
FIRST_NEW_LEAD_ID = 24000001
FIRST_TAG_ID = 600001
COUNTERS = (
    "requests",
    "authorization_code",
    "refresh",
    "invalid_grant",
    "unauthorized",
    "rate_limited",
    "leads_created",
    "leads_updated",
)


@dataclass(frozen=True)
class EmulatorConfig:
    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret"
    redirect_uri: str = "http://127.0.0.1:8000/amocrm/oauth/callback/"
    subdomain: str = "emulator"
    rate_limit: int = 7
    strict_refresh: bool = False
    access_token_lifetime: int = 86400
    # A long-lived token registered at start and after every reset (the demo's).
    access_token: str | None = None


@dataclass
class AuthorizationCode:
    value: str
    issued_at: float
    used: bool = False


@dataclass
class AccessToken:
    value: str
    expires_at: float | None  # None: a long-lived token
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@dataclass
class RefreshToken:
    value: str
    issued_at: float
    # The refresh token spent to get this one; it dies when this one is first used.
    parent: str | None = None
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.issued_at + REFRESH_TOKEN_LIFETIME


class State:
    """One emulated account; see the module docstring for what it holds."""

    def __init__(self, config: EmulatorConfig | None = None, base_url: str = "http://emulator"):
        self.config = config or EmulatorConfig()
        self.base_url = base_url
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to the seeded account: no tokens, no log, zero counters."""
        with self.lock:
            self.account = seed.account(self.base_url, self.config.subdomain)
            self.custom_fields = {f["id"]: f for f in seed.custom_fields(self.base_url)}
            self.pipelines = {p["id"]: p for p in seed.pipelines(self.base_url)}
            self.leads: dict[int, dict] = {}
            self.lead_contacts: dict[int, list[dict]] = {}
            self.tags: dict[int, dict] = {}
            self.codes: dict[str, AuthorizationCode] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.requests: list[dict] = []
            self.counters = dict.fromkeys(COUNTERS, 0)
            self.rate_window = SlidingWindow(self.config.rate_limit)
            # Faults on demand (control API): a status for batches over a size, and a delay.
            self.faults: dict = {}
            self._next_lead_id = FIRST_NEW_LEAD_ID
            self._next_tag_id = FIRST_TAG_ID
            for fields in seed.leads():
                self.add_lead(**fields)
            if self.config.access_token:
                self.issue_token(long_lived=True, access_token=self.config.access_token)

    def now(self) -> float:
        return time.time()

    # --- OAuth ----------------------------------------------------------------------
    def issue_code(self) -> str:
        """A fresh authorization code: valid 20 minutes, single use."""
        with self.lock:
            value = "def502" + secrets.token_hex(48)
            self.codes[value] = AuthorizationCode(value, self.now())
            return value

    def issue_token(
        self,
        long_lived: bool = False,
        *,
        access_token: str | None = None,
        rotated_from: str | None = None,
    ) -> dict:
        """A token pair (tests and the demo call it directly; the token endpoint too).

        Long-lived tokens never expire and have no refresh token. ``access_token`` picks
        the token's value; ``rotated_from`` is the refresh token this pair replaces.
        """
        with self.lock:
            now = self.now()
            value = access_token or secrets.token_urlsafe(48)
            if long_lived:
                self.access_tokens[value] = AccessToken(value, None)
                return {
                    "access_token": value,
                    "refresh_token": None,
                    "expires_in": LONG_LIVED_EXPIRES_IN,
                }
            lifetime = self.config.access_token_lifetime
            self.access_tokens[value] = AccessToken(value, now + lifetime)
            refresh = "def502" + secrets.token_hex(64)
            self.refresh_tokens[refresh] = RefreshToken(refresh, now, parent=rotated_from)
            return {"access_token": value, "refresh_token": refresh, "expires_in": lifetime}

    def access_token_valid(self, value: str) -> bool:
        with self.lock:
            token = self.access_tokens.get(value)
            return token is not None and token.valid(self.now())

    def expire_access_tokens(self) -> int:
        """Expires every access token except long-lived ones; returns how many."""
        with self.lock:
            expiring = [t for t in self.access_tokens.values() if t.expires_at is not None]
            for token in expiring:
                token.expires_at = self.now() - 1
            return len(expiring)

    def age_refresh_tokens(self, seconds: float) -> None:
        """Moves every refresh token's issue time back, e.g. past its 3-month lifetime."""
        with self.lock:
            for token in self.refresh_tokens.values():
                token.issued_at -= seconds

    def age_codes(self, seconds: float) -> None:
        """Moves every authorization code's issue time back, e.g. past its 20 minutes."""
        with self.lock:
            for code in self.codes.values():
                code.issued_at -= seconds

    def revoke_tokens(self) -> None:
        """What disabling the integration does: every token stops working."""
        with self.lock:
            for token in [*self.access_tokens.values(), *self.refresh_tokens.values()]:
                token.revoked = True

    # --- leads ----------------------------------------------------------------------
    def catalogue(self) -> Catalogue:
        with self.lock:
            return Catalogue(
                fields=self.custom_fields,
                pipelines=self.pipelines,
                tag_ids=frozenset(self.tags),
            )

    def add_lead(self, **fields) -> dict:
        """Creates a lead from POST-style fields (``id`` optional); ValueError if invalid."""
        with self.lock:
            lead_id = fields.pop("id", None)
            write, errors = validate_lead(fields, 0, self.catalogue(), current=None, updating=False)
            if errors:
                raise ValueError(errors)
            return copy.deepcopy(self.create_lead(write, lead_id=lead_id))

    def lead(self, lead_id: int) -> dict | None:
        """The lead exactly as GET /api/v4/leads/{id} returns it, or None."""
        with self.lock:
            lead = self.leads.get(lead_id)
            return copy.deepcopy(lead) if lead is not None else None

    def create_lead(self, write: LeadWrite, *, lead_id: int | None = None) -> dict:
        with self.lock:
            if lead_id is None:
                lead_id = self._next_lead_id
            self._next_lead_id = max(self._next_lead_id, lead_id + 1)
            now = int(self.now())
            lead = blank_lead(lead_id, base_url=self.base_url, now=now)
            apply_write(lead, write, now=now, base_url=self.base_url, resolve_tag=self._tag)
            self.leads[lead_id] = lead
            if write.contacts is not None:
                self.lead_contacts[lead_id] = write.contacts
            return lead

    def update_lead(self, write: LeadWrite) -> dict:
        with self.lock:
            lead = self.leads[write.lead_id]
            now = int(self.now())
            apply_write(lead, write, now=now, base_url=self.base_url, resolve_tag=self._tag)
            if write.contacts is not None:
                self.lead_contacts[lead["id"]] = write.contacts
            return lead

    def _tag(self, ref: dict) -> dict | None:
        if "id" in ref:
            return self.tags.get(ref["id"])
        for tag in self.tags.values():
            if tag["name"].casefold() == ref["name"].casefold():
                return tag
        tag = {"id": self._next_tag_id, "name": ref["name"], "color": None}
        self.tags[tag["id"]] = tag
        self._next_tag_id += 1
        return tag

    def delete_lead(self, lead_id: int) -> bool:
        """Moves the lead to the trash, as a user deleting it in AmoCRM does."""
        with self.lock:
            lead = self.leads.get(lead_id)
            if lead is None:
                return False
            lead["is_deleted"] = True
            return True

    def fault_set(
        self,
        *,
        status: int | None = None,
        over: int = 0,
        times: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """From now on: ``status`` for lead writes of more than ``over`` items (``times``
        times, or always), and every API request answered ``delay`` seconds late."""
        with self.lock:
            self.faults = {"status": status, "over": over, "times": times, "delay": delay}

    def fault_for(self, items: int) -> int | None:
        """The status a lead write of ``items`` items is to fail with, if any."""
        with self.lock:
            status, times = self.faults.get("status"), self.faults.get("times")
            if status is None or items <= self.faults.get("over", 0) or times == 0:
                return None
            if times is not None:
                self.faults["times"] = times - 1
            return status

    # --- observation ----------------------------------------------------------------
    def log_request(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)
            self.counters["requests"] += 1
