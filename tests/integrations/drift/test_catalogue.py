"""The catalogue check over real HTTP, and the mapping health panel that shows its last run: gaps
planted in the sandboxes are found once, cleared when fixed, and the panel never calls a vendor."""
import pytest
import requests_mock
from django.urls import reverse

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.models import DriftFinding, DriftRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(sandbox, shopify_connection):
    sandbox.shopify.reset(seed=False)
    for code in ("TEE-1", "LONELY-1"):
        sandbox.erp.add_item(code)
    sandbox.shopify.add_product("Tee", [{"sku": "TEE-1", "price": "10"}, {"sku": "DUP-1", "price": "10"}])
    sandbox.shopify.add_product("Mug", [{"sku": "DUP-1", "price": "8"}, {"sku": "", "title": "No SKU", "price": "8"}])
    sandbox.erp.add_item("DUP-1")
    return sandbox


def _open(type_code):
    return ExceptionRecord.objects.filter(type_code=type_code, status="open")


def test_planted_gaps_are_found_once_and_cleared_when_fixed(catalogue):
    run = check_run("catalogue")
    assert run.status == DriftRun.Status.FINDINGS, run.error
    assert _open("mapping_erp_item_unsold").get().context["item"] == "LONELY-1"
    assert _open("duplicate_sku_products").get().sku == "DUP-1"
    incomplete = _open("drift_variant_incomplete").get()
    assert incomplete.team == "ecommerce" and "has no SKU" in incomplete.message
    found = run.found

    again = check_run("catalogue")
    assert (again.found, again.raised) == (found, 0)
    assert ExceptionRecord.objects.filter(type_code="duplicate_sku_products").count() == 1

    catalogue.shopify.add_product("Lonely", [{"sku": "LONELY-1", "price": "5"}])  # now sold
    fixed = check_run("catalogue")
    assert fixed.resolved == 1
    assert not _open("mapping_erp_item_unsold").exists()
    assert DriftFinding.objects.get(key__startswith="mapping_erp_item_unsold:").resolved_at is not None


def test_the_panel_shows_the_last_run_without_calling_any_vendor(client, ops_user, catalogue):
    check_run("catalogue")
    client.force_login(ops_user)
    with requests_mock.Mocker() as calls:
        html = client.get(reverse("mapping-health")).content.decode()
    assert calls.call_count == 0
    assert "SKU DUP-1 is on 2 Shopify products" in html
    assert "has no SKU" in html
    assert "Last run:" in html
    assert "Run now" not in html  # ops may read the panel; e-commerce runs the check


def test_the_panel_says_when_the_check_never_ran(client, ops_user):
    client.force_login(ops_user)
    assert "The check has not run yet." in client.get(reverse("mapping-health")).content.decode()


def test_run_now_queues_the_check_for_ecommerce(client, ecommerce_user, catalogue, q_sync,
                                                django_capture_on_commit_callbacks):
    client.force_login(ecommerce_user)
    assert "Run now" in client.get(reverse("mapping-health")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mapping-health"))
    assert response.status_code == 302
    run = DriftRun.objects.get(check_code="catalogue")
    assert (run.trigger, run.user, run.status) == ("manual", ecommerce_user, DriftRun.Status.FINDINGS)


def test_run_now_is_refused_to_another_team(client, ops_user):
    client.force_login(ops_user)
    assert client.post(reverse("mapping-health")).status_code == 403
    assert not DriftRun.objects.exists()


def test_the_panel_rejects_other_methods_and_asks_strangers_to_sign_in(client, ops_user):
    assert client.get(reverse("mapping-health")).status_code == 302
    client.force_login(ops_user)
    assert client.put(reverse("mapping-health")).status_code == 405
