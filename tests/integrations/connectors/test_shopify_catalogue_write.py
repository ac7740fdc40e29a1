"""Publishing the item master to Shopify over real HTTP (the sandbox shop): variants, prices and market
prices arrive exactly, a key is one product however often it is published, a retired product is
archived, refusals and THROTTLED come back as results, and the existing readers (variant prices,
inventory levels, the price drift check) see what was published."""
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from integrations.connectors import connector_for
from integrations.connectors.base import supports
from integrations.connectors.catalogue import BULK_PUBLISH, PUBLISH_PRODUCTS, ItemPrice, Product, ProductVariant
from integrations.connectors.shopify import ShopifyClient, catalogue_read

TOKEN = "shpat_sandbox_token"


def client(sandbox, **kw) -> ShopifyClient:
    kw.setdefault("sleep", lambda s: None)
    return ShopifyClient(f"{sandbox.url}/shopify", TOKEN, "2026-04", **kw)


def gbp(amount, **kw):
    return ItemPrice("GBP", Decimal(amount), **kw)


def tee(**changes) -> Product:
    product = Product(key="TEE-CLASSIC", name="Classic tee", description="Heavy cotton\nMade in Portugal",
                      product_type="T-shirts", variants=(
        ProductVariant(sku="TEE-BLK-S", item_id="I-1", attributes={"size": "S", "colour": "Black"},
                       barcodes=("5012345678900",),
                       prices=(gbp("19.99"), gbp("25.00", type="compare_at"), ItemPrice("EUR", Decimal("22.99")),
                               ItemPrice("EUR", Decimal("27.50"), type="compare_at"))),
        ProductVariant(sku="TEE-BLK-M", item_id="I-2", attributes={"size": "M", "colour": "Black"},
                       prices=(gbp("21.10"), ItemPrice("EUR", Decimal("23.49")))),
    ))
    return Product(**{**product.__dict__, **changes})


@pytest.fixture
def shop(sandbox):
    sandbox.shopify.reset(seed=False)
    sandbox.shopify.add_location("Main warehouse")
    sandbox.shopify.add_location("Northern store")
    return sandbox.shopify


def test_the_shopify_client_declares_both_publishing_capabilities(sandbox):
    assert supports(client(sandbox), PUBLISH_PRODUCTS) and supports(client(sandbox), BULK_PUBLISH)


def test_variants_prices_compare_at_and_a_market_price_list_arrive_exactly(sandbox, shop):
    eur = shop.add_price_list("Europe", "EUR")
    (result,) = client(sandbox, price_lists={"EUR": eur}).publish_products([tee()])

    assert (result.ok, result.created, result.error) == (True, True, "")
    stored = shop.product_by_handle("tee-classic")
    assert (stored["title"], stored["status"], stored["product_type"]) == ("Classic tee", "ACTIVE", "T-shirts")
    assert stored["description_html"] == "Heavy cotton<br>Made in Portugal"
    assert [o["name"] for o in stored["options"]] == ["size"]  # the colour tells no variant apart
    rows = {v.sku: v for v in catalogue_read.variant_prices(client(sandbox))}  # the drift check's own reader
    assert (rows["TEE-BLK-S"].price, rows["TEE-BLK-S"].compare_at_price) == (Decimal("19.99"), Decimal("25.00"))
    assert (rows["TEE-BLK-M"].price, rows["TEE-BLK-M"].compare_at_price) == (Decimal("21.10"), None)
    assert rows["TEE-BLK-S"].title == "S" and rows["TEE-BLK-S"].product_id == result.storefront_id
    assert result.variant_ids == {"TEE-BLK-S": rows["TEE-BLK-S"].variant_id, "TEE-BLK-M": rows["TEE-BLK-M"].variant_id}
    assert shop.variant_by_sku("TEE-BLK-S")["barcode"] == "5012345678900"
    assert shop.fixed_price(eur, "TEE-BLK-S") == {"price": "22.99", "compare_at_price": "27.50", "currency": "EUR"}
    assert shop.fixed_price(eur, "TEE-BLK-M") == {"price": "23.49", "compare_at_price": None, "currency": "EUR"}


def test_prices_shopify_cannot_carry_are_not_sent(sandbox, shop):
    """Only the unscoped price in effect goes on the variant; another currency without a price list,
    country, customer-group, channel and tier prices, and expired prices are left out."""
    now = datetime.now(timezone.utc)
    product = Product(key="MUG", name="Mug", variants=(ProductVariant(sku="MUG-1", item_id="M", prices=(
        gbp("9.50"), gbp("8.00", customer_group="trade"), gbp("7.00", min_quantity=10), gbp("9.00", country="GB"),
        gbp("6.00", channel="outlet"), gbp("5.00", valid_until=now - timedelta(days=1)),
        ItemPrice("USD", Decimal("12.00")))),))
    (result,) = client(sandbox).publish_products([product])
    assert result.ok
    assert (shop.variant_by_sku("MUG-1")["price"], shop.variant_by_sku("MUG-1")["compare_at_price"]) == ("9.50", None)
    assert shop.stats()["mutation_calls"].get("priceListFixedPricesAdd") is None


def test_publishing_twice_makes_one_product_and_updates_it(sandbox, shop):
    shopify = client(sandbox)
    (first,) = shopify.publish_products([tee()])
    changed = tee(name="Classic tee (organic)")
    cheaper = ProductVariant(**{**changed.variants[1].__dict__, "prices": (gbp("18.00"),)})
    (second,) = shopify.publish_products([Product(**{**changed.__dict__, "variants": (changed.variants[0], cheaper)})])

    assert (first.created, second.created) == (True, False)
    assert second.storefront_id == first.storefront_id and second.variant_ids == first.variant_ids
    assert len(shop.products) == 1 and len(shop.variants) == 2
    assert shop.product_by_handle("tee-classic")["title"] == "Classic tee (organic)"
    assert shop.variant_by_sku("TEE-BLK-M")["price"] == "18.00"


