"""Publishing to a shop that already sells the SKUs, over real HTTP against the sandbox shop: the seeded
"Classic tee" holding exactly a product's SKUs is adopted (same product, same variant ids, no second
product), SKUs the shop groups otherwise are a conflict and nothing is written, images arrive as the
product's media and each variant's image without piling up on a re-publish, attributes that are no
option arrive as metafields, and the bulk path adopts too."""
from decimal import Decimal

import pytest

from integrations.connectors.catalogue import ItemPrice, Product, ProductVariant
from integrations.connectors.shopify import ShopifyClient
from tests.integrations.connectors.test_shopify_catalogue_bulk import _wait

TOKEN = "shpat_sandbox_token"
TEE_SKUS = (("TEE-BLK-S", "Black", "S"), ("TEE-BLK-M", "Black", "M"), ("TEE-BLK-L", "Black", "L"),
            ("TEE-WHT-M", "White", "M"))
FRONT, BACK = "https://images.example.com/tee-black.jpg", "https://images.example.com/tee-white.jpg"


def client(sandbox) -> ShopifyClient:
    return ShopifyClient(f"{sandbox.url}/shopify", TOKEN, "2026-04", sleep=lambda s: None)


def gbp(amount: str) -> tuple:
    return (ItemPrice("GBP", Decimal(amount)),)


def tee(skus=TEE_SKUS, *, key="TEE", storefront_id="", images=True, name="Classic tee") -> Product:
    return Product(key=key, name=name, storefront_id=storefront_id, variants=tuple(
        ProductVariant(sku=sku, item_id=sku, prices=gbp("21.00"),
                       attributes={"colour": colour, "size": size, "material": "cotton", "weight_g": 180},
                       images=((FRONT if colour == "Black" else BACK),) if images else ())
        for sku, colour, size in skus))


@pytest.fixture
def shop(sandbox):
    sandbox.shopify.reset(seed=True)  # Classic tee (four SKUs), Enamel mug, Hoodie
    return sandbox.shopify


def _variant_gids(shop, skus) -> dict[str, str]:
    return {sku: f"gid://shopify/ProductVariant/{shop.variant_by_sku(sku)['number']}" for sku in skus}


def test_a_shop_product_holding_exactly_the_skus_is_adopted_not_duplicated(sandbox, shop):
    seeded = shop.product_by_handle("classic-tee")
    before = _variant_gids(shop, [s for s, *_ in TEE_SKUS])
    stock = shop.level("TEE-BLK-M", 1)["available"]
    products = len(shop.products)

    (result,) = client(sandbox).publish_products([tee()])

    assert result.ok and result.adopted and not result.created and not result.conflict, result
    assert result.storefront_id == f"gid://shopify/Product/{seeded['number']}"
    assert result.variant_ids == before  # updated in place: orders and stock hang on these ids
    assert len(shop.products) == products and shop.product_by_handle("tee") is None
    assert seeded["title"] == "Classic tee" and shop.product_by_handle("classic-tee") is seeded  # its handle kept
    assert shop.variant_by_sku("TEE-BLK-M")["price"] == "21.00"
    assert shop.level("TEE-BLK-M", 1)["available"] == stock


def test_publishing_again_by_storefront_id_keeps_the_product_and_its_variants(sandbox, shop):
    shopify = client(sandbox)
    (first,) = shopify.publish_products([tee()])
    (again,) = shopify.publish_products([tee(storefront_id=first.storefront_id, name="Classic tee, heavy")])

    assert again.ok and not again.adopted and again.storefront_id == first.storefront_id
    assert again.variant_ids == first.variant_ids
    assert shop.product_by_handle("classic-tee")["title"] == "Classic tee, heavy"


@pytest.mark.parametrize("skus, named", [
    (TEE_SKUS[:3], ["TEE-BLK-S, TEE-BLK-M, TEE-BLK-L, TEE-WHT-M"]),  # the shop's tee also holds TEE-WHT-M
    (TEE_SKUS + (("MUG-001", "White", "One"),), ["Classic tee", "Enamel mug"]),  # spread over two products
])
def test_skus_the_shop_groups_otherwise_are_a_conflict_and_nothing_is_written(sandbox, shop, skus, named):
    calls_before = dict(shop.mutation_calls)
    products, variants = len(shop.products), dict((n, dict(v)) for n, v in shop.variants.items())

    (result,) = client(sandbox).publish_products([tee(skus, key="TEE-BLK")])

    assert not result.ok and result.conflict and not result.retryable
    seeded = shop.product_by_handle("classic-tee")
    assert f"gid://shopify/Product/{seeded['number']}" in result.error and "classic-tee" in result.error
    assert all(text in result.error for text in named), result.error
    assert shop.mutation_calls.get("productSet", 0) == calls_before.get("productSet", 0)
    assert len(shop.products) == products and shop.variants == variants


def test_images_and_attributes_arrive_and_publishing_again_adds_no_media(sandbox, shop):
    shopify = client(sandbox)
    (first,) = shopify.publish_products([tee()])
    seeded = shop.product_by_handle("classic-tee")

    assert [m["source"] for m in shop.product_media(seeded["number"])] == [FRONT, BACK]
    by_sku = {row["sku"]: row for row in next(p for p in sandbox_products(sandbox) if p["id"] == first.storefront_id)[
        "variants"]}
    assert by_sku["TEE-BLK-S"]["image"] == FRONT and by_sku["TEE-WHT-M"]["image"] == BACK
    fields = shop.metafields_of(seeded)
    assert fields["ledgerline.material"] == ("single_line_text_field", "cotton")
    assert fields["ledgerline.weight_g"] == ("number_integer", "180")
    created = shop.media_created

    (again,) = shopify.publish_products([tee(storefront_id=first.storefront_id)])

    assert again.ok and shop.media_created == created  # the same sources: no file fetched again
    assert [m["source"] for m in shop.product_media(seeded["number"])] == [FRONT, BACK]
    assert shop.metafields_of(seeded)["ledgerline.material"] == ("single_line_text_field", "cotton")

    changed = tee(storefront_id=first.storefront_id)
    changed = Product(key=changed.key, name=changed.name, storefront_id=changed.storefront_id, variants=tuple(
        ProductVariant(v.sku, v.item_id, v.attributes, images=(BACK,), prices=v.prices) for v in changed.variants))
    shopify.publish_products([changed])
    assert [m["source"] for m in shop.product_media(seeded["number"])] == [BACK]  # replaced, not added


