"""The catalogue flow end to end over HTTP: the sandbox REST ERP's item master to the sandbox Shopify shop
and commercetools project, through the real publishers: variants and scoped / tiered prices arrive
exactly, a second round pushes nothing, a renamed SKU stays the same storefront variant, a retired
item is unpublished, and the price drift check finds nothing after a push."""
from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.connectors.commercetools import CommercetoolsClient
from integrations.drift.registry import check_run
from integrations.flows import catalogue
from integrations.models import CatalogPublication, Connection, DriftRun
from mappings.models import SkuMapping

pytestmark = pytest.mark.django_db

PRICES = [{"currency": "GBP", "amount": "19.99", "type": "list"},
          {"currency": "GBP", "amount": "25.00", "type": "compare_at"},
          {"currency": "GBP", "amount": "17.50", "type": "list", "min_quantity": 10},
          {"currency": "GBP", "amount": "15.00", "type": "list", "customer_group": "trade"}]


def put(sandbox, code, size, **fields):
    return sandbox.erp.item_master_put(code, **{
        "name": "Classic tee", "product_key": "TEE-CLASSIC", "product_type": "apparel", "unit_cost": "4.20",
        "lead_time_days": 14, "tax_code": "T1", "depot": "MAIN", "attributes": {"size": size}, "prices": PRICES,
        **fields})


@pytest.fixture
def erp(sandbox):
    sandbox.erp.add_depot("MAIN")
    put(sandbox, "TEE-S", "S")
    put(sandbox, "TEE-M", "M", prices=[{"currency": "GBP", "amount": "21.10", "type": "list"}])
    return Connection.objects.create(code="erp-items", kind="rest_erp", name="ERP")


def test_the_item_master_reaches_a_shopify_shop(sandbox, erp, shopify_connection):
    shop = sandbox.shopify
    shop.reset(seed=False)
    shop.add_location("Main warehouse")
    shopify_connection.settings = {**(shopify_connection.settings or {}), "catalogue_publish": True, "currency": "GBP"}
    shopify_connection.save()

    outcome = catalogue.catalogue_sync(erp_connection=erp, storefronts=[shopify_connection])
    assert outcome[shopify_connection.code]["published"] == 1, outcome
    [product] = shop.products.values() if isinstance(shop.products, dict) else shop.products
    assert shop.variant_by_sku("TEE-S")["price"] == "19.99" and shop.variant_by_sku("TEE-S")["compare_at_price"] == "25.00"
    assert shop.variant_by_sku("TEE-M")["price"] == "21.10"
    pub = CatalogPublication.objects.get(connection=shopify_connection, item__code="TEE-S")
    assert pub.state == "live" and pub.storefront_variant_id
    assert (check_run("prices").status, check_run("prices").found) == (DriftRun.Status.OK, 0)

    calls = shop.graphql_requests
    assert catalogue.catalogue_sync(erp_connection=erp, storefronts=[shopify_connection])[shopify_connection.code] == \
        {"published": 0}
    assert shop.graphql_requests == calls  # nothing changed: nothing asked of the shop

    variant_id = pub.storefront_variant_id
    sandbox.erp.item_master_change("TEE-S", new_code="TEE-SMALL")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shopify_connection])
    assert SkuMapping.objects.get(connection=shopify_connection, storefront_sku="TEE-S").erp_item_code == "TEE-SMALL"
    assert len(shop.products) == 1 and len(shop.variants) == 2
    pub.refresh_from_db()
    assert pub.storefront_variant_id == variant_id and pub.sku == "TEE-S" and shop.variant_by_sku("TEE-S")

    for code in ("TEE-SMALL", "TEE-M"):
        sandbox.erp.item_master_change(code, status="retired")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shopify_connection])
    [stored] = shop.products.values() if isinstance(shop.products, dict) else shop.products
    assert stored["status"] in ("ARCHIVED", "DRAFT") and len(shop.variants) == 2


