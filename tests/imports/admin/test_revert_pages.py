"""The Revert button of a finished execution's page: the preview, the confirmation, refusals."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from imports.models import Execution
from imports.revert import revert_run
from tests.imports.admin import test_execution_pages as pages
from tests.imports.admin.conftest import EXECUTIONS
from tests.imports.helpers import properties_of

# The execution pages' fixtures: uploads in a temporary folder, a finished CSV import of ines.
media = pages.media
finished = pages.finished
page_of = pages.page_of


def test_a_finished_execution_offers_revert_with_a_preview_then_a_confirmation(
    importer_client, finished, importer
):
    assert finished.created == 2
    assert 'id="revert-execution"' in page_of(importer_client, finished).content.decode()
    preview = importer_client.get(f"{EXECUTIONS}{finished.pk}/revert/")
    assert preview.status_code == 200
    counts = preview.context["preview"]
    assert (counts.delete, counts.restore, counts.recreate, counts.conflicts) == (2, 0, 0, 0)
    assert Execution.objects.filter(reverts=finished).count() == 0  # a preview writes nothing

    response = importer_client.post(f"{EXECUTIONS}{finished.pk}/revert/", {})
    revert = Execution.objects.get(reverts=finished)
    assert response.status_code == 302
    assert response["Location"] == f"{EXECUTIONS}{revert.pk}/change/"
    assert revert.created_by == importer and not revert.revert_force
    revert_run(execution_id=revert.pk)
    page = page_of(importer_client, revert).content.decode()
    assert f"Revert execution #{revert.pk}" in page and "Changes to undo" in page
    assert properties_of("c-1") is None and properties_of("c-3") is None
    # Reverted: the button is gone, the page links the revert, which may be reverted in turn.
    page = page_of(importer_client, finished).content.decode()
    assert 'id="revert-execution"' not in page and f"execution #{revert.pk}" in page
    assert 'id="revert-execution"' in page_of(importer_client, revert).content.decode()
    again = importer_client.get(f"{EXECUTIONS}{finished.pk}/revert/", follow=True)
    assert "Cannot revert" in again.content.decode()
    assert importer_client.post(f"{EXECUTIONS}{finished.pk}/revert/").status_code == 302
    assert Execution.objects.filter(reverts=finished).count() == 1


def test_force_is_a_checkbox(importer_client, finished):
    importer_client.post(f"{EXECUTIONS}{finished.pk}/revert/", {"force": "on"})
    assert Execution.objects.get(reverts=finished).revert_force


def test_a_running_execution_has_no_revert(importer_client, finished):
    Execution.objects.filter(pk=finished.pk).update(status=Execution.Status.RUNNING)
    assert 'id="revert-execution"' not in page_of(importer_client, finished).content.decode()
    assert importer_client.post(f"{EXECUTIONS}{finished.pk}/revert/").status_code == 302
    assert not Execution.objects.filter(reverts=finished).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_revert_is_out_of_reach_of_other_datamarts_and_of_viewers(
    login, outsider, make_staff, datamart, finished, method
):
    path = f"{EXECUTIONS}{finished.pk}/revert/"
    assert getattr(login(outsider), method)(path).status_code == 404
    viewer = make_staff("vic", [datamart])
    viewer.user_permissions.add(Permission.objects.get(codename="view_execution"))
    client = login(get_user_model().objects.get(pk=viewer.pk))
    assert 'id="revert-execution"' not in page_of(client, finished).content.decode()
    assert getattr(client, method)(path).status_code == 403
    assert not Execution.objects.filter(reverts=finished).exists()
