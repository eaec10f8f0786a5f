"""What the hub knows of an AmoCRM account: connection, tokens and the field catalogue."""

from django.db import models
from django.utils import timezone as django_timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from hub.encryption import EncryptedTextField
from integrations.amocrm.encoding import FieldType


class Account(models.Model):
    """One AmoCRM account (an integration installed in it) that flows deliver to."""

    class State(models.TextChoices):
        CONNECTED = "connected", pgettext_lazy("account state", "Connected")
        DISCONNECTED = "disconnected", pgettext_lazy("account state", "Disconnected")

    name = models.CharField(_("name"), max_length=200, unique=True)
    subdomain = models.CharField(
        _("subdomain"),
        max_length=100,
        blank=True,
        help_text=_("The part before .amocrm.ru, e.g. 'zdravnitsa'."),
    )
    base_url = models.URLField(
        _("base URL"),
        blank=True,
        help_text=_(
            "Leave empty for https://{subdomain}.amocrm.ru; set it for Kommo or any "
            "AmoCRM-compatible server (e.g. the local emulator)."
        ),
    )
    client_id = models.CharField(_("integration ID"), max_length=100, blank=True)
    # Secrets are encrypted at rest (hub/encryption.py).
    client_secret = EncryptedTextField(_("client secret"), blank=True)
    redirect_uri = models.URLField(
        _("redirect URI"),
        blank=True,
        help_text=_("Must match the integration's redirect link character for character."),
    )
    long_lived_token = EncryptedTextField(
        _("long-lived token"),
        blank=True,
        help_text=_("For private integrations: used instead of OAuth tokens when set."),
    )
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        default="Europe/Moscow",
        help_text=_("Date fields are written in this zone."),
    )
    state = models.CharField(_("state"), max_length=20, choices=State, default=State.DISCONNECTED)
    state_reason = models.TextField(_("state reason"), blank=True)
    state_changed_at = models.DateTimeField(_("state changed at"), default=django_timezone.now)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        permissions = [
            ("connect_account", "Can connect the account to AmoCRM and test the connection"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_base_url(self) -> str:
        """The account's own host, where both the API and the token endpoint live."""
        return (self.base_url or f"https://{self.subdomain}.amocrm.ru").rstrip("/")

    def state_set(self, state: str, reason: str = "") -> None:
        """Records a connection state change (saved by the caller)."""
        self.state = state
        self.state_reason = reason
        self.state_changed_at = django_timezone.now()


class Token(models.Model):
    """The account's OAuth token pair; refreshed only under a row lock (see tokens.py)."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="token", verbose_name=_("account")
    )
    access_token = EncryptedTextField(_("access token"))
    refresh_token = EncryptedTextField(_("refresh token"), blank=True)
    expires_at = models.DateTimeField(_("expires at"))
    refreshed_at = models.DateTimeField(_("refreshed at"), default=django_timezone.now)

    class Meta:
        verbose_name = _("token")
        verbose_name_plural = _("tokens")

    def __str__(self) -> str:
        return gettext("Token for %(account)s") % {"account": self.account}


class CustomField(models.Model):
    """A lead custom field of the account, fetched from the API so admins pick by name."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="custom_fields", verbose_name=_("account")
    )
    field_id = models.BigIntegerField(_("field id"))
    name = models.CharField(_("name"), max_length=255)
    code = models.CharField(_("code"), max_length=100, blank=True)
    type = models.CharField(_("type"), max_length=40)
    is_computed = models.BooleanField(_("is computed"), default=False)
    enums = models.JSONField(_("enums"), default=list, blank=True)
    fetched_at = models.DateTimeField(_("fetched at"), default=django_timezone.now)

    class Meta:
        ordering = ["account", "name"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        constraints = [
            models.UniqueConstraint(fields=["account", "field_id"], name="uniq_field_per_account")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.field_id}, {self.type})"

    @property
    def is_supported(self) -> bool:
        """Whether the hub has an encoder for this field type."""
        return self.type in FieldType.values


class Pipeline(models.Model):
    """A lead pipeline of the account."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="pipelines", verbose_name=_("account")
    )
    pipeline_id = models.BigIntegerField(_("pipeline id"))
    name = models.CharField(_("name"), max_length=255)
    sort = models.IntegerField(_("sort"), default=0)
    is_main = models.BooleanField(_("is main"), default=False)
    fetched_at = models.DateTimeField(_("fetched at"), default=django_timezone.now)

    class Meta:
        ordering = ["account", "sort", "pipeline_id"]
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "pipeline_id"], name="uniq_pipeline_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.pipeline_id})"


class Status(models.Model):
    """A stage of a pipeline."""

    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.CASCADE, related_name="statuses", verbose_name=_("pipeline")
    )
    status_id = models.BigIntegerField(_("status id"))
    name = models.CharField(_("name"), max_length=255)
    sort = models.IntegerField(_("sort"), default=0)
    type = models.IntegerField(_("type"), default=0, help_text=_("1 is the Unsorted stage."))

    class Meta:
        ordering = ["pipeline", "sort", "status_id"]
        # AmoCRM's API says status where its interface says stage.
        verbose_name = pgettext_lazy("pipeline stage", "status")
        verbose_name_plural = pgettext_lazy("pipeline stage", "statuses")
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "status_id"], name="uniq_status_per_pipeline"
            )
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name} ({self.status_id})"


class CallRecord(models.Model):
    """What an audit row keeps of one HTTP call to AmoCRM (secrets already redacted)."""

    started_at = models.DateTimeField(default=django_timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    request_method = models.CharField(max_length=10)
    request_url = models.CharField(max_length=500)
    request_body = models.JSONField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error_class = models.CharField(max_length=100, blank=True)
    error_detail = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_url} -> {self.response_status}"

    @classmethod
    def from_call(cls, call, **related):
        """An unsaved row for a client ``ApiCall``; ``related`` names its owner."""
        return cls(
            **related,
            started_at=call.started_at,
            duration_ms=call.duration_ms,
            request_method=call.method,
            request_url=call.url[:500],
            request_body=call.request_body,
            response_status=call.status,
            response_body=call.response_body,
            error_class=call.error_class,
            error_detail=call.error_detail,
        )


class ApiCallRecord(CallRecord):
    """A call to AmoCRM made outside a delivery (token, catalogue, connection test).

    Delivery calls are kept with their event as ``sync.DeliveryAttempt``; together the
    two tables hold every call the hub made.
    """

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="api_calls", verbose_name=_("account")
    )

    class Meta(CallRecord.Meta):
        verbose_name = _("AmoCRM API call")
        verbose_name_plural = _("AmoCRM API calls")
        indexes = [models.Index(fields=["account", "started_at"], name="apicall_account_idx")]
