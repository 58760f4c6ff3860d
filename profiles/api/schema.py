"""OpenAPI: hand-written schemas where a serializer cannot say it, examples from SPEC, and the
hooks that put every documented response in the envelope and document the error answers."""

from __future__ import annotations

import copy

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from profiles.api.serializers import ErrorSerializer

ERROR = ErrorSerializer

# --- the profile object -----------------------------------------------------------------------

_PROFILE_DESCRIPTION = (
    "A profile object. The `$` keys are the system's; every other key is a custom "
    "property (any JSON value). A custom key starting with `$` is refused (RESERVED_KEY)."
)

PROFILE_OBJECT_SCHEMA = {
    "type": "object",
    "description": _PROFILE_DESCRIPTION,
    "properties": {
        "$compartment_id": {"type": "integer", "description": "The profile's compartment."},
        "$user_account_id": {
            "type": "string",
            "nullable": True,
            "description": "The profile's account; null for the anonymous profile.",
        },
        "$creation_ts": {"type": "integer", "description": "Epoch milliseconds."},
        "$last_modified_ts": {
            "type": "integer",
            "description": "Epoch milliseconds; changes only when the profile changes.",
        },
        "$user_point_id": {"type": "string", "format": "uuid", "description": "Its user point."},
    },
    "required": [
        "$compartment_id",
        "$user_account_id",
        "$creation_ts",
        "$last_modified_ts",
        "$user_point_id",
    ],
    "additionalProperties": True,
}

PROFILE_REQUEST_SCHEMA = {
    "type": "object",
    "description": _PROFILE_DESCRIPTION
    + " `$compartment_id` and `$user_account_id` may be sent but must equal the path; "
    "`$creation_ts`, `$last_modified_ts` and `$user_point_id` are ignored.",
    "properties": {
        "$compartment_id": {
            "oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}],
            "description": '1606 or "1606"; must equal the path\'s compartment_id.',
        },
        "$user_account_id": {
            "type": "string",
            "nullable": True,
            "description": "Must equal the path's user_account_id (null or absent: none).",
        },
    },
    "additionalProperties": True,
}


class ProfileObjectExtension(OpenApiSerializerExtension):
    target_class = "profiles.api.serializers.ProfileObjectSerializer"

    def map_serializer(self, auto_schema, direction):
        return copy.deepcopy(
            PROFILE_REQUEST_SCHEMA if direction == "request" else PROFILE_OBJECT_SCHEMA
        )


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "profiles.api.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The raw token (`Authorization: <token>`), or `Bearer <token>`.",
        }


# --- parameters ---------------------------------------------------------------------------------

PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit", int, description="Items per page: default 100, at most 1000 (larger is capped)."
    ),
    OpenApiParameter("cursor", str, description="The `next` value of the previous page."),
]

SEARCH_PARAMETERS = [
    OpenApiParameter("compartment_id", int, description="Profiles of this compartment only."),
    OpenApiParameter("user_account_id", str, description="Profiles of this account only."),
    OpenApiParameter(
        "modified_since", int, description="Profiles changed at or after this epoch-ms time."
    ),
    OpenApiParameter(
        "p.newsletter_options.subscribed",
        str,
        description="An example of a property filter `p.<dotted path>=<value>`; any path works.",
        examples=[OpenApiExample("true", value="true")],
    ),
    *PAGE_PARAMETERS,
]

# Path parameters are typed once here, by name, for every operation (see postprocess_envelope).
PATH_PARAMETERS = {
    "dm": {"type": "integer", "minimum": 0, "description": "The datamart id."},
    "compartment_id": {"type": "integer", "minimum": 0, "description": "A compartment id."},
    "import_id": {"type": "integer", "minimum": 1, "description": "A document import id."},
    "execution_id": {"type": "integer", "minimum": 1, "description": "An execution id."},
    "user_account_id": {
        "type": "string",
        "description": "The profile's account (omit the segment for the anonymous profile).",
    },
    "selector": {
        "type": "string",
        "description": "The user point: {uuid}, user_point_id={uuid}, "
        "compartment_id={c},user_account_id={a}, email_hash={h} or user_agent_id={id}. "
        "A value is everything after its `=` and cannot contain `/`.",
        "examples": {
            "account": {"value": "compartment_id=1606,user_account_id=c9879698769OIUYOIY9879879"},
            "email": {"value": "email_hash=9d8ef3b2a1c0"},
            "agent": {"value": "user_agent_id=vec:89998434"},
            "uuid": {"value": "user_point_id=0b8e0f6c-5f7c-4a0e-9a57-6f1f4b3f2a10"},
        },
    },
}

