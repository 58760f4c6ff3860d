"""`{% back_office_panels %}` on the admin index: recent imports, exports, profiles per datamart."""

from __future__ import annotations

from django import template

from imports.admin.index_panels import datamart_profile_counts, recent_exports, recent_imports

register = template.Library()


@register.inclusion_tag("admin/imports/index_panels.html", takes_context=True)
def back_office_panels(context):
    request = context["request"]
    return {
        "recent_imports": recent_imports(request),
        "recent_exports": recent_exports(request),
        "datamart_counts": datamart_profile_counts(request),
    }
