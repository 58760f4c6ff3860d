"""Talking to the API as a REST client would: JSON bodies, an Authorization header, the envelope."""

from __future__ import annotations

import json

from django.test import Client

BASE = "/api/v1/datamarts/1"


class ApiClient:
    def __init__(self, authorization: str | None = None, client: Client | None = None) -> None:
        headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
        self.client = client or Client(**headers)

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {})

    def delete(self, path: str):
        return self.client.delete(path)

    def _send(self, method: str, path: str, body, content_type: str):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return getattr(self.client, method)(path, data=data, content_type=content_type)

    def post(self, path: str, body=None, content_type: str = "application/json"):
        if body is None:
            return self.client.post(path)
        return self._send("post", path, body, content_type)

    def put(self, path: str, body, content_type: str = "application/json"):
        return self._send("put", path, body, content_type)

    def patch(self, path: str, body, content_type: str = "application/json"):
        return self._send("patch", path, body, content_type)


def data(response):
    """The payload of a successful answer, checking the envelope on the way."""
    body = response.json()
    assert body["status"] == "ok", body
    return body["data"]


def error(response, status: int) -> dict:
    """The body of an error answer, checking its status and the error envelope."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error" and body["error"] and body["error_code"], body
    return body


def profile_path(selector: str, compartment_id: int = 1606, user_account_id: str | None = None):
    path = f"{BASE}/user_points/{selector}/user_profiles/compartment_id={compartment_id}"
    return path if user_account_id is None else f"{path}/user_account_id={user_account_id}"
