"""Seeds the two RDESK flows with the old service's endpoints and field mappings.

It reads the old service's variables (APP_INCOMING_*, FIELD_*, MOCK_PIPELINE_*) so an
existing ``.env`` keeps working; where one is unset the old service's default applies.
A migration runs once per database, which is exactly "on first start": afterwards the
admin is where these are changed.
"""

import environ
from django.db import migrations

env = environ.Env()

BOOKED_MAPPINGS = [
    # (source, variable, default field id, field type)
    ("created_at", "FIELD_SHARED_CREATED_AT", 1287599, "date_time"),
    ("paid", "FIELD_SHARED_PAID_PRICE", 1305167, "numeric"),
    ("zdrav_id", "FIELD_SHARED_ZDRAV_ID", 1305111, "text"),
    ("status", "FIELD_BOOKED_STATUS", 1304923, "text"),
    ("check_in", "FIELD_BOOKED_CHECK_IN", 1305059, "date"),
    ("check_out", "FIELD_BOOKED_CHECK_OUT", 1305061, "date"),
    ("guests_text", "FIELD_BOOKED_GUESTS", 1304335, "textarea"),
    ("doc_num", "FIELD_BOOKED_DOC_NUM", 1305107, "numeric"),
    ("bills_text", "FIELD_BOOKED_BILL_DATA", 1304929, "textarea"),
]
MC_MAPPINGS = [
    ("created_at", "FIELD_SHARED_CREATED_AT", 1287599, "date_time"),
    ("paid", "FIELD_SHARED_PAID_PRICE", 1305167, "numeric"),
    ("zdrav_id", "FIELD_SHARED_ZDRAV_ID", 1305111, "text"),
    # The old service had no birthday variable; mapped only when FIELD_MC_BIRTHDAY is set.
    ("birthday", "FIELD_MC_BIRTHDAY", None, "birthday"),
]


def _optional_int(name):
    value = env.str(name, default="").strip()
    return int(value) if value else None


def seed(apps, schema_editor):
    Flow = apps.get_model("sync", "Flow")
    FieldMapping = apps.get_model("sync", "FieldMapping")
    flows = [
        ("RDESK bookings", "booked", "APP_INCOMING_BOOKED", "/zdrav/booked", BOOKED_MAPPINGS),
        ("RDESK medical centre", "mc", "APP_INCOMING_MC", "/zdrav/mc", MC_MAPPINGS),
    ]
    for name, kind, path_variable, default_path, mappings in flows:
        upper = kind.upper()
        flow, created = Flow.objects.get_or_create(
            kind=kind,
            defaults={
                "name": name,
                "endpoint_path": env.str(path_variable, default=default_path),
                "mock_pipeline_id": _optional_int(f"MOCK_PIPELINE_{upper}_ID"),
                "mock_status_id": _optional_int(f"MOCK_PIPELINE_{upper}_STATUS_ID"),
            },
        )
        if not created:
            continue
        for source, variable, default_id, field_type in mappings:
            field_id = _optional_int(variable) or default_id
            if field_id is None:
                continue
            FieldMapping.objects.get_or_create(
                flow=flow,
                field_id=field_id,
                defaults={"source": source, "field_type": field_type},
            )


class Migration(migrations.Migration):
    dependencies = [("sync", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
