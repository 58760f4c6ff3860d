"""The file side of the profile admin: django-import-export formats and the profile resource.

The four formats of the screens are django-import-export format classes (CSV, XLSX and JSON
are its own, NDJSON is a small one here), each tied to the `FileFormat` our readers and writers
know, whose extension and content type they take from `imports.formats`. Imports never go through django-import-export's `import_data` (it holds the whole file in
memory and writes in the request): the admin previews with `imports.services.import_preview`
and runs the file with an execution. Exports go through `UserProfileResource`, which turns a
queryset of profiles into export items and writes them with `imports.writers`, in the layout
of SPEC §3, so an export re-imports to the same data.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

import tablib
from import_export import fields, resources
from import_export.formats import base_formats

from imports.formats import FileFormat, format_spec
from imports.writers import (
    ExportItem,
    profile_rows_to_flat,
    write_flat_export,
    write_ndjson_commands,
)
from profiles.commands import AccountIdentifier, EmailIdentifier, Identifier, UserAgentIdentifier
from profiles.models import UserProfile

EXPORT_BATCH = 2000
_STREAM_BLOCK = 1 << 16


# --------------------------------------------------------------------------- formats


class _TableFormat:
    """Title, extension and content type (CONTENT_TYPE) of a format, from the one table."""

    file_format: FileFormat
    CONTENT_TYPE: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.CONTENT_TYPE = format_spec(cls.file_format).content_type

    def get_title(self) -> str:
        return self.file_format.value.lower()

    def get_extension(self) -> str:
        return format_spec(self.file_format).extension


class CsvFormat(_TableFormat, base_formats.CSV):
    file_format = FileFormat.CSV


class XlsxFormat(_TableFormat, base_formats.XLSX):
    file_format = FileFormat.XLSX


class JsonFormat(_TableFormat, base_formats.JSON):
    """A JSON array of import commands (SPEC §2)."""

    file_format = FileFormat.JSON


class NdjsonFormat(_TableFormat, base_formats.TextFormat):
    """Newline-delimited JSON, one import command per line: the platform's own format."""

    file_format = FileFormat.NDJSON

    def get_format(self):
        return self  # no tablib module: the two methods below are the whole format

    def create_dataset(self, in_stream: str | bytes, **kwargs) -> tablib.Dataset:
        if isinstance(in_stream, bytes):
            in_stream = in_stream.decode(self.encoding or "utf-8-sig")
        objects = [json.loads(line) for line in in_stream.splitlines() if line.strip()]
        headers = list(dict.fromkeys(key for obj in objects for key in obj))
        dataset = tablib.Dataset(headers=headers)
        for obj in objects:
            dataset.append([obj.get(key) for key in headers])
        return dataset

    def export_data(self, dataset: tablib.Dataset, **kwargs) -> str:
        return "".join(
            json.dumps(dict(zip(dataset.headers, row, strict=True)), ensure_ascii=False) + "\n"
            for row in dataset
        )

    def can_import(self) -> bool:
        return True

    def can_export(self) -> bool:
        return True


PROFILE_FORMATS: list[type[base_formats.Format]] = [CsvFormat, XlsxFormat, JsonFormat, NdjsonFormat]
FORMAT_CLASSES = {format_class.file_format: format_class for format_class in PROFILE_FORMATS}


# --------------------------------------------------------------------------- export items


def _identifier_of(profile: UserProfile) -> Identifier | None:
    """An identifier the profile's user point already has, so a re-import finds the same point.

    A profile with an account prefers that very account identifier; an anonymous one prefers an
    email or a user agent (an account would make the preview warn about SPEC §2 rule 2).
    """
    point = profile.user_point
    accounts = list(point.accounts.all())
    emails = list(point.emails.all())
    agents = list(point.agents.all())
    if profile.user_account_id is not None:
        for account in accounts:
            if (
                account.compartment_id == profile.compartment_id
                and account.user_account_id == profile.user_account_id
            ):
                return AccountIdentifier(
                    account.user_account_id, account.compartment.compartment_id
                )
    if emails:
        return EmailIdentifier(emails[0].email_hash)
    if agents:
        return UserAgentIdentifier(agents[0].user_agent_id)
    if accounts:
        return AccountIdentifier(
            accounts[0].user_account_id, accounts[0].compartment.compartment_id
        )
    if profile.user_account_id is not None:
        # A point without identifiers: the profile's own account is the best name left.
        return AccountIdentifier(profile.user_account_id, profile.compartment.compartment_id)
    return None


