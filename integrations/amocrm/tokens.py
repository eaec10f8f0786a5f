"""The account's tokens: which one to send, and refreshing it under a row lock.

AmoCRM rotates refresh tokens and a spent one fails, so a refresh happens only while the
``Token`` row is locked (``select_for_update``) and the new pair is committed before any
worker uses it. A worker that waited for the lock finds the pair already new and uses it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.amocrm.client import (
    AmoCRMClient,
    AmoCRMError,
    OAuthFailed,
    Unauthorized,
    call_record,
)
from integrations.amocrm.models import Account, Token
from integrations.amocrm.ratelimit import limiter_get
from integrations.amocrm.signals import account_connected
from integrations.monitoring import metrics

logger = logging.getLogger(__name__)


def token_store(*, account: Account, pair: dict) -> Token:
    """Saves a token pair from the token endpoint and marks the account connected."""
    expires_in = float(pair.get("expires_in") or 86400)
    token, _ = Token.objects.update_or_create(
        account=account,
        defaults={
            "access_token": pair["access_token"],
            "refresh_token": pair.get("refresh_token", ""),
            "expires_at": timezone.now() + timedelta(seconds=expires_in),
            "refreshed_at": timezone.now(),
        },
    )
    account_mark_connected(account=account)
    return token


def account_mark_connected(*, account: Account) -> None:
    """Marks the account connected; once committed, whatever waited for it resumes."""
    was_disconnected = account.state != Account.State.CONNECTED
    account.state_set(Account.State.CONNECTED)
    account.save(update_fields=["state", "state_reason", "state_changed_at", "updated_at"])
    if was_disconnected:
        transaction.on_commit(
            lambda: account_connected.send(sender=Account, account_id=account.pk), robust=True
        )


def account_disconnect(*, account: Account, reason: str) -> None:
    """Marks the account disconnected (a refresh was refused); an admin must reconnect."""
    account.state_set(Account.State.DISCONNECTED, reason)
    account.save(update_fields=["state", "state_reason", "state_changed_at", "updated_at"])
    logger.warning("amocrm account disconnected", extra={"account": account.pk, "reason": reason})


class AccountTokens:
    """The ``TokenSource`` for an account, backed by its ``Token`` row."""

    def __init__(self, account: Account):
        self.account = account

    def access_token(self) -> str:
        if self.account.long_lived_token:
            return self.account.long_lived_token
        token = Token.objects.filter(account=self.account).first()
        if token is None:
            raise Unauthorized(f"Account {self.account} has no token: connect it first")
        margin = timedelta(seconds=settings.AMOCRM_REFRESH_MARGIN)
        if token.expires_at - margin > timezone.now():
            return token.access_token
        return self._refresh(stale=token.access_token)

    def refreshed_token(self, rejected: str) -> str | None:
        if self.account.long_lived_token:
            return None  # long-lived tokens cannot be refreshed; AmoCRM revoked it
        return self._refresh(stale=rejected)

    def _refresh(self, *, stale: str) -> str:
        # The call is recorded after the transaction: a refused refresh rolls it back.
        client = AmoCRMClient(self.account, limiter=limiter_get(), audit=False)
        try:
            with transaction.atomic():
                token = Token.objects.select_for_update().get(account=self.account)
                if token.access_token != stale:
                    return token.access_token  # another worker refreshed while we waited
                if not token.refresh_token:
                    raise Unauthorized(f"Account {self.account} has no refresh token")
                pair = client.token_from_refresh(token.refresh_token)
                token = token_store(account=self.account, pair=pair)
        except OAuthFailed as error:
            # Outside the transaction, so the disconnection is committed.
            account_disconnect(account=self.account, reason=f"Refresh refused: {error.detail}")
            metrics.token_refresh_observed("refused")
            raise Unauthorized(error.detail, call=error.call, status=error.status) from error
        except AmoCRMError:
            metrics.token_refresh_observed("failed")
            raise
        finally:
            for call in client.calls:
                call_record(account=self.account, call=call)
        metrics.token_refresh_observed("refreshed")
        logger.info("amocrm token refreshed", extra={"account": self.account.pk})
        return token.access_token


def tokens_refresh_due(*, max_age: float | None = None) -> dict[str, int]:
    """Refreshes every OAuth pair older than ``max_age`` seconds (beat, hourly).

    A refresh token unused for three months is revoked by AmoCRM; refreshing well before
    that keeps a quiet account connected for years. Returns counts by outcome.
    """
    max_age = settings.AMOCRM_PROACTIVE_REFRESH_AGE if max_age is None else max_age
    cutoff = timezone.now() - timedelta(seconds=max_age)
    due = Token.objects.filter(
        refreshed_at__lte=cutoff,
        account__state=Account.State.CONNECTED,
        account__long_lived_token="",
    ).select_related("account")
    counts = {"refreshed": 0, "failed": 0}
    for token in due:
        try:
            AccountTokens(token.account).refreshed_token(rejected=token.access_token)
        except AmoCRMError as error:
            counts["failed"] += 1
            logger.warning(
                "proactive refresh failed",
                extra={"account": token.account_id, "error_class": type(error).__name__},
            )
        else:
            counts["refreshed"] += 1
    return counts
