"""The hub's admin site: its names, where "View site" leads, what only superusers see.

Imported by ``hub.urls`` before the admin's URLs are built, so the site is set up
before it serves anything.
"""

from auditlog.models import LogEntry
from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat import models as beat

from hub.admin_actions import StrictActionsMixin

admin.site.site_header = _("amo-hub administration")
admin.site.site_title = _("amo-hub")
admin.site.index_title = _("RDESK to AmoCRM")
# The hub has no public pages: its "site" is the admin's front page (``/`` redirects there).
admin.site.site_url = "/"


class SuperusersOnly:
    """A ModelAdmin mixin: hidden from, and refused to, everyone but superusers.

    Whatever rights a group grants, the model stays out of the index and its pages
    answer 403; superusers keep what the wrapped admin allows them.
    """

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


def superusers_only(model, model_admin: type[admin.ModelAdmin]) -> None:
    """Registers ``model`` again with ``model_admin`` made superuser-only."""
    admin.site.unregister(model)
    admin.site.register(
        model, type(model_admin.__name__, (SuperusersOnly, model_admin), {"__module__": __name__})
    )


# Beat's schedule comes from settings (CELERY_BEAT_SCHEDULE); no role edits it by hand.
BEAT_ADMINS = {
    beat.PeriodicTask: beat_admin.PeriodicTaskAdmin,
    beat.ClockedSchedule: beat_admin.ClockedScheduleAdmin,
    beat.CrontabSchedule: beat_admin.CrontabScheduleAdmin,
    beat.SolarSchedule: beat_admin.SolarScheduleAdmin,
    beat.IntervalSchedule: beat_admin.IntervalScheduleAdmin,
}
for _model, _model_admin in BEAT_ADMINS.items():
    superusers_only(_model, _model_admin)


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    # axes' own "clean up expired attempts" action fails outside a login request (8.3.1);
    # deleting attempts lifts their lockout, and `manage.py axes_reset` clears them all.
    actions = []


# Login attempts and lockouts (django-axes) name people and their addresses: only
# superusers see them, or delete an attempt to lift a lockout.
superusers_only(AccessAttempt, AccessAttemptAdmin)
for _model in (AccessLog, AccessFailureLog):
    superusers_only(_model, type(admin.site._registry[_model]))


def strict_actions(model) -> None:
    """Registers ``model`` again with its admin refusing actions a person may not run."""
    model_admin = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(
        model,
        type(model_admin.__name__, (StrictActionsMixin, model_admin), {"__module__": __name__}),
    )


# The change history is read-only for everyone; a hand-made POST of its delete action is
# refused like any other.
strict_actions(LogEntry)
