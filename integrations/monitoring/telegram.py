"""The one place that speaks HTTP to Telegram's Bot API.

Every call has a (connect, read) timeout and ends in a result or one error class per
outcome. The bot token is part of the URL Telegram wants, so neither URLs nor requests'
own exception texts (which quote the URL) are ever logged or kept: errors say only what
happened and Telegram's own description.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

# https://core.telegram.org/bots/api#sendmessage
SEND_MESSAGE_PATH = "/bot{token}/sendMessage"
# Telegram refuses longer texts.
MAX_TEXT = 4096


class TelegramError(Exception):
    """Base of every failed call; ``detail`` is safe to show and store (no token)."""

    retryable = False

    def __init__(self, detail: str, *, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status


class TelegramRefused(TelegramError):
    """4xx: a wrong token (401), an unknown chat (400) or a bot removed from it (403)."""


class TelegramUnavailable(TelegramError):
    """5xx, 429, a timeout or no connection: Telegram could not take the message now."""

    retryable = True


class TelegramClient:
    """Sends messages with one bot."""

    def __init__(
        self,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] | None = None,
        base_url: str | None = None,
    ):
        self._token = token
        self.session = session or requests.Session()
        self.timeout = timeout or settings.HUB_TELEGRAM_TIMEOUT
        self.base_url = (base_url or settings.HUB_TELEGRAM_API_URL).rstrip("/")

    def __repr__(self) -> str:
        return "TelegramClient(token=[redacted])"

    def message_send(self, *, chat_id: str, text: str) -> dict:
        """Sends ``text`` to ``chat_id``; returns Telegram's ``result`` (the message)."""
        url = self.base_url + SEND_MESSAGE_PATH.format(token=self._token)
        try:
            response = self.session.post(
                url,
                json={
                    "chat_id": chat_id,
                    "text": text[:MAX_TEXT],
                    "disable_web_page_preview": True,
                },
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise TelegramUnavailable("Telegram did not answer in time") from None
        except requests.RequestException as error:
            raise TelegramUnavailable(f"Telegram unreachable: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        description = body.get("description") if isinstance(body, dict) else None
        detail = f"HTTP {response.status_code}" + (f": {description}" if description else "")
        if response.status_code == 429 or response.status_code >= 500:
            raise TelegramUnavailable(detail, status=response.status_code)
        if response.status_code != 200 or not body.get("ok"):
            raise TelegramRefused(detail, status=response.status_code)
        logger.info("telegram message sent", extra={"status": response.status_code})
        return body.get("result") or {}
