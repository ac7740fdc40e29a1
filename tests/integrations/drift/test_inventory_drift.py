"""Inventory drift over real HTTP: a level changed behind Ledgerline's back (in the storefront or in the
ERP) is found by reading Shopify in bulk and commercetools per channel, raised once, and resolved
when the next sync puts it right."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.flows.inventory import inventory_sync_start
from integrations.models import DriftRun
from tests.factories import LocationMappingFactory
from tests.integrations.drift.stocked_shop import stocked_shop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_bulk_wait(settings):
    settings.DRIFT = {"bulk_poll_seconds": 0}


@pytest.fixture
def shop(sandbox, shopify_connection):
    return stocked_shop(sandbox, shopify_connection)


def test_a_storefront_edit_and_an_erp_move_are_found_once_and_cleared_by_the_next_sync(
        sandbox, shop, shopify_connection):
    assert check_run("inventory_drift").status == DriftRun.Status.OK  # just synced: nothing to say

    sandbox.shopify.set_level("TEE-1", shop, available=7)  # someone edited it in the Shopify admin
    sandbox.erp.set_stock("MUG-1", "MAIN", on_hand=5)  # the warehouse counted fewer

    run = check_run("inventory_drift")
    assert (run.status, run.found, run.raised) == (DriftRun.Status.FINDINGS, 2, 2), run.error
    tee = ExceptionRecord.objects.get(type_code="drift_inventory", sku="TEE-1")
    assert tee.team == "ops"
    assert "shows 7, Ledgerline last pushed 30, the ERP's ATS is 30" in tee.message
    mug = ExceptionRecord.objects.get(type_code="drift_inventory", sku="MUG-1")
    assert "shows 12, Ledgerline last pushed 12, the ERP's ATS is 5" in mug.message

    again = check_run("inventory_drift")
    assert (again.found, again.raised) == (2, 0)
    assert ExceptionRecord.objects.filter(type_code="drift_inventory").count() == 2

    # The sync pushes the ERP's move; a storefront edit is put back by hand (the sync only pushes an ATS
    # that changed since its last push, so it would not have undone it: which is why this check exists).
    inventory_sync_start(connection=shopify_connection, trigger="manual", queue=False)
    sandbox.shopify.set_level("TEE-1", shop, available=30)
    cleared = check_run("inventory_drift")
    assert (cleared.status, cleared.resolved) == (DriftRun.Status.OK, 2)
    assert set(ExceptionRecord.objects.filter(type_code="drift_inventory").values_list("status", flat=True)) == {"resolved"}


def test_the_tolerance_setting_ignores_small_differences(sandbox, shop, settings):
    sandbox.shopify.set_level("TEE-1", shop, available=28)
    settings.DRIFT = {"bulk_poll_seconds": 0, "inventory_tolerance": 2}
    assert check_run("inventory_drift").status == DriftRun.Status.OK
    settings.DRIFT = {"bulk_poll_seconds": 0, "inventory_tolerance": 1}
    assert check_run("inventory_drift").found == 1


def test_a_commercetools_entry_changed_behind_ledgerline_is_found(sandbox, ct_connection):
    sandbox.commercetools.create_channel(key="eu-warehouse")
    sandbox.erp.add_depot("MAIN")
    LocationMappingFactory(connection=ct_connection, storefront_location="eu-warehouse", erp_warehouse="MAIN")
    sandbox.commercetools.create_inventory_entry(sku="TEE-1", channel_key="eu-warehouse", quantity_on_stock=4)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=20)
    inventory_sync_start(connection=ct_connection, queue=False)
    assert check_run("inventory_drift").status == DriftRun.Status.OK

    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=9)
    run = check_run("inventory_drift")
    assert (run.status, run.found) == (DriftRun.Status.FINDINGS, 1), run.error
    assert "the ERP's ATS is 9" in ExceptionRecord.objects.get(type_code="drift_inventory").message
