"""The hostile corpus: each file, how it is built (at test time: nothing big is committed),
and what must come of it.

`CASES` covers the files of issue 12's table (rows 5–8 and 10) and the classic attacks: zip
bomb, billion laughs, XXE, 100,000-deep JSON, a 50 MB line, NaN and 1e400, 5,000-digit
integers, NUL, lone surrogates, look-alike `$` keys, UTF-16 and cp1252 files, and path
traversal in upload names. Each case names the accounts of its good lines (`<key>-g<n>`):
those must land, and nothing else of the case.
"""

from __future__ import annotations

import itertools
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.corpus.xlsx_parts import (
    inline_cell,
    number_cell,
    row,
    rows_of,
    write_workbook,
)

CRM = 1606
NDJSON, CSV, JSON, XLSX = "APPLICATION_X_NDJSON", "TEXT_CSV", "APPLICATION_JSON", "APPLICATION_XLSX"
CSV_HEADER = "operation,compartment_id,user_account_id,$compartment_id,$user_account_id,n:int\n"
MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    key: str  # short, unique: prefixes the accounts of its good lines
    what: str  # the file, as the report table shows it
    mime_type: str
    build: Callable[[Path, str], None]  # writes the file at the path, given the key
    status: str  # SUCCEEDED or FAILED
    error_code: str = ""  # the file-level code of a FAILED execution
    errors: tuple[tuple[int, str], ...] = ()  # every line error: (line, code)
    landed: tuple[int, ...] = ()  # the good lines (n of `<key>-g<n>`) that must land
    file_name: str = ""  # the upload's name (default: from the key and the format)
    stored_name: str = ""  # the name it must be kept under, when file_name is hostile
    encoding: str = "utf-8"


def good(key: str, n: int) -> dict:
    account = f"{key}-g{n}"
    return {
        "operation": "UPSERT",
        "compartment_id": CRM,
        "user_account_id": account,
        "user_profile": {"$compartment_id": CRM, "$user_account_id": account, "n": n},
    }


def good_csv(key: str, n: int) -> str:
    return f"UPSERT,{CRM},{key}-g{n},{CRM},{key}-g{n},{n}\n"


def _ndjson(*lines: dict | str | bytes) -> Callable[[Path, str], None]:
    """Lines of objects (given as good-line numbers, dicts) or raw text/bytes."""

    def build(path: Path, key: str) -> None:
        with path.open("wb") as out:
            for line in lines:
                out.write(_line_bytes(line, key) + b"\n")

    return build


def _line_bytes(line: int | dict | str | bytes, key: str) -> bytes:
    if isinstance(line, int):
        return json.dumps(good(key, line)).encode()
    if isinstance(line, dict):
        return json.dumps(line).encode()
    return line if isinstance(line, bytes) else line.encode()


def _bad_profile(text: str) -> str:
    """An UPSERT line whose user_profile is the JSON text given."""
    return f'{{"operation": "UPSERT", "email_hash": "bad", "user_profile": {text}}}'


def _csv(*rows: int | bytes, header: str = CSV_HEADER) -> Callable[[Path, str], None]:
    def build(path: Path, key: str) -> None:
        with path.open("wb") as out:
            out.write(header.encode())
            for item in rows:
                if isinstance(item, int):
                    out.write(good_csv(key, item).encode())
                else:
                    out.write(item.replace(b"{key}", key.encode()))

    return build


def _chunks(pieces: Iterable[bytes], size: int = 10_000) -> Iterator[bytes]:
    """XML pieces joined by the ten thousand: fewer writes into the zip stream."""
    iterator = iter(pieces)
    while batch := b"".join(itertools.islice(iterator, size)):
        yield batch


def _xlsx_wide_header(path: Path, key: str) -> None:
    cells = 1_000_000
    write_workbook(
        path,
        _chunks(
            itertools.chain(
                row(inline_cell(f"c{i}") for i in range(cells)),  # no r=: numbered by openpyxl
                row(number_cell(i) for i in range(cells)),
            )
        ),
    )


def _xlsx_long_row(path: Path, key: str) -> None:
    header = ["operation", "compartment_id", "user_account_id", "$compartment_id"]
    header += ["$user_account_id", "n:int"]
    first = ["UPSERT", CRM, f"{key}-g2", CRM, f"{key}-g2", 2]
    write_workbook(
        path,
        _chunks(
            itertools.chain(
                rows_of([header, first]), row((number_cell(i) for i in range(1_000_000)), 3)
            )
        ),
    )


