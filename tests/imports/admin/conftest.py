"""Fixtures of the import/export screen tests: the back-office tests' staff and profiles, and
staff who hold the import and export permissions."""

from __future__ import annotations

import pytest

from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES
from tests.profiles.admin import conftest as back_office

# The back-office tests' fixtures, shared: staff of given datamarts, logged-in clients, profiles.
make_staff = back_office.make_staff
login = back_office.login
make_profile = back_office.make_profile

PROFILES = "/admin/profiles/userprofile/"
IMPORT_URL = f"{PROFILES}import/"
CONFIRM_URL = f"{PROFILES}process_import/"
EXPORT_URL = f"{PROFILES}export/"
EXECUTIONS = "/admin/imports/execution/"
BOTH = (IMPORT_PROFILES, EXPORT_PROFILES)


@pytest.fixture
def importer(make_staff, datamart, crm_compartment):
    """A member of datamart 1 who may import and export."""
    return make_staff("ines", [datamart], BOTH)


@pytest.fixture
def outsider(make_staff, other_datamart):
    """A member of datamart 2 only, with both permissions."""
    return make_staff("otto", [other_datamart], BOTH)


@pytest.fixture
def importer_client(importer, login):
    return login(importer)