def sandbox_products(sandbox) -> list[dict]:
    import requests

    return requests.get(f"{sandbox.url}/shopify/_sandbox/products", timeout=10).json()["products"]


def test_the_bulk_path_adopts_and_reports_a_conflict_without_writing_it(sandbox, shop):
    shopify = client(sandbox)
    before = _variant_gids(shop, [s for s, *_ in TEE_SKUS])
    mug = Product(key="MUG", name="Enamel mug", variants=(
        ProductVariant(sku="MUG-001", item_id="m", prices=gbp("9.75")),))
    hoodie_split = Product(key="HOODIE", name="Hoodie", variants=(
        ProductVariant(sku="HOODIE-GRY-L", item_id="h", attributes={"size": "L"}, prices=gbp("44.00")),
        ProductVariant(sku="TEE-WHT-M", item_id="t", attributes={"size": "M"}, prices=gbp("44.00"))))
    new = Product(key="CAP", name="Cap", variants=(ProductVariant(sku="CAP-1", item_id="c", prices=gbp("12.00")),))
    products = len(shop.products)

    handle = shopify.bulk_publish_start([tee(), mug, hoodie_split, new])
    assert _wait(shopify, handle).state == "completed"
    results = {r.key: r for r in shopify.bulk_publish_results(handle)}

    assert results["TEE"].ok and results["TEE"].adopted and results["TEE"].variant_ids == before
    assert results["MUG"].ok and results["MUG"].adopted and shop.variant_by_sku("MUG-001")["price"] == "9.75"
    assert results["HOODIE"].conflict and not results["HOODIE"].ok and "Hoodie" in results["HOODIE"].error
    assert results["CAP"].ok and results["CAP"].created and not results["CAP"].adopted
    assert len(shop.products) == products + 1  # the cap only

    # After a crash the caller rebuilds the products: the same results, nothing planned twice.
    again = {r.key: r for r in client(sandbox).bulk_publish_results(handle, [tee(), mug, hoodie_split, new])}
    assert again["TEE"].ok and again["TEE"].adopted and again["HOODIE"].conflict and again["CAP"].ok


def test_a_product_deleted_in_the_shop_is_made_again_instead_of_failing(sandbox, shop):
    shopify = client(sandbox)
    cap = Product(key="CAP", name="Cap", variants=(ProductVariant(sku="CAP-1", item_id="c", prices=gbp("12.00")),))
    (first,) = shopify.publish_products([cap])
    number = int(first.storefront_id.rsplit("/", 1)[1])
    with shop.lock:  # the merchant deletes it
        for variant in list(shop.products[number]["variants"]):
            shop._delete_variant(variant)
        del shop.products[number]

    (again,) = shopify.publish_products([Product(key="CAP", name="Cap", storefront_id=first.storefront_id,
                                                 variants=cap.variants)])

    assert again.ok and again.created and again.storefront_id != first.storefront_id
    assert shop.product_by_handle("cap")["title"] == "Cap"


def test_a_sku_of_ours_that_the_shop_also_sells_on_another_product_is_a_conflict(sandbox, shop):
    shopify = client(sandbox)
    (first,) = shopify.publish_products([tee()])
    # Someone makes a bundle in the shop by hand that sells TEE-WHT-M as well; our tee still holds it.
    shop.add_product("Tee bundle", [{"sku": "TEE-WHT-M", "price": "5.00"}])
    title = shop.product_by_handle("classic-tee")["title"]

    (again,) = shopify.publish_products([tee(storefront_id=first.storefront_id, name="Classic tee, heavy")])

    assert not again.ok and again.conflict and "Tee bundle" in again.error and "TEE-WHT-M" in again.error
    assert shop.product_by_handle("classic-tee")["title"] == title  # nothing written


def test_a_product_whose_variants_are_all_recorded_is_written_without_a_lookup(sandbox, shop):
    from dataclasses import replace

    shopify = client(sandbox)
    (first,) = shopify.publish_products([tee()])
    created = shop.media_created
    assert created  # the first publish sent the images
    recorded = tee(storefront_id=first.storefront_id, name="Classic tee, heavy")
    recorded = replace(recorded, variants=tuple(
        replace(v, storefront_id=first.variant_ids[v.sku], images_pushed=v.images) for v in recorded.variants))
    sent = []
    real = shopify.graphql
    shopify.graphql = lambda query, variables=None, **kw: (sent.append(query), real(query, variables, **kw))[1]

    (again,) = shopify.publish_products([recorded])

    assert again.ok and again.variant_ids == first.variant_ids
    assert not any("productVariants(" in q for q in sent)  # no SKU lookup
    product = shop.product_by_handle("classic-tee")
    assert product["title"] == "Classic tee, heavy" and shop.media_created == created  # no file fetched again
    assert [m["source"] for m in shop.product_media(product["number"])] == [FRONT, BACK]
