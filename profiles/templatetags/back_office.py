"""Template filters of the back-office: `{{ value|moment }}` shows a time as every page does."""

from __future__ import annotations

from django import template

from profiles.admin.display import moment as moment_html

register = template.Library()


@register.filter
def moment(value):
    """A timestamp to the second with its time zone, the epoch milliseconds in its tooltip."""
    return moment_html(value)
