"""Pushing ATS to Shopify over HTTP to the sandbox: compare-and-set, reservations survive, stale
recovery, throttling, only changed levels sent, unknown SKU / unmapped location become exceptions."""
import math

import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.connectors.shopify import ShopifyClient
from integrations.flows.inventory import inventory_push_for_items, inventory_sync_start
from integrations.models import InventoryLevel, InventorySyncRun
from tests.factories import LocationMappingFactory, SkuMappingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(sandbox, shopify_connection):
    sandbox.shopify.reset(seed=False)
    web = sandbox.shopify.add_location("Web")
    sandbox.erp.add_depot("MAIN")
    LocationMappingFactory(connection=shopify_connection, storefront_location=web, erp_warehouse="MAIN")
    return web


def add_sku(sandbox, sku, *, storefront=0, on_hand=0, allocated=0, location=None, **states):
    sandbox.shopify.add_product(sku.title(), [{"sku": sku, "price": "10"}])
    for loc in sandbox.shopify.locations:
        sandbox.shopify.set_level(sku, loc, available=storefront)
    sandbox.erp.add_item(sku)
    sandbox.erp.set_stock(sku, "MAIN", on_hand=on_hand, allocated=allocated, **states)


def sync(connection, **kw):
    return inventory_sync_start(connection=connection, trigger="manual", queue=False, **kw)


def client(**kw):
    return ShopifyClient.from_settings(sleep=lambda s: None, **kw)


