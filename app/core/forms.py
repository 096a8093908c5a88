"""Turning submitted fields into validated schemas, with messages a person can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.core.errors import InvalidInput
from app.core.i18n import N_

SchemaT = TypeVar("SchemaT", bound=BaseModel)


def message_for(error: Mapping[str, Any]) -> str:
    """A validation error in words a person can act on (pages and the API say the same)."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and context.get("min_length") == 1):
        return N_("This is required.")
    if kind == "string_too_short":
        return f"Use at least {context['min_length']} characters."
    if kind == "string_too_long":
        return f"Use at most {context['max_length']} characters."
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        return N_("This is not in the expected format.")
    return str(error["msg"])


def validate(schema: type[SchemaT], data: Mapping[str, Any]) -> SchemaT:
    """Validate `data` against `schema`, or raise InvalidInput with one message per field."""
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "form"
            fields.setdefault(name, message_for(error))
        raise InvalidInput(N_("Please correct the highlighted fields."), fields=fields) from None
