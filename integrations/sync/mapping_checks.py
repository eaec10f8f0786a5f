"""Whether a field mapping is right: as it is made, and after the catalogue changed.

Forms refuse a wrong mapping when it is made (``FieldMapping.clean``); these checks find
the ones that went wrong later, when a catalogue refresh showed a field deleted in AmoCRM,
or that were written before the catalogue was fetched (seeded from the old service).
"""

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils.translation import gettext

from integrations.amocrm.models import Account, CustomField
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.mapping_types import field_type_name, write_refusal
from integrations.sync.models import FieldMapping


def catalogue_missing_message(account: Account) -> str:
    """Why nothing can be mapped yet for an account whose fields were never fetched."""
    return gettext(
        "Account %(account)s has no fetched fields yet. Fetch the account's fields first: "
        "Accounts -> action “Fetch fields and pipelines from AmoCRM”."
    ) % {"account": account}


def mappings_with_catalogue_state(mappings: QuerySet[FieldMapping]) -> QuerySet[FieldMapping]:
    """``mappings`` annotated from their account's catalogue.

    ``has_catalogue``: the account's fields were fetched; ``field_exists``: the mapped
    field is among them; ``field_name``: its name there (None when missing).
    """
    fields = CustomField.objects.filter(account_id=OuterRef("flow__account_id"))
    field = fields.filter(field_id=OuterRef("field_id"))
    return mappings.annotate(
        has_catalogue=Exists(fields),
        field_exists=Exists(field),
        field_name=Subquery(field.values("name")[:1]),
    )


def mappings_missing_field(*, flow_id: int | None = None) -> QuerySet[FieldMapping]:
    """Enabled mappings whose field is absent from their account's fetched catalogue.

    An account whose catalogue was never fetched has nothing to judge by: its mappings
    are not listed.
    """
    mappings = (
        mappings_with_catalogue_state(
            FieldMapping.objects.filter(enabled=True, flow__account__isnull=False)
        )
        .filter(has_catalogue=True, field_exists=False)
        .select_related("flow")
        .order_by("flow__name", "id")
    )
    if flow_id is not None:
        mappings = mappings.filter(flow_id=flow_id)
    return mappings


def catalogue_fields(account_id: int | None) -> dict[int, CustomField] | None:
    """The account's fetched fields by id; None when there is no catalogue to judge by."""
    if account_id is None:
        return None
    fields = {f.field_id: f for f in CustomField.objects.filter(account_id=account_id)}
    return fields or None


def mapping_problem(mapping: FieldMapping, *, fields: dict[int, CustomField] | None) -> str:
    """What will go wrong when ``mapping`` is sent, judged by ``fields``; empty if nothing.

    ``fields`` is ``catalogue_fields()`` of the mapping's account, passed in so that a page
    listing many mappings reads the catalogue once.
    """
    if fields is None or mapping.flow_id is None:
        return ""
    field = fields.get(mapping.field_id)
    if field is None:
        return gettext(
            "Field %(id)s is no longer in AmoCRM (not in the last fetched catalogue): choose "
            "another field or delete this mapping."
        ) % {"id": mapping.field_id}
    if field.is_computed:
        return gettext("%(field)s is computed by AmoCRM: the hub never sends it.") % {
            "field": field.name
        }
    if not field.is_supported:
        return gettext("%(field)s is of type %(type)s, which the hub cannot write.") % {
            "field": field.name,
            "type": field.type,
        }
    spec = FLOW_KINDS.get(mapping.flow.kind)
    value_type = spec.field_types.get(mapping.source) if spec else None
    refusal = write_refusal(value_type=value_type, field_type=field.type)
    if refusal:
        return gettext("%(field)s is a %(type)s field: %(reason)s.") % {
            "field": field.name,
            "type": field_type_name(field.type),
            "reason": refusal,
        }
    if mapping.field_type != field.type:
        return gettext(
            "Written as %(stored)s, but AmoCRM says %(field)s is a %(type)s field; save the "
            "mapping again to follow the catalogue."
        ) % {
            "stored": field_type_name(mapping.field_type),
            "field": field.name,
            "type": field_type_name(field.type),
        }
    return ""


