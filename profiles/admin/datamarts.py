"""Datamarts and who sees them: created and deleted by superusers, who also manage the staff
members of each (on its page, or under "Datamart memberships")."""

from __future__ import annotations

from django.contrib import admin

from profiles.admin.forms import DatamartAddForm
from profiles.admin.scoping import DatamartScopedAdmin, ReadOnlyInline
from profiles.admin.service_writes import ServiceWritesMixin
from profiles.models import Compartment, Datamart, DatamartMembership
from profiles.services import (
    datamart_create,
    datamart_delete,
    datamart_membership_add,
    datamart_membership_remove,
    datamart_membership_update,
    datamart_rename,
)


class MembershipInline(admin.TabularInline):
    model = DatamartMembership
    extra = 1
    verbose_name = "staff member"
    verbose_name_plural = "staff members (superusers see every datamart)"


class CompartmentInline(ReadOnlyInline):
    model = Compartment
    fields = ("compartment_id", "name", "is_default")
    readonly_fields = fields
    show_change_link = True


def membership_formset_save(formset, *, datamart: Datamart) -> None:
    """The memberships a datamart page's inline added, changed or removed, through services."""
    memberships = formset.save(commit=False)  # unsaved: the services write them
    for membership in formset.deleted_objects:
        datamart_membership_remove(membership=membership)
    for membership in memberships:
        if membership.pk is None:
            datamart_membership_add(datamart=datamart, user=membership.user)
        else:
            datamart_membership_update(
                membership=membership, datamart=datamart, user=membership.user
            )


@admin.register(Datamart)
class DatamartAdmin(DatamartScopedAdmin):
    datamart_lookup = "id"
    list_display = ("id", "name")
    search_fields = ("name",)

    def get_fields(self, request, obj=None):
        return ("id", "name") if obj else ("id", "name", "default_compartment_id")

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DatamartAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        if obj is None:
            return []
        return (
            [CompartmentInline, MembershipInline]
            if request.user.is_superuser
            else [CompartmentInline]
        )

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)  # renamed in save_model, see there
        # Django goes on with the datamart the service created (log entry, message, redirect).
        return datamart_create(
            datamart_id=form.cleaned_data["id"],
            name=form.cleaned_data["name"],
            default_compartment_id=form.cleaned_data["default_compartment_id"],
        )

    def save_model(self, request, obj, form, change):
        # The change page carries inlines, validated after save_form: rename once they are.
        if change:
            datamart_rename(datamart=obj, name=form.cleaned_data["name"])

    def save_formset(self, request, form, formset, change):
        if formset.model is DatamartMembership:
            membership_formset_save(formset, datamart=form.instance)
        else:
            super().save_formset(request, form, formset, change)

    def delete_model(self, request, obj):
        datamart_delete(datamart=obj)

    def get_deleted_objects(self, objs, request):
        # The cascade reaches millions of rows: say what goes, do not list it.
        names = [
            f"{datamart}: its compartments, user points, identifiers, profiles, history, "
            "API tokens and imports"
            for datamart in objs
        ]
        return names, {"datamarts": len(names)}, set(), []


@admin.register(DatamartMembership)
class DatamartMembershipAdmin(ServiceWritesMixin, admin.ModelAdmin):
    """Who may see which datamart: superusers only."""

    list_display = ("user", "datamart")
    list_filter = ("datamart",)
    list_select_related = ("user", "datamart")

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_form(self, request, form, change):
        datamart, user = form.cleaned_data["datamart"], form.cleaned_data["user"]
        if change:
            return datamart_membership_update(
                membership=form.instance, datamart=datamart, user=user
            )
        return datamart_membership_add(datamart=datamart, user=user)

    def delete_model(self, request, obj):
        datamart_membership_remove(membership=obj)
