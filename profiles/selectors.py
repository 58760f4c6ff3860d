"""Every read of the domain that the API (and anything else) needs, scoped to one datamart.

The back-office's lists read here too: `user_profiles_for_list` is the profile list's rows
for its filters and search, which the list and the export worker both use.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import QueryDict

from profiles.compartments import DatamartCompartments
from profiles.errors import ProfileError
from profiles.identifiers import Identifier, UserPointSelector
from profiles.models import (
    Compartment,
    Datamart,
    DatamartMembership,
    ProfileChange,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)
from profiles.points import identifier_key, points_find
from profiles.profile_read import selected_point_ids
from profiles.property_paths import property_expression_parse, property_filter_q


def datamart_get_for_caller(
    *, datamart_id: int, token_datamart: Datamart | None = None, user: Any = None
) -> Datamart | None:
    """The datamart if the caller may see it: a token its own one, staff their memberships.

    A datamart the caller may not see is answered like a missing one. A token's datamart was
    loaded with the token: no query.
    """
    if token_datamart is not None:
        return token_datamart if token_datamart.id == datamart_id else None
    if user is None or not user.is_authenticated:
        return None
    queryset = Datamart.objects.filter(id=datamart_id)
    if not user.is_superuser:
        queryset = queryset.filter(
            id__in=DatamartMembership.objects.filter(user=user).values("datamart_id")
        )
    return queryset.first()


def compartment_get(*, datamart: Datamart, compartment_id: int | None) -> Compartment:
    """The named compartment, or the default one; an unknown id is an error, never created."""
    return DatamartCompartments(datamart).get(compartment_id)


def user_point_find(*, datamart: Datamart, identifier: Identifier) -> UserPoint | None:
    """The point an identifier names; an account in an unknown compartment is an error."""
    key = identifier_key(identifier, DatamartCompartments(datamart))
    point_id = points_find(datamart, [key]).get(key)
    return None if point_id is None else UserPoint.objects.get(pk=point_id)


def profile_find(
    *,
    user_point: UserPoint,
    compartment: Compartment,
    user_account_id: str | None,
    lock: bool = False,
) -> UserProfile | None:
    queryset = UserProfile.objects.filter(
        user_point=user_point, compartment=compartment, user_account_id=user_account_id
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def compartment_find(*, datamart: Datamart, compartment_id: int) -> Compartment | None:
    return Compartment.objects.filter(datamart=datamart, compartment_id=compartment_id).first()


def _selected_points(*, datamart: Datamart, selector: UserPointSelector) -> QuerySet[UserPoint]:
    """The point the selector names (none for an account in a compartment that does not
    exist), in one query: its id is a subquery on the identifier's table (profile_read)."""
    sql, params = selected_point_ids(datamart_id=datamart.id, selector=selector)
    return UserPoint.objects.filter(datamart=datamart, id__in=RawSQL(sql, params))


def user_point_get(*, datamart: Datamart, selector: UserPointSelector) -> UserPoint | None:
    return _selected_points(datamart=datamart, selector=selector).first()


def user_point_detail(*, datamart: Datamart, selector: UserPointSelector) -> UserPoint | None:
    """The point with its identifiers and profiles loaded for rendering: five queries."""
    return (
        _selected_points(datamart=datamart, selector=selector)
        .prefetch_related(
            Prefetch("accounts", queryset=UserAccount.objects.select_related("compartment")),
            "emails",
            "agents",
            Prefetch("profiles", queryset=UserProfile.objects.select_related("compartment")),
        )
        .first()
    )


def user_point_profiles(*, user_point: UserPoint) -> QuerySet[UserProfile]:
    return UserProfile.objects.filter(user_point=user_point).select_related("compartment")


def with_profile_existing(changes: QuerySet[ProfileChange]) -> QuerySet[ProfileChange]:
    """Each change with `profile_exists`: whether its profile is still stored (deleted or
    erased since, a link to it would lead nowhere). One index probe a row."""
    return changes.annotate(
        profile_exists=Exists(UserProfile.objects.filter(pk=OuterRef("profile_id")))
    )


def profile_changes(*, profile: UserProfile) -> QuerySet[ProfileChange]:
    """A profile's recorded changes, newest first: found through its user point's index."""
    return ProfileChange.objects.filter(
        user_point_id=profile.user_point_id, profile_id=profile.pk
    ).select_related("user", "api_token")


def user_point_changes(*, user_point: UserPoint) -> QuerySet[ProfileChange]:
    """The recorded changes of all the point's profiles, deleted ones included."""
    return ProfileChange.objects.filter(user_point_id=user_point.pk).select_related(
        "user", "api_token"
    )


