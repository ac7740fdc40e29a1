"""The inventory health page, the run-progress fragment and the manual full-sync button."""
import pytest
from django.urls import reverse

from integrations.models import InventoryDriftSample, InventoryLevel, InventorySyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def level(shopify_connection):
    InventoryDriftSample.objects.create(connection=shopify_connection, levels_total=10, levels_drifted=3, units_drifted=7)
    InventoryDriftSample.objects.create(connection=shopify_connection, levels_total=10, levels_drifted=1, units_drifted=2)
    return InventoryLevel.objects.create(connection=shopify_connection, storefront_sku="TEE-1", storefront_location="web",
                                         erp_warehouse="MAIN", erp_item_code="TEE-1", erp_ats=12, pushed_ats=12,
                                         storefront_value=9)


def test_it_shows_ats_storefront_value_and_highlighted_difference(client, outsider, level):
    client.force_login(outsider)
    response = client.get(reverse("inventory"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "TEE-1" in html and '<strong class="diff">+3</strong>' in html and "<polyline" in html
    assert "Start full sync" not in html  # an outsider may look, not act


def test_it_filters_to_differences_and_serves_the_htmx_fragment(client, ops_user, level, shopify_connection):
    InventoryLevel.objects.create(connection=shopify_connection, storefront_sku="MUG-1", storefront_location="web",
                                  erp_warehouse="MAIN", erp_ats=4, storefront_value=4)
    client.force_login(ops_user)
    response = client.get(reverse("inventory"), {"show": "drift"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="level-table">')
    assert "TEE-1" in html and "MUG-1" not in html


def test_it_redirects_to_login_when_signed_out(client):
    response = client.get(reverse("inventory"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_running_run_polls_its_progress(client, ops_user, shopify_connection):
    run = InventorySyncRun.objects.create(connection=shopify_connection, status="running", progress_done=25, progress_total=100)
    client.force_login(ops_user)
    html = client.get(reverse("inventory-run-progress", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in html and 'value="25"' in html
    run.status, run.progress_done = "succeeded", 100
    run.save()
    html = client.get(reverse("inventory-run-progress", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and "Succeeded" in html


def test_manual_sync_queues_a_run_for_ops(client, ops_user, shopify_connection, django_capture_on_commit_callbacks):
    client.force_login(ops_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("inventory-sync"), {"connection": "shopify"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    run = InventorySyncRun.objects.get()
    assert (run.kind, run.trigger, run.requested_by, run.status) == ("full", "manual", ops_user, "pending")
    assert len(callbacks) == 1 and f'id="run-{run.pk}"' in response.content.decode()


def test_manual_sync_is_forbidden_without_the_role(client, finance_user, shopify_connection):
    client.force_login(finance_user)
    response = client.post(reverse("inventory-sync"), {"connection": "shopify"})
    assert response.status_code == 403
    assert not InventorySyncRun.objects.exists()


def test_manual_sync_rejects_get(client, ops_user):
    client.force_login(ops_user)
    assert client.get(reverse("inventory-sync")).status_code == 405
