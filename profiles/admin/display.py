"""How the back-office shows times and custom properties in its lists and pages."""

from __future__ import annotations

import json
from typing import Any

from django.utils.text import Truncator

from profiles.models import UserProfile, epoch_ms

SUMMARY_KEYS = 3


def moment(value) -> str:
    """A timestamp as staff read it, with the epoch milliseconds clients see."""
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({epoch_ms(value)})"


def short_json(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return Truncator(text).chars(width)


def value_at(properties: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(properties, dict) and part in properties:
            properties = properties[part]
        elif isinstance(properties, list) and part.isdigit() and int(part) < len(properties):
            properties = properties[int(part)]
        else:
            return None
    return properties


def properties_summary(profile: UserProfile) -> str:
    """The compartment's list columns, else the first keys of the profile and how many more."""
    paths = profile.compartment.list_properties or list(profile.properties)[:SUMMARY_KEYS]
    parts = [
        f"{path}: {short_json(value_at(profile.properties, path.split('.')), 40)}" for path in paths
    ]
    more = len(profile.properties) - len(paths)
    if more > 0 and not profile.compartment.list_properties:
        parts.append(f"+{more}")
    return " · ".join(parts) or "{}"
