"""Writers: the failed-lines file (SPEC.md §4) and profile exports (SPEC.md §3).

`failed_lines` writes the lines an execution refused, in the source format;
`flat` writes CSV/XLSX exports in the flat layout, `commands` NDJSON exports of
import commands; `items` says what an export item is, `sheets` writes rows to a
CSV or XLSX file. Every export re-imports to the same data.
"""

from __future__ import annotations

from imports.flat_layout import FORMULA_PREFIXES, is_plain_string
from imports.writers.commands import write_ndjson_commands
from imports.writers.failed_lines import write_failed_lines
from imports.writers.flat import FlatLayout, flat_layout, profile_rows_to_flat, write_flat_export
from imports.writers.items import ExportItem, export_item
from imports.writers.sheets import XLSX_MAX_COLUMNS, XLSX_MAX_ROWS

__all__ = [
    "FORMULA_PREFIXES",
    "XLSX_MAX_COLUMNS",
    "XLSX_MAX_ROWS",
    "ExportItem",
    "FlatLayout",
    "export_item",
    "flat_layout",
    "is_plain_string",
    "profile_rows_to_flat",
    "write_failed_lines",
    "write_flat_export",
    "write_ndjson_commands",
]
