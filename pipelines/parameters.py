"""A run's parameter values, checked against the pipeline's declared parameters.

One function serves the API (native JSON values, as ``runtime_config.parameters`` sends
them; v1 sends every value as a string) and the run form (text typed into inputs).
Every problem is reported at once, keyed by parameter name, and nothing is guessed:
an unknown name, a missing required value or a value of the wrong type is an error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.exceptions import ValidationError

from pipelines.specs.model import Parameter, PipelineSpec

TYPE_WORDS = {"STRING": "a string", "NUMBER_INTEGER": "an integer",
              "NUMBER_DOUBLE": "a number", "BOOLEAN": "true or false",
              "LIST": "a JSON list", "STRUCT": "a JSON object"}


def resolve(spec: PipelineSpec, given: dict[str, Any] | None, *,
            from_text: bool = False) -> dict[str, Any]:
    """Every declared parameter's value for a run: the given one (converted to the declared
    type) or the default. ``from_text``: values are what a person typed (a form), so
    ``3`` is parsed for an integer and JSON for a list. Raises a ValidationError whose
    ``error_dict`` maps parameter names (or ``__all__``) to messages."""
    given = dict(given or {})
    declared = {p.name: p for p in spec.parameters}
    errors: dict[str, list[str]] = {}
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            errors.setdefault(name, []).append(
                f"The pipeline has no parameter '{name}' (its parameters: {known}).")
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        if name in given and not (from_text and given[name] == "" and _has_fallback(parameter)):
            try:
                values[name] = convert(parameter, given[name], from_text=from_text)
            except ValueError as exc:
                errors.setdefault(name, []).append(str(exc))
        elif parameter.has_default:
            values[name] = parameter.default
        elif not parameter.optional:
            errors.setdefault(name, []).append(f"The parameter '{name}' needs a value.")
    if errors:
        raise ValidationError({name: messages for name, messages in errors.items()})
    return values


def _has_fallback(parameter: Parameter) -> bool:
    """An empty form field means "use the default" when there is one (or it's optional);
    for a required string with no default, empty is a value."""
    return parameter.has_default or parameter.optional or parameter.type != "STRING"


def convert(parameter: Parameter, value: Any, *, from_text: bool = False) -> Any:
    """``value`` as the parameter's type, or ValueError saying what was expected."""
    kind = parameter.type
    wanted = f"'{parameter.name}' must be {TYPE_WORDS.get(kind, kind)}"
    if from_text and isinstance(value, str) and kind != "STRING":
        value = _parse_text(kind, value.strip(), wanted)
    if kind == "STRING":
        if isinstance(value, str):
            return value
        raise ValueError(f"{wanted}, not {json.dumps(value)}.")
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"  # v1 clients send "true"
        raise ValueError(f"{wanted}, not {json.dumps(value)}.")
    if kind == "NUMBER_INTEGER":
        number = _number(value, wanted)
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError(f"{wanted}, not {value}.")
            number = int(number)
        return number
    if kind == "NUMBER_DOUBLE":
        return float(_number(value, wanted))
    if kind == "LIST":
        value = _json_text(value, wanted) if isinstance(value, str) else value
        if isinstance(value, list):
            return value
        raise ValueError(f"{wanted}.")
    if kind == "STRUCT":
        value = _json_text(value, wanted) if isinstance(value, str) else value
        if isinstance(value, dict):
            return value
        raise ValueError(f"{wanted}.")
    raise ValueError(f"'{parameter.name}' has a type kfdash does not know: {kind}.")


def _number(value: Any, wanted: str) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{wanted}, not {json.dumps(value)}.")
    if isinstance(value, str):  # v1 clients send numbers as strings
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{wanted}, not '{value}'.") from None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    raise ValueError(f"{wanted}, not {json.dumps(value)}.")


def _json_text(text: str, wanted: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"{wanted} (this is not valid JSON).") from None


def _parse_text(kind: str, text: str, wanted: str) -> Any:
    if kind in ("LIST", "STRUCT"):
        return _json_text(text, wanted)
    return text  # numbers and booleans accept strings already


def as_text(parameter: Parameter, value: Any) -> str:
    """How a value is shown in a form field (the inverse of ``from_text``)."""
    if value is None:
        return ""
    if parameter.type == "STRING":
        return str(value)
    if parameter.type == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)