# --- judging a mapping as it is made ---------------------------------------------------


def mapping_validate(*, mapping: FieldMapping) -> dict[str, str]:
    """What is wrong with ``mapping`` as it is about to be saved, by form field name.

    Judged by its flow's kind and its account's catalogue; sets ``field_type`` from the
    catalogue, so the type is never chosen by hand. A row saved before and kept as it was
    is not judged again (it may predate the catalogue): pages flag it instead.
    """
    spec = FLOW_KINDS.get(mapping.flow.kind)
    if spec is None:
        return {}
    errors = {}
    if mapping.source not in spec.sources:
        errors["source"] = gettext("Unknown value for this flow; choose one of: %(names)s.") % {
            "names": ", ".join(spec.sources)
        }
    if mapping.field_id is None:
        return errors  # the form says the field is required
    if _kept_as_stored(mapping):
        field = CustomField.objects.filter(
            account_id=mapping.flow.account_id, field_id=mapping.field_id
        ).first()
        if field is not None and field.is_supported and not field.is_computed:
            mapping.field_type = field.type
        return errors
    field, refusal = _catalogue_field(mapping)
    if field is None:
        return {**errors, "field_id": refusal}
    mapping.field_type = field.type
    if "source" in errors:
        return errors
    refusal = write_refusal(value_type=spec.field_types.get(mapping.source), field_type=field.type)
    if refusal:
        errors["field_id"] = gettext(
            "%(field)s is a %(type)s field; “%(value)s” (%(value_type)s) cannot be written to "
            "it: %(reason)s."
        ) % {
            "field": field.name,
            "type": field_type_name(field.type),
            "value": str(spec.sources[mapping.source]),
            "value_type": field_type_name(spec.field_types[mapping.source]),
            "reason": refusal,
        }
    return errors


def _kept_as_stored(mapping: FieldMapping) -> bool:
    """Whether the row is saved already with the same value, field and account."""
    if mapping.pk is None:
        return False
    stored = (
        FieldMapping.objects.filter(pk=mapping.pk)
        .values("flow_id", "flow__account_id", "source", "field_id", "enabled")
        .first()
    )
    return stored is not None and (
        stored["flow_id"] == mapping.flow_id
        and stored["flow__account_id"] == mapping.flow.account_id
        and stored["source"] == mapping.source
        and stored["field_id"] == mapping.field_id
        # Switching a mapping on makes it send again: judge it then.
        and (stored["enabled"] or not mapping.enabled)
    )


def _catalogue_field(mapping: FieldMapping) -> tuple[CustomField | None, str]:
    """The catalogue entry ``mapping`` may write to, or None and why it may not."""
    account = mapping.flow.account
    if account is None:
        return None, gettext(
            "The flow has no AmoCRM account: choose one on the flow page and fetch its "
            "fields first."
        )
    catalogue = CustomField.objects.filter(account=account)
    field = catalogue.filter(field_id=mapping.field_id).first()
    if field is None and not catalogue.exists():
        return None, catalogue_missing_message(account)
    if field is None:
        return None, gettext(
            "Field %(id)s is not in the catalogue of account %(account)s; refresh the "
            "catalogue or pick a field from the list."
        ) % {"id": mapping.field_id, "account": account}
    if field.is_computed:
        return None, gettext(
            "%(field)s is computed by AmoCRM (read-only): nothing can be written to it."
        ) % {"field": field.name}
    if not field.is_supported:
        return None, gettext(
            "%(field)s is a field of type %(type)s, which the hub cannot write."
        ) % {"field": field.name, "type": field.type}
    taken = FieldMapping.objects.filter(flow_id=mapping.flow_id, field_id=mapping.field_id)
    if mapping.flow_id is not None and taken.exclude(pk=mapping.pk).exists():
        return None, gettext(
            "%(field)s is already mapped in this flow; a field takes one value."
        ) % {"field": field.name}
    return field, ""
