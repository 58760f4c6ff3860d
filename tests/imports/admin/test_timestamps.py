"""Every time the back-office shows reads one way, to the second with its time zone, never
followed by raw epoch milliseconds (those are in a tooltip)."""

from __future__ import annotations

import html
import re

from imports.models import ExportJob
from profiles.models import ProfileChange
from profiles.services import api_token_create, api_token_revoke
from tests.imports.admin.test_execution_pages import run, start

DATE = re.compile(r"\d{4}-\d\d-\d\d")
FULL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
# Django's own format of a datetime (en): "Dec. 2, 2026, 3:04 p.m."
DJANGO_DEFAULT = re.compile(r"\b[A-Z][a-z]{2,8}\.? \d{1,2}, \d{4}|\d(?:\d)?(?::\d\d)? [ap]\.m\.")
TOOLTIP = re.compile(r'<time datetime="[^"]+" title="(\d{13}) ms since the epoch')


def shown_text(page: str) -> str:
    body = page[page.index("<body") :]
    body = re.sub(r"<(script|style|select)\b.*?</\1>", "", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_every_admin_page_shows_times_one_way_with_the_epoch_in_a_tooltip(
    datamart, crm_compartment, importer, importer_client, make_profile, django_user_model, login
):
    profile = make_profile(datamart, "c-1", {"firstname": "Dave"}, compartment_id=1606)
    execution = run(start(datamart, user=importer))
    token, _ = api_token_create(datamart=datamart, name="crm")
    api_token_revoke(token=token)
    export = ExportJob.objects.create(datamart=datamart, created_by=importer, file_format="CSV")
    change = ProfileChange.objects.filter(profile_id=profile.pk).first()
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    pages = [
        "/admin/profiles/userprofile/",
        f"/admin/profiles/userprofile/{profile.pk}/change/",
        f"/admin/profiles/userprofile/{profile.pk}/history/",
        "/admin/profiles/userpoint/",
        f"/admin/profiles/userpoint/{profile.user_point_id}/change/",
        "/admin/profiles/profilechange/",
        f"/admin/profiles/profilechange/{change.pk}/change/",
        "/admin/profiles/apitoken/",
        f"/admin/profiles/apitoken/{token.pk}/change/",
        "/admin/imports/execution/",
        f"/admin/imports/execution/{execution.pk}/change/",
        "/admin/imports/documentimport/",
        f"/admin/imports/documentimport/{execution.document_import_id}/change/",
        "/admin/imports/exportjob/",
        f"/admin/imports/exportjob/{export.pk}/change/",
    ]
    client = login(root)
    tooltips = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        text = shown_text(page)
        dates = DATE.findall(text)
        assert dates, url
        assert len(FULL_TIME.findall(text)) == len(dates), (url, DATE.split(text)[:3])
        assert not re.search(r"UTC\s*\(?\d{13}", text), url
        assert not DJANGO_DEFAULT.search(text), (url, DJANGO_DEFAULT.search(text))
        tooltips += len(TOOLTIP.findall(page))
    assert tooltips >= len(pages) - 5  # the pages that show a time of their own
