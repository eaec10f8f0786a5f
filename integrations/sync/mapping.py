"""Named values plus a flow's field mappings make the body of a lead update (pure)."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from integrations.amocrm.encoding import EncodingError, encode_field


class MappingError(ValueError):
    """A mapped value cannot be written to its AmoCRM field."""


@dataclass(frozen=True)
class Mapping:
    source: str
    field_id: int
    field_type: str


def lead_update_build(
    *,
    values: dict,
    mappings: Iterable[Mapping],
    price_source: str,
    tz: ZoneInfo,
    skip_field_ids: frozenset[int] = frozenset(),
) -> dict:
    """The PATCH body for a lead: its price and one custom field value per mapping.

    Empty values are left out (an update never clears a field the payload did not fill);
    fields in ``skip_field_ids`` (computed, read-only in AmoCRM) are never sent.
    """
    update: dict = {}
    if price_source:
        if price_source not in values:
            raise MappingError(f"price source '{price_source}' is not a value of this flow")
        if values[price_source] is not None:
            try:
                price = Decimal(str(values[price_source]))
                if not price.is_finite():  # NaN and Infinity parse but are no amount
                    raise InvalidOperation
            except InvalidOperation as error:
                raise MappingError(f"price: '{values[price_source]}' is not a number") from error
            # AmoCRM's lead price is an integer amount.
            update["price"] = int(price.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    fields = []
    for mapping in mappings:
        if mapping.field_id in skip_field_ids:
            continue
        if mapping.source not in values:
            raise MappingError(f"mapping source '{mapping.source}' is not a value of this flow")
        try:
            entry = encode_field(
                mapping.field_id, mapping.field_type, values[mapping.source], tz=tz
            )
        except EncodingError as error:
            raise MappingError(
                f"{mapping.source} -> field {mapping.field_id} ({mapping.field_type}): {error}"
            ) from error
        if entry is not None:
            fields.append(entry)
    if fields:
        update["custom_fields_values"] = fields
    return update
