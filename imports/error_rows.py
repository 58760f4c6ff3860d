"""Line errors as stored: text a database column takes, the source record bounded to
IMPORT_ERROR_RAW_MAX_BYTES (a prefix, and its size) (rules.md#errors)."""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings

from imports.models import ExecutionError
from profiles.commands import LineError


def clean_text(text: str, limit: int | None = None) -> str:
    """Text a database column accepts: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text if limit is None else text[:limit]


def storable_raw(value: Any, encoding: str = "utf-8") -> Any:
    """The source record as JSON a database takes: undecodable bytes are decoded with
    replacement characters, NUL and lone surrogates replaced (the line was refused for
    them anyway, and the failed-lines file stays writable)."""
    if isinstance(value, bytes):
        return clean_text(value.decode(encoding, errors="replace"))
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): storable_raw(item, encoding) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_raw(item, encoding) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value))


def bounded_raw(raw: Any, max_bytes: int) -> tuple[Any, int | None]:
    """The stored record and, when it was cut, its size: a record whose JSON text takes more
    than `max_bytes` bytes is kept as the first `max_bytes` bytes of that text (a string)."""
    if raw is None or isinstance(raw, bool | int | float):
        return raw, None
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if len(text) * 4 <= max_bytes:  # a character takes at most 4 bytes in UTF-8
        return raw, None
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= max_bytes:
        return raw, None
    return encoded[:max_bytes].decode("utf-8", errors="ignore"), len(encoded)


def error_rows(execution_id: int, errors: list[LineError], encoding: str) -> list[ExecutionError]:
    """An execution's line errors as rows: text a database takes, records bounded."""
    max_bytes = settings.IMPORT_ERROR_RAW_MAX_BYTES
    rows = []
    for error in errors:
        raw, raw_size = bounded_raw(storable_raw(error.raw, encoding), max_bytes)
        rows.append(
            ExecutionError(
                execution_id=execution_id,
                line=error.line,
                identifier=clean_text(error.identifier, 600),
                error_code=clean_text(error.code, 64),
                message=clean_text(error.message),
                field=clean_text(error.field, 300),
                raw=raw,
                raw_size=raw_size,
            )
        )
    return rows
