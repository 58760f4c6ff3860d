"""How the back-office shows times and custom properties in its lists and pages."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from profiles.models import UserProfile, epoch_ms

SUMMARY_KEYS = 3


def object_link(request, obj, label: Any = None) -> SafeString | str:
    """`label` (the object's name by default) linked to the object's admin page when the
    viewer may open it (its admin's own permission), else the plain label."""
    label = str(obj) if label is None else label
    try:
        model_admin = admin.site.get_model_admin(type(obj))
    except admin.sites.NotRegistered:
        return label
    if not model_admin.has_view_or_change_permission(request, obj):
        return label
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label)


# The one format of a time in the back-office: to the second, with its time zone.
MOMENT_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def moment_text(value) -> str:
    """A timestamp as staff read it, in the active time zone: `2026-12-02 14:03:07 UTC`."""
    if value is None:
        return "—"
    return f"{timezone.localtime(value):{MOMENT_FORMAT}}"


def moment(value) -> SafeString | str:
    """A timestamp as staff read it, the epoch milliseconds clients see in its tooltip."""
    if value is None:
        return "—"
    return format_html(
        '<time datetime="{}" title="{} ms since the epoch (as the API gives it)">{}</time>',
        value.isoformat(),
        epoch_ms(value),
        moment_text(value),
    )


def short_json(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return Truncator(text).chars(width)


ABSENT = object()  # no value at a path: shown "—", where a stored null is shown `null`


def value_at(properties: Any, parts: list[str]) -> Any:
    """The value at a dotted path's parts (a digit indexes an array), else ABSENT."""
    for part in parts:
        if isinstance(properties, dict) and part in properties:
            properties = properties[part]
        elif isinstance(properties, list) and part.isdigit() and int(part) < len(properties):
            properties = properties[int(part)]
        else:
            return ABSENT
    return properties


def value_text(value: Any, width: int = 40) -> str:
    """A value from `value_at` as a list cell shows it."""
    return "—" if value is ABSENT else short_json(value, width)


def properties_summary(profile: UserProfile) -> str:
    """The compartment's list columns; else, or when the profile has none of them, its first
    keys and how many more (what it holds, never a row of dashes)."""
    listed = {
        path: value_at(profile.properties, path.split("."))
        for path in profile.compartment.list_properties
    }
    if any(value is not ABSENT for value in listed.values()):
        return " · ".join(f"{path}: {value_text(value)}" for path, value in listed.items())
    keys = list(profile.properties)[:SUMMARY_KEYS]
    parts = [f"{key}: {short_json(profile.properties[key], 40)}" for key in keys]
    if len(profile.properties) > len(keys):
        parts.append(f"+{len(profile.properties) - len(keys)}")
    return " · ".join(parts) or "{}"
