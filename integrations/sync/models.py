"""The delivery pipeline's records: flows and their mappings, inbound events and attempts."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext

from integrations.amocrm.encoding import FieldType
from integrations.amocrm.models import Account, CallRecord, Pipeline, Status

# Won and lost exist in every pipeline under the same ids (reference section 6).
CLOSED_STATUS_IDS = frozenset({142, 143})
UNSORTED_STATUS_TYPE = 1


class FlowKind(models.TextChoices):
    BOOKED = "booked", "Booking (RDESK /zdrav/booked)"
    MC = "mc", "Medical centre (RDESK /zdrav/mc)"


class Flow(models.Model):
    """An intake endpoint and how its payloads become updates of AmoCRM leads."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=FlowKind)
    endpoint_path = models.CharField(
        max_length=200,
        unique=True,
        help_text="The path RDESK posts to, e.g. /zdrav/booked.",
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="flows"
    )
    enabled = models.BooleanField(
        default=True, help_text="Disabled flows still store what arrives but deliver nothing."
    )
    price_source = models.CharField(
        max_length=100,
        blank=True,
        default="total",
        help_text="The named value written to the lead's price; empty leaves the price alone.",
    )
    mock_lead_id = models.BooleanField(
        "mock lead id mode",
        default=False,
        help_text="Update the lead named ID_<RDESK lead id> (created when missing) instead of "
        "the lead with that id.",
    )
    mock_pipeline_id = models.BigIntegerField(
        null=True, blank=True, help_text="Pipeline for created mock leads; empty: the main one."
    )
    mock_status_id = models.BigIntegerField(
        null=True, blank=True, help_text="Status for created mock leads; empty: the first one."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

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

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="mappings")
    source = models.CharField(
        max_length=100, help_text="A value the flow's transform produces, e.g. paid, check_in."
    )
    field_id = models.BigIntegerField("AmoCRM field id")
    field_type = models.CharField(max_length=20, choices=FieldType)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["flow", "id"]
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

    BOOKED = "booked", "Booked"
    CHECKIN = "checkin", "Checked in"
    CHECKOUT = "checkout", "Checked out"
    CANCEL = "cancel", "Cancelled"
    WAITING = "waiting", "Waiting list"


class FlowStatusMapping(models.Model):
    """Moves the lead to an AmoCRM pipeline stage when its booking reaches a status.

    Statuses without a row leave the lead's stage alone.
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="status_mappings")
    booking_status = models.CharField(max_length=20, choices=BookingStatus)
    pipeline_id = models.BigIntegerField("AmoCRM pipeline id")
    status_id = models.BigIntegerField(
        "AmoCRM status id", help_text="142 (won) and 143 (lost) exist in every pipeline."
    )

    class Meta:
        ordering = ["flow", "booking_status"]
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
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    DELIVERED = "delivered", "Delivered"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


class InboundEvent(models.Model):
    """One item that RDESK posted, stored before anything else happens to it."""

    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="events")
    received_at = models.DateTimeField(default=timezone.now)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    raw_body = models.BinaryField()
    body_hash = models.CharField(max_length=64, help_text="SHA-256 of the raw body.")
    item_index = models.PositiveIntegerField(
        default=0, help_text="Position of this item in the posted array."
    )
    payload = models.JSONField(null=True, blank=True)
    rdesk_id = models.CharField("RDESK id", max_length=64, blank=True)
    lead_id = models.CharField("lead id", max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=EventStatus, default=EventStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replayed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an admin last sent it again; retries age from here."
    )
    attempts_at_replay = models.PositiveIntegerField(
        default=0,
        help_text="The attempt count when it was last replayed; backoff restarts from here.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [
            ("replay_event", "Can send events to AmoCRM again"),
            ("view_personal_data", "Can see guests' personal data unmasked"),
            ("export_events", "Can export the sync history as CSV"),
            ("preview_event", "Can preview what an event would send"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="event_due_idx"),
            models.Index(fields=["received_at"], name="event_received_idx"),
            models.Index(fields=["rdesk_id"], name="event_rdesk_id_idx"),
            models.Index(fields=["lead_id"], name="event_lead_id_idx"),
            models.Index(fields=["body_hash"], name="event_body_hash_idx"),
            # "Was a newer event for this lead delivered?", asked before every send.
            models.Index(fields=["lead_id", "status", "received_at"], name="event_lead_order_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.flow} {self.status}"

    @property
    def raw_text(self) -> str:
        """The raw body as text, for reading in the admin."""
        return bytes(self.raw_body).decode("utf-8", errors="replace")


class DeliveryAttempt(CallRecord):
    """One call to AmoCRM made for an event: what was sent, what came back, how long."""

    event = models.ForeignKey(
        InboundEvent, on_delete=models.CASCADE, related_name="delivery_attempts"
    )

    class Meta(CallRecord.Meta):
        indexes = [models.Index(fields=["started_at"], name="attempt_started_idx")]


class Replay(models.Model):
    """Someone sent an event again: who, when and how; its attempts follow in the history."""

    class Source(models.TextChoices):
        EVENT_PAGE = "event_page", "Event page"
        ADMIN_ACTION = "admin_action", "Admin action"
        COMMAND = "command", "Management command"

    event = models.ForeignKey(InboundEvent, on_delete=models.CASCADE, related_name="replays")
    requested_at = models.DateTimeField(default=timezone.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(max_length=20, choices=Source)
    previous_status = models.CharField(max_length=20, choices=EventStatus)
    attempts_before = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["requested_at"], name="replay_requested_idx")]

    def __str__(self) -> str:
        return f"replay of #{self.event_id} at {self.requested_at:%Y-%m-%d %H:%M}"


class PersonalDataAccess(models.Model):
    """A user saw an event's personal data unmasked (152-FZ asks who and when)."""

    class Kind(models.TextChoices):
        VIEW = "view", "Viewed the event page"
        EXPORT = "export", "Exported in CSV"
        PREVIEW = "preview", "Previewed the request"

    event = models.ForeignKey(
        InboundEvent, on_delete=models.CASCADE, related_name="personal_data_accesses"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind)
    accessed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-accessed_at", "-id"]
        indexes = [models.Index(fields=["accessed_at"], name="pd_access_at_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} #{self.event_id}"


class LeadAlias(models.Model):
    """Mock lead id mode: the AmoCRM lead that stands for an RDESK lead id."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="lead_aliases")
    rdesk_lead_id = models.BigIntegerField("RDESK lead id")
    amocrm_lead_id = models.BigIntegerField("AmoCRM lead id")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "lead aliases"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "rdesk_lead_id"], name="uniq_alias_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"ID_{self.rdesk_lead_id} -> {self.amocrm_lead_id}"