def profile_export_object(profile: UserProfile) -> dict[str, Any]:
    """The profile as an import's `user_profile`: its address, then its custom properties."""
    address: dict[str, Any] = {"$compartment_id": profile.compartment.compartment_id}
    if profile.user_account_id is not None:
        address["$user_account_id"] = profile.user_account_id
    return {**address, **profile.properties}


class UserProfileResource(resources.Resource):
    """Profiles <-> import files. The columns below are the reserved ones of SPEC §3; every other
    column is a custom property (`a.b` nests, `:int`/`:float`/`:bool`/`:json`/`:str` types)."""

    operation = fields.Field(column_name="operation")
    compartment_id = fields.Field(column_name="compartment_id")
    user_account_id = fields.Field(column_name="user_account_id")
    email_hash = fields.Field(column_name="email_hash")
    user_agent_id = fields.Field(column_name="user_agent_id")
    update_strategy = fields.Field(column_name="update_strategy")
    merge_objects = fields.Field(column_name="merge_objects")
    profile_compartment_id = fields.Field(column_name="$compartment_id")
    profile_user_account_id = fields.Field(column_name="$user_account_id")

    class Meta:
        name = "User profiles (SPEC §3 layout)"

    @classmethod
    def get_display_name(cls) -> str:
        return cls._meta.name

    # -- what an export holds

    @staticmethod
    def export_items(queryset) -> Iterator[ExportItem]:
        """(identifier, profile object) per profile, read in chunks: memory stays flat.

        A profile whose user point has no identifier and no account of its own cannot be named
        in an import file: it is left out.
        """
        rows = (
            queryset.select_related("compartment", "user_point")
            .prefetch_related(
                "user_point__accounts__compartment", "user_point__emails", "user_point__agents"
            )
            .iterator(chunk_size=EXPORT_BATCH)
        )
        for profile in rows:
            identifier = _identifier_of(profile)
            if identifier is not None:
                yield identifier, profile_export_object(profile)

    # -- writing it

    def write(self, queryset, file_format: FileFormat, out: IO[bytes]) -> int:
        """Write the export to a binary stream; returns the number of profiles written."""
        file_format = FileFormat(file_format)
        items = self.export_items(queryset)
        if file_format in (FileFormat.CSV, FileFormat.XLSX):
            return write_flat_export(items, file_format, out)
        if file_format is FileFormat.NDJSON:
            return write_ndjson_commands(items, out)
        array = JsonArrayOut(out)
        count = write_ndjson_commands(items, array)
        array.close()
        return count

    def stream(self, queryset, file_format: FileFormat) -> Iterator[bytes]:
        """The export as blocks of bytes, for a StreamingHttpResponse.

        NDJSON and JSON go out chunk by chunk as the rows are read. A flat file's columns
        depend on every row, so CSV and XLSX are written to a spooled file first (on disk past
        a few megabytes), then sent.
        """
        file_format = FileFormat(file_format)
        if file_format in (FileFormat.CSV, FileFormat.XLSX):
            with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
                self.write(queryset, file_format, spool)
                spool.seek(0)
                while block := spool.read(_STREAM_BLOCK):
                    yield block
            return
        buffer = io.BytesIO()
        out: Any = JsonArrayOut(buffer) if file_format is FileFormat.JSON else buffer
        items = self.export_items(queryset)
        while batch := list(islice(items, EXPORT_BATCH)):
            write_ndjson_commands(batch, out)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if isinstance(out, JsonArrayOut):
            out.close()
            yield buffer.getvalue()

    # -- django-import-export's own entry points

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        """The flat layout as a tablib Dataset (in memory: for small sets only)."""
        queryset = UserProfile.objects.all() if queryset is None else queryset
        headers, rows = profile_rows_to_flat(self.export_items(queryset))
        return tablib.Dataset(*rows, headers=headers)

    def import_data(self, *args, **kwargs):
        raise NotImplementedError(
            "profiles are imported by an execution (imports.services.execution_start), "
            "previewed with imports.services.import_preview"
        )


class JsonArrayOut:
    """Turns the NDJSON commands written to it into one JSON array on `out`.

    JSON text never holds a raw line break, so each line is one command.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.pending = b""
        self.count = 0

    def write(self, data: bytes) -> int:
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.strip():
                self.out.write(b"[\n" if self.count == 0 else b",\n")
                self.out.write(line)
                self.count += 1
        return len(data)

    def close(self) -> None:
        self.write(b"\n")
        self.out.write(b"\n]\n" if self.count else b"[]\n")


def format_class_for(file_format: FileFormat | str) -> type[base_formats.Format]:
    return FORMAT_CLASSES[FileFormat(file_format)]
