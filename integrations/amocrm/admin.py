"""Admin for AmoCRM accounts and their catalogue. Secrets are never rendered back.

Connecting and testing the connection need ``amocrm.connect_account``; fetching the
catalogue needs ``amocrm.change_account``, as it rewrites what the account's mappings
choose from (the connection itself is left alone). Hub admins hold both.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hub.admin_actions import HubModelAdmin
from integrations.amocrm.client import AmoCRMError
from integrations.amocrm.models import (
    Account,
    ApiCallRecord,
    CustomField,
    Pipeline,
    Status,
    Token,
)
from integrations.amocrm.services import catalogue_refresh, connection_test

# AmoCRM revokes a refresh token left unused for three months.
REFRESH_TOKEN_LIFETIME = timedelta(days=90)

SECRET_FIELDS = ("client_secret", "long_lived_token")
CONNECT_PERMISSION = "amocrm.connect_account"
CHANGE_PERMISSION = "amocrm.change_account"

# Wide enough for a whole callback URL: a cut-off one cannot be compared with AmoCRM's.
URL_INPUT = forms.URLInput(
    attrs={"class": "vURLField", "size": 80, "style": "width: 100%; max-width: 50em"}
)


def _label(name: str):
    """The model field's own (translated) name: a field declared on the form has none."""
    return capfirst(Account._meta.get_field(name).verbose_name)


