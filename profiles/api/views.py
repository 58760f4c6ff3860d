"""The endpoints of SPEC §5: parse the request, call a selector or a service, render.

Every view under /datamarts/{dm} derives from DatamartView, the one place that authenticates,
throttles and scopes: a datamart the caller may not see answers 404 like a missing one, and
every object is then looked up through that datamart only.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, UnsupportedMediaType
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from profiles.api import schema as docs
from profiles.api.authentication import TokenUser
from profiles.api.exceptions import ApiError
from profiles.api.pagination import (
    PAGE_QUERY_PARAMETERS,
    decode_cursor,
    encode_cursor,
    keyset_page,
    page_limit,
)
from profiles.api.parsers import StrictJSONParser
from profiles.api.paths import (
    bad_request,
    parse_compartment_id,
    parse_epoch_ms,
    parse_property_filter,
    parse_selector,
    parse_user_account_id,
)
from profiles.api.permissions import IsApiClient
from profiles.api.renderers import (
    Envelope,
    EnvelopeJSONRenderer,
    JSONOnlyNegotiation,
    StaffBrowsableAPIRenderer,
)
from profiles.api.serializers import (
    CompartmentOutputSerializer,
    CompartmentSerializer,
    CompartmentUpdateSerializer,
    ProfileObjectSerializer,
    UserPointSerializer,
)
from profiles.api.throttling import ApiTokenRateThrottle
from profiles.history import ChangeSource
from profiles.merge import MergeMode, Strategy, choose_merge_mode
from profiles.models import Compartment, Datamart, ProfileChange
from profiles.profile_read import profile_get
from profiles.selectors import (
    ProfileSearch,
    compartment_find,
    datamart_get_for_caller,
    profile_search,
    user_point_detail,
    user_point_get,
    user_point_profiles,
)
from profiles.services import (
    WriteOutcome,
    compartment_create,
    compartment_delete,
    compartment_update,
    profile_delete,
    profile_object_upsert,
    user_point_delete,
)

MAX_PROPERTY_FILTERS = 20
SEARCH_PARAMETERS = frozenset(
    {"compartment_id", "user_account_id", "modified_since", "limit", "cursor"}
)


class ApiView(APIView):
    """JSON in (strictly), the envelope out, whatever the client's Accept header says."""

    parser_classes = [StrictJSONParser]
    renderer_classes = [EnvelopeJSONRenderer, StaffBrowsableAPIRenderer]
    content_negotiation_class = JSONOnlyNegotiation

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Django reads a body of the length the request declares: a chunked body without
        # one would read as empty (an "empty file" for an upload), so it is refused as such.
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
            "CONTENT_LENGTH"
        ):
            raise ApiError(
                status.HTTP_411_LENGTH_REQUIRED,
                "LENGTH_REQUIRED",
                "send the body with a Content-Length header: chunked transfer encoding is not "
                "supported",
            )


class DatamartView(ApiView):
    permission_classes = [IsApiClient]
    throttle_classes = [ApiTokenRateThrottle]
    datamart: Datamart
    # The query parameters each method reads: any other is refused (UNKNOWN_PARAMETER), never
    # silently ignored, e.g. a `?update_strategy` on a PUT or a `?dry_run` on an erase. None for
    # a view that checks its own (the search, whose `p.` filters are open-ended).
    query_parameters: dict[str, frozenset[str]] | None = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        for name, values in request.query_params.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                raise bad_request("INVALID_PARAMETER", "NUL in a query parameter")
            if len(values) > 1 and not name.startswith("p."):  # property filters combine (AND)
                raise bad_request(
                    "REPEATED_PARAMETER",
                    f"parameter {name[:64]!r} is given {len(values)} times: give it once",
                    field=name[:64],
                )
        user = request.user
        datamart = datamart_get_for_caller(
            datamart_id=int(kwargs["dm"]),
            token_datamart=user.token.datamart if isinstance(user, TokenUser) else None,
            user=None if isinstance(user, TokenUser) else user,
        )
        if datamart is None:
            raise NotFound(f"datamart {kwargs['dm']} not found")
        self.datamart = datamart
        if self.query_parameters is not None:
            known = self.query_parameters.get(request.method.lower(), frozenset())
            for name in request.query_params:
                if name not in known and name != "format":  # DRF's ?format=api for staff
                    takes = ", ".join(sorted(known)) or "none"
                    raise bad_request(
                        "UNKNOWN_PARAMETER",
                        f"unknown parameter {name[:64]!r}: this request takes {takes}",
                        field=name[:64],
                    )

    def scoped(self, queryset):
        return queryset.filter(datamart=self.datamart)

    def change_source(self) -> ChangeSource:
        user = self.request.user
        if isinstance(user, TokenUser):
            return ChangeSource(kind=ProfileChange.Source.API, api_token_id=user.token.pk)
        return ChangeSource(kind=ProfileChange.Source.API, user_id=user.pk)

    def json_body(self):
        """The request's JSON value; an empty or untyped body is refused, never read as {}."""
        request = self.request
        if not request.content_type and request.META.get("CONTENT_LENGTH", "0") not in ("", "0"):
            raise UnsupportedMediaType("", detail="send the body as Content-Type: application/json")
        body = request.data
        if request.stream is None:
            raise bad_request("EMPTY_BODY", "this request needs a JSON body")
        return body


