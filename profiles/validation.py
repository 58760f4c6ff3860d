"""The one validator of profile objects and custom properties (SPEC §1); no Django.

Rules the SPEC leaves open, fixed here:
- Only top-level keys are checked for the reserved ``$`` prefix; nested keys are free.
- A key is reserved when, after ``normalize_key`` and leading whitespace, it starts
  with ``$`` (so ``＄x``, ``"\\u200b$x"`` and ``" $x"`` are all rejected).
- Empty (or blank after normalisation), over-long and NUL-bearing keys are
  rejected at every depth, so every key stays addressable by a dotted path.
- Depth counts containers: the properties object is depth 1.
- Only ``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` are JSON;
  tuples, sets, bytes, Decimals and the like are ``INVALID_VALUE``, as are
  strings holding unpaired surrogates (neither UTF-8 nor PostgreSQL accept them).
- ``field`` is a dotted path with ``[i]`` for array items, e.g. ``contracts[1].id``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from profiles.errors import ProfileError

SYSTEM_KEYS = frozenset(
    {"$compartment_id", "$user_account_id", "$creation_ts", "$last_modified_ts", "$user_point_id"}
)
MAX_DEPTH = 32
MAX_PROFILE_BYTES = 1_000_000
MAX_KEY_LENGTH = 256
MAX_USER_ACCOUNT_ID_LENGTH = 255  # the column's max_length
MAX_COMPARTMENT_ID = 2**31 - 1  # PositiveIntegerField
MAX_INT = 2**63 - 1  # SQLite JSON and JS clients lose bigger integers
MIN_INT = -(2**63)  # signed 64 bits: one more below zero than above

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# Invisible characters that are not format or control ones: the Default_Ignorable_Code_Point
# marks and fillers (combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
# Mongolian free variation selectors, the unassigned U+2065), and the braille blank.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b\u180c\u180d\u180f\u2065\u2800"
)


def _stored_int(text: str) -> int | float:
    number = int(text)
    return number if MIN_INT <= number <= MAX_INT else float(text)


class PropertiesDecoder(json.JSONDecoder):
    """Reads stored properties back. An integer past 64 bits was never accepted as one: it is a
    float that PostgreSQL's jsonb wrote without its exponent (1e300), so it reads as a float."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("parse_int", _stored_int)
        super().__init__(**kwargs)


class PropertyError(ProfileError):
    """A custom property, or a `$` key of a profile object, that cannot be stored."""


@dataclass(frozen=True)
class ProfileAddress:
    compartment_id: int | None  # None: the datamart's default compartment
    user_account_id: str | None  # None: anonymous profile


def _is_invisible(char: str) -> bool:
    return (
        char in _INVISIBLE
        or unicodedata.category(char) in ("Cf", "Cc")
        or "\ufe00" <= char <= "\ufe0f"  # variation selectors
        or "\U000e0000" <= char <= "\U000e0fff"  # tags, variation selectors supplement
        or "\ufff0" <= char <= "\ufff8"
    )


def _strip_invisible(text: str) -> str:
    return "".join(char for char in text if not _is_invisible(char))


def normalize_key(key: str) -> str:
    """NFKC without invisible (format, control, filler) characters, for checks only."""
    if key.isascii() and key.isprintable():
        return key  # the common case, already normal
    return _strip_invisible(unicodedata.normalize("NFKC", _strip_invisible(key)))


def _is_reserved(key: str) -> bool:
    return normalize_key(key).lstrip().startswith("$")


def _display(text: str) -> str:
    """A key as it may appear in a message or a stored error (PostgreSQL text refuses NUL)."""
    text = text.replace("\x00", "\\u0000")
    return text if len(text) <= 64 else text[:61] + "..."


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_key(key: object, path: str) -> str:
    """Validates one key of an object at ``path`` and returns the key's own path."""
    where = f"'{path}'" if path else "the profile"
    if not isinstance(key, str):
        raise PropertyError(
            "INVALID_VALUE",
            f"object keys must be strings, got {_display(repr(key))} in {where}",
            field=path,
        )
    shown = _display(key)
    child = f"{path}.{shown}" if path else shown
    if "\x00" in key:
        raise PropertyError("NUL_CHARACTER", f"key '{child}' contains a NUL character", field=child)
    if len(key) > MAX_KEY_LENGTH:
        raise PropertyError(
            "KEY_TOO_LONG",
            f"key '{child}' is {len(key)} characters long, the limit is {MAX_KEY_LENGTH}",
            field=child,
        )
    if not normalize_key(key).strip():
        raise PropertyError("EMPTY_KEY", f"empty or blank key in {where}", field=child)
    if _has_surrogate(key):
        raise PropertyError(
            "INVALID_VALUE", f"key '{child}' contains an unpaired surrogate", field=child
        )
    return child


