"""Alert channels (configured by hub admins) and the alert history (read-only)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from hub.admin_actions import HubModelAdmin
from integrations.monitoring.channels import channel_of, test_text
from integrations.monitoring.models import AlertChannel, Incident, SentAlert
from integrations.sync.admin.events import ReadOnlyAdmin

ENV_PREFIX = "env:"


class AlertChannelForm(forms.ModelForm):
    """The bot token input starts empty; leaving it empty keeps the stored token."""

    telegram_bot_token = forms.CharField(
        label=capfirst(AlertChannel._meta.get_field("telegram_bot_token").verbose_name),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("From @BotFather. Leave empty to keep the current token."),
    )

    class Meta:
        model = AlertChannel
        fields = [
            "name",
            "kind",
            "enabled",
            "email_recipients",
            "telegram_bot_token",
            "telegram_chat_id",
        ]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if name.startswith(ENV_PREFIX):
            raise ValidationError(gettext("Names starting with env: are the environment's."))
        return name

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("telegram_bot_token") and self.instance.pk:
            cleaned["telegram_bot_token"] = self.instance.telegram_bot_token
        kind = cleaned.get("kind")
        if kind == AlertChannel.Kind.EMAIL:
            recipients = [
                a.strip() for a in (cleaned.get("email_recipients") or "").split(",") if a.strip()
            ]
            if not recipients:
                self.add_error("email_recipients", gettext("Give at least one address."))
            for address in recipients:
                try:
                    validate_email(address)
                except ValidationError:
                    self.add_error(
                        "email_recipients",
                        gettext("Not an e-mail address: %(address)s") % {"address": address},
                    )
        if kind == AlertChannel.Kind.TELEGRAM:
            if not cleaned.get("telegram_bot_token"):
                self.add_error(
                    "telegram_bot_token", gettext("A Telegram channel needs a bot token.")
                )
            if not cleaned.get("telegram_chat_id"):
                self.add_error("telegram_chat_id", gettext("A Telegram channel needs a chat id."))
        return cleaned


@admin.register(AlertChannel)
class AlertChannelAdmin(HubModelAdmin):
    form = AlertChannelForm
    list_display = ["name", "kind", "enabled", "destination", "updated_at"]
    list_filter = ["kind", "enabled"]
    actions = ["send_test"]

    @admin.action(description=_("Send a test message"), permissions=["change"])
    def send_test(self, request, queryset):
        for row in queryset:
            channel = channel_of(row)
            delivery = channel.send(test_text()) if channel is not None else None
            if delivery is not None and delivery.ok:
                self.message_user(
                    request, gettext("%(channel)s: sent") % {"channel": row.name}, messages.SUCCESS
                )
            else:
                error = delivery.error if delivery is not None else gettext("incomplete channel")
                self.message_user(
                    request,
                    gettext("%(channel)s: failed: %(error)s")
                    % {"channel": row.name, "error": error},
                    messages.ERROR,
                )

    @admin.display(description=_("destination"))
    def destination(self, obj):
        if obj.kind == AlertChannel.Kind.EMAIL:
            return ", ".join(obj.recipients)
        return obj.telegram_chat_id


class SentAlertInline(admin.TabularInline):
    model = SentAlert
    fields = ["sent_at", "kind", "channel", "outcome", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["key", "opened_at", "resolved_at", "summary"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["key"]
    date_hierarchy = "opened_at"
    fields = ["key", "summary", "opened_at", "resolved_at"]
    readonly_fields = fields
    inlines = [SentAlertInline]


@admin.register(SentAlert)
class SentAlertAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "kind", "channel", "outcome", "incident", "error"]
    list_filter = ["outcome", "kind", "channel"]
    date_hierarchy = "sent_at"
    list_select_related = ["incident"]
    fields = ["sent_at", "kind", "channel", "outcome", "error", "incident", "text"]
    readonly_fields = fields
