"""Which kind of value a flow produces may be written to which type of AmoCRM field.

A flow kind gives each named value a value type (``FlowKindSpec.field_types``: text,
textarea, numeric, date, date_time, birthday). A mapping may send it only to a field whose
type is writable for it; every other pair is refused, with the reason an admin reads in
the form. The table agrees with ``integrations.amocrm.encoding``: each writable pair is one
its encoder turns into a value AmoCRM accepts (numbers as text, dates as RFC 3339), and
pairs the encoder would take but AmoCRM would refuse (free text in a select or a URL
field) are refused here.
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from integrations.amocrm.encoding import FieldType

# The words AmoCRM's own interface uses for each type, in lower case to sit in a sentence.
FIELD_TYPE_NAMES: dict[str, str] = {
    FieldType.TEXT: pgettext_lazy("field type", "text"),
    FieldType.TEXTAREA: pgettext_lazy("field type", "text area"),
    FieldType.NUMERIC: pgettext_lazy("field type", "number"),
    FieldType.DATE: pgettext_lazy("field type", "date"),
    FieldType.DATE_TIME: pgettext_lazy("field type", "date and time"),
    FieldType.BIRTHDAY: pgettext_lazy("field type", "birthday"),
    FieldType.SELECT: pgettext_lazy("field type", "select"),
    FieldType.MULTISELECT: pgettext_lazy("field type", "multiselect"),
    FieldType.CHECKBOX: pgettext_lazy("field type", "checkbox"),
    FieldType.URL: pgettext_lazy("field type", "URL"),
    FieldType.PRICE: pgettext_lazy("field type", "price"),
}

_OPTIONS_ONLY = _(
    "AmoCRM accepts only one of the field's own options there and refuses any other value"
)
_YES_NO = _("a checkbox holds only yes or no")
_WEB_ADDRESS = _("AmoCRM accepts only a web address there")
_NOT_A_NUMBER = _("AmoCRM accepts only a number there")
_NOT_A_DATE = _("AmoCRM accepts only a date there")
_NO_TIME_OF_DAY = _("a birthday has no time of day, and a moment is not someone's birthday")
_TOO_LONG_FOR_TEXT = _(
    "it is multi-line text, longer than a text field holds; use a text area field"
)

_NOT_FOR_ANY_VALUE = {
    FieldType.SELECT: _OPTIONS_ONLY,
    FieldType.MULTISELECT: _OPTIONS_ONLY,
    FieldType.CHECKBOX: _YES_NO,
    FieldType.URL: _WEB_ADDRESS,
}
_NOT_FOR_A_NUMBER = {
    FieldType.DATE: _NOT_A_DATE,
    FieldType.DATE_TIME: _NOT_A_DATE,
    FieldType.BIRTHDAY: _NOT_A_DATE,
}
_NOT_FOR_A_DAY = {FieldType.NUMERIC: _NOT_A_NUMBER, FieldType.PRICE: _NOT_A_NUMBER}

# value type -> field type -> why that field cannot take the value. Pairs not listed
# are writable.
REFUSALS: dict[str, dict[str, str]] = {
    FieldType.NUMERIC: {**_NOT_FOR_A_NUMBER, **_NOT_FOR_ANY_VALUE},
    FieldType.DATE: {**_NOT_FOR_A_DAY, **_NOT_FOR_ANY_VALUE},
    FieldType.DATE_TIME: {
        **_NOT_FOR_A_DAY,
        FieldType.BIRTHDAY: _NO_TIME_OF_DAY,
        **_NOT_FOR_ANY_VALUE,
    },
    FieldType.BIRTHDAY: {
        **_NOT_FOR_A_DAY,
        FieldType.DATE_TIME: _NO_TIME_OF_DAY,
        **_NOT_FOR_ANY_VALUE,
    },
    FieldType.TEXT: {**_NOT_FOR_A_DAY, **_NOT_FOR_A_NUMBER, **_NOT_FOR_ANY_VALUE},
    FieldType.TEXTAREA: {
        FieldType.TEXT: _TOO_LONG_FOR_TEXT,
        **_NOT_FOR_A_DAY,
        **_NOT_FOR_A_NUMBER,
        **_NOT_FOR_ANY_VALUE,
    },
}

WRITABLE: dict[str, frozenset[str]] = {
    value_type: frozenset(FieldType.values) - refused.keys()
    for value_type, refused in REFUSALS.items()
}


def field_type_name(field_type: str) -> str:
    """The word for an AmoCRM field type; the API's own name for types the hub lacks."""
    return str(FIELD_TYPE_NAMES.get(field_type, field_type))


def write_refusal(*, value_type: str, field_type: str) -> str | None:
    """Why a value of ``value_type`` cannot go to a field of ``field_type``; None if it can.

    A value type this table does not know is judged by nothing but the encoder.
    """
    return REFUSALS.get(value_type, {}).get(field_type)
