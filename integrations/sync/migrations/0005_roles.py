"""The hub's roles as groups: hub admins, operators, auditors, and personal-data access.

Permissions are created here (Django would only create them after every migration), so
the groups exist, with their rights, as soon as the database is migrated. Rerunning it
puts the groups' rights back to what is listed here.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Everything the audit trail and the configuration show, to read.
READ = [
    ("amocrm", "account", ["view"]),
    ("amocrm", "token", ["view"]),
    ("amocrm", "customfield", ["view"]),
    ("amocrm", "pipeline", ["view"]),
    ("amocrm", "status", ["view"]),
    ("amocrm", "apicallrecord", ["view"]),
    ("sync", "flow", ["view"]),
    ("sync", "fieldmapping", ["view"]),
    ("sync", "flowstatusmapping", ["view"]),
    ("sync", "inboundevent", ["view", "preview_event"]),
    ("sync", "deliveryattempt", ["view"]),
    ("sync", "leadalias", ["view"]),
    ("sync", "replay", ["view"]),
    ("sync", "personaldataaccess", ["view"]),
    ("auditlog", "logentry", ["view"]),
]
CONFIGURE = [
    ("amocrm", "account", ["add", "change", "delete", "connect_account"]),
    ("sync", "flow", ["add", "change", "delete"]),
    ("sync", "fieldmapping", ["add", "change", "delete"]),
    ("sync", "flowstatusmapping", ["add", "change", "delete"]),
    ("sync", "leadalias", ["add", "change", "delete"]),
]
OPERATE = [("sync", "inboundevent", ["replay_event", "export_events"])]

ROLES = {
    "Администраторы хаба": READ + CONFIGURE + OPERATE,
    "Операторы": READ + OPERATE,
    "Аудиторы": READ,
    # Granted to people one by one, on top of their role: seeing guests' data unmasked.
    "Доступ к персональным данным": [("sync", "inboundevent", ["view_personal_data"])],
}


def _codename(action: str, model: str) -> str:
    return f"{action}_{model}" if action in ("view", "add", "change", "delete") else action


def roles_create(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for app_label, model, actions in grants:
            for action in actions:
                permissions.append(
                    Permission.objects.get(
                        content_type__app_label=app_label,
                        content_type__model=model,
                        codename=_codename(action, model),
                    )
                )
        group.permissions.set(permissions)


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0004_replay_personal_data_access"),
        ("amocrm", "0003_connect_permission"),
        ("auditlog", "0017_add_actor_email"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(roles_create, roles_delete)]
