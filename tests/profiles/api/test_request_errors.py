"""Bad input of every kind answers a 4xx in the error envelope, never a 500."""

from __future__ import annotations

import pytest

from profiles.models import UserPoint, UserProfile
from tests.profiles.api.client import BASE, data, error, profile_path

PROFILE = profile_path("email_hash=h1", compartment_id=1)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"a": NaN}', "NON_FINITE_NUMBER"),
        ('{"a": Infinity}', "NON_FINITE_NUMBER"),
        ('{"a": -Infinity}', "NON_FINITE_NUMBER"),
        ('{"a": 1e999}', "NON_FINITE_NUMBER"),
        ('{"a": 99999999999999999999}', "INVALID_NUMBER"),
        ('{"a": ' + "9" * 5000 + "}", "INVALID_NUMBER"),
        ('{"a": 1, "a": 2}', "DUPLICATE_KEY"),
        ('{"a": {"b": 1, "b": 1}}', "DUPLICATE_KEY"),
        ('{"a": "x\\u0000y"}', "NUL_CHARACTER"),
        ('{"a\\u0000": 1}', "NUL_CHARACTER"),
        ('{"a": "\\ud800"}', "INVALID_UNICODE"),
        ("[" * 100_000 + "]" * 100_000, "TOO_DEEP"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "TOO_DEEP"),
        ('{"a": 1', "MALFORMED_JSON"),
        ("{'a': 1}", "MALFORMED_JSON"),
        ('{"a": 1} trailing', "MALFORMED_JSON"),
        ('"just a string"', "INVALID_PROFILE"),
        ("[1, 2]", "INVALID_PROFILE"),
        ("null", "INVALID_PROFILE"),
        ('{"$x": 1}', "RESERVED_KEY"),
        ('{"\\uff04x": 1}', "RESERVED_KEY"),
        ('{"\\u200b$x": 1}', "RESERVED_KEY"),
        ('{"": 1}', "EMPTY_KEY"),
    ],
)
def test_bad_json_bodies_answer_400_with_a_code(api, crm_compartment, body, code):
    response = api.put(PROFILE, body)
    assert error(response, 400)["error_code"] == code
    assert not UserPoint.objects.exists()


def test_the_escaped_text_backslash_u0000_is_not_a_nul(api):
    response = api.put(PROFILE, '{"a": "\\\\u0000"}')
    assert response.status_code == 201
    assert data(response)["a"] == "\\u0000"


def test_a_body_that_is_not_utf8_answers_400(api):
    body = error(api.put(PROFILE, b'{"a": "\xff\xfe"}'), 400)
    assert body["error_code"] == "INVALID_ENCODING"


def test_a_json_body_over_the_limit_answers_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert error(api.put(PROFILE, {"a": "x" * 2000}), 413)["error_code"] == "PAYLOAD_TOO_LARGE"


def test_a_non_json_content_type_answers_415(api):
    response = api.put(PROFILE, "a=1", content_type="application/x-www-form-urlencoded")
    assert error(response, 415)["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error(api.put(PROFILE, '{"a": 1}', content_type="text/plain"), 415)


def test_a_body_without_content_type_answers_415_not_an_empty_object(api):
    response = api.client.generic("PUT", PROFILE, b'{"a": 1}', content_type="")
    assert error(response, 415)
    assert not UserProfile.objects.exists()


def test_an_empty_body_answers_400(api):
    assert error(api.put(PROFILE, b""), 400)["error_code"] == "EMPTY_BODY"


def test_a_json_charset_parameter_is_accepted(api):
    response = api.put(PROFILE, '{"a": 1}', content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_unknown_paths_under_the_api_answer_a_json_404(api):
    for path in ("/api/v1/nothing", "/api/v1/v1", f"{BASE}/compartments/x", f"{BASE}/unknown/1"):
        assert error(api.get(path), 404)["error_code"] == "NOT_FOUND", path


def test_an_unsupported_method_answers_405(api):
    response = api.delete(f"{BASE}/compartments")
    assert error(response, 405)["error_code"] == "METHOD_NOT_ALLOWED"


def test_paths_answer_with_and_without_a_trailing_slash(api):
    assert api.get(f"{BASE}/compartments").status_code == 200
    assert api.get(f"{BASE}/compartments/").status_code == 200
    assert api.put(PROFILE + "/", {"a": 1}).status_code == 201


def test_the_accept_header_does_not_change_the_json_answer(api):
    response = api.client.get(f"{BASE}/compartments", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_huge_ids_in_paths_answer_404_not_500(api):
    assert error(api.get(f"{BASE}/compartments/{'9' * 30}"), 404)
    assert error(api.get(f"/api/v1/datamarts/{'9' * 18}/compartments"), 404)
    assert error(api.get(f"{BASE}/document_imports/999999999999999999"), 404)


def test_a_nul_in_a_query_parameter_answers_400(api):
    response = api.get(f"{BASE}/user_profiles", {"user_account_id": "a\x00b"})
    assert error(response, 400)["error_code"] == "INVALID_PARAMETER"
