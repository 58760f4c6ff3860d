"""The body of an execution upload: the raw file, streamed to memory or a temporary file."""

from __future__ import annotations

from rest_framework.parsers import FileUploadParser

from imports.services import upload_file_name


class RawUploadParser(FileUploadParser):
    """The whole body is the file, whatever its type: the view checks the type against the import.

    Django's upload handlers stream it to memory (small) or to a temporary file (large).
    """

    media_type = "*/*"
    UNNAMED = "upload"  # no Content-Disposition filename: the view names it after the format

    def get_filename(self, stream, media_type, parser_context):
        try:
            name = super().get_filename(stream, media_type, parser_context)
        except Exception:  # a malformed Content-Disposition only loses the name
            name = None
        # Cleaned here already: Django's uploaded file refuses `..` and the like.
        return upload_file_name(name) or self.UNNAMED
