"""Files uploaded in the admin, staged between the preview and its confirmation.

An upload is written once, under `MEDIA_ROOT/imports/staged/<token>/`, previewed from there,
and moved (not copied) into the execution's own place when the upload is confirmed:
FileSystemStorage moves a file that names its temporary path, as it does Django's temporary
uploads. A staged upload that is never confirmed is deleted once it is older than
`IMPORT_STAGED_MAX_AGE_HOURS`, when a later upload is staged.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.move import file_move_safe
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from imports.formats import FileFormat, format_spec
from imports.models import DocumentImport
from profiles.models import Datamart

STAGED_DIR = "imports/staged"
_TOKEN = re.compile(r"[0-9a-f]{32}")
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._ -]+")
_BLOCK = 1 << 20


@dataclass(frozen=True)
class StagedUpload:
    token: str
    path: str
    file_name: str  # the name it was uploaded with
    size: int


class MovableFile(File):
    """A local file that storage may move into place instead of copying it."""

    def __init__(self, path: str, name: str | None = None) -> None:
        super().__init__(open(path, "rb"), name=name or os.path.basename(path))  # noqa: SIM115 (File closes it)
        self._path = path

    def temporary_file_path(self) -> str:
        return self._path


def _staged_root() -> str:
    return default_storage.path(STAGED_DIR)


def _safe_name(file_name: str) -> str:
    base = os.path.basename(file_name or "").strip()
    cleaned = _UNSAFE_NAME_CHARACTERS.sub("_", base).strip(" .")[-120:]
    return cleaned or "upload"


def upload_stage(*, upload: UploadedFile) -> StagedUpload:
    """Write an upload to its staging folder (moved there when Django already spooled it)."""
    staged_uploads_clean()
    token = uuid.uuid4().hex
    directory = os.path.join(_staged_root(), token)
    os.makedirs(directory)
    path = os.path.join(directory, _safe_name(upload.name))
    if hasattr(upload, "temporary_file_path"):
        file_move_safe(upload.temporary_file_path(), path)
    else:
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return StagedUpload(
        token=token, path=path, file_name=upload.name or "", size=os.path.getsize(path)
    )


def staged_upload_get(token: str, file_name: str) -> StagedUpload | None:
    """The staged upload of `token`, or None when it was confirmed, deleted or never existed."""
    if not _TOKEN.fullmatch(token or ""):
        return None
    path = os.path.join(_staged_root(), token, _safe_name(file_name))
    if not os.path.isfile(path):
        return None
    return StagedUpload(token=token, path=path, file_name=file_name, size=os.path.getsize(path))


def staged_upload_delete(token: str) -> None:
    if _TOKEN.fullmatch(token or ""):
        shutil.rmtree(os.path.join(_staged_root(), token), ignore_errors=True)


def staged_uploads_clean(*, max_age_hours: int | None = None) -> int:
    """Delete the stagings older than the limit; returns how many went."""
    hours = settings.IMPORT_STAGED_MAX_AGE_HOURS if max_age_hours is None else max_age_hours
    cutoff = time.time() - hours * 3600
    root = _staged_root()
    removed = 0
    if not os.path.isdir(root):
        return 0
    for entry in os.scandir(root):
        if entry.is_dir() and _TOKEN.fullmatch(entry.name) and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def estimated_lines(path: str, file_format: FileFormat) -> int | None:
    """About how many lines the file holds, cheaply: for the preview's "N lines of about M".

    NDJSON and CSV: physical lines (a CSV cell may hold a line break, a blank line is counted),
    less the CSV header; XLSX: the sheet's declared size; JSON: unknown.
    """
    if file_format in (FileFormat.NDJSON, FileFormat.CSV):
        lines, last = 0, b""
        with open(path, "rb") as stream:
            while block := stream.read(_BLOCK):
                lines += block.count(b"\n")
                last = block[-1:]
        if last and last != b"\n":
            lines += 1
        return max(0, lines - 1) if file_format is FileFormat.CSV else lines
    if file_format is FileFormat.XLSX:
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, read_only=True)
            try:
                rows = workbook.worksheets[0].max_row
            finally:
                workbook.close()
        except Exception:  # the reader already said what is wrong with the file
            return None
        return None if rows is None else max(0, rows - 1)
    return None


def _back_office_name(file_format: FileFormat) -> str:
    return f"Back-office uploads ({FileFormat(file_format).value})"


def back_office_document_import(
    *, datamart: Datamart, file_format: FileFormat
) -> DocumentImport | None:
    """The definition back-office uploads of this format run through, when made already."""
    return DocumentImport.objects.filter(
        datamart=datamart,
        name=_back_office_name(file_format),
        mime_type=format_spec(file_format).document_mime_type,
    ).first()


def document_import_for_upload(*, datamart: Datamart, file_format: FileFormat) -> DocumentImport:
    """The definition back-office uploads run through when staff pick none: one per format."""
    document_import, _ = DocumentImport.objects.get_or_create(
        datamart=datamart,
        name=_back_office_name(file_format),
        mime_type=format_spec(file_format).document_mime_type,
    )
    return document_import
