"""Who sees what in the back-office: staff see the datamarts they are members of.

One mixin, `DatamartScopedAdmin`, scopes every queryset the admin builds (lists, searches,
counts, change pages), every foreign-key choice and every inline to the user's datamarts
(`profiles.selectors.datamart_ids_visible_to`). Superusers see all. A change page of another
datamart answers 404, the same as a page that does not exist.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect

from profiles.admin.service_writes import ServiceWritesMixin
from profiles.errors import ProfileError
from profiles.models import Compartment, Datamart
from profiles.selectors import datamart_ids_or_all, datamart_ids_visible_to


def user_datamart_ids(request: HttpRequest) -> list[int] | None:
    """The ids of the datamarts the user may see; None for a superuser (all of them)."""
    return datamart_ids_visible_to(user=request.user)


def visible_datamart_ids(request: HttpRequest) -> list[int]:
    """The same as a concrete list, for lookups that need `datamart_id IN (…)` to use an index."""
    return datamart_ids_or_all(user_datamart_ids(request))


def scope_queryset(queryset: QuerySet, ids: list[int] | None, lookup: str) -> QuerySet:
    return queryset if ids is None else queryset.filter(**{f"{lookup}__in": ids})


def scoped_choices(model: type[Model], ids: list[int] | None) -> QuerySet | None:
    """The choices of a foreign key to `model` a user may pick, or None if not datamart-bound."""
    if model is Datamart:
        return scope_queryset(Datamart.objects.all(), ids, "id")
    if model is Compartment:
        return scope_queryset(Compartment.objects.select_related("datamart"), ids, "datamart_id")
    if any(field.name == "datamart" for field in model._meta.get_fields()):
        return scope_queryset(model._default_manager.all(), ids, "datamart_id")
    return None


class CompartmentChoiceField(forms.ModelChoiceField):
    """Compartment ids repeat across datamarts, so a choice names both."""

    def label_from_instance(self, obj: Compartment) -> str:
        return f"{obj.datamart.name} ({obj.datamart_id}) · {obj.name} ({obj.compartment_id})"


class ScopedModelForm(forms.ModelForm):
    """A model form whose datamart-bound choices are limited to `datamart_ids` (set per request)."""

    datamart_ids: list[int] | None = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.ModelChoiceField):
                choices = scoped_choices(field.queryset.model, self.datamart_ids)
                if choices is not None:
                    field.queryset = choices


class ScopedQuerysetMixin:
    """Querysets and foreign-key choices limited to the user's datamarts (admins and inlines)."""

    # The lookup from the model to its datamart's id.
    datamart_lookup = "datamart_id"

    def get_queryset(self, request):
        return scope_queryset(
            super().get_queryset(request), user_datamart_ids(request), self.datamart_lookup
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            choices = scoped_choices(db_field.remote_field.model, user_datamart_ids(request))
            if choices is not None:
                kwargs["queryset"] = choices
                if db_field.remote_field.model is Compartment:
                    kwargs["form_class"] = CompartmentChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# "Select all" can reach millions of rows: one request must not try to delete them.
BULK_DELETE_LIMIT = 1000


class ReadOnlyInline(ScopedQuerysetMixin, admin.TabularInline):
    """Shown with the parent; changed through the parent's services, never row by row."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        parent = self.parent_model._meta
        return request.user.has_perm(f"{parent.app_label}.view_{parent.model_name}") or (
            request.user.has_perm(f"{parent.app_label}.change_{parent.model_name}")
        )


class DatamartScopedAdmin(ScopedQuerysetMixin, ServiceWritesMixin, admin.ModelAdmin):
    """The base of every admin of the domain: scoped reads, writes through services."""

    form = ScopedModelForm
    bulk_delete_hint = "select fewer"

    def get_deleted_objects(self, objs, request):
        if isinstance(objs, QuerySet) and objs[: BULK_DELETE_LIMIT + 1].count() > BULK_DELETE_LIMIT:
            too_many = (
                f"more than {BULK_DELETE_LIMIT:,} {self.opts.verbose_name_plural} are selected: "
                f"{self.bulk_delete_hint}"
            )
            return [], {}, set(), [too_many]
        return super().get_deleted_objects(objs, request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # A subclass per request: the form's instances scope their own copies of the fields.
        return type(form.__name__, (form,), {"datamart_ids": user_datamart_ids(request)})

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Out of the user's datamarts or gone: the same answer, so nothing leaks.
            raise Http404(f"no {self.opts.verbose_name} {object_id} here")
        return obj

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ProfileError as error:
            # A rule a service enforced after the form was valid (a race): the transaction
            # rolled back; say why rather than fail.
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ProfileError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class IdListFilter(admin.SimpleListFilter):
    """A filter on one foreign key's id (`field`): a value that is not an id matches nothing."""

    field = ""

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.field: int(value)})


class DatamartListFilter(IdListFilter):
    """Shown only to users who see more than one datamart."""

    title = "datamart"
    parameter_name = "datamart"
    field = "datamart_id"

    def lookups(self, request, model_admin):
        datamarts = scope_queryset(Datamart.objects.all(), user_datamart_ids(request), "id")
        choices = [(str(datamart.id), str(datamart)) for datamart in datamarts]
        return choices if len(choices) > 1 else []


class CompartmentListFilter(IdListFilter):
    """The user's compartments, named with their datamart (ids repeat across datamarts)."""

    title = "compartment"
    parameter_name = "compartment"
    field = "compartment_id"

    def lookups(self, request, model_admin):
        compartments = scope_queryset(
            Compartment.objects.select_related("datamart"),
            user_datamart_ids(request),
            "datamart_id",
        )
        several = len({compartment.datamart_id for compartment in compartments}) > 1
        return [
            (
                str(compartment.pk),
                f"{compartment.datamart.name} · {compartment}" if several else str(compartment),
            )
            for compartment in compartments
        ]


def selected_compartment(request: HttpRequest) -> Compartment | None:
    """The compartment the list is filtered on, if exactly one and visible to the user."""
    value = request.GET.get(CompartmentListFilter.parameter_name, "")
    if not value.isdigit():
        return None
    return scope_queryset(
        Compartment.objects.filter(pk=int(value)), user_datamart_ids(request), "datamart_id"
    ).first()
