"""Pushing ATS to commercetools inventory entries: over HTTP to our sandbox (which models
reservations) and against the `commercetools` package's emulator (which does not: its
availableQuantity always equals quantityOnStock, so the reservation test runs on our sandbox only)."""
import re

import pytest
import requests_mock
from commercetools.testing import backend_mocker

from integrations.connectors.commercetools import CommercetoolsClient
from integrations.flows.inventory import inventory_push_for_items, inventory_sync_run, inventory_sync_start
from integrations.models import InventoryLevel, InventorySyncRun
from tests.factories import LocationMappingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(sandbox, ct_connection):
    sandbox.commercetools.create_channel(key="eu-warehouse")
    sandbox.erp.add_depot("MAIN")
    LocationMappingFactory(connection=ct_connection, storefront_location="eu-warehouse", erp_warehouse="MAIN")
    return "eu-warehouse"


def test_full_sync_moves_quantity_on_stock_by_versioned_delta(sandbox, channel, ct_connection):
    sandbox.commercetools.create_inventory_entry(sku="TEE-1", channel_key=channel, quantity_on_stock=4)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=20, allocated=2)
    run = inventory_sync_start(connection=ct_connection, queue=False)
    assert run.status == "succeeded" and run.levels_changed == 1 and run.api_calls == 1
    entry = sandbox.commercetools.inventory_entry("TEE-1", channel)
    assert entry["quantityOnStock"] == 18
    assert InventoryLevel.objects.get(storefront_sku="TEE-1").storefront_value == 18


def test_reservation_between_read_and_write_survives_via_409_reread(sandbox, channel, ct_connection):
    sandbox.commercetools.create_inventory_entry(sku="TEE-1", channel_key=channel, quantity_on_stock=10)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=15)

    class CheckoutDuringSync(CommercetoolsClient):
        def inventory_entries(self, *args, **kw):
            yield from super().inventory_entries(*args, **kw)
            sandbox.commercetools.reserve("TEE-1", channel, 3)  # a checkout after our read

    run = InventorySyncRun.objects.create(connection=ct_connection)
    run = inventory_sync_run(run_id=run.pk, storefront=CheckoutDuringSync.from_settings())
    entry = sandbox.commercetools.inventory_entry("TEE-1", channel)
    assert run.conflicts == 1
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (15, 12)  # the 3 reserved stay held


def test_order_driven_push_uses_the_last_confirmed_version_and_recovers_from_409(sandbox, channel, ct_connection):
    sandbox.commercetools.create_inventory_entry(sku="TEE-1", channel_key=channel, quantity_on_stock=0)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=15)
    inventory_sync_start(connection=ct_connection, queue=False)
    sandbox.commercetools.reserve("TEE-1", channel, 2)  # version moved on since our push
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=15, allocated=5)
    run = inventory_push_for_items(connection=ct_connection, erp_item_codes=["TEE-1"], queue=False)
    entry = sandbox.commercetools.inventory_entry("TEE-1", channel)
    assert run.conflicts == 1 and run.status == "succeeded"
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (10, 8)


def test_missing_entry_is_created_for_a_mapped_sku(sandbox, channel, ct_connection):
    sandbox.erp.set_stock("MUG-1", "MAIN", on_hand=6)
    run = inventory_push_for_items(connection=ct_connection, erp_item_codes=["MUG-1"], queue=False)
    assert run.levels_pushed == 1
    assert sandbox.commercetools.inventory_entry("MUG-1", channel)["quantityOnStock"] == 6


# --- the third-party emulator ---------------------------------------------------------------------

API_URL = "https://api.europe-west1.gcp.commercetools.com"
AUTH_URL = "https://auth.europe-west1.gcp.commercetools.com"


@pytest.fixture
def emulated(ct_connection, sandbox):
    """commercetools answered by the package's emulator in-process (strict: nothing leaks out);
    the ERP is still our sandbox over loopback HTTP."""
    with requests_mock.Mocker(real_http=False) as mocker, backend_mocker():
        mocker.register_uri(requests_mock.ANY, re.compile(r"http://127\.0\.0\.1.*"), real_http=True)  # the ERP sandbox
        client = CommercetoolsClient(API_URL, AUTH_URL, "ledgerline-emu", "emu-client", "emu-secret",
                                     scope="manage_project:ledgerline-emu", max_attempts=1, sleep=lambda _: None)
        yield client


def test_emulator_entries_follow_erp_ats_with_version_checks(emulated, ct_connection, sandbox):
    channel = emulated.api("POST", "channels", json={"key": "emu-dc", "roles": ["InventorySupply"]})
    entry = emulated.create_inventory_entry(sku="TEE-1", channel_id=channel["id"], quantity_on_stock=3)
    sandbox.erp.add_depot("MAIN")
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=9)
    LocationMappingFactory(connection=ct_connection, storefront_location="emu-dc", erp_warehouse="MAIN")
    # Someone else changes the entry after we read it: our stale version gets a real 409.
    stale = dict(entry)
    emulated.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 1}])
    InventoryLevel.objects.create(connection=ct_connection, storefront_sku="TEE-1", storefront_location="emu-dc",
                                  erp_warehouse="MAIN", erp_ats=3, pushed_ats=3, storefront_basis=stale["quantityOnStock"],
                                  storefront_ref=stale["id"], storefront_version=stale["version"])
    run = inventory_push_for_items(connection=ct_connection, erp_item_codes=["TEE-1"], queue=False, storefront=emulated)
    assert run.conflicts == 1 and run.status == "succeeded"
    assert emulated.get_inventory_entry("TEE-1", channel["id"])["quantityOnStock"] == 9


def test_each_inventory_entry_write_is_in_the_outbound_write_log(sandbox, channel, ct_connection):
    from integrations.models import OutboundWrite

    sandbox.commercetools.create_inventory_entry(sku="TEE-1", channel_key=channel, quantity_on_stock=10)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=15)
    run = inventory_sync_start(connection=ct_connection, queue=False)
    writes = OutboundWrite.objects.filter(subject_type="inventory_run", subject_id=str(run.pk))
    assert [(w.action, w.status, w.system) for w in writes] == [("update_inventory_entry", "succeeded", "commercetools")]
    entry = sandbox.commercetools.inventory_entry("TEE-1", channel)
    assert writes[0].response_id == entry["id"]