def _xlsx_shared_strings(count: int) -> Callable[[Path, str], None]:
    def build(path: Path, key: str) -> None:
        write_workbook(
            path,
            rows_of([["email_hash", "n:int"], ["h", 1]]),
            shared_strings=_chunks(
                f"<si><t>unused {i:07d}</t></si>".encode() for i in range(count)
            ),
        )

    return build


def _xlsx_zip_bomb(path: Path, key: str) -> None:
    """A sheet of 200 MB of blanks inside <sheetData>: it deflates about a thousand times."""
    write_workbook(path, itertools.repeat(b" " * MB, 200))


def _xlsx_with_prolog(prolog: bytes, cell: bytes) -> Callable[[Path, str], None]:
    def build(path: Path, key: str) -> None:
        write_workbook(path, row([inline_cell("email_hash"), cell]), prolog=prolog)

    return build


LAUGHS = (
    b'<!DOCTYPE worksheet [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    + b"".join(f'<!ENTITY {chr(99 + i)} "{f"&{chr(98 + i)};" * 10}">'.encode() for i in range(8))
    + b"]>"
)
XXE = b'<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def _csv_wide(path: Path, key: str) -> None:
    """30 rows of 100,000 columns, every typed cell bad: a 6 MB file."""
    columns = 100_000
    with path.open("wb") as out:
        out.write(("email_hash," + ",".join(f"{i:x}:int" for i in range(columns)) + "\n").encode())
        for r in range(30):
            out.write((f"h{r}," + "x," * (columns - 1) + "x\n").encode())


def _with_big_line(prefix: bytes, builder_lines: list, at: int) -> Callable[[Path, str], None]:
    """A file whose line `at` (index in builder_lines) is replaced by a 50 MB line."""

    def build(path: Path, key: str) -> None:
        with path.open("wb") as out:
            out.write(prefix)
            for index, item in enumerate(builder_lines):
                if index == at:
                    for _ in range(50):
                        out.write(b"x" * MB)
                    out.write(b"\n")
                elif isinstance(item, int) and prefix:
                    out.write(good_csv(key, item).encode())
                else:
                    out.write(_line_bytes(item, key) + b"\n")

    return build


def _json_array_deep(path: Path, key: str) -> None:
    elements = [json.dumps(good(key, 2)), "[" * 100_000 + "]" * 100_000, json.dumps(good(key, 4))]
    path.write_text("[\n" + ",\n".join(elements) + "\n]\n")


def _cp1252(path: Path, key: str) -> None:
    header = CSV_HEADER.replace("n:int", "note")
    lines = [header] + [
        f"UPSERT,{CRM},{key}-g{n},{CRM},{key}-g{n},Zoé paid 5 € – “thanks”\n" for n in (2, 3)
    ]
    path.write_bytes("".join(lines).encode("cp1252"))


def _cp1252_as_utf8(path: Path, key: str) -> None:
    header = CSV_HEADER.replace("n:int", "note")
    lines = [
        header,
        f"UPSERT,{CRM},{key}-g2,{CRM},{key}-g2,plain\n",
        f"UPSERT,{CRM},{key}-g3,{CRM},{key}-g3,Zoé\n",
        f"UPSERT,{CRM},{key}-g4,{CRM},{key}-g4,plain\n",
    ]
    path.write_bytes("".join(lines).encode("cp1252"))


def _utf16(text_of: Callable[[str], str]) -> Callable[[Path, str], None]:
    def build(path: Path, key: str) -> None:
        path.write_bytes(text_of(key).encode("utf-16"))  # with its byte order mark

    return build


def _big_bad_record(path: Path, key: str) -> None:
    big = {"operation": "UPSERT", "email_hash": "h", "user_profile": {"$x": "y" * 900_000}}
    path.write_text(json.dumps(big) + "\n" + json.dumps(good(key, 2)) + "\n")


