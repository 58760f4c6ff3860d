"""A document import's column mapping (SPEC §7): a flat file's own headers → SPEC §3 columns.

One module holds the mapping's rules: reading and validating one (`column_mapping_parse`, for
the API, the admin and the runner alike), applying it to a header row (`mapped_columns`, which
the CSV/XLSX readers call before the SPEC §3 layout, so commands, line errors, the failed-lines
file and the preview are those of a SPEC file), the cell transforms (`transform_cell`), and the
mapping step's proposal for a header row (`mapping_proposal`). Rules chosen here:

- A mapping is a JSON object: source header → target. A target is a SPEC §3 header (a reserved
  column, `$compartment_id`, `$user_account_id`, or a property path with an optional type
  suffix, `a.b:int`, or the JSON-array form `["a.b"]:int`), `null` (the column is read and
  ignored), or `{"to": target, "transform": "sha256_email" | "trim" | "lower"}`.
- Headers are matched exactly, after the outer spaces a reader strips. A mapping may name
  headers a file lacks; a file header it does not name fails the file (UNMAPPED_HEADER, line 1)
  before anything is written, never a silent new property. `_line` and `_error` (the
  failed-lines file's) need no entry: they are ignored, so a failed-lines file re-imports.
- Refused when written (the API's 400, the admin step's field error), naming the header: a
  target that is not a column (`_line`, `$other`, empty) UNKNOWN_TARGET, a `:suffix` that is
  not a type INVALID_TYPE, another transform INVALID_TRANSFORM, two headers on one field
  (reserved or property) DUPLICATE_TARGET, a value where another needs an object TARGET_CONFLICT.
- Transforms work on a cell's text (an XLSX number or boolean: `sha256_email` hashes its text,
  `trim` and `lower` leave it); a cell empty after the transform is an empty cell (the key is
  absent), so an empty e-mail never becomes the hash of "". `sha256_email` = trim, lower-case,
  SHA-256 of the UTF-8 bytes, hex.
- Only flat files (CSV, XLSX) have headers: a JSON or NDJSON document import cannot carry a
  mapping (400), and an admin upload of such a file is read without one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from imports.flat_layout import (
    IDENTIFIER_COLUMNS,
    PROFILE_KEY_COLUMNS,
    RESERVED_COLUMNS,
    TYPE_SUFFIXES,
    FlatColumn,
    HeaderError,
    cell_text,
    check_columns_do_not_clash,
    column_label,
    header_texts,
    parse_header,
    parse_header_cell,
)
from profiles.commands import ANNOTATION_KEYS
from profiles.validation import normalize_key

TRANSFORMS = ("sha256_email", "trim", "lower")
MAX_ENTRIES = 1000
MAX_HEADER_LENGTH = 1000


class MappingError(ValueError):
    """A mapping that cannot be used, and the source header at fault ("" for the whole)."""

    def __init__(self, header: str, code: str, message: str) -> None:
        super().__init__(message)
        self.header = header
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ColumnTarget:
    to: str | None  # a SPEC §3 header; None ignores the column
    transform: str | None = None

    def as_json(self) -> Any:
        if self.transform is None or self.to is None:
            return self.to
        return {"to": self.to, "transform": self.transform}


@dataclass(frozen=True)
class ColumnMapping:
    targets: Mapping[str, ColumnTarget]
    columns: Mapping[str, FlatColumn] = field(default_factory=dict, compare=False, repr=False)
    # Only SAMPLE_EVERY_COLUMN: the admin's mapping step reads cells before any mapping exists.
    ignore_unnamed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {header: target.as_json() for header, target in self.targets.items()}

    def names(self, headers: Iterable[str]) -> bool:
        """Whether every header of a file is named (the failed-lines columns need no entry)."""
        return all(h in self.targets or h in ANNOTATION_KEYS for h in headers)


SAMPLE_EVERY_COLUMN = ColumnMapping(targets={}, ignore_unnamed=True)


# --------------------------------------------------------------------------- reading one


def column_mapping_parse(raw: object) -> ColumnMapping | None:
    """A stored or submitted mapping (JSON) → ColumnMapping, None for none; raises MappingError."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise MappingError("", "INVALID_COLUMN_MAPPING", "must be an object: header → target")
    if len(raw) > MAX_ENTRIES:
        raise MappingError("", "INVALID_COLUMN_MAPPING", f"at most {MAX_ENTRIES} headers")
    targets: dict[str, ColumnTarget] = {}
    columns: dict[str, FlatColumn] = {}
    for index, (key, value) in enumerate(raw.items()):
        header = _source_header(key)
        if header in targets:
            raise MappingError(header, "DUPLICATE_HEADER", f"{header!r} is named twice")
        target = _column_target(header, value)
        targets[header] = target
        if target.to is not None:
            columns[header] = _target_column(index, header, target)
    try:
        check_columns_do_not_clash(list(columns.values()))
    except HeaderError as problem:
        code = "DUPLICATE_TARGET" if problem.code == "DUPLICATE_HEADER" else "TARGET_CONFLICT"
        raise MappingError(problem.header, code, problem.message) from None
    return ColumnMapping(targets=targets, columns=columns)


