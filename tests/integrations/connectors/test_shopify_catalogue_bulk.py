"""Bulk publishing to Shopify over real HTTP: the productSet variables staged as JSONL (a multipart POST to
the staged target), one bulk mutation running in the background, its result lines mapped back to their
products; a crash after the start resumes by the operation's handle without duplicates; a second bulk
while one runs is refused (retryable) and goes through once the first has finished."""
import json
import time
from decimal import Decimal

import pytest
import requests

from integrations.connectors.base import TransientError
from integrations.connectors.catalogue import ItemPrice, Product, ProductVariant
from integrations.connectors.shopify import ShopifyClient
from integrations.connectors.shopify.bulk import BulkOperationInProgress

TOKEN = "shpat_sandbox_token"


def client(sandbox, **kw) -> ShopifyClient:
    return ShopifyClient(f"{sandbox.url}/shopify", TOKEN, "2026-04", sleep=lambda s: None, **kw)


def catalogue(count: int, *, start: int = 0, price: str = "10.00") -> list[Product]:
    """`count` products of two variants each (sizes S and M), prices distinct per product."""
    products = []
    for n in range(start, start + count):
        variants = tuple(
            ProductVariant(sku=f"P{n:05d}-{size}", item_id=f"I{n}-{size}", attributes={"size": size},
                           prices=(ItemPrice("GBP", Decimal(price) + Decimal(n) / 100 + extra),
                                   ItemPrice("EUR", Decimal("12.00") + Decimal(n) / 100)))
            for size, extra in (("S", Decimal(0)), ("M", Decimal("1.00"))))
        products.append(Product(key=f"P{n:05d}", name=f"Product {n}", variants=variants))
    return products


@pytest.fixture
def shop(sandbox):
    sandbox.shopify.reset(seed=False)
    sandbox.shopify.add_location("Main warehouse")
    return sandbox.shopify


def _wait(shopify, handle):
    for _ in range(2000):
        status = shopify.bulk_publish_status(handle)
        if status.state != "running":
            return status
    raise AssertionError("the bulk publish never finished")


def test_a_bulk_publish_of_300_products_arrives_whole_and_maps_back_by_line(sandbox, shop):
    eur = shop.add_price_list("Europe", "EUR")
    shopify = client(sandbox, price_lists={"EUR": eur})
    products = catalogue(300)
    handle = shopify.bulk_publish_start(products)

    assert handle.startswith("gid://shopify/BulkOperation/")
    assert _wait(shopify, handle).state == "completed"
    assert shopify.bulk_publish_status(handle).done_count == 300
    results = shopify.bulk_publish_results(handle)

    assert [r.key for r in results] == [p.key for p in products]
    assert all(r.ok and r.created for r in results), [r for r in results if not r.ok][:3]
    assert len(shop.products) == 300 and len(shop.variants) == 600
    # Shopify promises no order of the result lines (the sandbox writes even lines first): each result
    # still names its own product's variants.
    for product, result in zip(products, results):
        for variant in product.variants:
            stored = shop.variants[int(result.variant_ids[variant.sku].rsplit("/", 1)[1])]
            assert stored["sku"] == variant.sku and Decimal(stored["price"]) == variant.prices[0].amount
    assert shop.product_by_handle("p00299")["title"] == "Product 299"
    assert shop.fixed_price(eur, "P00007-M") == {"price": "12.07", "compare_at_price": None, "currency": "EUR"}
    assert shopify.cost_points > 0  # staging, starting, polling and the price lists; the lines themselves are free


def test_the_file_is_staged_as_shopify_stages_it(sandbox, shop):
    """A POST form to the staged target: its parameters, then the file; the target checks the policy."""
    shopify = client(sandbox)
    shopify.bulk_publish_start(catalogue(2))
    (staged,) = shop.staged_uploads.values()
    lines = [json.loads(line) for line in staged["body"].decode().splitlines()]
    assert [line["identifier"] for line in lines] == [{"handle": "p00000"}, {"handle": "p00001"}]
    assert lines[0]["input"]["variants"][1]["price"] == "11.00"
    forged = requests.post(f"{sandbox.url}/shopify/_staged-uploads/", timeout=10,
                           data={"key": staged["key"], "policy": staged["policy"], "x-goog-signature": "0" * 64},
                           files={"file": ("x.jsonl", b"{}\n", "text/jsonl")})
    assert forged.status_code == 403


