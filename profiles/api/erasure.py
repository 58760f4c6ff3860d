"""One person's rights (SPEC §7): the history of their user point (access), and its erasure
(the right to be forgotten, docs/rules.md#erasure)."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from profiles.api import schema as docs
from profiles.api.pagination import PAGE_QUERY_PARAMETERS, keyset_page
from profiles.api.paths import parse_selector
from profiles.api.serializers import ErasureSerializer, ProfileChangeSerializer
from profiles.api.views import DatamartView, page_response
from profiles.models import UserPoint
from profiles.selectors import user_point_changes, user_point_get
from profiles.services import user_point_erase


class UserPointScopedView(DatamartView):
    def get_point(self, selector: str) -> UserPoint:
        point = user_point_get(datamart=self.datamart, selector=parse_selector(selector))
        if point is None:
            raise NotFound("user point not found")
        return point


class UserPointHistoryView(UserPointScopedView):
    query_parameters = {"get": PAGE_QUERY_PARAMETERS}

    @extend_schema(
        operation_id="user_point_history_list",
        summary="The recorded changes of a user point's profiles, newest first",
        description="Every change of the point's profiles, deleted ones included: when, the "
        "action, the source and who (staff user, API token name or import execution), and the "
        "top-level keys that changed. Paged by cursor.",
        parameters=docs.PAGE_PARAMETERS,
        responses={200: ProfileChangeSerializer(many=True)},
        tags=["user points"],
    )
    def get(self, request, dm, selector):
        rows, next_cursor = keyset_page(
            user_point_changes(user_point=self.get_point(selector)),
            keys=("id",),
            descending=True,
            query_params=request.query_params,
        )
        return page_response(ProfileChangeSerializer(rows, many=True).data, next_cursor)


class UserPointEraseView(UserPointScopedView):
    @extend_schema(
        operation_id="user_point_erase",
        summary="Erase a person: the user point, its identifiers, its profiles, their traces",
        description="Deletes the point, its identifiers and profiles; its history keeps only "
        "when and by whom each change and the erasure were made, under a new id; stored import "
        "line errors naming its identifiers lose their identifier, source record and message. "
        "A second erase answers 404.",
        request=None,
        responses={200: ErasureSerializer},
        tags=["user points"],
    )
    def post(self, request, dm, selector):
        erasure = user_point_erase(
            datamart=self.datamart,
            user_point=self.get_point(selector),
            source=self.change_source(),
        )
        return Response(ErasureSerializer(asdict(erasure)).data)
