"""The failed-lines file escapes formula cells as exports do (one rule:
`flat_layout.formula_escape`), and still re-imports to the very values."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imports.flat_layout import formula_escape, formula_unescape
from imports.models import DocumentImport
from imports.services import execution_failed_lines_write
from tests.imports.helpers import errors_of, import_file, properties_of

ATTACK = "=cmd|' /C calc'!A0"
HEADER = ["operation", "compartment_id", "user_account_id", "$compartment_id"]
HEADER += ["$user_account_id", "note", "age:int"]


@given(st.text())
@example("+5")
@example("'=x")
def test_unescape_gives_back_what_escape_was_given(text):
    escaped = formula_escape(text)
    assert formula_unescape(escaped) == text
    if escaped.startswith(("=", "+", "-", "@", "\t", "\r")):
        float(escaped)  # only a number may start so: it cannot carry a formula


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+33 6", "'+33 6"),
        ("-2+3", "'-2+3"),
        ("-5", "-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("'quoted", "''quoted"),
        ("plain", "plain"),
    ],
)
def test_formula_starts_get_a_leading_apostrophe(text, written):
    assert formula_escape(text) == written


def _failed(execution) -> bytes:
    out = io.BytesIO()
    execution_failed_lines_write(execution=execution, out=out)
    return out.getvalue()


def _rows(note: str, age: str) -> list[list[str]]:
    return [HEADER, ["UPSERT", "1606", "g1", "1606", "g1", note, age]]


def test_a_formula_cell_of_a_failed_csv_line_is_escaped_and_reimports_to_the_same_value(
    csv_import,
):
    source = io.StringIO()
    csv.writer(source).writerows(_rows(ATTACK, "forty"))
    execution = import_file(csv_import, source.getvalue().encode(), name="crm.csv")
    assert errors_of(execution) == [(2, "INVALID_CELL")]

    failed = _failed(execution).decode()
    rows = list(csv.reader(io.StringIO(failed)))
    assert rows[1][5] == "'" + ATTACK
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    fixed = failed.replace('"forty"', '"40"')
    again = import_file(csv_import, fixed.encode(), name="crm.failed-lines.csv")
    assert errors_of(again) == []
    assert properties_of("g1") == {"note": ATTACK, "age": 40}


def test_a_formula_cell_of_a_failed_xlsx_line_is_escaped_and_reimports_to_the_same_value(
    datamart, crm_compartment, tmp_path
):
    xlsx_import = DocumentImport.objects.create(
        datamart=datamart, name="xlsx", mime_type="APPLICATION_XLSX"
    )
    workbook = openpyxl.Workbook()
    for row in _rows("@" + ATTACK, "forty"):
        workbook.active.append(row)
    source = io.BytesIO()
    workbook.save(source)
    execution = import_file(xlsx_import, source.getvalue(), name="crm.xlsx")
    assert errors_of(execution) == [(2, "INVALID_CELL")]

    failed = openpyxl.load_workbook(io.BytesIO(_failed(execution)))
    sheet = failed.worksheets[0]
    assert sheet.cell(2, 6).value == "'@" + ATTACK
    sheet.cell(2, 7).value = "40"
    fixed = io.BytesIO()
    failed.save(fixed)
    again = import_file(xlsx_import, fixed.getvalue(), name="crm.failed-lines.xlsx")
    assert errors_of(again) == []
    assert properties_of("g1")["note"] == "@" + ATTACK
