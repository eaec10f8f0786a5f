"""Admin template tags: the banner for accounts whose deliveries are paused."""

from django import template

from integrations.amocrm.models import Account

register = template.Library()


@register.simple_tag
def amocrm_disconnected_accounts():
    """Accounts that lost their connection (flows point at them, events wait)."""
    return list(
        Account.objects.filter(state=Account.State.DISCONNECTED, flows__isnull=False)
        .distinct()
        .only("pk", "name", "state_reason")
    )
