"""Forms of the flow admin: AmoCRM fields and stages chosen by name from the catalogue."""

from django import forms

from integrations.amocrm.models import Pipeline, Status
from integrations.sync.models import FieldMapping


class FieldMappingForm(forms.ModelForm):
    class Meta:
        model = FieldMapping
        fields = ["source", "field_id", "field_type", "enabled"]


def pipeline_field(account_id, *, label: str, required: bool = True, blank: str = "---------"):
    """A select of the account's pipelines by name, or None when none were fetched."""
    pipelines = Pipeline.objects.filter(account=account_id)
    if account_id is None or not pipelines.exists():
        return None
    return forms.TypedChoiceField(
        label=label,
        coerce=int,
        required=required,
        empty_value=None,
        choices=[("", blank), *((p.pipeline_id, str(p)) for p in pipelines)],
    )


def status_field(account_id, *, label: str, required: bool = True, blank: str = "---------"):
    """A select of the account's stages, grouped by pipeline; None when none were fetched."""
    statuses = Status.objects.filter(pipeline__account=account_id).select_related("pipeline")
    if account_id is None or not statuses.exists():
        return None
    groups: dict[str, list] = {}
    for status in statuses:
        groups.setdefault(str(status.pipeline), []).append(
            (status.status_id, f"{status.name} ({status.status_id})")
        )
    return forms.TypedChoiceField(
        label=label,
        coerce=int,
        required=required,
        empty_value=None,
        choices=[("", blank), *groups.items()],
    )
