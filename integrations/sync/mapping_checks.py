"""Mappings the account's catalogue no longer backs: their AmoCRM field was deleted."""

from django.db.models import Exists, OuterRef, QuerySet

from integrations.amocrm.models import CustomField
from integrations.sync.models import FieldMapping


def mappings_missing_field(*, flow_id: int | None = None) -> QuerySet[FieldMapping]:
    """Enabled mappings whose field is absent from their account's fetched catalogue.

    An account whose catalogue was never fetched has nothing to judge by: its mappings
    are not listed.
    """
    fields = CustomField.objects.filter(account_id=OuterRef("flow__account_id"))
    mappings = (
        FieldMapping.objects.filter(enabled=True, flow__account__isnull=False)
        .annotate(
            has_catalogue=Exists(fields),
            field_exists=Exists(fields.filter(field_id=OuterRef("field_id"))),
        )
        .filter(has_catalogue=True, field_exists=False)
        .select_related("flow")
    )
    if flow_id is not None:
        mappings = mappings.filter(flow_id=flow_id)
    return mappings
