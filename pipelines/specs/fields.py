"""Typed reads from a parsed document: a field of the wrong shape becomes a SpecError that
says where, instead of an AttributeError deep in a parser."""

from __future__ import annotations

from typing import Any

from pipelines.specs.errors import SpecError


def mapping(parent: dict, key: str, where: str) -> dict:
    """``parent[key]`` as a dict; missing or null is an empty one."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where}: '{key}' should be a mapping, not {kind_of(value)}")
    return value


def sequence(parent: dict, key: str, where: str) -> list:
    """``parent[key]`` as a list; missing or null is an empty one."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(f"{where}: '{key}' should be a list, not {kind_of(value)}")
    return value


def text(parent: dict, key: str, where: str, default: str = "") -> str:
    """``parent[key]`` as a string; numbers and booleans (YAML's unquoted ``1.0``) are
    written out, anything else is refused."""
    value = parent.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise SpecError(f"{where}: '{key}' should be a string, not {kind_of(value)}")


def integer(parent: dict, key: str, where: str) -> int:
    """``parent[key]`` as an int (0 when missing); YAML and JSON may give "3", 3 or 3.0."""
    value = parent.get(key)
    if value is None:
        return 0
    try:
        number = float(value)
        if isinstance(value, bool) or number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise SpecError(f"{where}: '{key}' should be a whole number, not {value!r}") from None


def entries(value: Any, where: str) -> list[dict]:
    """A list whose items must all be mappings (Argo's lists of named things)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise SpecError(f"{where} should be a list of mappings")
    return value


def kind_of(value: Any) -> str:
    """How to name a value's type to a person."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
