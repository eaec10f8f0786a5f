"""Forms of the flow admin: AmoCRM fields and stages chosen by name from the catalogue.

The forms offer choices; the models judge them (``FieldMapping.clean``,
``models.stage_errors``), so a value posted by hand gets the same clear refusal as one
picked from a stale page.
"""

from django import forms
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.amocrm.models import CustomField, Pipeline, Status
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.mapping_checks import catalogue_missing_message
from integrations.sync.mapping_types import field_type_name
from integrations.sync.models import UNSORTED_STATUS_TYPE, FieldMapping, Flow, FlowStatusMapping

BLANK = "---------"


class CatalogueChoiceField(forms.TypedChoiceField):
    """A select of catalogue ids that lets any integer through to the model's judgement.

    Django's own "not one of the available choices" would hide what is wrong (unknown id,
    computed field, Unsorted stage); the model's clean() says it in words.
    """

    def valid_value(self, value):
        return True


def field_label(field: CustomField) -> str:
    """How a catalogue field is offered: its name, with its type and id beside it."""
    return gettext("%(name)s — %(type)s, %(id)s") % {
        "name": field.name,
        "type": field_type_name(field.type),
        "id": field.field_id,
    }


def source_field(kind: str) -> forms.ChoiceField:
    """A select of the named values a flow kind produces, by label with the name beside."""
    sources = FLOW_KINDS[kind].sources
    return forms.ChoiceField(
        label=_("Value"),
        help_text=_("A value the flow makes of each RDESK payload."),
        choices=[
            ("", BLANK),
            *((name, f"{label} ({name})") for name, label in sources.items()),
        ],
    )


def field_id_field(flow: Flow | None, *, current: int | None) -> forms.Field:
    """The AmoCRM field of a mapping: a select of the flow's account's catalogue by name.

    Without a catalogue the field takes a number, which the model refuses with the reason
    (no account, nothing fetched); ``current`` stays on offer even when the catalogue no
    longer holds it, so an unchanged row posts back as it was.
    """
    label = _("AmoCRM field")
    if flow is None or flow.account_id is None:
        return forms.IntegerField(
            label=label, help_text=_("Choose the flow's AmoCRM account first.")
        )
    fields = list(CustomField.objects.filter(account_id=flow.account_id).order_by("name"))
    if not fields:
        return forms.IntegerField(label=label, help_text=catalogue_missing_message(flow.account))
    choices = [(f.field_id, field_label(f)) for f in fields if f.is_supported and not f.is_computed]
    offered = {field_id for field_id, _label in choices}
    if current is not None and current not in offered:
        known = next((f for f in fields if f.field_id == current), None)
        if known is None:
            text = gettext("Field %(id)s — not in AmoCRM any more") % {"id": current}
        else:
            text = gettext("%(field)s — cannot be written") % {"field": field_label(known)}
        choices.insert(0, (current, text))
    return CatalogueChoiceField(
        label=label,
        coerce=int,
        choices=[("", BLANK), *choices],
        help_text=_("The lead field in AmoCRM; its type follows from the catalogue."),
    )


class FieldMappingForm(forms.ModelForm):
    """One form for every place a mapping is made: the flow page and the mapping admin.

    The flow decides what is offered: its kind's values and its account's fields. The
    field type is not asked for; ``FieldMapping.clean`` takes it from the catalogue.
    """

    class Meta:
        model = FieldMapping
        fields = ["flow", "source", "field_id", "enabled"]

    def __init__(self, *args, flow: Flow | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.flow = flow if flow is not None else self._flow_chosen()
        if self.flow is not None and self.flow.kind in FLOW_KINDS:
            self.fields["source"] = source_field(self.flow.kind)
        if "field_id" in self.fields:
            current = self.instance.field_id if self.instance.pk else None
            self.fields["field_id"] = field_id_field(self.flow, current=current)

    def _flow_chosen(self) -> Flow | None:
        if "flow" not in self.fields:
            return None
        if self.is_bound:
            value = self.data.get(self.add_prefix("flow"))
        else:
            value = self.initial.get("flow") or self.instance.flow_id
        try:
            return Flow.objects.select_related("account").filter(pk=int(value)).first()
        except (TypeError, ValueError):
            return None


class FieldMappingFormSet(BaseInlineFormSet):
    """The flow page's mappings: each form knows the flow; a field is mapped once."""

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "flow": self.instance}

    def clean(self):
        seen: set[int] = set()
        for form in self.forms:
            if not form.is_valid() or (self.can_delete and self._should_delete_form(form)):
                continue
            field_id = form.cleaned_data.get("field_id")
            if field_id is None:
                continue
            if field_id in seen:
                form.add_error(
                    "field_id",
                    gettext("This field is chosen twice in this flow; a field takes one value."),
                )
            seen.add(field_id)
        super().clean()


