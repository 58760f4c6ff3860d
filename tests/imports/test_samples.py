"""The sample files the import page offers import as they are, with the results they promise."""

from __future__ import annotations

from imports.formats import FileFormat
from imports.samples import sample_file
from profiles.models import UserProfile
from tests.imports.helpers import import_file, properties_of


def test_the_csv_sample_creates_three_profiles_in_the_default_compartment(csv_import):
    name, content = sample_file(FileFormat.CSV)
    execution = import_file(csv_import, content, name=name, file_format="CSV")
    assert (execution.status, execution.created, execution.failed) == ("SUCCEEDED", 3, 0)
    assert properties_of("sample-1001", compartment_id=1) == {
        "firstname": "David",
        "age": 41,
        "newsletter_options": {"subscribed": True, "preferred_periods": "MONTHLY"},
        "tags": ["vip", "web"],
    }
    assert properties_of("sample-1002", compartment_id=1) == {
        "firstname": "Eve",
        "age": 35,
        "newsletter_options": {"subscribed": False},
    }


def test_the_ndjson_sample_creates_updates_and_partially_deletes(document_import):
    name, content = sample_file(FileFormat.NDJSON)
    execution = import_file(document_import, content, name=name)
    assert execution.status == "SUCCEEDED" and execution.failed == 0
    assert (execution.created, execution.updated) == (2, 1)
    assert properties_of("sample-1001", compartment_id=1)["tags"] == ["vip"]
    assert (
        UserProfile.objects.filter(user_account_id=None, compartment__compartment_id=1).count() == 1
    )
