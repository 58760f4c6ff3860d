"""Fixtures of the back-office tests: staff of one datamart, profiles made through services."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from profiles.models import DatamartMembership
from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES
from tests.factories import profile_make

IMPORT_EXPORT_CODENAMES = {name.split(".")[1] for name in (IMPORT_PROFILES, EXPORT_PROFILES)}


def inline_management_data(client, url: str) -> dict[str, str]:
    """The inline formsets' management fields, as the browser sends them back."""
    page = client.get(url).content.decode()
    return dict(
        re.findall(
            r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', page
        )
    )


@pytest.fixture
def make_staff(db):
    """A staff user, member of `datamarts`, with every permission of the profiles app except
    import and export unless `extra` names them."""

    def make(username: str, datamarts=(), extra: tuple[str, ...] = ()) -> object:
        user = get_user_model().objects.create_user(
            username=username, password="pw-" + username, is_staff=True
        )
        permissions = Permission.objects.filter(content_type__app_label="profiles").exclude(
            codename__in=IMPORT_EXPORT_CODENAMES - {name.split(".")[1] for name in extra}
        )
        user.user_permissions.set(permissions)
        for datamart in datamarts:
            DatamartMembership.objects.create(user=user, datamart=datamart)
        return get_user_model().objects.get(pk=user.pk)  # fresh permission cache

    return make


@pytest.fixture
def login():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def make_profile(db):
    """A profile written as the API or an import would: through the engine."""
    return profile_make


@pytest.fixture
def alice(make_staff, datamart):
    return make_staff("alice", [datamart])


@pytest.fixture
def bob(make_staff, other_datamart):
    return make_staff("bob", [other_datamart])
