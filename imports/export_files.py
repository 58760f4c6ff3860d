"""What a profile export holds, and its file written with imports.writers (SPEC §3 layout).

Each profile becomes an export item: an identifier its user point already has, so a re-import
finds the same point, and the profile object (its `$compartment_id`, `$user_account_id`, then
its custom properties). CSV and XLSX are flat files with typed headers, NDJSON and JSON (an
array) hold FORCE_REPLACE UPSERT commands: every format re-imports to the same data.

The admin's streamed response and the export worker's file both come from here.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

from django.db.models import QuerySet

from imports.formats import FileFormat
from imports.writers import ExportItem, write_flat_export, write_ndjson_commands
from profiles.commands import AccountIdentifier, EmailIdentifier, Identifier, UserAgentIdentifier
from profiles.models import UserProfile

EXPORT_BATCH = 2000
_STREAM_BLOCK = 1 << 16

# The file name extension and the HTTP content type of each format's export.
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


def export_items(queryset: QuerySet[UserProfile]) -> Iterator[ExportItem]:
    """(identifier, profile object) per profile, in the queryset's order, read in chunks:
    memory stays flat.

    A profile whose user point has no identifier and no account of its own cannot be named in
    an import file: it is left out.
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


# --------------------------------------------------------------------------- files


def export_write(
    queryset: QuerySet[UserProfile], file_format: FileFormat | str, out: IO[bytes]
) -> int:
    """Write the export to a binary stream; returns the number of profiles written."""
    file_format = FileFormat(file_format)
    items = export_items(queryset)
    if file_format in (FileFormat.CSV, FileFormat.XLSX):
        return write_flat_export(items, file_format, out)
    if file_format is FileFormat.NDJSON:
        return write_ndjson_commands(items, out)
    array = JsonArrayOut(out)
    count = write_ndjson_commands(items, array)
    array.close()
    return count


def export_stream(
    queryset: QuerySet[UserProfile], file_format: FileFormat | str
) -> Iterator[bytes]:
    """The export as blocks of bytes, for a StreamingHttpResponse.

    NDJSON and JSON go out chunk by chunk as the rows are read. A flat file's columns depend on
    every row, so CSV and XLSX are written to a spooled file first (on disk past a few
    megabytes), then sent.
    """
    file_format = FileFormat(file_format)
    if file_format in (FileFormat.CSV, FileFormat.XLSX):
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            export_write(queryset, file_format, spool)
            spool.seek(0)
            while block := spool.read(_STREAM_BLOCK):
                yield block
        return
    buffer = io.BytesIO()
    out: Any = JsonArrayOut(buffer) if file_format is FileFormat.JSON else buffer
    items = export_items(queryset)
    while batch := list(islice(items, EXPORT_BATCH)):
        write_ndjson_commands(batch, out)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if isinstance(out, JsonArrayOut):
        out.close()
        yield buffer.getvalue()


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