class AccountForm(forms.ModelForm):
    """Secret inputs start empty; leaving one empty keeps the stored value."""

    client_secret = forms.CharField(
        label=_label("client_secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the current secret."),
    )
    long_lived_token = forms.CharField(
        label=_label("long_lived_token"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the current token."),
    )
    clear_long_lived_token = forms.BooleanField(
        required=False, label=_("Clear the long-lived token")
    )
    base_url = forms.URLField(
        label=_label("base_url"),
        required=False,
        assume_scheme="https",
        widget=URL_INPUT,
        help_text=Account.base_url.field.help_text,
    )
    redirect_uri = forms.URLField(
        label=_label("redirect_uri"),
        required=False,
        assume_scheme="https",
        widget=URL_INPUT,
        help_text=Account.redirect_uri.field.help_text,
    )

    class Meta:
        model = Account
        fields = [
            "name",
            "subdomain",
            "base_url",
            "client_id",
            "client_secret",
            "redirect_uri",
            "long_lived_token",
            "timezone",
        ]

    def clean(self):
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        if cleaned.get("clear_long_lived_token"):
            cleaned["long_lived_token"] = ""
        return cleaned


@admin.register(Account)
class AccountAdmin(HubModelAdmin):
    form = AccountForm
    list_display = ["name", "api_base_url", "state", "state_changed_at", "token_expires_at"]
    list_filter = ["state"]
    search_fields = ["name", "subdomain"]
    change_form_template = "admin/amocrm/account/change_form.html"
    readonly_fields = [
        "state",
        "state_reason",
        "state_changed_at",
        "client_secret_set",
        "long_lived_token_set",
        "token_expires_at",
        "refresh_token_age",
    ]
    actions = ["test_connection", "refresh_catalogue"]

    def get_fieldsets(self, request, obj=None):
        connection = [
            "state",
            "state_reason",
            "state_changed_at",
            "token_expires_at",
            "refresh_token_age",
            "client_secret_set",
            "long_lived_token_set",
        ]
        if obj is None or self.has_change_permission(request, obj):
            integration = [
                "client_id",
                "client_secret",
                "redirect_uri",
                "long_lived_token",
                "clear_long_lived_token",
            ]
        else:
            # A read-only page shows each field's stored value: the secrets stay out of it
            # (the Connection fieldset says whether they are set).
            integration = ["client_id", "redirect_uri"]
        return [
            (None, {"fields": ["name", "subdomain", "base_url", "timezone"]}),
            (_("Integration"), {"fields": integration}),
            *([(_("Connection"), {"fields": connection})] if obj else []),
        ]

    def get_urls(self):
        urls = [
            path(
                "<int:account_id>/test-connection/",
                self.admin_site.admin_view(require_POST(self.test_connection_view)),
                name="amocrm_account_test_connection",
            )
        ]
        return urls + super().get_urls()

    @admin.display(description=_("client secret set"), boolean=True)
    def client_secret_set(self, obj):
        return bool(obj.client_secret)

    @admin.display(description=_("long-lived token set"), boolean=True)
    def long_lived_token_set(self, obj):
        return bool(obj.long_lived_token)

    @admin.display(description=_("access token expires"))
    def token_expires_at(self, obj):
        token = Token.objects.filter(account=obj).first()
        if token is None:
            return gettext("none")
        # A computed value is shown as str() by the admin: format it as a date is.
        when = date_format(timezone.localtime(token.expires_at), "DATETIME_FORMAT")
        if token.expires_at <= timezone.now():
            return gettext("%(when)s (expired; refreshed on next use)") % {"when": when}
        return gettext("%(when)s (in %(left)s)") % {
            "when": when,
            "left": timeuntil(token.expires_at),
        }

    @admin.display(description=_("refresh token"))
    def refresh_token_age(self, obj):
        token = Token.objects.filter(account=obj).first()
        if token is None or not token.refresh_token:
            return gettext("none")
        age = timezone.now() - token.refreshed_at
        left = REFRESH_TOKEN_LIFETIME - age
        return gettext(
            "issued %(age)s ago; AmoCRM revokes it if unused for %(days)s more days "
            "(beat renews it well before)"
        ) % {"age": timesince(token.refreshed_at), "days": max(left.days, 0)}

    def has_test_connection_permission(self, request):
        return request.user.has_perm(CONNECT_PERMISSION)

    def has_refresh_catalogue_permission(self, request):
        return request.user.has_perm(CHANGE_PERMISSION)

    def _connection_message(self, request, account: Account) -> None:
        try:
            info = connection_test(account=account)
        except AmoCRMError as error:
            self.message_user(
                request, f"{account}: {type(error).__name__}: {error.detail}", messages.ERROR
            )
            return
        self.message_user(
            request,
            gettext(
                "%(account)s: connected to AmoCRM account '%(name)s' "
                "(id %(id)s, subdomain %(subdomain)s)."
            )
            % {
                "account": account,
                "name": info.get("name"),
                "id": info.get("id"),
                "subdomain": info.get("subdomain"),
            },
            messages.SUCCESS,
        )

    def test_connection_view(self, request, account_id: int):
        if not self.has_test_connection_permission(request):
            raise PermissionDenied
        account = self.get_object(request, str(account_id))
        if account is None:
            raise Http404
        self._connection_message(request, account)
        return redirect("admin:amocrm_account_change", account.pk)

    @admin.action(
        description=_("Test the connection (GET account info)"), permissions=["test_connection"]
    )
    def test_connection(self, request, queryset):
        for account in queryset:
            self._connection_message(request, account)

    @admin.action(
        description=_("Fetch fields and pipelines from AmoCRM"), permissions=["refresh_catalogue"]
    )
    def refresh_catalogue(self, request, queryset):
        for account in queryset:
            try:
                fields, pipelines = catalogue_refresh(account=account)
            except AmoCRMError as error:
                self.message_user(request, f"{account}: {error.detail}", messages.ERROR)
                continue
            fetched = {
                "account": account,
                "fields": ngettext("%(count)d field", "%(count)d fields", fields)
                % {"count": fields},
                "pipelines": ngettext("%(count)d pipeline", "%(count)d pipelines", pipelines)
                % {"count": pipelines},
            }
            self.message_user(
                request,
                gettext("%(account)s: %(fields)s, %(pipelines)s.") % fetched,
                messages.SUCCESS,
            )


@admin.register(ApiCallRecord)
class ApiCallRecordAdmin(HubModelAdmin):
    """Calls made outside deliveries; read-only like the rest of the audit trail."""

    list_display = [
        "started_at",
        "account",
        "request_method",
        "request_url",
        "response_status",
        "duration_ms",
    ]
    list_filter = ["account", "response_status", "error_class", "started_at"]
    search_fields = ["request_url"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Token)
class TokenAdmin(HubModelAdmin):
    """Shows when the pair was refreshed and when it expires, never the tokens."""

    list_display = ["account", "expires_at", "refreshed_at"]
    fields = ["account", "expires_at", "refreshed_at", "has_refresh_token"]
    readonly_fields = fields

    @admin.display(description=_("refresh token set"), boolean=True)
    def has_refresh_token(self, obj):
        return bool(obj.refresh_token)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CatalogueAdmin(HubModelAdmin):
    """The catalogue mirrors AmoCRM; it is fetched, not edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CustomField)
class CustomFieldAdmin(CatalogueAdmin):
    list_display = ["name", "field_id", "type", "is_computed", "account", "fetched_at"]
    list_filter = ["account", "type", "is_computed"]
    search_fields = ["name", "=field_id", "code"]


class StatusInline(admin.TabularInline):
    model = Status
    extra = 0
    can_delete = False
    fields = ["status_id", "name", "sort", "type"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Pipeline)
class PipelineAdmin(CatalogueAdmin):
    list_display = ["name", "pipeline_id", "is_main", "account", "fetched_at"]
    list_filter = ["account"]
    search_fields = ["name", "=pipeline_id"]
    inlines = [StatusInline]


@admin.register(Status)
class StatusAdmin(CatalogueAdmin):
    list_display = ["name", "status_id", "pipeline", "sort"]
    list_filter = ["pipeline__account", "pipeline"]
    search_fields = ["name", "=status_id"]
