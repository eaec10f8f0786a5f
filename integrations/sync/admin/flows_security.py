"""The flow admin's intake security: its state, the warnings for open flows, the buttons.

The buttons make a flow's token or HTTP Basic password and show the URL to give RDESK
once, in a message: only digests are kept, so nobody can see the secret again.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timesince import timeuntil
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from integrations.sync.intake_auth import (
    flow_basic_issue,
    flow_basic_remove,
    flow_token_issue,
    flow_token_remove,
    intake_url,
    network_entries,
    token_grace,
)
from integrations.sync.models import Flow


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _grace_words() -> str:
    now = timezone.now()
    return timeuntil(now + token_grace(), now)


def _open_warning(flow: Flow) -> str:
    return gettext(
        "This flow is open: anyone who can reach %(path)s can post to it. Set a token, HTTP "
        "Basic credentials or allowed addresses under “Intake security”."
    ) % {"path": flow.endpoint_path}


class FlowIntakeSecurity:
    """Mixed into FlowAdmin: fields, list column, warnings and the secret-making buttons."""

    intake_fieldset = (
        _("Intake security"),
        {
            "fields": [
                "intake_token_state",
                "intake_basic_username",
                "intake_basic_state",
                "intake_allowed_networks",
            ],
            "description": _(
                "Who may post to the flow. When several are set, a request must pass all of "
                "them; with none set anyone may. Tokens and passwords are made by the buttons "
                "at the top of the page and shown once."
            ),
        },
    )
    intake_readonly_fields = ["intake_token_state", "intake_basic_state"]

    class Media:
        css = {"all": ["sync/events.css"]}

    def get_urls(self):
        return [
            path(
                "<path:object_id>/intake-security/",
                self.admin_site.admin_view(require_POST(self.intake_security_view)),
                name="sync_flow_intake_security",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("intake security"))
    def intake_security(self, obj: Flow) -> str:
        if obj.intake_is_open:
            return format_html(
                '<strong style="color: var(--error-fg)">⚠ {}</strong>', gettext("open to anyone")
            )
        parts = []
        if obj.intake_token_digest:
            parts.append(pgettext("intake security", "token"))
        if obj.intake_basic_password_digest:
            parts.append(gettext("HTTP Basic"))
        if network_entries(obj.intake_allowed_networks):
            parts.append(gettext("addresses"))
        return ", ".join(parts)

    @admin.display(description=_("intake token"))
    def intake_token_state(self, obj: Flow) -> str:
        grace = gettext("A rotated token's predecessor stays valid for %(grace)s.") % {
            "grace": _grace_words()
        }
        if not obj.intake_token_digest:
            return f"{gettext('Not set.')} {grace}"
        state = gettext("Set: RDESK posts to %(path)s/<token> or %(path)s?token=<token>.") % {
            "path": obj.endpoint_path
        }
        until = obj.intake_previous_token_valid_until
        if obj.intake_previous_token_digest and until is not None and until > timezone.now():
            state += " " + gettext("Until %(when)s the previous token is accepted too.") % {
                "when": _when(until)
            }
        return f"{state} {grace}"

    @admin.display(description=_("HTTP Basic password"))
    def intake_basic_state(self, obj: Flow) -> str:
        if not obj.intake_basic_password_digest:
            return gettext("Not set.")
        return gettext("Set for user “%(username)s”.") % {"username": obj.intake_basic_username}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        flow = self.get_object(request, unquote(object_id))
        if flow is not None and request.method == "GET" and flow.intake_is_open:
            messages.warning(request, _open_warning(flow))
        if flow is not None and self.has_change_permission(request, flow):
            extra_context = {
                **(extra_context or {}),
                "intake_security_url": reverse("admin:sync_flow_intake_security", args=[flow.pk]),
                "intake_operations": self._operations(flow),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            count = sum(flow.intake_is_open for flow in Flow.objects.all())
            if count:
                messages.warning(
                    request,
                    ngettext(
                        "%(count)s flow accepts posts from anyone: see the “intake security” "
                        "column.",
                        "%(count)s flows accept posts from anyone: see the “intake security” "
                        "column.",
                        count,
                    )
                    % {"count": count},
                )
        return super().changelist_view(request, extra_context)

    @staticmethod
    def _operations(flow: Flow) -> list[tuple[str, str]]:
        """The buttons the flow's page offers: (operation, label)."""
        operations = [
            (
                "token",
                gettext("Rotate token") if flow.intake_token_digest else gettext("Generate token"),
            )
        ]
        if flow.intake_token_digest:
            operations.append(("token_remove", gettext("Remove token")))
        if flow.intake_basic_password_digest:
            operations.append(("basic", gettext("New HTTP Basic password")))
            operations.append(("basic_remove", gettext("Remove HTTP Basic")))
        else:
            operations.append(("basic", gettext("Generate HTTP Basic password")))
        return operations

    def intake_security_view(self, request, object_id):
        """The buttons: make or remove the flow's token or HTTP Basic password."""
        flow = self.get_object(request, unquote(object_id))
        if flow is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, flow):
            raise PermissionDenied
        base = settings.HUB_INTAKE_BASE_URL or request.build_absolute_uri("/")
        operation = request.POST.get("operation", "")
        if operation == "token":
            rotated = bool(flow.intake_token_digest)
            url = intake_url(base=base, flow=flow, token=flow_token_issue(flow=flow))
            if rotated:
                done = gettext("Rotated the intake token.")
                after = gettext("The previous token is accepted until %(when)s, then refused.") % {
                    "when": _when(flow.intake_previous_token_valid_until)
                }
            else:
                done = gettext("Generated an intake token.")
                after = gettext("Requests without it are refused from now on.")
            if flow.intake_basic_password_digest:
                after += " " + gettext("Put the flow's HTTP Basic password in place of <password>.")
            self._secret_message(request, flow, done, url, after)
        elif operation == "basic":
            username, password = flow_basic_issue(flow=flow)
            url = intake_url(base=base, flow=flow, username=username, password=password)
            done = gettext("Generated an HTTP Basic password.")
            after = gettext("Any previous password is refused from now on.")
            if flow.intake_token_digest:
                after += " " + gettext("Put the flow's token in place of <token>.")
            self._secret_message(request, flow, done, url, after)
        elif operation == "token_remove" and flow.intake_token_digest:
            flow_token_remove(flow=flow)
            done = gettext("Removed the intake token.")
            after = gettext("RDESK must post to %(path)s without a token from now on.") % {
                "path": flow.endpoint_path
            }
            self._removed_message(request, flow, done, after)
        elif operation == "basic_remove" and flow.intake_basic_password_digest:
            flow_basic_remove(flow=flow)
            done = gettext("Removed the HTTP Basic password.")
            self._removed_message(request, flow, done, "")
        else:
            messages.error(request, gettext("Nothing was changed: choose one of the buttons."))
        return redirect(reverse("admin:sync_flow_change", args=[flow.pk]))

    def _secret_message(self, request, flow: Flow, done: str, url: str, after: str) -> None:
        self.log_change(request, flow, done)
        messages.success(
            request,
            format_html(
                "{} {} <code>{}</code> {}",
                done,
                gettext("Give RDESK this URL; the hub shows it only now:"),
                url,
                after,
            ),
        )

    def _removed_message(self, request, flow: Flow, done: str, after: str) -> None:
        self.log_change(request, flow, done)
        messages.success(request, f"{done} {after}".strip())
        if flow.intake_is_open:
            messages.warning(request, _open_warning(flow))