def profile_change_values_after(*, change: ProfileChange) -> dict[str, Any]:
    """The changed keys' values just after `change`, a key absent after it left out
    (rules.md#history): a later change of the same profile that changed the key kept its value
    before (absent from its `previous_values`: the key was absent); a key no later change
    touched holds the profile's current value. A deletion leaves nothing after it.

    The later changes are read through the user point's index, oldest first, until every
    key is placed.
    """
    if change.action in (ProfileChange.Action.DELETED, ProfileChange.Action.ERASED):
        return {}
    pending = set(change.changed_keys)
    after: dict[str, Any] = {}
    later = (
        ProfileChange.objects.filter(
            user_point_id=change.user_point_id, profile_id=change.profile_id, id__gt=change.pk
        )
        .order_by("id")
        .values_list("changed_keys", "previous_values")
    )
    for keys, previous in later.iterator(chunk_size=50):
        for key in pending.intersection(keys):
            if key in previous:
                after[key] = previous[key]
        pending.difference_update(keys)
        if not pending:
            return after
    current = (
        UserProfile.objects.filter(pk=change.profile_id, user_point_id=change.user_point_id)
        .values_list("properties", flat=True)
        .first()
    )
    for key in pending:
        if current is not None and key in current:
            after[key] = current[key]
    return after


# --- profile search --------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyFilter:
    """`p.a.b=VALUE`: the property at path ("a", "b") equals the JSON scalar VALUE."""

    path: tuple[str, ...]
    value: None | bool | int | float | str


@dataclass(frozen=True)
class ProfileSearch:
    compartment_id: int | None = None
    user_account_id: str | None = None
    modified_since: datetime | None = None
    properties: tuple[PropertyFilter, ...] = field(default_factory=tuple)


def profile_search(
    *, datamart: Datamart, search: ProfileSearch, after_id: int | None, limit: int
) -> list[UserProfile]:
    """One page of matching profiles in id order, after the profile `after_id` (keyset paging).

    On PostgreSQL property filters are jsonb containment (`properties @> …`), which the GIN
    index (jsonb_path_ops) serves; elsewhere typed JSON path comparisons.
    """
    queryset = UserProfile.objects.filter(datamart=datamart)
    if search.compartment_id is not None:
        queryset = queryset.filter(
            compartment=compartment_get(datamart=datamart, compartment_id=search.compartment_id)
        )
    if search.user_account_id is not None:
        queryset = queryset.filter(user_account_id=search.user_account_id)
    if search.modified_since is not None:
        queryset = queryset.filter(last_modified_ts__gte=search.modified_since)
    for item in search.properties:
        queryset = queryset.filter(property_filter_q(item.path, item.value))
    if after_id is not None:
        queryset = queryset.filter(id__gt=after_id)
    return list(queryset.select_related("compartment").order_by("id")[:limit])


# --- the back-office lists -------------------------------------------------------------------


def datamart_ids_visible_to(*, user: Any) -> list[int] | None:
    """The datamarts a back-office user sees: None for an active superuser (all of them), the
    memberships of active staff, none for anyone else.

    Kept on the user object for its lifetime (one request, one export run), like Django's
    permission cache.
    """
    if not hasattr(user, "_profiles_datamart_ids"):
        if user.is_active and user.is_superuser:
            ids = None
        elif user.is_active and user.is_staff:
            ids = sorted(user.datamart_memberships.values_list("datamart_id", flat=True))
        else:
            ids = []
        user._profiles_datamart_ids = ids
    return user._profiles_datamart_ids


def datamart_ids_or_all(ids: list[int] | None) -> list[int]:
    """`datamart_ids_visible_to` as a concrete list, for lookups that need `datamart_id IN (…)`
    to use an index."""
    return list(Datamart.objects.values_list("id", flat=True)) if ids is None else ids


def point_ids_matching(term: str, *, datamart_ids: list[int]) -> list:
    """User points named by an exact account id, email hash, user agent id or point id.

    Each lookup names the datamarts (and compartments) explicitly, so it is served by the
    unique indexes that lead with them, never by a scan. No identifier holds a NUL (refused
    when written; PostgreSQL's text cannot): a term holding one names nothing.
    """
    if not datamart_ids or "\x00" in term:
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


def own_account_q(term: str, *, datamart_ids: list[int]) -> Q:
    """Profiles whose own account id is `term`, by the (datamart, compartment, account) index;
    none for a term holding a NUL, which no account id holds."""
    if "\x00" in term:
        return Q(pk__in=[])
    compartment_ids = list(
        Compartment.objects.filter(datamart_id__in=datamart_ids).values_list("id", flat=True)
    )
    return Q(datamart_id__in=datamart_ids, compartment_id__in=compartment_ids, user_account_id=term)


def profile_search_q(term: str, *, datamart_ids: list[int]) -> Q:
    """Search of profiles: the profile's own account id, or any identifier of its point."""
    query = own_account_q(term, datamart_ids=datamart_ids)
    point_ids = point_ids_matching(term, datamart_ids=datamart_ids)
    if point_ids:
        query |= Q(user_point_id__in=point_ids)
    return query