def test_full_sync_sets_storefront_to_erp_ats(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", storefront=3, on_hand=30, allocated=5, damaged=2)
    run = sync(shopify_connection)
    assert run.status == "succeeded"
    assert sandbox.shopify.level("TEE-1", shop)["available"] == 23
    level = InventoryLevel.objects.get(storefront_sku="TEE-1")
    assert (level.erp_ats, level.pushed_ats, level.storefront_value) == (23, 23, 23)
    assert run.levels_changed == 1 and run.api_calls == 1


def test_checkout_reservation_between_read_and_write_survives(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", storefront=10, on_hand=15)

    class CheckoutDuringSync(ShopifyClient):
        reads = 0

        def inventory_levels(self, *args, **kw):
            levels = super().inventory_levels(*args, **kw)
            CheckoutDuringSync.reads += 1
            if CheckoutDuringSync.reads == 1:
                sandbox.shopify.reserve("TEE-1", shop, 2)  # a shopper's checkout, after our read
            return levels

    run = InventorySyncRun.objects.create(connection=shopify_connection)
    from integrations.flows.inventory import inventory_sync_run

    run = inventory_sync_run(run_id=run.pk, storefront=CheckoutDuringSync.from_settings())
    level = sandbox.shopify.level("TEE-1", shop)
    # The reservation is still held and the 2 units are not offered again: 13 + 2 reserved = ATS 15.
    assert level["reserved"] == 2
    assert level["available"] == 13
    assert run.conflicts == 1


def test_stale_compare_and_set_after_a_sale_rereads_instead_of_overwriting(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", storefront=0, on_hand=10)
    sync(shopify_connection)
    assert sandbox.shopify.level("TEE-1", shop)["available"] == 10
    sandbox.shopify.reserve("TEE-1", shop, 4)  # storefront moved since our last confirmed push
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=12)
    run = sync(shopify_connection)
    assert run.conflicts == 1
    level = sandbox.shopify.level("TEE-1", shop)
    assert (level["available"], level["reserved"]) == (8, 4)


def test_order_driven_push_adjusts_by_delta_and_keeps_reservations(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", storefront=0, on_hand=10)
    add_sku(sandbox, "MUG-1", storefront=0, on_hand=50)
    sync(shopify_connection)
    sandbox.shopify.reserve("TEE-1", shop, 1)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=10, allocated=3)  # an order posted to the ERP
    before = sandbox.shopify.stats()["mutation_calls"].get("inventoryAdjustQuantities", 0)
    run = inventory_push_for_items(connection=shopify_connection, erp_item_codes=["TEE-1"], queue=False)
    assert run.kind == "order" and run.levels_total == 1 and run.api_calls == 1
    assert sandbox.shopify.stats()["mutation_calls"]["inventoryAdjustQuantities"] == before + 1
    level = sandbox.shopify.level("TEE-1", shop)
    assert (level["available"], level["reserved"]) == (6, 1)


def test_only_changed_levels_are_pushed_in_calls_of_the_per_call_maximum(sandbox, shop, shopify_connection, monkeypatch):
    monkeypatch.setattr(ShopifyClient, "MAX_QUANTITIES_PER_CALL", 3)
    for n in range(8):
        add_sku(sandbox, f"SKU-{n}", on_hand=5)
    first = sync(shopify_connection)
    assert first.levels_changed == 8 and first.api_calls == math.ceil(8 / 3)
    for n in range(4):
        sandbox.erp.set_stock(f"SKU-{n}", "MAIN", on_hand=9)
    before = sandbox.shopify.stats()["mutation_calls"]["inventorySetQuantities"]
    second = sync(shopify_connection)
    assert second.levels_total == 8 and second.levels_changed == 4
    assert second.api_calls == math.ceil(4 / 3) == sandbox.shopify.stats()["mutation_calls"]["inventorySetQuantities"] - before
    third = sync(shopify_connection)
    assert third.levels_changed == 0 and third.api_calls == 0


def test_exhausted_bucket_waits_instead_of_failing(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", on_hand=7)
    import time

    sandbox.shopify.configure(bucket_size=1000, restore_rate=1000)
    with sandbox.shopify.lock:
        sandbox.shopify.bucket.available, sandbox.shopify.bucket.at = 0, time.monotonic()  # all points spent
    waits = []
    storefront = ShopifyClient.from_settings(sleep=lambda s: (waits.append(s), time.sleep(s)))
    run = InventorySyncRun.objects.create(connection=shopify_connection)
    from integrations.flows.inventory import inventory_sync_run

    run = inventory_sync_run(run_id=run.pk, storefront=storefront)
    assert run.status == "succeeded"
    assert waits and sandbox.shopify.stats()["throttled"] >= 1
    assert sandbox.shopify.level("TEE-1", shop)["available"] == 7


def test_http_429_is_retried(sandbox, shop, shopify_connection):
    import requests

    add_sku(sandbox, "TEE-1", on_hand=7)
    storefront = client()
    real = storefront.session.request
    calls = {"n": 0}

    def flaky(method, url, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            response = requests.Response()
            response.status_code, response.headers["Retry-After"] = 429, "0.5"
            return response
        return real(method, url, **kw)

    storefront.session.request = flaky
    run = InventorySyncRun.objects.create(connection=shopify_connection)
    from integrations.flows.inventory import inventory_sync_run

    run = inventory_sync_run(run_id=run.pk, storefront=storefront)
    assert run.status == "succeeded" and storefront.stats.rate_limited == 1
    assert sandbox.shopify.level("TEE-1", shop)["available"] == 7


def test_unknown_sku_becomes_an_ecommerce_exception_not_a_silent_skip(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", on_hand=7)
    sandbox.shopify.add_product("Mystery", [{"sku": "NOT-IN-ERP", "price": "1"}])  # storefront only
    SkuMappingFactory(connection=shopify_connection, storefront_sku="GONE-1", erp_item_code="TEE-1")
    run = sync(shopify_connection)
    assert run.status == "partial"
    records = ExceptionRecord.objects.filter(type_code="inventory_unknown_sku").order_by("sku")
    assert [(r.sku, r.team) for r in records] == [("NOT-IN-ERP", "ecommerce")]
    # A mapped storefront SKU the shop does not have is an exception when an order pushes it.
    run = inventory_push_for_items(connection=shopify_connection, erp_item_codes=["TEE-1"], queue=False)
    assert ExceptionRecord.objects.filter(type_code="inventory_unknown_sku", sku="GONE-1").exists()
    assert InventoryLevel.objects.get(storefront_sku="GONE-1").last_error


def test_unmapped_location_becomes_an_exception(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", on_hand=7)
    sandbox.shopify.add_location("Pop-up shop")
    run = sync(shopify_connection)
    record = ExceptionRecord.objects.get(type_code="inventory_unmapped_location")
    assert "Pop-up shop" in record.title and record.team == "ecommerce"
    assert run.status == "partial"
    assert sandbox.shopify.level("TEE-1", shop)["available"] == 7


def test_unknown_sku_exception_resolves_itself_once_a_later_push_succeeds(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", on_hand=7)
    sandbox.shopify.add_product("Mystery", [{"sku": "NOT-IN-ERP", "price": "1"}])
    sync(shopify_connection)
    record = ExceptionRecord.objects.get(type_code="inventory_unknown_sku", sku="NOT-IN-ERP")
    assert record.status == "open"
    sandbox.erp.add_item("NOT-IN-ERP")  # the catalogue team creates the item and its stock
    sandbox.erp.set_stock("NOT-IN-ERP", "MAIN", on_hand=4)
    run = sync(shopify_connection)
    record.refresh_from_db()
    assert run.status == "succeeded" and record.status == "resolved"
    assert "later stock push" in record.resolution_note
    assert record.activity.filter(action="auto_resolved").exists()
    assert sandbox.shopify.level("NOT-IN-ERP", shop)["available"] == 4


def test_unmapped_location_exception_resolves_once_mapped_and_pushed(sandbox, shop, shopify_connection):
    add_sku(sandbox, "TEE-1", on_hand=7)
    popup = sandbox.shopify.add_location("Pop-up shop")
    sync(shopify_connection)
    record = ExceptionRecord.objects.get(type_code="inventory_unmapped_location")
    LocationMappingFactory(connection=shopify_connection, storefront_location=popup, erp_warehouse="MAIN")
    run = sync(shopify_connection)
    record.refresh_from_db()
    assert run.status == "succeeded" and record.status == "resolved"
    assert sandbox.shopify.level("TEE-1", popup)["available"] == 7



def test_every_storefront_inventory_write_is_in_the_outbound_write_log(sandbox, shop, shopify_connection):
    from integrations.flows.inventory import inventory_sync_run
    from integrations.models import OutboundWrite

    add_sku(sandbox, "TEE-1", storefront=3, on_hand=30)
    add_sku(sandbox, "TEE-2", storefront=0, on_hand=4)
    sent_keys = []

    class Recording(ShopifyClient):
        def set_available_quantities(self, changes, **kw):
            sent_keys.append(kw.get("idempotency_key"))
            return super().set_available_quantities(changes, **kw)

    run = InventorySyncRun.objects.create(connection=shopify_connection)
    run = inventory_sync_run(run_id=run.pk, storefront=Recording.from_settings())
    writes = list(OutboundWrite.objects.filter(subject_type="inventory_run", subject_id=str(run.pk)))
    assert [(w.action, w.status, w.connection_id, w.system) for w in writes] == [
        ("set_inventory", "succeeded", shopify_connection.pk, "shopify")]
    # The key in the log is the one the call derived Shopify's @idempotent keys from.
    assert sent_keys == [writes[0].idempotency_key]
    assert writes[0].idempotency_key.startswith(f"ledgerline://inventory-run/{run.pk}/set_inventory/")
    assert sandbox.shopify.level("TEE-2", shop)["available"] == 4


def test_a_storefront_write_that_fails_is_logged_as_failed_with_its_error(sandbox, shop, shopify_connection):
    from integrations.connectors.base import TransientError
    from integrations.flows.inventory import inventory_sync_run
    from integrations.models import OutboundWrite

    add_sku(sandbox, "TEE-1", storefront=3, on_hand=30)

    class Down(ShopifyClient):
        def set_available_quantities(self, changes, **kw):
            raise TransientError("Shopify: 503 Service Unavailable", status=503)

    run = InventorySyncRun.objects.create(connection=shopify_connection)
    try:
        inventory_sync_run(run_id=run.pk, storefront=Down.from_settings())
    except TransientError:
        pass  # the task's retry policy takes it from here
    write = OutboundWrite.objects.get(subject_type="inventory_run", subject_id=str(run.pk))
    assert (write.action, write.status) == ("set_inventory", "failed")
    assert "503" in write.error and write.finished_at is not None
    assert sandbox.shopify.level("TEE-1", shop)["available"] == 3  # nothing half-written
