"""Where alerts go (channels), what went wrong (incidents) and what was said (sent alerts)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from hub.encryption import EncryptedTextField


class AlertChannel(models.Model):
    """A place alerts are sent to, besides the ones named in the environment."""

    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail")
        TELEGRAM = "telegram", _("Telegram")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    enabled = models.BooleanField(_("enabled"), default=True)
    email_recipients = models.TextField(
        _("e-mail recipients"),
        blank=True,
        help_text=_("Addresses separated by commas; sent with the hub's mail settings."),
    )
    # Encrypted at rest like the AmoCRM secrets (hub/encryption.py, `rotate_secrets`).
    telegram_bot_token = EncryptedTextField(_("Telegram bot token"), blank=True)
    telegram_chat_id = models.CharField(
        _("Telegram chat id"),
        max_length=100,
        blank=True,
        help_text=_("A user, group or channel id, e.g. -1001234567890."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("alert channel")
        verbose_name_plural = _("alert channels")

    def __str__(self) -> str:
        return self.name

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.email_recipients.split(",") if a.strip()]


class Incident(models.Model):
    """Something wrong, from the run that found it to the run that saw it clear.

    ``key`` names the condition and what it is about (``account-disconnected:3``); at
    most one incident per key is open, so an alert goes out once per incident.
    """

    key = models.CharField(_("key"), max_length=200)
    summary = models.TextField(_("summary"))
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(resolved_at__isnull=True), name="uniq_open_incident"
            )
        ]
        indexes = [models.Index(fields=["opened_at"], name="incident_opened_idx")]

    def __str__(self) -> str:
        return self.key

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class SentAlert(models.Model):
    """One message sent (or tried) to one channel about an incident."""

    class Kind(models.TextChoices):
        OPENED = "opened", pgettext_lazy("alert kind", "Problem")
        RESOLVED = "resolved", pgettext_lazy("alert kind", "Recovery")

    class Outcome(models.TextChoices):
        SENT = "sent", pgettext_lazy("alert outcome", "Sent")
        FAILED = "failed", pgettext_lazy("alert outcome", "Failed")

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("incident")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    channel = models.CharField(
        _("channel"),
        max_length=120,
        help_text=_("The channel's name, or env:... for one set in the environment."),
    )
    text = models.TextField(_("text"))
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("sent alert")
        verbose_name_plural = _("sent alerts")
        indexes = [
            models.Index(fields=["sent_at"], name="sentalert_sent_idx"),
            # "Which channels still owe this incident its message?", asked every minute.
            models.Index(fields=["incident", "kind", "outcome"], name="sentalert_owed_idx"),
        ]

    def __str__(self) -> str:
        return gettext("%(kind)s to %(channel)s at %(when)s") % {
            "kind": self.get_kind_display(),
            "channel": self.channel,
            "when": f"{self.sent_at:%Y-%m-%d %H:%M}",
        }