def _check_scalar(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise PropertyError(
                "INVALID_NUMBER",
                f"'{path}' holds an integer outside the signed 64-bit range",
                field=path,
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PropertyError(
                "NON_FINITE_NUMBER", f"'{path}' holds {value}, which JSON cannot hold", field=path
            )
    elif isinstance(value, str):
        if "\x00" in value:
            raise PropertyError("NUL_CHARACTER", f"'{path}' contains a NUL character", field=path)
        if _has_surrogate(value):
            raise PropertyError(
                "INVALID_VALUE", f"'{path}' contains an unpaired surrogate", field=path
            )
    else:
        raise PropertyError(
            "INVALID_VALUE",
            f"'{path}' holds a {type(value).__name__}, which is not a JSON value",
            field=path,
        )


def _plain_size(value: Any, depth: int) -> int | None:
    """An upper bound of the value's compact JSON size in UTF-8 bytes, or None when the value
    is not plainly valid (then the full walk below decides, and words the error).

    Plainly valid: exact JSON types, keys that are ASCII printable, non-blank and short enough,
    strings without NUL or surrogates, integers in 64 bits, finite floats, depth within the
    limit. A character takes at most 6 bytes in JSON (an escape), so 2 + 6 per character
    bounds a string.
    """
    kind = type(value)
    if kind is str:
        if "\x00" in value or (not value.isascii() and _has_surrogate(value)):
            return None
        # Printable ASCII takes at most 2 bytes a character (\" and \\), anything else 6.
        return 2 + (2 if value.isascii() and value.isprintable() else 6) * len(value)
    if kind is dict or kind is list:
        if depth > MAX_DEPTH:
            return None
        size = 2
        if kind is list:
            for item in value:
                item_size = _plain_size(item, depth + 1)
                if item_size is None:
                    return None
                size += item_size + 1
            return size
        for key, item in value.items():
            if (
                type(key) is not str
                or not key.isascii()
                or not key.isprintable()
                or not 0 < len(key) <= MAX_KEY_LENGTH
                or key.isspace()
            ):
                return None
            item_size = _plain_size(item, depth + 1)
            if item_size is None:
                return None
            size += 4 + 6 * len(key) + item_size
        return size
    if value is None or kind is bool:
        return 5
    if kind is int:
        return 21 if MIN_INT <= value <= MAX_INT else None
    if kind is float:
        return 25 if math.isfinite(value) else None
    return None


def _plainly_valid(props: dict) -> bool:
    """True when `validate_custom_properties` certainly accepts props: the common case, checked
    without building the paths and the JSON text the full walk needs for its messages."""
    for key in props:
        if type(key) is str and key.isascii() and key.lstrip().startswith("$"):
            return False
    size = _plain_size(props, 1)
    return size is not None and size <= MAX_PROFILE_BYTES


def validate_custom_properties(props: object) -> None:
    """Raises PropertyError for the first problem found, in document order."""
    if type(props) is dict and _plainly_valid(props):
        return
    _validate_fully(props)


def _validate_fully(props: object) -> None:
    if not isinstance(props, dict):
        raise PropertyError(
            "INVALID_PROFILE",
            f"custom properties must be a JSON object, got {type(props).__name__}",
        )
    for key in props:
        if isinstance(key, str) and _is_reserved(key):
            raise PropertyError(
                "RESERVED_KEY",
                f"custom property key '{_display(key)}' uses the reserved '$' prefix",
                field=key,
            )

    # Iterative, and containers deeper than MAX_DEPTH stop the walk: hostile input
    # (even self-referencing) cannot exhaust Python's recursion limit.
    stack: list[tuple[Any, str, int]] = [(props, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise PropertyError(
                    "TOO_DEEP",
                    f"'{path}' is nested deeper than {MAX_DEPTH} levels",
                    field=path,
                )
            if isinstance(value, dict):
                children = [(item, _check_key(key, path), depth + 1) for key, item in value.items()]
            else:
                children = [
                    (item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)
                ]
            stack.extend(reversed(children))
        else:
            _check_scalar(value, path)

    size = len(json.dumps(props, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_PROFILE_BYTES:
        raise PropertyError(
            "TOO_LARGE",
            f"custom properties take {size} bytes as JSON, the limit is {MAX_PROFILE_BYTES}",
        )


def _parse_compartment_id(value: object) -> int | None:
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    # Floats (1606.0) are refused: an id is never fractional, and a float here
    # usually means a spreadsheet column typed wrong.
    if number is None or not 0 <= number <= MAX_COMPARTMENT_ID:
        raise PropertyError(
            "INVALID_COMPARTMENT_ID",
            '$compartment_id must be a compartment id such as 1606 or "1606", '
            f"got {_display(repr(value))}",
            field="$compartment_id",
        )
    return number


def _parse_user_account_id(value: object) -> str | None:
    if value is None or value == "":
        return None
    # Account ids are opaque: kept as given, surrounding spaces included.
    account = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(account, str)
        or not account.strip()
        or "\x00" in account
        or _has_surrogate(account)
        or len(account) > MAX_USER_ACCOUNT_ID_LENGTH
    ):
        raise PropertyError(
            "INVALID_USER_ACCOUNT_ID",
            "$user_account_id must be a non-blank string of at most "
            f"{MAX_USER_ACCOUNT_ID_LENGTH} characters, got {_display(repr(value))}",
            field="$user_account_id",
        )
    return account


def split_profile_object(obj: object) -> tuple[ProfileAddress, dict[str, Any]]:
    """Splits a client's profile object into its address and its validated custom properties.

    ``$creation_ts``, ``$last_modified_ts`` and ``$user_point_id`` are set by the
    system, so values sent by a client are dropped.
    """
    if not isinstance(obj, dict):
        raise PropertyError(
            "INVALID_PROFILE", f"a profile must be a JSON object, got {type(obj).__name__}"
        )
    address = ProfileAddress(
        compartment_id=_parse_compartment_id(obj.get("$compartment_id")),
        user_account_id=_parse_user_account_id(obj.get("$user_account_id")),
    )
    custom = {key: value for key, value in obj.items() if key not in SYSTEM_KEYS}
    validate_custom_properties(custom)
    return address, custom
