"""The delivery pipeline's records: flows and their mappings, inbound events and attempts."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from integrations.amocrm.encoding import FieldType
from integrations.amocrm.models import Account, CallRecord, Pipeline, Status

# Won and lost exist in every pipeline under the same ids (reference section 6).
CLOSED_STATUS_IDS = frozenset({142, 143})
UNSORTED_STATUS_TYPE = 1


class FlowKind(models.TextChoices):
    BOOKED = "booked", _("Booking (RDESK /zdrav/booked)")
    MC = "mc", _("Medical centre (RDESK /zdrav/mc)")


class Flow(models.Model):
    """An intake endpoint and how its payloads become updates of AmoCRM leads."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=FlowKind)
    endpoint_path = models.CharField(
        _("endpoint path"),
        max_length=200,
        unique=True,
        help_text=_("The path RDESK posts to, e.g. /zdrav/booked."),
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flows",
        verbose_name=_("account"),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("Disabled flows still store what arrives but deliver nothing."),
    )
    price_source = models.CharField(
        _("price source"),
        max_length=100,
        blank=True,
        default="total",
        help_text=_("The named value written to the lead's price; empty leaves the price alone."),
    )
    mock_lead_id = models.BooleanField(
        _("mock lead id mode"),
        default=False,
        help_text=_(
            "Update the lead named ID_N, where N is the RDESK lead id (the lead is created "
            "when missing), instead of the lead with that id."
        ),
    )
    mock_pipeline_id = models.BigIntegerField(
        _("mock pipeline id"),
        null=True,
        blank=True,
        help_text=_("Pipeline for created mock leads; empty: the main one."),
    )
    mock_status_id = models.BigIntegerField(
        _("mock status id"),
        null=True,
        blank=True,
        help_text=_("Status for created mock leads; empty: the first one."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("flow")
        verbose_name_plural = _("flows")

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if not self.endpoint_path.startswith("/"):
            raise ValidationError({"endpoint_path": gettext("The path must start with '/'.")})
        if self.mock_pipeline_id is not None or self.mock_status_id is not None:
            errors = stage_errors(
                account_id=self.account_id,
                pipeline_id=self.mock_pipeline_id,
                status_id=self.mock_status_id,
            )
            if errors:
                raise ValidationError({f"mock_{name}": message for name, message in errors.items()})


def stage_errors(
    *, account_id: int | None, pipeline_id: int | None, status_id: int | None
) -> dict[str, str]:
    """What is wrong with a pipeline/status pair, judged by the account's catalogue.

    Keys are ``pipeline_id`` and ``status_id``. Without a fetched catalogue nothing can be
    judged and AmoCRM has the last word. A missing pipeline means "whichever holds the
    status"; Unsorted is refused because AmoCRM moves leads there only by itself.
    """
    pipelines = Pipeline.objects.filter(account_id=account_id)
    if account_id is None or not pipelines.exists():
        return {}
    if pipeline_id is not None and not pipelines.filter(pipeline_id=pipeline_id).exists():
        return {
            "pipeline_id": gettext("Pipeline %(id)s is not in the account's catalogue.")
            % {"id": pipeline_id}
        }
    if status_id is None or status_id in CLOSED_STATUS_IDS:
        return {}
    statuses = Status.objects.filter(pipeline__account_id=account_id, status_id=status_id)
    if pipeline_id is not None:
        statuses = statuses.filter(pipeline__pipeline_id=pipeline_id)
    status = statuses.first()
    if status is None:
        if pipeline_id is None:
            message = gettext("Status %(id)s is not a stage of any pipeline.")
        else:
            message = gettext("Status %(id)s is not a stage of pipeline %(pipeline)s.")
        return {"status_id": message % {"id": status_id, "pipeline": pipeline_id}}
    if status.type == UNSORTED_STATUS_TYPE:
        return {"status_id": gettext("Leads cannot be put into the Unsorted stage.")}
    return {}


class FieldMapping(models.Model):
    """One named value of a flow's transform written to one AmoCRM lead field."""

    flow = models.ForeignKey(
        Flow, on_delete=models.CASCADE, related_name="mappings", verbose_name=_("flow")
    )
    source = models.CharField(
        pgettext_lazy("named value", "source"),
        max_length=100,
        help_text=_("A value the flow's transform produces, e.g. paid, check_in."),
    )
    field_id = models.BigIntegerField(_("AmoCRM field id"))
    field_type = models.CharField(_("field type"), max_length=20, choices=FieldType)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        ordering = ["flow", "id"]
        verbose_name = _("field mapping")
        verbose_name_plural = _("field mappings")
        constraints = [
            models.UniqueConstraint(fields=["flow", "field_id"], name="uniq_field_per_flow")
        ]

    def __str__(self) -> str:
        return f"{self.source} -> {self.field_id} ({self.field_type})"

    def clean(self):
        from integrations.sync.mapping_checks import mapping_validate

        if self.flow_id is None and not FieldMapping.flow.is_cached(self):
            return
        errors = mapping_validate(mapping=self)
        if errors:
            raise ValidationError(errors)


class BookingStatus(models.TextChoices):
    """The statuses RDESK gives a booking (``schemas.BOOKING_STATUSES``)."""

    BOOKED = "booked", pgettext_lazy("booking status", "Booked")
    CHECKIN = "checkin", pgettext_lazy("booking status", "Checked in")
    CHECKOUT = "checkout", pgettext_lazy("booking status", "Checked out")
    CANCEL = "cancel", pgettext_lazy("booking status", "Cancelled")
    WAITING = "waiting", pgettext_lazy("booking status", "Waiting list")


class FlowStatusMapping(models.Model):
    """Moves the lead to an AmoCRM pipeline stage when its booking reaches a status.

    Statuses without a row leave the lead's stage alone.
    """

    flow = models.ForeignKey(
        Flow, on_delete=models.CASCADE, related_name="status_mappings", verbose_name=_("flow")
    )
    booking_status = models.CharField(_("booking status"), max_length=20, choices=BookingStatus)
    pipeline_id = models.BigIntegerField(_("AmoCRM pipeline id"))
    status_id = models.BigIntegerField(
        _("AmoCRM status id"), help_text=_("142 (won) and 143 (lost) exist in every pipeline.")
    )

    class Meta:
        ordering = ["flow", "booking_status"]
        verbose_name = _("flow status mapping")
        verbose_name_plural = _("flow status mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "booking_status"], name="uniq_booking_status_per_flow"
            )
        ]

    def __str__(self) -> str:
        return f"{self.booking_status} -> {self.pipeline_id}/{self.status_id}"

    def clean(self):
        from integrations.sync.kinds import FLOW_KINDS

        if self.flow_id is None:
            return
        if FLOW_KINDS[self.flow.kind].status_source is None:
            raise ValidationError(
                gettext(
                    "Flow “%(flow)s” has no booking status: only booking flows move leads "
                    "through the pipeline."
                )
                % {"flow": self.flow}
            )
        errors = stage_errors(
            account_id=self.flow.account_id, pipeline_id=self.pipeline_id, status_id=self.status_id
        )
        if errors:
            raise ValidationError(errors)


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
            models.Index(fields=["lead_id"], name="event_lead_id_idx"),
            models.Index(fields=["body_hash"], name="event_body_hash_idx"),
            # "Was a newer event for this lead delivered?", asked before every send.
            models.Index(fields=["lead_id", "status", "received_at"], name="event_lead_order_idx"),
            models.Index(fields=["claim_token"], name="event_claim_idx"),
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
