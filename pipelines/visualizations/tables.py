"""The CSV of KFP v1 outputs (roc, confusion_matrix, table), read strictly: a ragged row or
a word where a number belongs is an OutputError that names the line, not a chart that
silently lies."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from .base import OutputError


@dataclass
class Row:
    line: int  # where the row starts in the CSV, for messages
    cells: list[str]


def csv_rows(text: str) -> list[Row]:
    """The CSV's rows, blank lines left out."""
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append(Row(reader.line_num, cells))
    except csv.Error as exc:
        raise OutputError(f"The CSV is malformed at line {reader.line_num}: {exc}.") from None
    return rows


def columns(schema: Any, wanted: tuple[str, ...]) -> tuple[list[int | None], int | None]:
    """Where each ``wanted`` column is, and how many columns a row has (None: unknown).

    The output's ``schema`` (``[{"name", "type"}]``) gives the order when it names the
    columns kfdash wants; otherwise the columns are taken in ``wanted`` order, as the KFP UI
    does. A wanted column the schema leaves out is None."""
    if schema is None:
        return list(range(len(wanted))), None
    if not isinstance(schema, list) or not all(isinstance(c, dict) for c in schema):
        raise OutputError('The output\'s "schema" is not a list of {"name", "type"} columns.')
    names = [str(column.get("name", "")).strip().lower() for column in schema]
    if wanted[0] in names and wanted[1] in names:
        return [names.index(name) if name in names else None for name in wanted], len(names)
    if len(names) < 2:
        raise OutputError(f"The output's schema names {len(names)} column(s); "
                          f"kfdash needs {', '.join(wanted)}.")
    return [i if i < len(names) else None for i in range(len(wanted))], len(names)


def checked(rows: list[Row], width: int | None, needed: int) -> list[Row]:
    """The rows, each as wide as the schema says (else as the first row); a row without
    the columns kfdash needs, or ragged, is an error."""
    if not rows:
        return rows
    expected = width if width is not None else len(rows[0].cells)
    if expected < needed:
        raise OutputError(f"Line {rows[0].line} of the CSV has {expected} field(s); "
                          f"kfdash needs {needed}.")
    for row in rows:
        if len(row.cells) != expected:
            raise OutputError(f"Line {row.line} of the CSV has {len(row.cells)} field(s), "
                              f"not {expected}.")
    return rows


def without_header(rows: list[Row], schema: Any, wanted: tuple[str, ...]) -> list[Row]:
    """The rows less a first row that only repeats column names (a CSV written with its
    header, which KFP's own CSVs do not have)."""
    names = set(wanted)
    if isinstance(schema, list):
        names |= {str(c.get("name", "")).strip().lower() for c in schema if isinstance(c, dict)}
    if rows and all(cell.strip().lower() in names for cell in rows[0].cells):
        return rows[1:]
    return rows


def number(row: Row, index: int, column: str) -> float:
    """A finite number from a cell."""
    value = _float(row, index, column)
    if not math.isfinite(value):
        raise OutputError(f"Line {row.line} of the CSV: {column} is {row.cells[index].strip()}.")
    return value


def optional_number(row: Row, index: int | None, column: str) -> float | None:
    """A cell that may hold no number: empty, or not finite (sklearn's first ROC threshold
    is ``inf``, which JSON cannot carry)."""
    if index is None or not row.cells[index].strip():
        return None
    value = _float(row, index, column)
    return value if math.isfinite(value) else None


def _float(row: Row, index: int, column: str) -> float:
    cell = row.cells[index].strip()
    try:
        return float(cell)
    except ValueError:
        raise OutputError(f"Line {row.line} of the CSV: “{cell[:40]}” in the column "
                          f"{column} is not a number.") from None