CASES: list[Case] = [
    # --- issue 12's table
    Case(
        "r5",
        "row 5: XLSX, a header of 1,000,000 inline cells without r= and a row of 1,000,000 numbers",
        XLSX,
        _xlsx_wide_header,
        "FAILED",
        "TOO_MANY_COLUMNS",
    ),
    Case(
        "r5b",
        "row 5: XLSX, a good row then a row of 1,000,000 cells",
        XLSX,
        _xlsx_long_row,
        "FAILED",
        "TOO_MANY_CELLS",
    ),
    Case(
        "r6",
        "row 6: CSV of 30 rows x 100,000 columns of bad cells (6 MB)",
        CSV,
        _csv_wide,
        "FAILED",
        "TOO_MANY_COLUMNS",
    ),
    Case(
        "r6b",
        "row 6: CSV, a row of 20,000 cells between good rows",
        CSV,
        _csv(2, b"UPSERT,1606,{key}-x3" + b",x" * 19_997 + b"\n", 4),
        "SUCCEEDED",
        errors=((3, "TOO_MANY_CELLS"),),
        landed=(2, 4),
    ),
    Case(
        "r7",
        "row 7: XLSX with 4,000,000 unused shared strings (over 64 MB inflated)",
        XLSX,
        _xlsx_shared_strings(4_000_000),
        "FAILED",
        "TOO_MANY_SHARED_STRINGS",
    ),
    Case(
        "r7b",
        "row 7: XLSX with 1,200,000 shared strings (25 MB, over the count)",
        XLSX,
        _xlsx_shared_strings(1_200_000),
        "FAILED",
        "TOO_MANY_SHARED_STRINGS",
    ),
    Case(
        "r8",
        "row 8: CSV, a bare CR in an unquoted cell of row 6 of 10",
        CSV,
        _csv(2, 3, 4, 5, b"UPSERT,1606,{key}-x6,1606,{key}-x6\r,6\n", 7, 8, 9, 10),
        "SUCCEEDED",
        errors=((6, "INVALID_CSV"),),
        landed=(2, 3, 4, 5, 7, 8, 9, 10),
    ),
    Case(
        "r8b",
        "row 8: CSV, a byte invalid in UTF-8 in row 3 (a wrong encoding: fails before any row)",
        CSV,
        _csv(2, "UPSERT,1606,{key}-x3,1606,{key}-x3,3\xe9\n".encode("latin-1"), 4, 5),
        "FAILED",
        error_code="INVALID_ENCODING",
    ),
    Case(
        "r10",
        "row 10: CSV, a formula cell =cmd|' /C calc'!A0 with a bad age:int",
        CSV,
        _csv(
            b"UPSERT,1606,{key}-x2,1606,{key}-x2,\"=cmd|' /C calc'!A0\",forty\n",
            b"UPSERT,1606,{key}-g3,1606,{key}-g3,ok,3\n",
            header=CSV_HEADER.replace(",n:int", ",note,n:int"),
        ),
        "SUCCEEDED",
        errors=((2, "INVALID_CELL"),),
        landed=(3,),
    ),
    # --- archives and XML
    Case(
        "zip",
        "zip bomb: an XLSX sheet of 200 MB of blanks, deflated about 1,000 times",
        XLSX,
        _xlsx_zip_bomb,
        "FAILED",
        "FILE_TOO_LARGE",
    ),
    Case(
        "laughs",
        "billion laughs: nested entities declared in the sheet's DTD",
        XLSX,
        _xlsx_with_prolog(LAUGHS, b'<c t="inlineStr"><is><t>&j;</t></is></c>'),
        "FAILED",
        "INVALID_XLSX",
    ),
    Case(
        "xxe",
        "XXE: an external entity (file:///etc/passwd) in the sheet",
        XLSX,
        _xlsx_with_prolog(XXE, b'<c t="inlineStr"><is><t>&xxe;</t></is></c>'),
        "FAILED",
        "INVALID_XLSX",
    ),
    # --- JSON
    Case(
        "deep",
        "100,000-deep JSON: an NDJSON line of 100,000 [",
        NDJSON,
        _ndjson(1, "[" * 100_000 + "]" * 100_000, 3),
        "SUCCEEDED",
        errors=((2, "TOO_DEEP"),),
        landed=(1, 3),
    ),
    Case(
        "deeparr",
        "100,000-deep JSON: an element of a JSON array",
        JSON,
        _json_array_deep,
        "SUCCEEDED",
        errors=((2, "TOO_DEEP"),),  # a JSON array's line is its element's number
        landed=(2, 4),
    ),
    Case(
        "big",
        "50 MB line in NDJSON",
        NDJSON,
        _with_big_line(b"", [1, "big", 3], at=1),
        "SUCCEEDED",
        errors=((2, "LINE_TOO_LONG"),),
        landed=(1, 3),
    ),
    Case(
        "bigcsv",
        "50 MB line in CSV",
        CSV,
        _with_big_line(CSV_HEADER.encode(), [2, "big", 4], at=1),
        "SUCCEEDED",
        errors=((3, "LINE_TOO_LONG"),),
        landed=(2, 4),
    ),
    Case(
        "nan",
        "NaN, Infinity and 1e400",
        NDJSON,
        _ndjson(
            1,
            _bad_profile('{"x": NaN}'),
            _bad_profile('{"x": -Infinity}'),
            _bad_profile('{"x": 1e400}'),
            5,
        ),
        "SUCCEEDED",
        errors=((2, "NON_FINITE_NUMBER"), (3, "NON_FINITE_NUMBER"), (4, "NON_FINITE_NUMBER")),
        landed=(1, 5),
    ),
    Case(
        "digits",
        "5,000-digit integers (a value and a compartment_id)",
        NDJSON,
        _ndjson(
            1,
            _bad_profile('{"x": ' + "9" * 5000 + "}"),
            '{"operation": "UPSERT", "compartment_id": '
            + "1" * 5000
            + ', "user_account_id": "a", "user_profile": {}}',
            4,
        ),
        "SUCCEEDED",
        errors=((2, "INVALID_NUMBER"), (3, "INVALID_NUMBER")),
        landed=(1, 4),
    ),
    Case(
        "nul",
        "NUL: an escaped \\u0000 in a value, a raw NUL byte in a line",
        NDJSON,
        _ndjson(1, _bad_profile('{"x": "a\\u0000b"}'), _bad_profile('{"x": "a\x00b"}').encode(), 4),
        "SUCCEEDED",
        errors=((2, "NUL_CHARACTER"), (3, "NUL_CHARACTER")),
        landed=(1, 4),
    ),
    Case(
        "surrogate",
        "lone surrogates: an escaped \\ud800",
        NDJSON,
        _ndjson(1, _bad_profile('{"x": "\\ud800"}'), 3),
        "SUCCEEDED",
        errors=((2, "INVALID_UNICODE"),),
        landed=(1, 3),
    ),
    Case(
        "surrbytes",
        "a lone surrogate's bytes (ED A0 80), not UTF-8: the file's encoding is wrong",
        NDJSON,
        _ndjson(1, _bad_profile('{"x": "a').encode() + b'\xed\xa0\x80"}}', 3),
        "FAILED",
        error_code="INVALID_ENCODING",
    ),
    Case(
        "dollar",
        "look-alike $ keys: U+FF04 and U+FE69, NFKC-equal to $",
        NDJSON,
        _ndjson(1, _bad_profile('{"\\uff04secret": 1}'), _bad_profile('{"\ufe69x": 1}'), 4),
        "SUCCEEDED",
        errors=((2, "RESERVED_KEY"), (3, "RESERVED_KEY")),
        landed=(1, 4),
    ),
    # --- encodings
    Case(
        "u16csv",
        "UTF-16 CSV (with its byte order mark)",
        CSV,
        _utf16(lambda key: CSV_HEADER + good_csv(key, 2)),
        "FAILED",
        "UNSUPPORTED_ENCODING",
    ),
    Case(
        "u16nd",
        "UTF-16 NDJSON",
        NDJSON,
        _utf16(lambda key: json.dumps(good(key, 1)) + "\n"),
        "FAILED",
        "UNSUPPORTED_ENCODING",
    ),
    Case(
        "cp1252",
        "cp1252 CSV (é, €, curly quotes) declared cp1252",
        CSV,
        _cp1252,
        "SUCCEEDED",
        landed=(2, 3),
        encoding="cp1252",
    ),
    Case(
        "cp1252u8",
        "cp1252 CSV read as UTF-8 (SPEC §4: a wrong encoding fails the file, nothing written)",
        CSV,
        _cp1252_as_utf8,
        "FAILED",
        error_code="INVALID_ENCODING",
    ),
    # --- names and sizes
    Case(
        "trav1",
        "path traversal name ../../../etc/passwd.ndjson",
        NDJSON,
        _ndjson(1),
        "SUCCEEDED",
        landed=(1,),
        file_name="../../../etc/passwd.ndjson",
        stored_name="passwd.ndjson",
    ),
    Case(
        "trav2",
        "path traversal name ..\\..\\windows\\win.ini.ndjson",
        NDJSON,
        _ndjson(1),
        "SUCCEEDED",
        landed=(1,),
        file_name="..\\..\\windows\\win.ini.ndjson",
        stored_name="win.ini.ndjson",
    ),
    Case(
        "trav3",
        "path traversal name /var/lib/x/../../../tmp/abs.ndjson",
        NDJSON,
        _ndjson(1),
        "SUCCEEDED",
        landed=(1,),
        file_name="/var/lib/x/../../../tmp/abs.ndjson",
        stored_name="abs.ndjson",
    ),
    Case(
        "rawcap",
        "a 900 KB bad record: its line error keeps a 64 KB prefix and the size",
        NDJSON,
        _big_bad_record,
        "SUCCEEDED",
        errors=((1, "RESERVED_KEY"),),
        landed=(2,),
    ),
]

assert len({case.key for case in CASES}) == len(CASES)


def xlsx_part_sizes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        return {entry.filename: entry.file_size for entry in archive.infolist()}