def test_the_item_master_reaches_a_commercetools_project(sandbox, erp, ct_connection):
    ct_connection.settings = {**(ct_connection.settings or {}), "catalogue_publish": True, "currency": "GBP",
                              "catalogue_tax_category": "standard", "catalogue_product_types": {"apparel": "default"}}
    ct_connection.save()
    outcome = catalogue.catalogue_sync(erp_connection=erp, storefronts=[ct_connection])
    assert outcome[ct_connection.code]["published"] == 1, (outcome, list(CatalogPublication.objects.values_list("last_error", flat=True)))
    client = CommercetoolsClient.from_settings(connection_settings=ct_connection.settings)
    product = client.api("GET", "products/key=TEE-CLASSIC")
    staged = product["masterData"]["staged"]
    variants = [staged["masterVariant"], *staged["variants"]]
    by_sku = {v["sku"]: v for v in variants}
    assert set(by_sku) == {"TEE-S", "TEE-M"} and product["masterData"]["published"]
    prices = {(p["value"]["currencyCode"], (p.get("customerGroup") or {}).get("id", ""),
               p["value"]["centAmount"]) for p in by_sku["TEE-S"]["prices"]}
    assert ("GBP", "", 1999) in prices and len(by_sku["TEE-S"]["prices"]) >= 2
    tiers = [t for p in by_sku["TEE-S"]["prices"] for t in p.get("tiers") or ()]
    assert [(t["minimumQuantity"], t["value"]["centAmount"]) for t in tiers] == [(10, 1750)]

    sandbox.erp.item_master_change("TEE-M", prices=[{"currency": "GBP", "amount": "22.00", "type": "list"}])
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[ct_connection])
    again = client.api("GET", "products/key=TEE-CLASSIC")["masterData"]["staged"]
    m = next(v for v in [again["masterVariant"], *again["variants"]] if v["sku"] == "TEE-M")
    assert [p["value"]["centAmount"] for p in m["prices"]] == [2200]
    assert len(sandbox.commercetools.product_records if hasattr(sandbox.commercetools, "product_records")
               else sandbox.commercetools.products) == 1


def test_a_bulk_push_to_shopify_interrupted_while_waiting_resumes_on_the_same_job(sandbox, erp, shopify_connection,
                                                                                   monkeypatch):
    from integrations.connectors.shopify import ShopifyClient
    from integrations.models import CatalogRun

    shop = sandbox.shopify
    shop.reset(seed=False)
    shop.add_location("Main warehouse")
    shopify_connection.settings = {**(shopify_connection.settings or {}), "catalogue_publish": True, "currency": "GBP"}
    shopify_connection.save()
    for n in range(8):
        put(sandbox, f"BULK-{n}", "M", product_key=f"BULK-P{n // 2}")
    catalogue.pull_and_gate(erp, [shopify_connection])
    real = ShopifyClient.bulk_publish_status

    def killed(self, handle):
        raise KeyboardInterrupt("worker killed while waiting for the bulk job")

    monkeypatch.setattr(ShopifyClient, "bulk_publish_status", killed)
    with pytest.raises(KeyboardInterrupt):
        catalogue.publish(shopify_connection, bulk=True)
    run = CatalogRun.objects.get(kind="bulk")
    handle = run.bulk_handle
    assert run.state == "waiting" and handle.startswith("gid://shopify/BulkOperation/")  # saved before waiting
    monkeypatch.setattr(ShopifyClient, "bulk_publish_status", real)
    CatalogRun.objects.filter(pk=run.pk).update(summary={**run.summary, "worker_at": None})  # its lease ran out
    run = catalogue.publish(shopify_connection, wait=10)
    assert run.state == "done" and run.bulk_handle == handle and run.done == 5, run.error
    assert len(shop.products) == 5 and len(shop.variants) == 10  # the 2 fixture items + 8, once each
    assert set(CatalogPublication.objects.filter(connection=shopify_connection).values_list("state", flat=True)) == {
        "live"}
