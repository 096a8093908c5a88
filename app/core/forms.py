"""Turning submitted fields into validated schemas, with messages a person can act on.

A form is refused once, with every field's message: the schema's checks and the service's own checks of single
fields (an allowed domain, a date after today, a category that exists) run in the same round, so nobody corrects
one field, sends again and only then hears about the next (issue #22).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ValidationError

from app.core.errors import AppError, InvalidInput
from app.core.i18n import N_, Message

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# A service's check of one submitted field: given the value as sent (text stripped of spaces), it returns quietly or
# raises an AppError whose `fields` say what is wrong. It is not run on a field the schema already refused.
FieldCheck = Callable[[Any], object]

CORRECT_FIELDS = N_("Please correct the highlighted fields.")

# Pydantic's own words ("Input should be ...") never reach a person: each kind of error it reports has a sentence.
_CHOICE = N_("Choose one of the options.")
_WHOLE = N_("Enter a whole number, like 12.")
_NUMBER = N_("Enter a number, like 2.5.")
_DATE = N_("Enter a date like 2027-03-31.")
_DATETIME = N_("Enter a date and time like 2027-03-31 17:00.")
_YES_NO = N_("Answer yes or no.")
_TEXT = N_("Enter some text.")
_FORMAT = N_("This is not in the expected format.")
_KIND_MESSAGES = {
    "enum": _CHOICE,
    "literal_error": _CHOICE,
    "int_parsing": _WHOLE,
    "int_type": _WHOLE,
    "int_from_float": _WHOLE,
    "float_parsing": _NUMBER,
    "float_type": _NUMBER,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "date_type": _DATE,
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "bool_parsing": _YES_NO,
    "bool_type": _YES_NO,
    "string_type": _TEXT,
    "string_unicode": _TEXT,
    "string_pattern_mismatch": _FORMAT,
    "list_type": _FORMAT,
    "dict_type": _FORMAT,
    "model_type": _FORMAT,
    "model_attributes_type": _FORMAT,
    "uuid_parsing": _FORMAT,
    "json_invalid": _FORMAT,
    "too_long": N_("There are too many of these."),
    "extra_forbidden": N_("This field is not expected here."),
    "url_parsing": N_("Enter an address like https://example.org."),
}
_NUMBER_KINDS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "int_parsing",
    "int_type",
    "int_from_float",
    "float_parsing",
    "float_type",
}
_FALLBACK = N_("This value is not accepted here. Check it and try again.")


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _range_message(lowest: object | None, highest: object | None) -> str | None:
    if lowest is not None and highest is not None:
        return Message(
            N_("Enter a number from %(lowest)s to %(highest)s."), lowest=_number(lowest), highest=_number(highest)
        )
    if lowest is not None:
        return Message(N_("Enter a number of at least %(lowest)s."), lowest=_number(lowest))
    if highest is not None:
        return Message(N_("Enter a number of at most %(highest)s."), highest=_number(highest))
    return None


def bounds(schema: type[BaseModel], name: str) -> tuple[object | None, object | None]:
    """The lowest and highest whole numbers a schema's field accepts, as declared with ge/gt/le/lt."""
    field = schema.model_fields.get(name)
    lowest: object | None = None
    highest: object | None = None
    for rule in field.metadata if field else ():
        if isinstance(rule, annotated_types.Ge):
            lowest = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            lowest = rule.gt + 1 if isinstance(rule.gt, int) else rule.gt
        elif isinstance(rule, annotated_types.Le):
            highest = rule.le
        elif isinstance(rule, annotated_types.Lt):
            highest = rule.lt - 1 if isinstance(rule.lt, int) else rule.lt
    return lowest, highest


def message_for(error: Mapping[str, Any], *, limits: tuple[object | None, object | None] = (None, None)) -> str:
    """A validation error in words a person can act on (pages and the API say the same).

    `limits` are the field's lowest and highest numbers when known, so an out-of-range number reads
    "Enter a number from 1 to 50." rather than naming only the bound it crossed.
    """
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and context.get("min_length") == 1):
        return N_("This is required.")
    if kind == "string_too_short":
        return Message(N_("Use at least %(length)s characters."), length=context["min_length"])
    if kind == "string_too_long":
        return Message(N_("Use at most %(length)s characters."), length=context["max_length"])
    if kind == "too_short":
        return Message(N_("Give at least %(count)s."), count=context.get("min_length", 1))
    if kind == "value_error":
        return str(context.get("error", _FALLBACK))
    if kind in _NUMBER_KINDS:
        lowest, highest = limits
        lowest = lowest if lowest is not None else context.get("ge", context.get("gt"))
        highest = highest if highest is not None else context.get("le", context.get("lt"))
        if kind == "greater_than" and limits[0] is None:
            return Message(N_("Enter a number larger than %(number)s."), number=_number(context["gt"]))
        if kind == "less_than" and limits[1] is None:
            return Message(N_("Enter a number smaller than %(number)s."), number=_number(context["lt"]))
        ranged = _range_message(lowest, highest)
        if ranged:
            return ranged
    return _KIND_MESSAGES.get(kind, _FALLBACK)


def field_messages(schema: type[BaseModel], exc: ValidationError) -> dict[str, str]:
    """One message per field, the first pydantic reported, keyed by the field's dotted name."""
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "form"
        top = str(error["loc"][0]) if error["loc"] else ""
        fields.setdefault(name, message_for(error, limits=bounds(schema, top)))
    return fields


def validate(
    schema: type[SchemaT], data: Mapping[str, Any], *, checks: Mapping[str, FieldCheck] | None = None
) -> SchemaT:
    """Validate `data` against `schema` and run `checks`, or raise InvalidInput with every field's message at once.

    `checks` are the service's checks of single fields, keyed by field name; the service runs them again on the
    validated form, so leaving one out costs a second round, never a check.
    """
    fields: dict[str, str] = {}
    form: SchemaT | None = None
    try:
        form = schema.model_validate(dict(data))
    except ValidationError as exc:
        fields = field_messages(schema, exc)
    for name, check in (checks or {}).items():
        if name in fields:
            continue
        raw = data.get(name)
        try:
            check(raw.strip() if isinstance(raw, str) else raw)
        except AppError as error:
            for key, message in (error.fields or {name: error.message}).items():
                fields.setdefault(key, message)
    if fields or form is None:
        raise InvalidInput(CORRECT_FIELDS, fields=_in_form_order(schema, fields) or {"form": CORRECT_FIELDS})
    return form


def _in_form_order(schema: type[BaseModel], fields: dict[str, str]) -> dict[str, str]:
    """The messages in the order the schema declares its fields, which is the order forms show them in."""
    order = {name: position for position, name in enumerate(schema.model_fields)}
    return dict(sorted(fields.items(), key=lambda item: order.get(item[0].split(".")[0], len(order))))