def column_mapping_problems(raw: Mapping[str, object]) -> list[MappingError]:
    """Every header's own problem at once (the admin's step shows each on its row), then, when
    each target is valid alone, the first clash between targets (`column_mapping_parse`)."""
    problems = []
    for index, (key, value) in enumerate(raw.items()):
        try:
            header = _source_header(key)
            target = _column_target(header, value)
            if target.to is not None:
                _target_column(index, header, target)
        except MappingError as problem:
            problems.append(problem)
    if not problems:
        try:
            column_mapping_parse(raw)
        except MappingError as problem:
            problems.append(problem)
    return problems


def _source_header(key: object) -> str:
    header = key.strip() if isinstance(key, str) else ""
    if not header or len(header) > MAX_HEADER_LENGTH or "\x00" in header:
        raise MappingError(
            str(key)[:100], "INVALID_HEADER", "a header must be a non-empty text, without NUL"
        )
    return header


def _column_target(header: str, value: object) -> ColumnTarget:
    if value is None or isinstance(value, str):
        return ColumnTarget(to=value)
    if not isinstance(value, Mapping) or "to" not in value or set(value) - {"to", "transform"}:
        raise MappingError(
            header,
            "INVALID_TARGET",
            'a target is a text, null, or {"to": target, "transform": name}',
        )
    to, transform = value["to"], value.get("transform")
    if to is not None and not isinstance(to, str):
        raise MappingError(header, "INVALID_TARGET", '"to" must be a text or null')
    if transform is not None and transform not in TRANSFORMS:
        raise MappingError(
            header,
            "INVALID_TRANSFORM",
            f"{transform!r} is not a transform: use one of {', '.join(TRANSFORMS)}",
        )
    return ColumnTarget(to=to, transform=transform if to is not None else None)


def _target_column(index: int, header: str, target: ColumnTarget) -> FlatColumn:
    text = (target.to or "").strip()
    unknown = (
        f"{text!r} is not a column: name a reserved column or a property path, or ignore the "
        "column (null)"
    )
    if not text or text in ANNOTATION_KEYS:
        raise MappingError(header, "UNKNOWN_TARGET", unknown)
    if not text.startswith("["):
        _, colon, suffix = text.rpartition(":")
        if colon and suffix.lower() not in TYPE_SUFFIXES:
            raise MappingError(
                header,
                "INVALID_TYPE",
                f"{text!r}: :{suffix} is not a type; use :int, :float, :bool, :json or :str "
                '(a key holding ":" is written ["a:b"])',
            )
    try:
        column = parse_header_cell(index, text)
    except HeaderError as problem:
        raise MappingError(header, "INVALID_TARGET", problem.message) from None
    dollar = column.role == "profile" and normalize_key(column.path[0]).lstrip().startswith("$")
    if dollar and not (len(column.path) == 1 and column.path[0] in PROFILE_KEY_COLUMNS):
        raise MappingError(header, "UNKNOWN_TARGET", unknown)
    return replace(column, header=header, transform=target.transform)


# --------------------------------------------------------------------------- applying one


def mapped_columns(raw_headers: Iterable[object], mapping: ColumnMapping) -> list[FlatColumn]:
    """A file's header row read through the mapping; raises HeaderError (UNMAPPED_HEADER…)."""
    columns = []
    for index, header in enumerate(header_texts(raw_headers)):
        if header in ANNOTATION_KEYS:
            columns.append(FlatColumn(header=header, role="annotation", name=header))
        elif header in mapping.targets:
            column = mapping.columns.get(header)
            columns.append(column or FlatColumn(header=header, role="ignored"))
        elif mapping.ignore_unnamed:
            columns.append(FlatColumn(header=header, role="ignored"))
        elif header == "":
            parse_header_cell(index, header)  # raises: a column with no name
        else:
            raise HeaderError(
                "UNMAPPED_HEADER",
                f"{column_label(index, header)} is not named by the document import's column "
                "mapping: map it to a target, or to null to ignore it",
                header=header,
            )
    check_columns_do_not_clash(columns)
    return columns


