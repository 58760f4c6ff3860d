"""What staff see of an import's pace: duration, lines/s, the chart, errors grouped by code with
a filter, the failure count beside the status; the admin index's recent imports and exports
and its profiles per datamart."""

from __future__ import annotations

import re

import pytest
from django.utils.html import strip_tags

from imports.models import Execution, ExportJob
from tests.imports.admin.conftest import EXECUTIONS
from tests.imports.admin.test_execution_pages import page_of, run, start

MIXED = b"".join(
    [
        b'{"operation":"UPSERT","compartment_id":1606,"user_account_id":"a1",'
        b'"user_profile":{"$compartment_id":1606,"$user_account_id":"a1","x":1}}\n',
        *(b'{"operation":"UPSERT","email_hash":"h%d"}\n' % i for i in range(3)),
        b"{bad\n",
    ]
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def mixed(datamart, crm_compartment, importer, settings) -> Execution:
    settings.IMPORT_CHUNK_SIZE = 2
    return run(start(datamart, content=MIXED, name="mixed.ndjson", user=importer))


def test_the_page_shows_pace_chart_and_failures_beside_the_status(importer_client, mixed):
    assert (mixed.status, mixed.failed, mixed.total_lines) == ("SUCCEEDED", 4, 5)
    page = page_of(importer_client, mixed).content.decode()
    assert 'id="execution-status">SUCCEEDED<' in page
    assert re.search(r'id="execution-failures">\s*· 4 of 5 lines failed<', page)
    assert 'id="pace-duration"' in page and "lines/s" in page
    assert 'id="pace-eta"' not in page  # only while it runs
    chart = re.search(r'<svg class="imports-chart".*?</svg>', page, re.S).group(0)
    assert chart.count("<polyline") == 2 and "http" not in chart.replace("http://www.w3.org", "")
    assert "1 line applied and 4 in error" in chart  # one line, not "1 lines"


def test_errors_are_grouped_by_code_and_filtered(importer_client, mixed):
    page = page_of(importer_client, mixed)
    counts = [lines for _, lines in page.context["error_codes"]]
    assert counts == sorted(counts, reverse=True)  # the most frequent code first
    codes = dict(page.context["error_codes"])
    assert sum(codes.values()) == 4 and codes["INVALID_JSON"] == 1
    busiest = page.context["error_codes"][0][0]
    filtered = importer_client.get(f"{EXECUTIONS}{mixed.pk}/change/?error_code={busiest}")
    assert {error.error_code for error in filtered.context["errors"]} == {busiest}
    assert len(filtered.context["errors"]) == codes[busiest]
    unknown = importer_client.get(f"{EXECUTIONS}{mixed.pk}/change/?error_code=NOPE")
    assert len(unknown.context["errors"]) == 4  # an unknown code filters nothing out


def test_a_running_execution_shows_an_eta_and_a_confirmed_cancel(importer_client, mixed):
    Execution.objects.filter(pk=mixed.pk).update(
        status=Execution.Status.RUNNING, end_ts=None, processed=2, total_lines=5
    )
    page = page_of(importer_client, mixed).content.decode()
    assert 'id="pace-eta"' in page
    assert 'data-confirm="Cancel this import?' in page and "window.confirm" in page


def test_the_list_shows_duration_rate_and_failures(importer_client, mixed):
    page = importer_client.get(EXECUTIONS).content.decode()
    text = " ".join(strip_tags(page).split())
    assert "SUCCEEDED · 4 of 5 lines failed" in text
    assert "column-pace" in page and re.search(r"\d lines/s", text)
    # Each count stays whole; a line breaks only between counts.
    assert '<span class="imports-nowrap">1 created</span> · ' in page


def test_the_index_shows_recent_imports_exports_and_profiles_per_datamart(
    importer_client, mixed, importer, datamart, other_datamart
):
    ExportJob.objects.create(
        datamart=datamart, created_by=importer, file_format="CSV", status="SUCCEEDED", rows=12
    )
    ExportJob.objects.create(
        datamart=other_datamart, created_by=importer, file_format="XLSX", status="FAILED"
    )
    response = importer_client.get("/admin/")
    page = response.content.decode()
    imports = page[page.index('id="index-imports"') :]
    assert f"#{mixed.pk} mixed.ndjson" in imports and "SUCCEEDED · 4 of 5 lines failed" in imports
    exports = page[page.index('id="index-exports"') :]
    assert "12 profiles" in exports and "XLSX" not in exports  # another datamart's export
    counts = page[page.index('id="index-datamarts"') : page.index('id="index-imports"')]
    assert "Demo" in counts and ">1<" in counts and "Other" not in counts


def test_the_index_stays_cheap(importer_client, mixed, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        assert importer_client.get("/admin/").status_code == 200
