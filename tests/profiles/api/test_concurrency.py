"""Concurrent PATCHes of one profile through the API, each on its own connection."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from profiles.models import UserPoint, UserProfile
from profiles.services import api_token_create, compartment_create, datamart_create
from tests.concurrency import run_at_once
from tests.profiles.api.client import profile_path


def _patch_concurrently(raw_token: str, path: str, keys: list[str]) -> list[object]:
    """One client per key, each with its own database connection, all sending at once."""

    def patch(key: str) -> int:
        response = Client(HTTP_AUTHORIZATION=raw_token).patch(
            path, json.dumps({key: {"v": key}}), content_type="application/json"
        )
        return response.status_code

    return run_at_once(patch, keys)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_patches_of_different_keys_lose_nothing(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "10000/minute"},
    }
    datamart = datamart_create(datamart_id=1, name="Demo", default_compartment_id=1)
    compartment_create(datamart=datamart, compartment_id=1606, name="CRM")
    _, raw_token = api_token_create(datamart=datamart, name="parallel")
    path = profile_path("compartment_id=1606,user_account_id=shared", 1606, "shared")
    keys = [f"k{i}" for i in range(10)]

    # Ten clients create the point and the profile, then update it, all at the same moment.
    outcomes = _patch_concurrently(raw_token, path, keys)
    assert sorted(outcomes, key=str) == sorted([200] * 9 + [201], key=str), outcomes
    assert UserPoint.objects.count() == 1
    assert sorted(UserProfile.objects.get().properties) == keys

    more = [f"m{i}" for i in range(10)]
    assert _patch_concurrently(raw_token, path, more) == [200] * 10
    assert sorted(UserProfile.objects.get().properties) == sorted(keys + more)
