"""Hub admins configure the alert channels; hub admins and auditors read the alert history.

A channel holds a bot token, so only those who configure channels see them at all.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

HUB_ADMINS = "Администраторы хаба"
AUDITORS = "Аудиторы"
GRANTS = {
    HUB_ADMINS: [
        "view_incident",
        "view_sentalert",
        "view_alertchannel",
        "add_alertchannel",
        "change_alertchannel",
        "delete_alertchannel",
    ],
    AUDITORS: ["view_incident", "view_sentalert"],
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("monitoring")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for name, codenames in GRANTS.items():
        permissions = Permission.objects.filter(
            content_type__app_label="monitoring", codename__in=codenames
        )
        for group in Group.objects.filter(name=name):
            group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = Permission.objects.filter(content_type__app_label="monitoring")
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial"), ("sync", "0005_roles")]

    operations = [migrations.RunPython(grant, revoke)]
