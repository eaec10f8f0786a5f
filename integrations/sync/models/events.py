"""What arrived and what was sent: inbound events, delivery attempts, batch calls."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from integrations.amocrm.models import Account, CallRecord
from integrations.sync.models.flows import Flow


class EventStatus(models.TextChoices):
    RECEIVED = "received", pgettext_lazy("event status", "Received")
    QUEUED = "queued", pgettext_lazy("event status", "Queued")
    DELIVERED = "delivered", pgettext_lazy("event status", "Delivered")
    SKIPPED = "skipped", pgettext_lazy("event status", "Skipped")
    FAILED = "failed", pgettext_lazy("event status", "Failed")
    REJECTED = "rejected", pgettext_lazy("event status", "Rejected")


class InboundEvent(models.Model):
    """One item that RDESK posted, stored before anything else happens to it."""

    flow = models.ForeignKey(
        Flow, on_delete=models.PROTECT, related_name="events", verbose_name=_("flow")
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    raw_body = models.BinaryField(_("raw body"))
    body_hash = models.CharField(
        _("body hash"), max_length=64, help_text=_("SHA-256 of the raw body.")
    )
    item_index = models.PositiveIntegerField(
        _("item index"), default=0, help_text=_("Position of this item in the posted array.")
    )
    payload = models.JSONField(_("payload"), null=True, blank=True)
    rdesk_id = models.CharField(_("RDESK id"), max_length=64, blank=True)
    lead_id = models.CharField(_("lead id"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=EventStatus, default=EventStatus.RECEIVED
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    replayed_at = models.DateTimeField(
        _("replayed at"),
        null=True,
        blank=True,
        help_text=_("When an admin last sent it again; retries age from here."),
    )
    attempts_at_replay = models.PositiveIntegerField(
        _("attempts at replay"),
        default=0,
        help_text=_("The attempt count when it was last replayed; backoff restarts from here."),
    )
    # The fencing token of the worker holding the event (see claims.py): while it is set
    # and next_attempt_at is ahead, next_attempt_at is that worker's lease, and only a
    # write carrying the same token may finish, retry or release the event.
    claim_token = models.UUIDField(
        _("claim token"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Set while a worker holds the event; only that worker may finish it."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    pruned_at = models.DateTimeField(
        _("pruned at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "When the retention policy replaced its bodies by a summary without personal data."
        ),
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        permissions = [
            ("replay_event", "Can send events to AmoCRM again"),
            ("view_personal_data", "Can see guests' personal data unmasked"),
            ("export_events", "Can export the sync history as CSV"),
            ("preview_event", "Can preview what an event would send"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="event_due_idx"),
            # The dashboard counts events by day and status: served from the index alone.
            models.Index(fields=["received_at", "status"], name="event_received_status_idx"),
            models.Index(fields=["rdesk_id"], name="event_rdesk_id_idx"),
            models.Index(fields=["body_hash"], name="event_body_hash_idx"),
            # "Was a newer event for this lead delivered?", asked before every send; and any
            # search by lead (its first column).
            models.Index(fields=["lead_id", "status", "received_at"], name="event_lead_order_idx"),
            # Only claimed events carry a token: new ones cost this index nothing.
            models.Index(
                fields=["claim_token"],
                condition=Q(claim_token__isnull=False),
                name="event_claim_idx",
            ),
            # Retention: the events still holding their bodies, by age (what is due), and
            # the pruned ones (how many), each a small part of the table.
            models.Index(
                fields=["status", "received_at", "id"],
                condition=Q(pruned_at__isnull=True),
                name="event_unpruned_idx",
            ),
            models.Index(
                fields=["pruned_at"], condition=Q(pruned_at__isnull=False), name="event_pruned_idx"
            ),
        ]

    def __str__(self) -> str:
        return gettext("#%(id)s %(flow)s %(status)s") % {
            "id": self.pk,
            "flow": self.flow,
            "status": self.get_status_display(),
        }

    @property
    def raw_text(self) -> str:
        """The raw body as text, for reading in the admin."""
        return bytes(self.raw_body).decode("utf-8", errors="replace")


class BatchCall(CallRecord):
    """One call to AmoCRM that carried several events' items (a batch PATCH or POST).

    Its whole answer is kept here once; the request is not, because each event's
    ``DeliveryAttempt`` holds exactly the item sent for it, which is the request split up.
    """

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="batch_calls", verbose_name=_("account")
    )
    item_count = models.PositiveIntegerField(
        _("items"), default=0, help_text=_("How many events' items the call carried.")
    )

    class Meta(CallRecord.Meta):
        verbose_name = _("batch call")
        verbose_name_plural = _("batch calls")
        indexes = [models.Index(fields=["account", "started_at"], name="batchcall_account_idx")]


class DeliveryAttempt(CallRecord):
    """One call to AmoCRM made for an event: what was sent, what came back, how long.

    For a batch call the row holds only this event's item and its part of the answer;
    ``batch_call`` links to the call as a whole.
    """

    event = models.ForeignKey(
        InboundEvent,
        on_delete=models.CASCADE,
        related_name="delivery_attempts",
        verbose_name=_("event"),
    )
    batch_call = models.ForeignKey(
        BatchCall,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attempts",
        verbose_name=_("batch call"),
        help_text=_("The batch call that carried this event's item, with its whole answer."),
    )

    class Meta(CallRecord.Meta):
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        indexes = [models.Index(fields=["started_at"], name="attempt_started_idx")]


class LeadAlias(models.Model):
    """Mock lead id mode: the AmoCRM lead that stands for an RDESK lead id."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="lead_aliases", verbose_name=_("account")
    )
    rdesk_lead_id = models.BigIntegerField(_("RDESK lead id"))
    amocrm_lead_id = models.BigIntegerField(_("AmoCRM lead id"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("lead alias")
        verbose_name_plural = _("lead aliases")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "rdesk_lead_id"], name="uniq_alias_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"ID_{self.rdesk_lead_id} -> {self.amocrm_lead_id}"


class AccountDrain(models.Model):
    """Whether a nudge to drain an account's events is already on its way to a worker.

    Set when a drain message is sent, cleared when a worker starts on it: events waiting in
    a long broker queue are not nudged again (by the intake or the sweeper) meanwhile.
    """

    account = models.OneToOneField(
        Account,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="drain",
        verbose_name=_("account"),
    )
    nudged_at = models.DateTimeField(
        _("nudged at"),
        null=True,
        blank=True,
        help_text=_("When a drain message was last sent and not yet taken by a worker."),
    )

    class Meta:
        verbose_name = _("account drain")
        verbose_name_plural = _("account drains")

    def __str__(self) -> str:
        return f"drain of account {self.account_id}"
