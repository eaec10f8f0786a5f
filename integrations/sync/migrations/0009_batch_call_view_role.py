"""Every role reads batch calls, as it reads the delivery attempts they are split into."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("Администраторы хаба", "Операторы", "Аудиторы")


def grant(apps, schema_editor):
    app_config = apps.get_app_config("sync")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(content_type__app_label="sync", codename="view_batchcall")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=ROLES):
        group.permissions.add(view)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(content_type__app_label="sync", codename="view_batchcall")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=ROLES):
        group.permissions.remove(*view)


class Migration(migrations.Migration):
    dependencies = [("sync", "0008_delivery_engine")]

    operations = [migrations.RunPython(grant, revoke)]
