"""Every error leaves the API as `{"status": "error", "error": …, "error_code": …}` (SPEC §5)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from profiles.api.renderers import Envelope
from profiles.errors import ProfileError

# Domain codes that are not "bad input" (400).
PROFILE_ERROR_STATUS = {
    "USER_POINT_NOT_FOUND": status.HTTP_404_NOT_FOUND,
    "PROFILE_NOT_FOUND": status.HTTP_404_NOT_FOUND,
    "COMPARTMENT_EXISTS": status.HTTP_409_CONFLICT,
    "COMPARTMENT_IN_USE": status.HTTP_409_CONFLICT,
    "DEFAULT_COMPARTMENT_REQUIRED": status.HTTP_409_CONFLICT,
    "STALE_PROFILE": status.HTTP_409_CONFLICT,
}

# DRF's own exceptions, by class, with the code clients see (when the raiser gave none).
DEFAULT_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (exceptions.AuthenticationFailed, "AUTHENTICATION_FAILED"),
    (exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.Throttled, "RATE_LIMITED"),
    (exceptions.ParseError, "MALFORMED_JSON"),
    (exceptions.ValidationError, "INVALID_FIELD"),
]


class ApiError(exceptions.APIException):
    """An API-level refusal with its own code, e.g. `ApiError(400, "INVALID_SELECTOR", "…")`."""

    def __init__(self, status_code: int, code: str, message: str, *, field: str = "") -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.field = field


class PayloadTooLarge(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)


def _code_of(exc: exceptions.APIException) -> str:
    detail = exc.detail
    code = getattr(detail, "code", None)
    if isinstance(code, str) and code.isupper():
        return code
    for exception_class, default in DEFAULT_CODES:
        if isinstance(exc, exception_class):
            return default
    return str(code or exc.default_code).upper()


def _first_field_error(detail, path: str = "") -> tuple[str, object]:
    """The first message of a DRF validation detail, with the dotted field it belongs to."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            return _first_field_error(value, child)
    if isinstance(detail, list) and detail:
        return _first_field_error(detail[0], path)
    return path, detail


def _validation_error_body(exc: exceptions.ValidationError) -> Envelope:
    field, message = _first_field_error(exc.detail)
    code = getattr(message, "code", None)
    code = code if isinstance(code, str) and code.isupper() else "INVALID_FIELD"
    text = f"{field}: {message}" if field else str(message)
    return Envelope.error(code=code, message=text, field=field, details=exc.detail)


def api_exception_handler(exc, context) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("not found")
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(str(exc))
    elif isinstance(exc, SuspiciousOperation):
        # Django's own limits (too many query fields, …): bad input, not a server error.
        exc = ApiError(status.HTTP_400_BAD_REQUEST, "BAD_REQUEST", str(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)

    if isinstance(exc, ProfileError):
        set_rollback()
        body = Envelope.error(code=exc.code, message=exc.message)
        if exc.field:
            body["field"] = exc.field
        return Response(
            body, status=PROFILE_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST)
        )

    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django answers 500 and logs it

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait)))

    if isinstance(exc, exceptions.ValidationError):
        body = _validation_error_body(exc)
    else:
        body = Envelope.error(code=_code_of(exc), message=str(exc.detail))
        field = getattr(exc, "field", "")
        if field:
            body["field"] = field
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
