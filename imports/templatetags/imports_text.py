"""`{{ identifier|breakable }}`: long identifiers (`compartment_id=1606,user_account_id=…`) may
break after their commas and equals signs, so a table column stays narrow without cutting
words at random places."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

_BREAK_AFTER = re.compile(r"([,=&;/.])")


@register.filter
def breakable(value) -> str:
    return mark_safe(_BREAK_AFTER.sub(r"\1<wbr>", escape(str(value))))  # noqa: S308 (escaped)
