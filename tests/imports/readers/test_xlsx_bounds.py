"""XLSX bounds: shared strings, the header's width and each row's cells are checked by
streaming the XML before openpyxl opens the workbook (imports.readers.xlsx_scan)."""

from __future__ import annotations

import pytest

from imports.readers import FileError, FileFormat, ReaderOptions, open_reader
from tests.imports.readers.helpers import codes
from tests.reliability.corpus.xlsx_parts import (
    inline_cell,
    number_cell,
    row,
    rows_of,
    write_workbook,
)


def open_xlsx(path, **options):
    return open_reader(path, FileFormat.XLSX, ReaderOptions(**options))


def test_a_hand_written_workbook_reads_like_any_other(tmp_path):
    path = write_workbook(tmp_path / "ok.xlsx", rows_of([["email_hash", "age:int"], ["h1", 3]]))
    assert codes(list(open_xlsx(path))) == [(2, "OK")]


def test_a_header_row_wider_than_the_column_cap_fails_before_openpyxl_reads_it(tmp_path):
    header = row(inline_cell(f"c{i}") for i in range(30))  # no r=: openpyxl numbers them
    path = write_workbook(tmp_path / "wide.xlsx", header)
    with pytest.raises(FileError) as caught:
        open_xlsx(path, max_columns=20)
    assert (caught.value.code, caught.value.line) == ("TOO_MANY_COLUMNS", 1)
    assert (
        caught.value.message == "line 1: the header has more than 20 columns (IMPORT_MAX_COLUMNS)"
    )


def test_a_row_over_the_cell_cap_fails_the_file_naming_it_before_any_line(tmp_path):
    sheet = [
        *rows_of([["email_hash", "n:int"], ["h1", 1]]),
        *row((number_cell(i) for i in range(50)), 3),
    ]
    path = write_workbook(tmp_path / "long-row.xlsx", sheet)
    with pytest.raises(FileError) as caught:
        open_xlsx(path, max_cells_per_row=40)
    assert (caught.value.code, caught.value.line) == ("TOO_MANY_CELLS", 3)
    assert caught.value.message.startswith("line 3: the row has more than 40 cells")


@pytest.mark.parametrize(
    ("caps", "phrase"),
    [
        ({"max_xlsx_shared_strings": 50}, "more than 50 shared strings"),
        ({"max_xlsx_shared_strings_bytes": 1000}, "over the limit of 1000"),
    ],
)
def test_too_many_shared_strings_are_refused_before_the_table_is_loaded(tmp_path, caps, phrase):
    strings = (f"<si><t>unused {i}</t></si>".encode() for i in range(100))
    path = write_workbook(
        tmp_path / "strings.xlsx", rows_of([["email_hash"], ["h1"]]), shared_strings=strings
    )
    with pytest.raises(FileError) as caught:
        open_xlsx(path, **caps)
    assert caught.value.code == "TOO_MANY_SHARED_STRINGS"
    assert phrase in caught.value.message
    assert codes(list(open_xlsx(path))) == [(2, "OK")]  # within the default caps


def test_a_dtd_in_the_sheet_is_refused(tmp_path):
    prolog = b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    path = write_workbook(tmp_path / "laughs.xlsx", rows_of([["email_hash"]]), prolog=prolog)
    with pytest.raises(FileError) as caught:
        open_xlsx(path)
    assert caught.value.code == "INVALID_XLSX"
    assert "forbidden XML" in caught.value.message
