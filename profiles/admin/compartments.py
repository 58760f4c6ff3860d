"""Compartments: one default per datamart, moved by making another one the default; the
columns each shows in the profile list."""

from __future__ import annotations

from django.contrib import admin

from profiles.admin.forms import CompartmentForm
from profiles.admin.scoping import DatamartListFilter, DatamartScopedAdmin
from profiles.models import Compartment
from profiles.services import compartment_add, compartment_delete, compartment_edit


@admin.register(Compartment)
class CompartmentAdmin(DatamartScopedAdmin):
    form = CompartmentForm
    list_display = ("compartment_id", "name", "datamart", "is_default")
    list_display_links = ("compartment_id", "name")
    list_filter = (DatamartListFilter,)
    list_select_related = ("datamart",)
    ordering = ("datamart_id", "compartment_id")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # The default is moved by making another compartment the default, never unset.
        return (
            ("datamart", "compartment_id", "is_default")
            if obj.is_default
            else (
                "datamart",
                "compartment_id",
            )
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_form(self, request, form, change):
        # Django goes on with the compartment the service saved (log entry, message, redirect).
        data = form.cleaned_data
        if change:
            return compartment_edit(
                compartment=form.instance,
                name=data["name"],
                # The form's choice; the stored value where it is read-only (the default).
                is_default=form.instance.is_default or form.make_default,
                list_properties=data["list_properties"],
            )
        return compartment_add(
            datamart=data["datamart"],
            compartment_id=data["compartment_id"],
            name=data["name"],
            is_default=form.make_default,
            list_properties=data["list_properties"],
        )

    def delete_model(self, request, obj):
        compartment_delete(compartment=obj)

    def get_deleted_objects(self, objs, request):
        protected = []
        for compartment in objs:
            if compartment.is_default:
                protected.append(
                    f"{compartment} is the default compartment: make another one the default first"
                )
            elif compartment.profiles.exists() or compartment.accounts.exists():
                protected.append(f"{compartment} still holds profiles or accounts")
        return [str(compartment) for compartment in objs], {}, set(), protected