def test_a_crash_after_the_start_resumes_by_handle_without_duplicates(sandbox, shop):
    shop.configure(bulk_mutations_paused=True)
    products = catalogue(40)
    handle = client(sandbox).bulk_publish_start(products)  # ... and the process stops here
    assert client(sandbox).bulk_publish_status(handle).state == "running"
    with pytest.raises(TransientError):
        client(sandbox).bulk_publish_results(handle, products)  # not finished: try again later

    shop.configure(bulk_mutations_paused=False)
    resumed = client(sandbox)  # a new process: it knows the handle the flow stored, and the products
    assert _wait(resumed, handle).state == "completed"
    results = resumed.bulk_publish_results(handle, products)
    assert [r.key for r in results] == [p.key for p in products] and all(r.ok for r in results)
    assert len(shop.products) == 40

    # Even the job started again (a crash before its handle was stored) updates the same products.
    time.sleep(1.05)  # `created` compares Shopify's timestamps, which are to the second
    again = resumed.bulk_publish_start(catalogue(40, price="11.00"))
    assert _wait(resumed, again).state == "completed"
    second = resumed.bulk_publish_results(again, catalogue(40, price="11.00"))
    assert all(r.ok and not r.created for r in second)
    assert [r.storefront_id for r in second] == [r.storefront_id for r in results]
    assert len(shop.products) == 40 and len(shop.variants) == 80
    assert shop.variant_by_sku("P00003-S")["price"] == "11.03"


def test_without_the_products_results_come_back_by_handle(sandbox, shop):
    products = catalogue(3)
    handle = client(sandbox).bulk_publish_start(products)
    shop.wait_for_bulk_mutations()
    results = client(sandbox).bulk_publish_results(handle)
    assert sorted(r.key for r in results) == ["p00000", "p00001", "p00002"] and all(r.ok for r in results)


def test_a_second_bulk_while_one_runs_is_refused_as_retryable_then_goes_through(sandbox, shop):
    shopify = client(sandbox)
    shop.configure(bulk_mutations_paused=True)
    first = shopify.bulk_publish_start(catalogue(5))
    with pytest.raises(BulkOperationInProgress) as refused:
        shopify.bulk_publish_start(catalogue(5, start=5))
    assert isinstance(refused.value, TransientError) and refused.value.retry_after > 0
    assert first.rsplit("/", 1)[1] in str(refused.value)

    shop.configure(bulk_mutations_paused=False)
    assert _wait(shopify, first).state == "completed"
    second = shopify.bulk_publish_start(catalogue(5, start=5))  # the retry
    assert _wait(shopify, second).state == "completed"
    assert all(r.ok for r in shopify.bulk_publish_results(second))
    assert len(shop.products) == 10


def test_refused_lines_and_products_without_a_shop_price_are_failed_results(sandbox, shop):
    good, bad = catalogue(2)
    bad = Product(key=bad.key, name=bad.name, variants=(
        ProductVariant(sku="BAD-1", item_id="B", prices=(ItemPrice("GBP", Decimal("1.001")),)),))
    euro_only = Product(key="EUR-ONLY", name="Euro only", variants=(
        ProductVariant(sku="E-1", item_id="E", prices=(ItemPrice("EUR", Decimal("3.00")),)),))
    shopify = client(sandbox)
    handle = shopify.bulk_publish_start([good, bad, euro_only])
    assert _wait(shopify, handle).state == "completed"
    results = {r.key: r for r in shopify.bulk_publish_results(handle)}
    assert results[good.key].ok
    assert not results[bad.key].ok and "more decimals than GBP allows" in results[bad.key].error
    assert not results["EUR-ONLY"].ok and "no price in the shop's currency" in results["EUR-ONLY"].error
    assert len(shop.products) == 1
