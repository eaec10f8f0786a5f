"""Alert channels for the monitoring tests: e-mail to the locmem outbox, Telegram mocked."""

import pytest

TELEGRAM_TOKEN = "123456:telegram-bot-secret"
TELEGRAM_CHAT = "-1001234567890"
TELEGRAM_URL = f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage"


@pytest.fixture
def email_channel(settings):
    """The environment's e-mail channel; Django's test mail backend keeps the messages."""
    settings.HUB_ALERT_EMAILS = ["ops@example.ru"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def telegram_channel(settings):
    settings.HUB_TELEGRAM_BOT_TOKEN = TELEGRAM_TOKEN
    settings.HUB_TELEGRAM_CHAT_ID = TELEGRAM_CHAT


@pytest.fixture
def telegram_http():
    """``responses`` for Telegram: only registered calls succeed, and all must happen."""
    import responses

    with responses.RequestsMock() as mock:
        yield mock
