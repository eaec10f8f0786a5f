"""Who did what with an event: replays and views of its personal data."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.sync.models.events import EventStatus, InboundEvent


class Replay(models.Model):
    """Someone sent an event again: who, when and how; its attempts follow in the history."""

    class Source(models.TextChoices):
        EVENT_PAGE = "event_page", _("Event page")
        ADMIN_ACTION = "admin_action", _("Admin action")
        COMMAND = "command", _("Management command")

    event = models.ForeignKey(
        InboundEvent, on_delete=models.CASCADE, related_name="replays", verbose_name=_("event")
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    source = models.CharField(_("source"), max_length=20, choices=Source)
    previous_status = models.CharField(_("previous status"), max_length=20, choices=EventStatus)
    attempts_before = models.PositiveIntegerField(_("attempts before"), default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("replay")
        verbose_name_plural = _("replays")
        indexes = [models.Index(fields=["requested_at"], name="replay_requested_idx")]

    def __str__(self) -> str:
        return gettext("replay of #%(event)s at %(when)s") % {
            "event": self.event_id,
            "when": f"{self.requested_at:%Y-%m-%d %H:%M}",
        }


class PersonalDataAccess(models.Model):
    """A user saw an event's personal data unmasked (152-FZ asks who and when)."""

    class Kind(models.TextChoices):
        VIEW = "view", _("Viewed the event page")
        EXPORT = "export", _("Exported in CSV")
        PREVIEW = "preview", _("Previewed the request")

    event = models.ForeignKey(
        InboundEvent,
        on_delete=models.CASCADE,
        related_name="personal_data_accesses",
        verbose_name=_("event"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    accessed_at = models.DateTimeField(_("accessed at"), default=timezone.now)

    class Meta:
        ordering = ["-accessed_at", "-id"]
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data accesses")
        indexes = [models.Index(fields=["accessed_at"], name="pd_access_at_idx")]

    def __str__(self) -> str:
        return gettext("%(user)s: %(kind)s, event #%(event)s") % {
            "user": self.user,
            "kind": self.get_kind_display(),
            "event": self.event_id,
        }