def pipeline_field(
    account_id,
    *,
    label: str,
    required: bool = True,
    blank: str = BLANK,
    current: int | None = None,
):
    """A select of the account's pipelines by name, or None when none were fetched."""
    pipelines = list(Pipeline.objects.filter(account=account_id))
    if account_id is None or not pipelines:
        return None
    choices = [(p.pipeline_id, str(p)) for p in pipelines]
    if current is not None and current not in {p.pipeline_id for p in pipelines}:
        choices.insert(
            0, (current, gettext("Pipeline %(id)s — not in AmoCRM any more") % {"id": current})
        )
    return CatalogueChoiceField(
        label=label,
        coerce=int,
        required=required,
        empty_value=None,
        choices=[("", blank), *choices],
    )


def status_field(
    account_id,
    *,
    label: str,
    required: bool = True,
    blank: str = BLANK,
    current: int | None = None,
):
    """A select of the account's stages, grouped by pipeline; None when none were fetched.

    Unsorted is left out (leads cannot be put there); won and lost are offered in every
    pipeline, where AmoCRM keeps them. Whether the stage belongs to the chosen pipeline is
    judged by ``models.stage_errors``.
    """
    statuses = list(Status.objects.filter(pipeline__account=account_id).select_related("pipeline"))
    if account_id is None or not statuses:
        return None
    groups: dict[str, list] = {}
    offered = set()
    for status in statuses:
        if status.type == UNSORTED_STATUS_TYPE and status.status_id != current:
            continue
        groups.setdefault(str(status.pipeline), []).append(
            (status.status_id, f"{status.name} ({status.status_id})")
        )
        offered.add(status.status_id)
    choices: list = [("", blank)]
    if current is not None and current not in offered:
        choices.append(
            (current, gettext("Stage %(id)s — not in AmoCRM any more") % {"id": current})
        )
    return CatalogueChoiceField(
        label=label,
        coerce=int,
        required=required,
        empty_value=None,
        choices=[*choices, *groups.items()],
    )


class FlowStatusMappingForm(forms.ModelForm):
    """Booking status -> stage; pipeline and stage from the flow's account's catalogue."""

    class Meta:
        model = FlowStatusMapping
        fields = ["booking_status", "pipeline_id", "status_id"]

    def __init__(self, *args, flow: Flow | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        account_id = flow.account_id if flow is not None else None
        pipeline = pipeline_field(
            account_id, label=_("AmoCRM pipeline"), current=self.instance.pipeline_id
        )
        status = status_field(account_id, label=_("AmoCRM stage"), current=self.instance.status_id)
        if pipeline is not None and status is not None:
            self.fields["pipeline_id"], self.fields["status_id"] = pipeline, status


class FlowStatusMappingFormSet(BaseInlineFormSet):
    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "flow": self.instance}


class FlowStepForm(forms.ModelForm):
    """The first step of adding a mapping on its own: which flow it belongs to.

    Its values and its account's fields are offered once the flow is known; this form
    never saves a mapping.
    """

    class Meta:
        model = FieldMapping
        fields = ["flow"]
        help_texts = {
            "flow": _("Its values and its account's AmoCRM fields are offered on the next step.")
        }

    def clean(self):
        cleaned = super().clean()
        if not self._errors:
            raise forms.ValidationError(gettext("Choose the flow first, then its value and field."))
        return cleaned

    def _post_clean(self):
        # Only the flow is asked for here: the mapping itself is judged on the next step.
        pass
