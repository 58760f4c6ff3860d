from __future__ import annotations

import pytest
from django.db import connection

from profiles.models import Compartment, Datamart
from profiles.services import compartment_create, datamart_create


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: CI runs it with DATABASE_URL=postgresql://…")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def datamart(db) -> Datamart:
    return datamart_create(datamart_id=1, name="Demo", default_compartment_id=1)


@pytest.fixture
def crm_compartment(datamart) -> Compartment:
    return compartment_create(datamart=datamart, compartment_id=1606, name="CRM")


@pytest.fixture
def other_datamart(db) -> Datamart:
    return datamart_create(datamart_id=2, name="Other", default_compartment_id=1)