def transform_cell(transform: str, value: Any) -> Any:
    """A non-empty cell through a transform (see the module docstring)."""
    if not isinstance(value, str):
        if transform != "sha256_email":
            return value
        value = cell_text(value)
    if transform == "lower":
        return value.lower()
    text = value.strip()
    if transform == "trim" or not text:
        return text
    return hashlib.sha256(text.lower().encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- proposing one


def _folded(header: str) -> str:
    """ "E-mail", "e_mail", "EMAIL " and "É-mail" alike: accents, case and punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    return re.sub(r"[^0-9a-z]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


_HASHED_EMAIL = ColumnTarget("email_hash", "sha256_email")
_SYNONYMS: dict[str, ColumnTarget] = {
    # "$" folds away: the command columns win over the profile keys of the same name.
    **{_folded(name): ColumnTarget(name) for name in (*PROFILE_KEY_COLUMNS, *RESERVED_COLUMNS)},
    **dict.fromkeys(
        ("customerid", "customer", "customerno", "customernumber", "clientid", "accountid")
        + ("userid", "crmid", "contactid", "memberid", "externalid", "id"),
        ColumnTarget("user_account_id"),
    ),
    **dict.fromkeys(
        ("email", "emailaddress", "mail", "mailaddress", "courriel", "adresseemail"), _HASHED_EMAIL
    ),
    **dict.fromkeys(
        ("emailhash", "hashedemail", "emailsha256", "sha256email"), ColumnTarget("email_hash")
    ),
    **dict.fromkeys(("deviceid", "cookieid", "vectorid"), ColumnTarget("user_agent_id")),
    **dict.fromkeys(("compartment",), ColumnTarget("compartment_id")),
    **dict.fromkeys(("firstname", "givenname", "forename", "prenom"), ColumnTarget("first_name")),
    **dict.fromkeys(("lastname", "surname", "familyname", "nom"), ColumnTarget("last_name")),
    **dict.fromkeys(
        ("birthdate", "dateofbirth", "dob", "birthday", "datedenaissance"),
        ColumnTarget("birth_date:str"),
    ),
    **dict.fromkeys(("optin", "newsletteroptin", "subscribed"), ColumnTarget("opt_in:bool")),
    **dict.fromkeys(("phone", "phonenumber", "mobile", "telephone"), ColumnTarget("phone:str")),
}
_SNAKE_PATH = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*(:(int|float|bool|json|str))?")


def mapping_proposal(
    headers: Iterable[str], saved: ColumnMapping | None
) -> dict[str, ColumnTarget]:
    """A target for each header: the saved mapping's, else a SPEC §3 header as it is, else a
    known synonym (case, accents and punctuation aside), else the header as a snake_case
    property. Two headers are never proposed one reserved column: the second gets a property;
    an account column beside an e-mail one is proposed as the profile's `$user_account_id`."""
    proposal: dict[str, ColumnTarget] = {}
    taken: set[str] = set()
    for header in headers:
        if header in ANNOTATION_KEYS or header in proposal:
            continue
        if saved is not None and header in saved.targets:
            target = saved.targets[header]
        elif (
            header in RESERVED_COLUMNS
            or header in PROFILE_KEY_COLUMNS
            or _SNAKE_PATH.fullmatch(header)
        ):
            target = ColumnTarget(header)
        else:
            target = _SYNONYMS.get(_folded(header)) or ColumnTarget(_snake_case(header))
        reserved = target.to in RESERVED_COLUMNS or target.to in PROFILE_KEY_COLUMNS
        if reserved and target.to in taken:
            target = ColumnTarget(_snake_case(header))
        taken.add(target.to or "")
        proposal[header] = target
    return _one_identifier(proposal)


def _one_identifier(proposal: dict[str, ColumnTarget]) -> dict[str, ColumnTarget]:
    """A line names one identifier (SPEC §2): with an e-mail column, the person is found by
    its hash and an account column addresses their profile (`$user_account_id`) instead."""
    targets = {target.to for target in proposal.values()}
    if "email_hash" not in targets or "$user_account_id" in targets:
        return proposal
    return {
        header: ColumnTarget("$user_account_id") if target.to == "user_account_id" else target
        for header, target in proposal.items()
    }


def _snake_case(header: str) -> str:
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    name = re.sub(r"[^0-9a-z]+", "_", ascii_text).strip("_")
    return name or "column"


def is_spec_layout(headers: list[str]) -> bool:
    """A header row SPEC §3 reads as it is: every header parses and one names an identifier."""
    try:
        columns = parse_header(headers)
    except HeaderError:
        return False
    return any(column.name in IDENTIFIER_COLUMNS for column in columns)


def mapping_for_headers(*, headers: list[str], saved: ColumnMapping | None) -> ColumnMapping | None:
    """The mapping the admin reads a file of these headers through without asking: the saved
    one when it names every header; else none when the file is in the SPEC §3 layout (read as
    it is, the saved mapping kept for the CRM files it was made for). Raises MappingNeeded for a
    file that is neither: the staff member maps it."""
    if saved is not None and saved.names(headers):
        return saved
    if is_spec_layout(headers):
        return None
    raise MappingNeeded(headers)


class MappingNeeded(Exception):
    """Headers that neither the saved mapping names nor the SPEC §3 layout reads."""
