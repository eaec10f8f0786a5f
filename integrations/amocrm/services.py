"""Account services: create from the old service's environment, connect, fetch the catalogue."""

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from integrations.amocrm.client import AmoCRMClient
from integrations.amocrm.models import Account, CustomField, Pipeline, Status
from integrations.amocrm.ratelimit import limiter_get
from integrations.amocrm.tokens import AccountTokens, account_mark_connected, token_store

logger = logging.getLogger(__name__)


def account_from_env(
    *,
    subdomain: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    base_url: str = "",
    long_lived_token: str = "",
    timezone_name: str = "Europe/Moscow",
) -> tuple[Account, bool]:
    """The account named by the old service's AMO_* variables, created once.

    Idempotent: an existing account (matched by subdomain, or base URL when there is no
    subdomain) is returned unchanged, since after the first start the admin is where
    these settings are edited.
    """
    name = subdomain or base_url
    if not name:
        raise ValueError(gettext("AMO_SUBDOMAIN or AMO_BASE_URL is required to create the account"))
    lookup = {"subdomain": subdomain} if subdomain else {"base_url": base_url}
    existing = (
        Account.objects.filter(**lookup).order_by("pk").first()
        # An admin may have changed the subdomain or URL since; the name still matches.
        or Account.objects.filter(name=name).first()
    )
    if existing is not None:
        return existing, False
    account = Account(
        name=name,
        subdomain=subdomain,
        base_url=base_url,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        long_lived_token=long_lived_token,
        timezone=timezone_name,
    )
    if long_lived_token:
        account.state_set(Account.State.CONNECTED)
    account.save()
    return account, True


def account_connect_with_code(*, account: Account, code: str) -> None:
    """Exchanges an authorization code for the account's token pair and stores it."""
    pair = AmoCRMClient(account, limiter=limiter_get()).token_from_code(code)
    with transaction.atomic():
        token_store(account=account, pair=pair)
    logger.info("amocrm account connected", extra={"account": account.pk})


def account_set_long_lived_token(*, account: Account, token: str) -> None:
    """Uses a long-lived token (private integrations) instead of OAuth tokens."""
    account.long_lived_token = token
    account.save(update_fields=["long_lived_token", "updated_at"])
    account_mark_connected(account=account)


def connection_test(*, account: Account) -> dict:
    """GET the account info with the stored token: proves the connection works."""
    return AmoCRMClient(account, tokens=AccountTokens(account), limiter=limiter_get()).account_get()


def catalogue_refresh(*, account: Account) -> tuple[int, int]:
    """Fetches the account's lead fields and pipelines; returns their counts."""
    client = AmoCRMClient(account, tokens=AccountTokens(account), limiter=limiter_get())
    fields = client.custom_fields_list()
    pipelines = client.pipelines_list()
    now = timezone.now()
    with transaction.atomic():
        for field in fields:
            CustomField.objects.update_or_create(
                account=account,
                field_id=field["id"],
                defaults={
                    "name": field.get("name") or "",
                    "code": field.get("code") or "",
                    "type": field.get("type") or "",
                    "is_computed": bool(field.get("is_computed")),
                    "enums": field.get("enums") or [],
                    "fetched_at": now,
                },
            )
        CustomField.objects.filter(account=account).exclude(
            field_id__in=[f["id"] for f in fields]
        ).delete()
        for item in pipelines:
            pipeline, _ = Pipeline.objects.update_or_create(
                account=account,
                pipeline_id=item["id"],
                defaults={
                    "name": item.get("name") or "",
                    "sort": item.get("sort") or 0,
                    "is_main": bool(item.get("is_main")),
                    "fetched_at": now,
                },
            )
            statuses = item.get("_embedded", {}).get("statuses", [])
            for status in statuses:
                Status.objects.update_or_create(
                    pipeline=pipeline,
                    status_id=status["id"],
                    defaults={
                        "name": status.get("name") or "",
                        "sort": status.get("sort") or 0,
                        "type": status.get("type") or 0,
                    },
                )
            pipeline.statuses.exclude(status_id__in=[s["id"] for s in statuses]).delete()
        Pipeline.objects.filter(account=account).exclude(
            pipeline_id__in=[p["id"] for p in pipelines]
        ).delete()
    return len(fields), len(pipelines)
