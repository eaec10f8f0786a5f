"""Celery tasks of the AmoCRM app: thin, they call the token services."""

from celery import shared_task

from integrations.amocrm.tokens import tokens_refresh_due


@shared_task(name="integrations.amocrm.tasks.refresh_tokens", ignore_result=True)
def refresh_tokens() -> dict[str, int]:
    """Refreshes token pairs long before AmoCRM's three-month refresh-token life ends."""
    return tokens_refresh_due()
