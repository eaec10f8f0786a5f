"""Flows: an intake endpoint and how its payloads become lead updates (mappings, stages)."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from integrations.amocrm.encoding import FieldType
from integrations.amocrm.models import Account, Pipeline, Status

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
    # Intake security (integrations/sync/intake_auth.py). Only digests of the secrets are
    # kept: the hub shows a token or password once, when it makes it.
    intake_token_digest = models.CharField(
        _("intake token digest"), max_length=64, blank=True, editable=False
    )
    intake_previous_token_digest = models.CharField(
        _("previous intake token digest"), max_length=64, blank=True, editable=False
    )
    intake_previous_token_valid_until = models.DateTimeField(
        _("previous intake token valid until"), null=True, blank=True, editable=False
    )
    intake_basic_username = models.CharField(
        _("HTTP Basic username"),
        max_length=150,
        blank=True,
        # It goes into the URL given to RDESK (https://user:password@host/...) as typed.
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9._~-]+$",
                _("Use only Latin letters, digits and . _ ~ - (it goes into a URL)."),
            )
        ],
        help_text=_(
            "Asked for once a password is generated (button at the top of the page); "
            "empty then: a name is made up."
        ),
    )
    intake_basic_password_digest = models.CharField(
        _("HTTP Basic password digest"), max_length=200, blank=True, editable=False
    )
    intake_allowed_networks = models.TextField(
        _("allowed addresses"),
        blank=True,
        help_text=_(
            "One IPv4 or IPv6 address or network (CIDR, e.g. 203.0.113.0/24) per line; text "
            "after # is a comment. Empty: any address."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("flow")
        verbose_name_plural = _("flows")

    def __str__(self) -> str:
        return self.name

    @property
    def intake_is_open(self) -> bool:
        """True when anyone who reaches the flow's path may post to it."""
        from integrations.sync.intake_auth import network_entries

        return not (
            self.intake_token_digest
            or self.intake_basic_password_digest
            or network_entries(self.intake_allowed_networks)
        )

    def clean(self):
        from integrations.sync.intake_auth import networks_errors

        if not self.endpoint_path.startswith("/"):
            raise ValidationError({"endpoint_path": gettext("The path must start with '/'.")})
        errors = networks_errors(self.intake_allowed_networks)
        if errors:
            raise ValidationError({"intake_allowed_networks": errors})
        if self.intake_basic_password_digest and not self.intake_basic_username:
            raise ValidationError(
                {
                    "intake_basic_username": gettext(
                        "The flow has an HTTP Basic password: it needs a username. Remove "
                        "the password first to stop asking for HTTP Basic credentials."
                    )
                }
            )
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
