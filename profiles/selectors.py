"""Every read of the domain that the API (and anything else) needs, scoped to one datamart."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from profiles.compartments import DatamartCompartments
from profiles.errors import ProfileError
from profiles.identifiers import Identifier
from profiles.models import (
    Compartment,
    Datamart,
    DatamartMembership,
    ProfileChange,
    UserPoint,
    UserProfile,
)
from profiles.points import identifier_key, points_find
from profiles.property_paths import property_filter_q

# A user point named by its id, or by one of its identifiers (the REST API's selectors).
UserPointSelector = uuid.UUID | Identifier


def datamart_get_for_caller(
    *, datamart_id: int, token_datamart_id: int | None = None, user: Any = None
) -> Datamart | None:
    """The datamart if the caller may see it: a token its own one, staff their memberships.

    A datamart the caller may not see is answered like a missing one.
    """
    queryset = Datamart.objects.filter(id=datamart_id)
    if token_datamart_id is not None:
        if token_datamart_id != datamart_id:
            return None
    elif user is None or not user.is_authenticated:
        return None
    elif not user.is_superuser:
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


def user_point_get(*, datamart: Datamart, selector: UserPointSelector) -> UserPoint | None:
    if isinstance(selector, uuid.UUID):
        return UserPoint.objects.filter(datamart=datamart, pk=selector).first()
    try:
        return user_point_find(datamart=datamart, identifier=selector)
    except ProfileError:
        return None  # an account in a compartment that does not exist: no such point


def user_point_detail(*, datamart: Datamart, selector: UserPointSelector) -> UserPoint | None:
    """The point with its identifiers and profiles loaded for rendering."""
    point = user_point_get(datamart=datamart, selector=selector)
    if point is None:
        return None
    return (
        UserPoint.objects.filter(pk=point.pk)
        .prefetch_related("accounts__compartment", "emails", "agents", "profiles__compartment")
        .get()
    )


def user_point_profiles(*, user_point: UserPoint) -> QuerySet[UserProfile]:
    return UserProfile.objects.filter(user_point=user_point).select_related("compartment")


def profile_changes(*, profile: UserProfile) -> QuerySet[ProfileChange]:
    """A profile's recorded changes, newest first: found through its user point's index."""
    return ProfileChange.objects.filter(
        user_point_id=profile.user_point_id, profile_id=profile.pk
    ).select_related("user", "api_token")


def profile_get(
    *,
    datamart: Datamart,
    selector: UserPointSelector,
    compartment_id: int,
    user_account_id: str | None,
) -> UserProfile | None:
    point = user_point_get(datamart=datamart, selector=selector)
    compartment = compartment_find(datamart=datamart, compartment_id=compartment_id)
    if point is None or compartment is None:
        return None
    return (
        UserProfile.objects.filter(
            user_point=point, compartment=compartment, user_account_id=user_account_id
        )
        .select_related("compartment")
        .first()
    )


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
