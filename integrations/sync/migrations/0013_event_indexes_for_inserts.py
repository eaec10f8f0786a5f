"""Two fewer index entries per new event: the lead index duplicated the first column of
the lead-order index, and the claim index held every new event's NULL token."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0012_event_lz4_compression"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="inboundevent",
            name="event_lead_id_idx",
        ),
        migrations.RemoveIndex(
            model_name="inboundevent",
            name="event_claim_idx",
        ),
        migrations.AddIndex(
            model_name="inboundevent",
            index=models.Index(
                condition=models.Q(("claim_token__isnull", False)),
                fields=["claim_token"],
                name="event_claim_idx",
            ),
        ),
    ]