# The profile list's query string parameters; an export job keeps that query string.
DATAMART_PARAMETER = "datamart"
COMPARTMENT_PARAMETER = "compartment"
MODIFIED_FROM_PARAMETER = "last_modified_ts__gte"
MODIFIED_BEFORE_PARAMETER = "last_modified_ts__lt"
PROPERTY_PARAMETER = "property"
SEARCH_PARAMETER = "q"
# Not the list's own sort (`o`, column positions): field names, kept with an export job.
ORDERING_PARAMETER = "ordering"
PROFILE_LIST_FILTER_PARAMETERS = (
    DATAMART_PARAMETER,
    COMPARTMENT_PARAMETER,
    MODIFIED_FROM_PARAMETER,
    MODIFIED_BEFORE_PARAMETER,
    PROPERTY_PARAMETER,
)
# The list's default order, newest change first (served by an index).
PROFILE_LIST_ORDERING = ("-last_modified_ts", "-id")


@dataclass(frozen=True)
class ProfileListFilters:
    """The profile list's filters, search and order, as its query string gives them (None:
    absent).

    Each filter reads its parameter's last value, as the admin's filters do; the last-modified
    bounds keep every value (several are OR-ed, like Django's date filter). `ordering` names
    UserProfile fields, `-` for descending.
    """

    datamart: str | None = None
    compartment: str | None = None
    modified_from: tuple[str, ...] = ()
    modified_before: tuple[str, ...] = ()
    property_expression: str = ""
    search: str = ""
    ordering: tuple[str, ...] = PROFILE_LIST_ORDERING

    @classmethod
    def from_query(cls, query: QueryDict) -> ProfileListFilters:
        return cls(
            datamart=query.get(DATAMART_PARAMETER),
            compartment=query.get(COMPARTMENT_PARAMETER),
            modified_from=tuple(query.getlist(MODIFIED_FROM_PARAMETER)),
            modified_before=tuple(query.getlist(MODIFIED_BEFORE_PARAMETER)),
            property_expression=query.get(PROPERTY_PARAMETER, ""),
            search=query.get(SEARCH_PARAMETER, ""),
            ordering=tuple(filter(None, query.get(ORDERING_PARAMETER, "").split(",")))
            or PROFILE_LIST_ORDERING,
        )


def _by_id(queryset: QuerySet, field_name: str, value: str) -> QuerySet:
    """A filter on one foreign key's id: a value that is not an id matches nothing."""
    if not value.isdigit():
        return queryset.none()
    return queryset.filter(**{field_name: int(value)})


def _modified_filter(queryset: QuerySet, parameter: str, values: tuple[str, ...]) -> QuerySet:
    """A last-modified bound; several values of one bound are OR-ed, as Django's date filter does."""
    try:
        return queryset.filter(reduce(or_, (Q((parameter, value)) for value in values)))
    except (ValidationError, ValueError) as error:  # the field parses each value here
        raise ProfileError(
            "INVALID_FILTER", f"{parameter}: {values[-1]!r} is not a date", field=parameter
        ) from error


def _checked_ordering(ordering: tuple[str, ...]) -> tuple[str, ...]:
    fields = {"pk"} | {field.name for field in UserProfile._meta.concrete_fields}
    for item in ordering:
        if item.removeprefix("-") not in fields:
            raise ProfileError(
                "INVALID_ORDERING",
                f"profiles cannot be ordered by {item!r}",
                field=ORDERING_PARAMETER,
            )
    return ordering


def user_profiles_for_list(
    *, user: Any, filters: ProfileListFilters, datamart: Datamart | None = None
) -> QuerySet[UserProfile]:
    """The profiles the back-office list shows `user` with `filters`, in their order (newest
    change first unless they say otherwise); only those of `datamart` when given (an export
    holds one datamart).

    Scoped to the user's datamarts. The datamart filter applies only for a user who sees
    several datamarts (the list offers it to them alone). A property expression that is not
    `path=value`, a bound that is not a date or an unknown order field raises ProfileError
    (`field` names the parameter).
    """
    visible = datamart_ids_visible_to(user=user)
    queryset = UserProfile.objects.all()
    if visible is not None:
        queryset = queryset.filter(datamart_id__in=visible)
    if datamart is not None:
        queryset = queryset.filter(datamart=datamart)
    if filters.datamart is not None and len(datamart_ids_or_all(visible)) > 1:
        queryset = _by_id(queryset, "datamart_id", filters.datamart)
    if filters.compartment is not None:
        queryset = _by_id(queryset, "compartment_id", filters.compartment)
    for parameter, values in (
        (MODIFIED_FROM_PARAMETER, filters.modified_from),
        (MODIFIED_BEFORE_PARAMETER, filters.modified_before),
    ):
        if values:
            queryset = _modified_filter(queryset, parameter, values)
    expression = filters.property_expression.strip()
    if expression:
        path, value = property_expression_parse(expression)
        queryset = queryset.filter(property_filter_q(path, value))
    term = filters.search.strip()
    if term:
        queryset = queryset.filter(
            profile_search_q(term, datamart_ids=datamart_ids_or_all(visible))
        )
    return queryset.order_by(*_checked_ordering(filters.ordering))