# --- examples (SPEC §1, §4, §5) -------------------------------------------------------------

PROFILE_EXAMPLE = OpenApiExample(
    "profile",
    response_only=True,
    value={
        "$compartment_id": 1606,
        "$user_account_id": "c9879698769OIUYOIY9879879",
        "$creation_ts": 1732867200000,
        "$last_modified_ts": 1732870800000,
        "$user_point_id": "0b8e0f6c-5f7c-4a0e-9a57-6f1f4b3f2a10",
        "firstname": "David",
        "newsletter_options": {"subscribed": True, "preferred_periods": "MONTHLY"},
    },
)
PROFILE_REQUEST_EXAMPLE = OpenApiExample(
    "profile",
    request_only=True,
    value={
        "$compartment_id": 1606,
        "$user_account_id": "c9879698769OIUYOIY9879879",
        "firstname": "David",
        "newsletter_options": {"subscribed": True, "preferred_periods": "MONTHLY"},
    },
)
PROFILE_PATCH_EXAMPLE = OpenApiExample(
    "deep merge",
    request_only=True,
    value={"newsletter_options": {"subscribed": False}, "tags": ["vip"]},
)

# --- hooks ----------------------------------------------------------------------------------

ERROR_COMPONENT = {
    "type": "object",
    "description": "Every error: a message for a person and a machine code.",
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "error": {"type": "string"},
        "error_code": {"type": "string"},
        "field": {"type": "string"},
    },
    "required": ["status", "error", "error_code"],
}
ERROR_DESCRIPTIONS = {
    "400": "Bad input: malformed JSON, a wrong type, an unknown field, a domain rule.",
    "401": "No API token, or an unknown, revoked or malformed one.",
    "403": "A logged-in user who is not staff, or a missing CSRF token in a session.",
    "404": "No such object in this datamart (objects of other datamarts answer the same).",
    "405": "Method not allowed on this path.",
    "409": "Conflicts with the current state (e.g. the default compartment).",
    "413": "The body is too large.",
    "415": "The Content-Type is not the one this operation takes.",
    "429": "Rate limit of the token reached; retry after `Retry-After` seconds.",
}


def drop_duplicate_routes(endpoints):
    """Each route answers with or without a trailing slash (its pattern ends in `/?$`, which
    the generator reads as a slash): document it without."""
    return [
        (path.removesuffix("/"), path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if path_regex.endswith("/?$") or not path.endswith("/")
    ]


def _ok_envelope(data_schema: dict, *, page: bool) -> dict:
    envelope = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["ok"]}, "data": data_schema},
        "required": ["status", "data"],
    }
    if page:
        envelope["properties"]["count"] = {
            "type": "integer",
            "description": "Items in this page.",
        }
        envelope["properties"]["next"] = {
            "type": "string",
            "nullable": True,
            "description": "The cursor of the next page (pass it as `cursor`); null at the end.",
        }
        envelope["required"] += ["count", "next"]
    return envelope


def _wrap_success(response: dict) -> None:
    content = response.setdefault("content", {})
    media = content.setdefault(
        "application/json",
        {"schema": {"type": "object", "nullable": True, "description": "Always null."}},
    )
    schema = media.get("schema", {})
    page = schema.get("type") == "array"
    media["schema"] = _ok_envelope(schema, page=page)
    for example in media.get("examples", {}).values():
        if "value" in example:
            value = example["value"]
            example["value"] = (
                {"status": "ok", "data": value, "count": len(value), "next": None}
                if page and isinstance(value, list)
                else {"status": "ok", "data": value}
            )


def postprocess_envelope(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_COMPONENT
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            if "user_account_id=" in path:
                operation["operationId"] += "_by_account"
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in PATH_PARAMETERS:
                    typed = copy.deepcopy(PATH_PARAMETERS[parameter["name"]])
                    examples = typed.pop("examples", None)
                    parameter["description"] = typed.pop("description")
                    parameter["schema"] = typed
                    if examples:
                        parameter["examples"] = examples
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith("2"):
                    _wrap_success(response)
            codes = ["400", "401", "403", "404", "405", "429"]
            if "requestBody" in operation or method in {"post", "put", "patch"}:
                codes += ["413", "415"]
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
            for code, response in responses.items():
                if code[0] in "45" and "content" in response:
                    response["content"] = {"application/json": {"schema": error_ref}}
    return result