def test_a_retired_product_is_archived_not_deleted(sandbox, shop):
    shopify = client(sandbox)
    shopify.publish_products([tee()])
    (result,) = shopify.publish_products([tee(published=False)])
    assert result.ok
    stored = shop.product_by_handle("tee-classic")
    assert stored["status"] == "ARCHIVED" and len(stored["variants"]) == 2


def test_a_refused_product_is_a_result_with_shopifys_message_and_the_others_go_through(sandbox, shop):
    bad = Product(key="BAD", name="Bad", variants=(ProductVariant(sku="BAD-1", item_id="B", prices=(gbp("1.999"),)),))
    no_price = Product(key="EUR-ONLY", name="Euro only", variants=(
        ProductVariant(sku="EUR-1", item_id="E", prices=(ItemPrice("EUR", Decimal("3")),)),))
    results = client(sandbox).publish_products([bad, tee(), no_price])

    assert [r.key for r in results] == ["BAD", "TEE-CLASSIC", "EUR-ONLY"]
    assert (results[0].ok, results[0].retryable) == (False, False)
    assert results[0].error == "input.variants.0.price: Price 1.999 has more decimals than GBP allows"
    assert results[1].ok
    assert not results[2].ok and "no price in the shop's currency GBP" in results[2].error
    assert shop.product_by_handle("bad") is None and shop.product_by_handle("eur-only") is None


def test_a_price_list_refusal_fails_the_product_and_names_the_reason(sandbox, shop):
    usd = shop.add_price_list("US", "USD")  # configured for EUR by mistake
    (result,) = client(sandbox, price_lists={"EUR": usd}).publish_products([tee()])
    assert not result.ok and result.storefront_id  # the product is there; its market prices are not
    assert "Currency must match price list currency" in result.error


def test_throttled_answers_are_waited_out_and_a_lasting_throttle_is_retryable(sandbox, shop):
    shop.configure(bucket_size=60, restore_rate=50)  # Shopify's standard plan restores 50 points a second
    shop.bucket.refill()
    shop.bucket.available = 0
    waited = []
    (result,) = client(sandbox, sleep=lambda s: (waited.append(s), time.sleep(s))).publish_products([tee()])
    assert result.ok and sum(waited) > 0.2  # waited for the bucket (from each answer's throttleStatus)

    shop.configure(restore_rate=0.001)
    shop.bucket.refill()
    shop.bucket.available = 0
    stubborn = client(sandbox)
    stubborn.MAX_THROTTLE_RETRIES = 1
    (result,) = stubborn.publish_products([tee(name="Renamed")])
    assert (result.ok, result.retryable) == (False, True) and "throttling" in result.error
    assert shop.throttled >= 2  # Shopify's THROTTLED answers, sent again once
    assert shop.product_by_handle("tee-classic")["title"] == "Classic tee"


def test_cost_points_are_counted_on_the_client(sandbox, shop):
    shopify = client(sandbox)
    shopify.publish_products([tee()])
    assert shopify.cost_points == shop.stats()["points_spent"] > 0
    assert shopify.cost_points_requested >= shopify.cost_points


def test_restore_erp_price_puts_the_variant_and_market_prices_back(sandbox, shop):
    eur = shop.add_price_list("Europe", "EUR")
    shopify = client(sandbox, price_lists={"EUR": eur})
    shopify.publish_products([tee()])
    shop.variant_by_sku("TEE-BLK-S")["price"] = "9.99"  # hand-edited in the Shopify admin
    shop.variant_by_sku("TEE-BLK-S")["compare_at_price"] = None

    shopify.set_variant_prices("TEE-BLK-S", list(tee().variants[0].prices))
    assert (shop.variant_by_sku("TEE-BLK-S")["price"], shop.variant_by_sku("TEE-BLK-S")["compare_at_price"]) == (
        "19.99", "25.00")
    assert shop.fixed_price(eur, "TEE-BLK-S")["price"] == "22.99"


def test_published_variants_are_stocked_at_every_location_for_the_inventory_reads(sandbox, shop):
    shopify = client(sandbox)
    shopify.publish_products([tee()])
    found = shopify.find_variants_by_sku(["TEE-BLK-S", "TEE-BLK-M"])
    assert set(found) == {"TEE-BLK-S", "TEE-BLK-M"}
    levels = shopify.inventory_levels([found["TEE-BLK-S"]["inventory_item_id"]])
    assert len(levels) == 2 and all(q["available"] == 0 for q in levels.values())


@pytest.mark.django_db
def test_after_a_push_the_price_drift_check_finds_nothing(sandbox, shop, shopify_connection):
    from integrations.drift.registry import check_run
    from integrations.models import DriftRun

    eur = shop.add_price_list("Europe", "EUR")
    shopify_connection.settings = {**(shopify_connection.settings or {}), "price_lists": {"EUR": eur}}
    shopify_connection.save()
    for variant in tee().variants:
        sandbox.erp.add_item(variant.sku, prices=[
            {"currency": p.currency, "amount": str(p.amount), "type": p.type} for p in variant.prices])

    (result,) = connector_for(shopify_connection).publish_products([tee()])
    assert result.ok
    run = check_run("prices")
    assert (run.status, run.found) == (DriftRun.Status.OK, 0), run.error
    assert run.summary["compared"] == {shopify_connection.code: 3}  # two prices and one compare-at price

    shop.variant_by_sku("TEE-BLK-M")["price"] = "20.00"  # a hand edit is drift
    assert check_run("prices").found == 1
