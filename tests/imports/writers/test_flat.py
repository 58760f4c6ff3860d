"""The flat export layout: typed headers, awkward keys, formula-safe cells, XLSX cell types."""

from __future__ import annotations

import csv
import io

import pytest

from imports.readers import FileFormat
from imports.writers import FORMULA_PREFIXES, profile_rows_to_flat
from profiles.commands import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from tests.imports.writers.helpers import export_flat, read_bytes, xlsx_rows


def test_flat_export_headers_carry_the_types_of_their_values():
    profiles = [
        {
            "$compartment_id": 1606,
            "$user_account_id": "c1",
            "firstname": "David",
            "age": 42,
            "score": 1.5,
            "nl": {"subscribed": True, "period": "MONTHLY"},
            "tags": ["a"],
            "nothing": None,
            "empty": {},
            "mixed": 1,
        },
        {
            "$compartment_id": 1606,
            "$user_account_id": "c2",
            "mixed": "one",
            "nl": {"period": "WEEKLY"},
        },
    ]
    headers, rows = profile_rows_to_flat(profiles)
    assert headers == [
        "operation",
        "update_strategy",
        "compartment_id",
        "user_account_id",
        "$compartment_id:int",
        "$user_account_id",
        "firstname",
        "age:int",
        "score:float",
        "nl.subscribed:bool",
        "nl.period",
        "tags:json",
        "nothing:json",
        "empty:json",
        "mixed:json",
    ]
    assert rows[0] == [
        "UPSERT",
        "FORCE_REPLACE",
        "1606",
        "c1",
        "1606",
        "c1",
        "David",
        "42",
        "1.5",
        "true",
        "MONTHLY",
        '["a"]',
        "null",
        "{}",
        "1",
    ]
    assert rows[1] == [
        "UPSERT",
        "FORCE_REPLACE",
        "1606",
        "c2",
        "1606",
        "c2",
        "",
        "",
        "",
        "",
        "WEEKLY",
        "",
        "",
        "",
        '"one"',
    ]


def test_flat_export_spells_awkward_keys_as_json_array_headers():
    profile = {
        "a.b": 1,
        "x:int": "v",
        "operation": "o",
        "_line": 2,
        "": True,
        " pad": "p",
        "ok": {"c.d": 1.5},
    }
    headers, _ = profile_rows_to_flat([(EmailIdentifier("h"), profile)])
    assert headers[3:] == [
        '["a.b"]:int',
        '["x:int"]',
        '["operation"]',
        '["_line"]:int',
        '[""]:bool',
        '[" pad"]',
        '["ok","c.d"]:float',
    ]


def test_flat_export_column_that_is_a_value_in_one_row_and_an_object_in_another_is_json():
    headers, rows = profile_rows_to_flat(
        [(EmailIdentifier("h1"), {"a": 5}), (EmailIdentifier("h2"), {"a": {"b": 1}})]
    )
    assert headers[3:] == ["a:json"]
    assert [row[3] for row in rows] == ["5", '{"b":1}']


def test_flat_export_never_writes_a_cell_a_spreadsheet_would_run():
    risky = ["=1+1", "+33 6", "-x", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']
    items = [(AccountIdentifier(value, None), {"v": value, "n": -5}) for value in risky]
    data = export_flat(items, FileFormat.CSV)
    rows = list(csv.reader(io.StringIO(data.decode())))
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES) or cell == "-5", cell
    assert rows[1][rows[0].index("v:json")] == '"=1+1"'
    assert rows[1][rows[0].index("user_account_id")] == "'=1+1"
    assert [r.identifier.user_account_id for r in read_bytes(data, FileFormat.CSV)] == risky


def test_flat_export_needs_an_identifier_for_anonymous_profiles():
    with pytest.raises(ValueError):
        profile_rows_to_flat([{"$compartment_id": 1, "firstname": "x"}])


def test_xlsx_export_writes_numbers_and_booleans_as_typed_cells():
    items = [
        (
            UserAgentIdentifier("vec:1"),
            {"age": 42, "score": 0.5, "ok": True, "exact": 0.1 + 0.2, "big": 2**70},
        )
    ]
    rows = xlsx_rows(export_flat(items, FileFormat.XLSX))
    assert rows[0][3:] == ["age:int", "score:float", "ok:bool", "exact:float", "big:int"]
    assert rows[1][3:] == [42, 0.5, True, "0.30000000000000004", str(2**70)]
