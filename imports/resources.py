"""The profile admin's glue with django-import-export: its formats and the profile resource.

The four formats of the screens are django-import-export format classes (CSV, XLSX and JSON
are its own, NDJSON is a small one here), each tied to the `FileFormat` our readers and writers
know, whose extension and content type they take from `imports.formats`. Imports never go
through django-import-export's `import_data` (it holds the whole file in memory and writes in
the request): the admin previews with `imports.preview.import_preview`
and runs the file with an execution. Export files are written by `imports.export_files`,
which the admin and the export worker call directly; the resource only names the columns of
SPEC §3 for the screens.
"""

from __future__ import annotations

import json
from typing import Any

import tablib
from import_export import fields, resources
from import_export.formats import base_formats

from imports.export_files import export_items
from imports.formats import FileFormat, format_spec
from imports.writers import profile_rows_to_flat
from profiles.models import UserProfile

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


# --------------------------------------------------------------------------- the resource


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
        name = "User profiles"

    @classmethod
    def get_display_name(cls) -> str:
        return cls._meta.name

    # -- django-import-export's own entry points

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        """The flat layout as a tablib Dataset (in memory: for small sets only)."""
        queryset = UserProfile.objects.all() if queryset is None else queryset
        headers, rows = profile_rows_to_flat(export_items(queryset))
        return tablib.Dataset(*rows, headers=headers)

    def import_data(self, *args, **kwargs):
        raise NotImplementedError(
            "profiles are imported by an execution (imports.services.execution_start), "
            "previewed with imports.preview.import_preview"
        )


def format_class_for(file_format: FileFormat | str) -> type[base_formats.Format]:
    return FORMAT_CLASSES[FileFormat(file_format)]
