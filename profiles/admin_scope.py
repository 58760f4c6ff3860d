"""Who sees what in the back-office: staff see the datamarts they are members of.

One mixin, `DatamartScopedAdmin`, scopes every queryset the admin builds (lists, searches,
counts, change pages, exports that go through `get_queryset`), every foreign-key choice and
every inline to the user's datamarts. Superusers see all. A change page of another datamart
answers 404, the same as a page that does not exist.
"""

from __future__ import annotations

import contextlib
import uuid

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect

from profiles.errors import ProfileError
from profiles.models import Compartment, Datamart, UserAccount, UserAgent, UserEmail

_CACHE_ATTRIBUTE = "_profiles_datamart_ids"


def user_datamart_ids(request: HttpRequest) -> list[int] | None:
    """The ids of the datamarts the user may see; None for a superuser (all of them)."""
    if not hasattr(request, _CACHE_ATTRIBUTE):
        user = request.user
        if user.is_active and user.is_superuser:
            ids = None
        elif user.is_active and user.is_staff:
            ids = sorted(user.datamart_memberships.values_list("datamart_id", flat=True))
        else:
            ids = []
        setattr(request, _CACHE_ATTRIBUTE, ids)
    return getattr(request, _CACHE_ATTRIBUTE)


def visible_datamart_ids(request: HttpRequest) -> list[int]:
    """The same as a concrete list, for lookups that need `datamart_id IN (…)` to use an index."""
    ids = user_datamart_ids(request)
    return list(Datamart.objects.values_list("id", flat=True)) if ids is None else ids


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


def point_ids_matching(term: str, *, datamart_ids: list[int]) -> list:
    """User points named by an exact account id, email hash, user agent id or point id.

    Each lookup names the datamarts (and compartments) explicitly, so it is served by the
    unique indexes that lead with them, never by a scan.
    """
    if not datamart_ids:
        return []
    compartment_ids = list(
        Compartment.objects.filter(datamart_id__in=datamart_ids).values_list("id", flat=True)
    )
    found: set = set()
    found.update(
        UserAccount.objects.filter(
            compartment_id__in=compartment_ids, user_account_id=term
        ).values_list("user_point_id", flat=True)
    )
    found.update(
        UserEmail.objects.filter(datamart_id__in=datamart_ids, email_hash=term).values_list(
            "user_point_id", flat=True
        )
    )
    found.update(
        UserAgent.objects.filter(datamart_id__in=datamart_ids, user_agent_id=term).values_list(
            "user_point_id", flat=True
        )
    )
    with contextlib.suppress(ValueError):
        found.add(uuid.UUID(term))
    return sorted(found, key=str)


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


class DatamartScopedAdmin(ScopedQuerysetMixin, admin.ModelAdmin):
    """The base of every admin of the domain."""

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


def own_account_q(term: str, *, datamart_ids: list[int]) -> Q:
    """Profiles whose own account id is `term`, by the (datamart, compartment, account) index."""
    compartment_ids = list(
        Compartment.objects.filter(datamart_id__in=datamart_ids).values_list("id", flat=True)
    )
    return Q(datamart_id__in=datamart_ids, compartment_id__in=compartment_ids, user_account_id=term)


def exact_search_q(request: HttpRequest, term: str) -> Q:
    """Search of profiles: the profile's own account id, or any identifier of its point."""
    datamart_ids = visible_datamart_ids(request)
    query = own_account_q(term, datamart_ids=datamart_ids)
    point_ids = point_ids_matching(term, datamart_ids=datamart_ids)
    if point_ids:
        query |= Q(user_point_id__in=point_ids)
    return query
