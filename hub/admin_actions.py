"""The base of the hub's ModelAdmins: an action a person may not run is refused with 403.

Django's changelist quietly answers "No action selected" when a POST names an action the
user is not offered; a refusal should say so, as every other page and button does.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied


class StrictActionsMixin:
    """Refuses, with 403, a POSTed action that exists but is not offered to the user."""

    def changelist_view(self, request, extra_context=None):
        name = request.POST.get("action") if request.method == "POST" else None
        if name and name not in self.get_actions(request):
            defined = {action_name for _, action_name, _ in self._get_base_actions()}
            if name in defined:
                raise PermissionDenied
        return super().changelist_view(request, extra_context)


class HubModelAdmin(StrictActionsMixin, admin.ModelAdmin):
    pass
