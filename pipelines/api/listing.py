"""Filter, sort and page a list the way the Kubeflow Pipelines API does, for every list
endpoint of both API versions.

A ``Listing`` names the fields a client may filter and sort on (proto field names, which
differ between v2beta1 and v1beta1) and maps them to columns. ``Listing.page`` reads the
request's ``filter`` (the JSON of KFP's ``Filter`` message), ``sort_by`` (``field``,
``field asc``, ``field desc``), ``page_size`` and ``page_token``, and returns one page.

Paging is by keyset, not offset: the token holds the sort field and the last row's sort
value and id, so page 100 costs what page 1 costs (an index range scan). A page takes
two queries whatever its size: the count for ``total_size`` and the rows.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import APIException

DEFAULT_PAGE_SIZE = 20  # the KFP API server's defaults (backend/src/apiserver/list/list.go)
MAX_PAGE_SIZE = 200  # larger requests get this many, as from KFP

OPERATIONS = {  # filter.proto: Predicate.Operation (v2) / Predicate.Op (v1), same numbers
    "EQUALS": 1, "NOT_EQUALS": 2, "GREATER_THAN": 3, "GREATER_THAN_EQUALS": 5,
    "LESS_THAN": 6, "LESS_THAN_EQUALS": 7, "IN": 8, "IS_SUBSTRING": 9,
}
_OP_NAMES = {number: name for name, number in OPERATIONS.items()}
_LOOKUPS = {"EQUALS": "exact", "GREATER_THAN": "gt", "GREATER_THAN_EQUALS": "gte",
            "LESS_THAN": "lt", "LESS_THAN_EQUALS": "lte", "IN": "in"}
# Where a predicate's value can be, in proto3 JSON (camelCase) or proto (snake_case) names.
_SCALARS = ("string_value", "stringValue", "int_value", "intValue", "long_value", "longValue",
            "timestamp_value", "timestampValue", "bool_value", "boolValue")
_LISTS = ("string_values", "stringValues", "int_values", "intValues", "long_values",
          "longValues")


class ListError(APIException):
    """A filter, sort_by, page_size or page_token the server cannot use (400)."""

    status_code = 400
    default_code = "invalid_argument"


@dataclass(frozen=True)
class Field:
    """A filterable, sortable field: its column and how values become column values."""

    column: str
    kind: str = "string"  # string | timestamp | id | enum
    normalize: Callable[[str], str] | None = None  # enum values: the API's spelling → stored


# v1 spells it STORAGESTATE_ARCHIVED, v2 ARCHIVED (as stored); both are accepted on both.
STORAGE_STATE = Field("storage_state", "enum",
                      lambda value: value.removeprefix("STORAGESTATE_"))


@dataclass
class Page:
    items: list
    total_size: int
    next_page_token: str


@dataclass(frozen=True)
class Listing:
    fields: dict[str, Field]
    default_sort: str = "created_at"  # ascending, as the KFP server sorts by default

    def page(self, queryset: QuerySet, params) -> Page:
        """One page of ``queryset`` for a request's query parameters (a QueryDict or dict).
        Empty values mean "not set": the SDKs send ``page_token=&sort_by=``."""
        queryset = queryset.filter(self.filter_q(params.get("filter") or ""))
        size = page_size(params.get("page_size") or "")
        token = params.get("page_token") or ""
        if token:
            key, descending, after = self._decode(token)
        else:
            key, descending = self._sort(params.get("sort_by") or "")
            after = None
        column = self.fields[key].column
        order = [f"-{column}", "-pk"] if descending else [column, "pk"]
        total = queryset.count()
        rows = queryset.order_by(*order)
        if after is not None:
            value, pk = after
            op = "lt" if descending else "gt"
            rows = rows.filter(Q(**{f"{column}__{op}": value})
                               | Q(**{column: value, f"pk__{op}": pk}))
        items = list(rows[: size + 1])
        next_token = ""
        if len(items) > size:
            items = items[:size]
            next_token = self._encode(key, descending, items[-1])
        return Page(items, total, next_token)

    # --- filter -------------------------------------------------------------------

    def filter_q(self, text: str) -> Q:
        """The Q of a KFP filter: every predicate must hold."""
        if not text.strip():
            return Q()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ListError(f"The filter is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ListError("The filter should be a JSON object with 'predicates'.")
        predicates = data.get("predicates") or []
        if not isinstance(predicates, list):
            raise ListError("The filter's 'predicates' should be a list.")
        q = Q()
        for predicate in predicates:
            q &= self._predicate(predicate)
        return q

    def _predicate(self, predicate: Any) -> Q:
        if not isinstance(predicate, dict):
            raise ListError("Each filter predicate should be an object with key, operation "
                            "and a value.")
        key = predicate.get("key")
        if key not in self.fields:
            raise ListError(f"The filter key {key!r} is not one of: {self._known()}.")
        spec = self.fields[key]
        op = _operation(predicate.get("operation", predicate.get("op")), key)
        if op == "IN":
            values = _list_value(predicate, key)
            return Q(**{f"{spec.column}__in": [_convert(spec, key, v) for v in values]})
        value = _convert(spec, key, _scalar_value(predicate, key))
        if op == "IS_SUBSTRING":
            if spec.kind != "string":
                raise ListError(f"IS_SUBSTRING needs a text field; {key} is not one.")
            return Q(**{f"{spec.column}__icontains": value})
        if op == "NOT_EQUALS":
            return ~Q(**{spec.column: value})
        return Q(**{f"{spec.column}__{_LOOKUPS[op]}": value})

    def _known(self) -> str:
        return ", ".join(self.fields)

    # --- sort and token -------------------------------------------------------------

    def _sort(self, text: str) -> tuple[str, bool]:
        parts = text.split()
        if not parts:
            return self.default_sort, False
        direction = parts[1].lower() if len(parts) == 2 else "asc"
        if len(parts) > 2 or direction not in ("asc", "desc"):
            raise ListError(f"sort_by should be 'field', 'field asc' or 'field desc', "
                            f"not {text!r}.")
        if parts[0] not in self.fields:
            raise ListError(f"Can't sort by {parts[0]!r}; sort by one of: {self._known()}.")
        return parts[0], direction == "desc"

    def _encode(self, key: str, descending: bool, last) -> str:
        value = _dig(last, self.fields[key].column)
        if isinstance(value, datetime):
            value = value.isoformat()
        data = {"k": key, "d": descending, "v": str(value) if isinstance(value, uuid.UUID)
                else value, "id": str(last.pk)}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode(self, token: str) -> tuple[str, bool, tuple[Any, Any]]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            key, descending, value, pk = data["k"], bool(data["d"]), data["v"], data["id"]
            spec = self.fields[key]
            if spec.kind == "timestamp":
                value = _timestamp(value, key)
            elif spec.kind == "id":
                value = uuid.UUID(value)
            return key, descending, (value, uuid.UUID(pk))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error,
                ListError) as exc:
            raise ListError("The page_token is not one this server gave out; "
                            "start again without it.") from exc


def page_size(text: str | int) -> int:
    """``page_size`` from the query: empty or 0 → the default, capped at MAX_PAGE_SIZE."""
    if text in ("", None):
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except (TypeError, ValueError) as exc:
        raise ListError(f"page_size should be a whole number, not {text!r}.") from exc
    if size < 0:
        raise ListError(f"page_size should not be negative; got {size}.")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _operation(raw: Any, key: str) -> str:
    if isinstance(raw, bool):
        raw = None
    if isinstance(raw, int) and raw in _OP_NAMES:
        return _OP_NAMES[raw]
    if isinstance(raw, str) and raw.upper() in OPERATIONS:
        return raw.upper()
    if isinstance(raw, str) and raw.isdigit() and int(raw) in _OP_NAMES:
        return _OP_NAMES[int(raw)]
    raise ListError(f"The filter predicate on {key} has no valid operation ({raw!r}); use "
                    f"one of {', '.join(OPERATIONS)} or their numbers.")


def _scalar_value(predicate: dict, key: str) -> Any:
    for name in _SCALARS:
        if name in predicate:
            return predicate[name]
    raise ListError(f"The filter predicate on {key} has no value (string_value, int_value, "
                    f"long_value or timestamp_value).")


def _list_value(predicate: dict, key: str) -> list:
    for name in _LISTS:
        if name in predicate:
            holder = predicate[name]
            values = holder.get("values") if isinstance(holder, dict) else None
            if not isinstance(values, list):
                raise ListError(f"{name} of the filter on {key} should be "
                                "{\"values\": [...]}.")
            return values
    raise ListError(f"IN on {key} needs string_values, int_values or long_values.")


def _convert(spec: Field, key: str, value: Any) -> Any:
    """A predicate value as the column's type; wrong types are refused, not guessed."""
    if spec.kind == "timestamp":
        return _timestamp(value, key)
    if isinstance(value, dict | list) or value is None or isinstance(value, bool):
        raise ListError(f"The filter on {key} needs a single text value.")
    value = str(value)
    if spec.kind == "id":
        try:
            return uuid.UUID(value)
        except ValueError as exc:
            raise ListError(f"The filter on {key} needs an id; {value!r} is not one.") from exc
    if spec.normalize:
        return spec.normalize(value)
    return value


def _timestamp(value: Any, key: str) -> datetime:
    """RFC 3339 text, or seconds since the epoch (int64 fields arrive as text or numbers)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        if value.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ListError(f"The filter on {key} needs a timestamp (RFC 3339 or seconds), "
                    f"not {value!r}.")


def _dig(obj, column: str):
    for part in column.split("__"):
        obj = getattr(obj, part)
    return obj
