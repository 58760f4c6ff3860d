"""XLSX reading: typed cells, sheet row numbers, formula errors, zip and XML safety."""

from __future__ import annotations

import datetime as dt
import zipfile

import openpyxl
import pytest

from imports.readers import FileError, FileFormat, ReaderOptions, open_reader
from profiles.commands import AccountIdentifier
from tests.imports.readers.helpers import codes, only, read, write_text, write_xlsx


def test_xlsx_cells_keep_their_types(tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            [
                "operation",
                "compartment_id",
                "user_account_id",
                "name",
                "age",
                "score",
                "vip",
                "born",
                "seen",
                "zip:str",
            ],
            [
                "UPSERT",
                1606,
                12345,
                "David",
                42.0,
                2.5,
                True,
                dt.date(1990, 5, 17),
                dt.datetime(2024, 1, 2, 3, 4, 5),
                1200,
            ],
        ],
    )
    record = only(read(path, FileFormat.XLSX))
    assert record.line == 2
    assert record.identifier == AccountIdentifier("12345", 1606)
    assert record.user_profile == {
        "name": "David",
        "age": 42,
        "score": 2.5,
        "vip": True,
        "born": "1990-05-17",
        "seen": "2024-01-02T03:04:05",
        "zip": "1200",
    }


def test_xlsx_header_suffixes_convert_cell_values(tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            ["email_hash", "a:int", "b:float", "c:bool", "d:json", "e:int", "f.g:bool"],
            ["h1", 3.0, 3, 1, '{"x":[1]}', "17", "yes"],
            ["h2", 3.5, None, None, None, None, None],
            ["h3", None, "abc", None, None, None, None],
            ["h4", None, None, 2, None, None, None],
        ],
    )
    records = read(path, FileFormat.XLSX)
    assert records[0].user_profile == {
        "a": 3,
        "b": 3.0,
        "c": True,
        "d": {"x": [1]},
        "e": 17,
        "f": {"g": True},
    }
    assert isinstance(records[0].user_profile["b"], float)
    assert [(r.line, r.code, r.field) for r in records[1:]] == [
        (3, "INVALID_CELL", "a:int"),
        (4, "INVALID_CELL", "b:float"),
        (5, "INVALID_CELL", "c:bool"),
    ]


def test_xlsx_empty_rows_are_skipped_but_counted(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash", "a"], ["h1", 1], [], [None, None], ["h2", 2]])
    assert codes(read(path, FileFormat.XLSX)) == [(2, "OK"), (5, "OK")]


def test_xlsx_rows_keep_their_sheet_row_numbers_across_gaps(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"], sheet["A2"], sheet["A6"], sheet["A9"] = "email_hash", "h2", "h6", "h9"
    path = tmp_path / "gaps.xlsx"
    workbook.save(path)
    assert codes(read(path, FileFormat.XLSX)) == [(2, "OK"), (6, "OK"), (9, "OK")]
    assert codes(open_reader(path, FileFormat.XLSX).iterate(after_line=3)) == [(6, "OK"), (9, "OK")]


def test_xlsx_formula_error_cell_is_a_line_error(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["email_hash", "ratio"])
    sheet.append(["h1", "#DIV/0!"])  # openpyxl stores an error cell for this text
    sheet.append(["h2", 0.5])
    path = tmp_path / "err.xlsx"
    workbook.save(path)
    records = read(path, FileFormat.XLSX)
    assert [(r.line, getattr(r, "code", "OK")) for r in records] == [(2, "INVALID_CELL"), (3, "OK")]
    assert "#DIV/0!" in records[0].message


def test_xlsx_skip_resumes_after_a_line(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash"], *[[f"h{i}"] for i in range(6)]])
    everything = read(path, FileFormat.XLSX)
    assert list(open_reader(path, FileFormat.XLSX).iterate(after_line=4)) == everything[3:]
    with pytest.raises(ValueError):
        list(open_reader(path, FileFormat.XLSX).iterate(after_line=4, at_offset=100))


def test_xlsx_header_rules_are_the_csv_ones(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash", "a", "a.b"], ["h", 1, 2]])
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "HEADER_CONFLICT"


def test_xlsx_empty_sheet_has_no_header(tmp_path):
    path = write_xlsx(tmp_path, [])
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "NO_HEADER"


def test_xlsx_that_is_not_a_zip_is_refused(tmp_path):
    path = write_text(tmp_path, "fake.xlsx", "email_hash\nh1\n")
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "INVALID_XLSX"


def bomb_xlsx(tmp_path, inflated_bytes: int):
    """A real workbook plus one highly compressible part."""
    path = write_xlsx(tmp_path, [["email_hash"], ["h1"]], name="bomb.xlsx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * inflated_bytes)
    return path


def test_xlsx_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    path = bomb_xlsx(tmp_path, 20_000_000)
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "FILE_TOO_LARGE"
    assert "zip bomb" in caught.value.message


def test_xlsx_over_the_uncompressed_limit_is_refused(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash"], *[[f"h{i}"] for i in range(2000)]])
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX, ReaderOptions(max_xlsx_uncompressed_bytes=20_000))
    assert caught.value.code == "FILE_TOO_LARGE"


def test_xlsx_xml_is_parsed_with_defusedxml(tmp_path):
    assert openpyxl.DEFUSEDXML is True
    source = write_xlsx(tmp_path, [["email_hash"], ["h1"]], name="source.xlsx")
    path = tmp_path / "entities.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as patched:
        for entry in original.infolist():
            data = original.read(entry.filename)
            if entry.filename == "xl/worksheets/sheet1.xml":
                # entity expansion, the "billion laughs" shape
                data = (
                    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>' + data
                )
            patched.writestr(entry, data)
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "INVALID_XLSX"
    assert "forbidden XML" in caught.value.message


def test_xlsx_records_are_not_counted_before_reading(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash"], ["h1"], ["h2"]])
    assert open_reader(path, FileFormat.XLSX).count_records() is None


def test_xlsx_empty_cell_can_mean_empty_string(tmp_path):
    """As in CSV (SPEC §3: absent unless the import is told otherwise): a cell that holds
    nothing, written or not, within the header's columns."""
    path = write_xlsx(
        tmp_path, [["email_hash", "firstname", "nl.a", "age:int", "last"], ["h1", None, "", None]]
    )
    assert only(read(path, FileFormat.XLSX)).user_profile == {}
    record = only(read(path, FileFormat.XLSX, empty_cell_is_empty_string=True))
    assert record.user_profile == {"firstname": "", "nl": {"a": ""}, "last": ""}