def page_response(items: list, next_cursor: str | None = None) -> Response:
    return Response(Envelope.page(items, next_cursor=next_cursor))


class NotFoundView(ApiView):
    """Any other path under /api/v1: the JSON 404, for every method."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound("no such endpoint")


# --- compartments ---------------------------------------------------------------------------


class CompartmentListView(DatamartView):
    query_parameters = {"get": PAGE_QUERY_PARAMETERS}

    @extend_schema(
        operation_id="compartments_list",
        summary="The datamart's compartments",
        parameters=docs.PAGE_PARAMETERS,
        responses={200: CompartmentOutputSerializer(many=True)},
        tags=["compartments"],
    )
    def get(self, request, dm):
        rows, next_cursor = keyset_page(
            self.scoped(Compartment.objects.all()),
            keys=("compartment_id",),
            query_params=request.query_params,
        )
        return page_response(CompartmentOutputSerializer(rows, many=True).data, next_cursor)

    @extend_schema(
        operation_id="compartments_create",
        summary="Create a compartment",
        request=CompartmentSerializer,
        responses={201: CompartmentOutputSerializer, 409: docs.ERROR},
        tags=["compartments"],
    )
    def post(self, request, dm):
        serializer = CompartmentSerializer(data=self.json_body())
        serializer.is_valid(raise_exception=True)
        compartment = compartment_create(datamart=self.datamart, **serializer.validated_data)
        compartment.refresh_from_db()
        return Response(
            CompartmentOutputSerializer(compartment).data, status=status.HTTP_201_CREATED
        )


class CompartmentDetailView(DatamartView):
    def get_compartment(self, compartment_id: str):
        compartment = compartment_find(datamart=self.datamart, compartment_id=int(compartment_id))
        if compartment is None:
            raise NotFound(f"compartment {compartment_id} not found")
        return compartment

    @extend_schema(
        operation_id="compartments_retrieve",
        summary="One compartment",
        responses={200: CompartmentOutputSerializer},
        tags=["compartments"],
    )
    def get(self, request, dm, compartment_id):
        return Response(CompartmentOutputSerializer(self.get_compartment(compartment_id)).data)

    @extend_schema(
        operation_id="compartments_update",
        summary="Rename a compartment or make it the default",
        request=CompartmentUpdateSerializer,
        responses={200: CompartmentOutputSerializer, 409: docs.ERROR},
        tags=["compartments"],
    )
    def put(self, request, dm, compartment_id):
        compartment = self.get_compartment(compartment_id)
        serializer = CompartmentUpdateSerializer(
            data=self.json_body(), context={"compartment": compartment}
        )
        serializer.is_valid(raise_exception=True)
        compartment = compartment_update(
            compartment=compartment,
            name=serializer.validated_data["name"],
            is_default=serializer.validated_data.get("is_default", compartment.is_default),
        )
        return Response(CompartmentOutputSerializer(compartment).data)

    @extend_schema(
        operation_id="compartments_destroy",
        summary="Delete a compartment that holds no profiles or accounts",
        responses={200: None, 409: docs.ERROR},
        tags=["compartments"],
    )
    def delete(self, request, dm, compartment_id):
        compartment_delete(compartment=self.get_compartment(compartment_id))
        return Response(None)


# --- user points and profiles --------------------------------------------------------------


class UserPointView(DatamartView):
    @extend_schema(
        operation_id="user_points_retrieve",
        summary="A user point with its identifiers and profiles",
        responses={200: UserPointSerializer},
        tags=["user points"],
    )
    def get(self, request, dm, selector):
        point = user_point_detail(datamart=self.datamart, selector=parse_selector(selector))
        if point is None:
            raise NotFound("user point not found")
        return Response(UserPointSerializer(point).data)

    @extend_schema(
        operation_id="user_points_destroy",
        summary="Delete a user point, its identifiers and its profiles",
        responses={200: None},
        tags=["user points"],
    )
    def delete(self, request, dm, selector):
        point = user_point_get(datamart=self.datamart, selector=parse_selector(selector))
        if point is None:
            raise NotFound("user point not found")
        user_point_delete(user_point=point)
        return Response(None)


class UserPointProfilesView(DatamartView):
    """Every profile of the point at once (a point holds few): no paging parameters."""

    @extend_schema(
        operation_id="user_point_profiles_list",
        summary="The profiles of a user point",
        responses={200: ProfileObjectSerializer(many=True)},
        tags=["user points"],
    )
    def get(self, request, dm, selector):
        point = user_point_get(datamart=self.datamart, selector=parse_selector(selector))
        if point is None:
            raise NotFound("user point not found")
        profiles = user_point_profiles(user_point=point).order_by("id")
        return page_response(ProfileObjectSerializer(profiles, many=True).data)


class ProfileView(DatamartView):
    """One profile, addressed by compartment_id={c}[/user_account_id={a}] under a point."""

    query_parameters = {
        "put": frozenset({"update_strategy"}),
        "patch": frozenset({"update_strategy", "merge_objects"}),
    }

    def address(self, compartment_id: str, user_account_id: str | None) -> tuple[int, str | None]:
        return (
            parse_compartment_id(compartment_id),
            None if user_account_id is None else parse_user_account_id(user_account_id),
        )

    def write(self, mode: MergeMode, selector, compartment_id, user_account_id) -> Response:
        compartment, account = self.address(compartment_id, user_account_id)
        write = profile_object_upsert(
            datamart=self.datamart,
            selector=parse_selector(selector),
            compartment_id=compartment,
            user_account_id=account,
            user_profile=self.json_body(),
            mode=mode,
            source=self.change_source(),
        )
        code = (
            status.HTTP_201_CREATED if write.outcome == WriteOutcome.CREATED else status.HTTP_200_OK
        )
        return Response(ProfileObjectSerializer(write.profile).data, status=code)

    @extend_schema(
        operation_id="profile_retrieve",
        summary="One profile",
        responses={200: ProfileObjectSerializer},
        examples=[docs.PROFILE_EXAMPLE],
        tags=["profiles"],
    )
    def get(self, request, dm, selector, compartment_id, user_account_id=None):
        compartment, account = self.address(compartment_id, user_account_id)
        profile = profile_get(
            datamart_id=self.datamart.id,
            selector=parse_selector(selector),
            compartment_id=compartment,
            user_account_id=account,
        )
        if profile is None:
            raise NotFound("profile not found")
        return Response(ProfileObjectSerializer(profile).data)

    @extend_schema(
        operation_id="profile_replace",
        summary="Create or replace a profile (FORCE_REPLACE)",
        description="The custom properties become exactly the body's. An identifier selector "
        "not known yet creates its user point; a {uuid} selector must exist. `$compartment_id` "
        "and `$user_account_id`, when sent, must equal the path; `$creation_ts` and "
        "`$last_modified_ts` are ignored. 201 when the profile was created.",
        request=ProfileObjectSerializer,
        responses={200: ProfileObjectSerializer, 201: ProfileObjectSerializer},
        examples=[docs.PROFILE_EXAMPLE, docs.PROFILE_REQUEST_EXAMPLE],
        tags=["profiles"],
    )
    def put(self, request, dm, selector, compartment_id, user_account_id=None):
        strategy = request.query_params.get("update_strategy", Strategy.FORCE_REPLACE.value)
        if strategy != Strategy.FORCE_REPLACE.value:
            raise bad_request(
                "INVALID_UPDATE_STRATEGY",
                "PUT replaces the profile (FORCE_REPLACE); update or remove keys with PATCH",
                field="update_strategy",
            )
        return self.write(
            MergeMode(Strategy.FORCE_REPLACE), selector, compartment_id, user_account_id
        )

    @extend_schema(
        operation_id="profile_update",
        summary="Update a profile (PARTIAL_UPDATE deep merge, or PARTIAL_DELETE)",
        description="Deep merge by default; `?update_strategy=PARTIAL_DELETE` removes "
        "what the body names; `?merge_objects=false` makes the update shallow. A PARTIAL_DELETE "
        "of a missing profile answers 404 and creates no profile (an unknown identifier's user "
        "point is created, as by an import UPSERT).",
        parameters=[
            OpenApiParameter(
                "update_strategy",
                str,
                enum=["PARTIAL_UPDATE", "PARTIAL_DELETE"],
                description="PARTIAL_UPDATE (the default) or PARTIAL_DELETE.",
            ),
            OpenApiParameter(
                "merge_objects", bool, description="PARTIAL_UPDATE only; default true."
            ),
        ],
        request=ProfileObjectSerializer,
        responses={200: ProfileObjectSerializer, 201: ProfileObjectSerializer},
        examples=[docs.PROFILE_EXAMPLE, docs.PROFILE_PATCH_EXAMPLE],
        tags=["profiles"],
    )
    def patch(self, request, dm, selector, compartment_id, user_account_id=None):
        mode = choose_merge_mode(
            update_strategy=request.query_params.get("update_strategy"),
            merge_objects=request.query_params.get("merge_objects"),
        )
        if mode.strategy is Strategy.FORCE_REPLACE:
            raise bad_request(
                "INVALID_UPDATE_STRATEGY",
                "PATCH takes PARTIAL_UPDATE or PARTIAL_DELETE; replace with PUT",
                field="update_strategy",
            )
        return self.write(mode, selector, compartment_id, user_account_id)

    @extend_schema(
        operation_id="profile_destroy",
        summary="Delete a profile (the user point and its identifiers stay)",
        responses={200: None},
        tags=["profiles"],
    )
    def delete(self, request, dm, selector, compartment_id, user_account_id=None):
        compartment_number, account = self.address(compartment_id, user_account_id)
        point = user_point_get(datamart=self.datamart, selector=parse_selector(selector))
        compartment = compartment_find(datamart=self.datamart, compartment_id=compartment_number)
        if point is None or compartment is None:
            raise NotFound("profile not found")
        write = profile_delete(
            user_point=point,
            compartment=compartment,
            user_account_id=account,
            source=self.change_source(),
        )
        if write.outcome == WriteOutcome.NOT_FOUND:
            raise NotFound("profile not found")
        return Response(None)


class ProfileSearchView(DatamartView):
    query_parameters = None  # SEARCH_PARAMETERS and any `p.` filter, checked in get

    @extend_schema(
        operation_id="profiles_search",
        summary="Search profiles",
        description="Filters combine with AND. `p.<path>=<value>` compares the custom property "
        "at the dotted path: VALUE is read as a JSON literal when it is one (true, false, null, "
        'numbers, "quoted string"), else as a string; `p.x=null` matches a stored null, not a '
        "missing key. Results are in id order, paged by cursor.",
        parameters=docs.SEARCH_PARAMETERS,
        responses={200: ProfileObjectSerializer(many=True)},
        tags=["profiles"],
    )
    def get(self, request, dm):
        params = request.query_params
        filters = []
        for name, values in params.lists():
            if name.startswith("p."):
                filters.extend(parse_property_filter(name, value) for value in values)
            elif name not in SEARCH_PARAMETERS:
                raise bad_request(
                    "UNKNOWN_PARAMETER",
                    f"unknown parameter {name[:64]!r}: use compartment_id, user_account_id, "
                    "modified_since, p.<path>, limit or cursor",
                    field=name[:64],
                )
        if len(filters) > MAX_PROPERTY_FILTERS:
            raise bad_request(
                "TOO_MANY_FILTERS", f"at most {MAX_PROPERTY_FILTERS} property filters at once"
            )
        search = ProfileSearch(
            compartment_id=None
            if params.get("compartment_id") is None
            else parse_compartment_id(params["compartment_id"]),
            user_account_id=None
            if params.get("user_account_id") is None
            else parse_user_account_id(params["user_account_id"]),
            modified_since=None
            if params.get("modified_since") is None
            else parse_epoch_ms(params["modified_since"], field="modified_since"),
            properties=tuple(filters),
        )
        limit = page_limit(params)
        after = decode_cursor(params, size=1)
        profiles = profile_search(
            datamart=self.datamart,
            search=search,
            after_id=after[0] if after else None,
            limit=limit + 1,
        )
        next_cursor = None
        if len(profiles) > limit:
            profiles = profiles[:limit]
            next_cursor = encode_cursor([profiles[-1].pk])
        return page_response(ProfileObjectSerializer(profiles, many=True).data, next_cursor)
