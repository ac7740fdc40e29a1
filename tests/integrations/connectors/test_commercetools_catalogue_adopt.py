"""Adoption by the commercetools publisher, against our sandbox over real HTTP: a project that already sells
the ERP's SKUs (a product made by hand, or by an earlier integration, under another key or none) gets
that product updated, keeping its id, its key and its variant ids, instead of a second product or a
DuplicateField failure; SKUs grouped otherwise there come back as a conflict with nothing written."""
from decimal import Decimal

import pytest

from integrations.connectors.catalogue import ItemPrice, Product, ProductVariant
from integrations.connectors.commercetools import CommercetoolsClient
from integrations.connectors.commercetools import catalogue_write as cw

SIZES = ("S", "M", "L")


@pytest.fixture
def ct(sandbox):
    return sandbox.commercetools


@pytest.fixture
def client(ct):
    return CommercetoolsClient.from_settings(backoff_base=0.01, backoff_max=0.05,
                                             connection_settings={"product_type": "default"})


def tee(*, amount="21.00", storefront_id="", skus=("TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M")):
    """The ERP's T-shirt: one product key, colour and size on each variant."""
    return Product(key="TEE", name="T-shirt", tax_category="standard", storefront_id=storefront_id, variants=tuple(
        ProductVariant(sku=sku, item_id=f"ITM-{sku}", attributes={"colour": sku.split("-")[1].lower(),
                                                                  "size": sku.split("-")[2]},
                       prices=(ItemPrice("GBP", Decimal(amount)), ItemPrice("EUR", Decimal("24.50"))))
        for sku in skus))


def whole(client, product_id):
    return client.api("GET", f"products/{product_id}")


def variant_ids(product):
    staged = product["masterData"]["staged"]
    return {v["sku"]: v["id"] for v in [staged["masterVariant"], *staged["variants"]]}


def staged_prices(product, sku):
    staged = product["masterData"]["staged"]
    [variant] = [v for v in [staged["masterVariant"], *staged["variants"]] if v["sku"] == sku]
    return sorted((p["value"]["currencyCode"], p["value"]["centAmount"]) for p in variant["prices"])


def product_writes(ct):
    return [(method, path) for method, path in ct.requests_seen if method == "POST" and "/products" in path]


def total(client):
    return client.api("GET", "products", params={"limit": "0"})["total"]


def test_a_hand_made_product_holding_the_skus_is_adopted_with_its_id_key_and_variant_ids(client, ct):
    made = ct.add_product("Classic tee", ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M"], key="classic-tee")
    before = variant_ids(whole(client, made["id"]))

    [result] = client.publish_products([tee()])

    assert result.ok and result.adopted and not result.created and not result.conflict, result.error
    assert result.storefront_id == made["id"]
    product = whole(client, made["id"])
    assert product["key"] == "classic-tee"  # its own key stays: other systems may address it by that
    assert variant_ids(product) == before
    assert result.variant_ids == {sku: f"{made['id']}/{n}" for sku, n in before.items()}
    assert staged_prices(product, "TEE-BLK-M") == [("EUR", 2450), ("GBP", 2100)]
    assert product["masterData"]["current"]["name"]["en"] == "T-shirt"  # published
    assert total(client) == 1  # no second product


def test_once_adopted_it_is_addressed_by_its_id_and_not_taken_for_new(client, ct):
    made = ct.add_product("Classic tee", ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M"], key="classic-tee")
    [first] = client.publish_products([tee()])
    ct.requests_seen.clear()

    [again] = client.publish_products([tee(amount="22.00", storefront_id=first.storefront_id)])

    assert again.ok and not again.adopted and not again.created, again.error
    assert staged_prices(whole(client, made["id"]), "TEE-WHT-M") == [("EUR", 2450), ("GBP", 2200)]
    assert not [path for _, path in ct.requests_seen if "product-projections" in path]  # no SKU lookup
    assert total(client) == 1


def test_a_product_with_fewer_variants_is_adopted_and_gets_the_missing_ones(client, ct):
    made = ct.add_product("Black tee", ["TEE-BLK-M"], key="black-tee")

    [result] = client.publish_products([tee()])

    assert result.ok and result.adopted, result.error
    product = whole(client, made["id"])
    assert variant_ids(product)["TEE-BLK-M"] == 1 and set(variant_ids(product)) == {
        "TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M"}
    assert total(client) == 1


def test_a_keyless_product_gets_our_key(client, ct):
    made = ct.create_product_from_draft({
        "productType": {"typeId": "product-type", "key": "default"}, "name": {"en": "Tee"},
        "slug": {"en": "tee-by-hand"}, "masterVariant": {"sku": "TEE-BLK-M"}, "variants": [{"sku": "TEE-WHT-M"}]})

    [result] = client.publish_products([tee(skus=("TEE-BLK-M", "TEE-WHT-M"))])

    assert result.ok and result.adopted and result.storefront_id == made["id"], result.error
    assert client.api("GET", "products/key=TEE")["id"] == made["id"]
    assert total(client) == 1


@pytest.mark.parametrize("grouping", ["spread over two products", "beside a SKU not ours"])
def test_skus_grouped_otherwise_are_a_conflict_and_nothing_is_written(client, ct, grouping):
    if grouping == "spread over two products":
        ct.add_product("Black tee", ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L"], key="black-tee")
        ct.add_product("White tee", ["TEE-WHT-M"], key="white-tee")
    else:
        ct.add_product("Classic tee", ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "TEE-RED-M"],
                       key="classic-tee")
    versions = {p["id"]: p["version"] for p in client.api("GET", "products")["results"]}
    ct.requests_seen.clear()

    [result] = client.publish_products([tee()])

    assert (result.ok, result.conflict, result.retryable, result.adopted) == (False, True, False, False)
    if grouping == "spread over two products":
        assert "product black-tee" in result.error and "TEE-BLK-S, TEE-BLK-M, TEE-BLK-L" in result.error
        assert "product white-tee" in result.error and "holds TEE-WHT-M" in result.error
    else:
        assert "product classic-tee" in result.error and "TEE-RED-M" in result.error
    assert product_writes(ct) == []
    assert {p["id"]: p["version"] for p in client.api("GET", "products")["results"]} == versions


def test_a_product_created_by_someone_else_just_before_ours_is_adopted(client, ct):
    made = {}

    def someone_else_creates_it():
        made.update(ct.create_product_from_draft({
            "productType": {"typeId": "product-type", "key": "default"}, "name": {"en": "Tee"},
            "slug": {"en": "tee-elsewhere"}, "masterVariant": {"sku": "TEE-BLK-M"}}))

    ct.before_create.append(someone_else_creates_it)

    [result] = client.publish_products([tee(skus=("TEE-BLK-M", "TEE-WHT-M"))])

    assert made and result.ok and result.adopted and result.storefront_id == made["id"], result.error
    product = whole(client, made["id"])
    assert product["key"] == "TEE" and set(variant_ids(product)) == {"TEE-BLK-M", "TEE-WHT-M"}
    assert total(client) == 1


def test_the_skus_of_many_new_products_are_looked_up_a_batch_at_a_time(client, ct):
    products = [Product(key=f"P-{n:03}", name=f"Product {n}", variants=(
        ProductVariant(sku=f"SKU-{n:03}", item_id=f"I-{n:03}", prices=(ItemPrice("GBP", Decimal("5.00")),)),))
        for n in range(250)]
    ct.add_product("Made by hand", ["SKU-007"], key="by-hand")
    ct.requests_seen.clear()

    results = client.publish_products(products)

    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert [r.key for r in results if r.adopted] == ["P-007"]
    assert sum(r.created for r in results) == 249
    lookups = [path for _, path in ct.requests_seen if path.endswith("/product-projections")]
    assert len(lookups) == 3  # 250 products in chunks of CHUNK_PRODUCTS, one lookup each
    assert cw.CHUNK_PRODUCTS == 100 and total(client) == 250


def test_the_sandbox_answers_a_sku_lookup_with_literals_or_an_input_variable(client, ct):
    held = ct.add_product("Classic tee", ["TEE-BLK-S", "TEE-WHT-M"], key="classic-tee")
    ct.add_product("Mug", ["MUG-001"], key="mug")

    def ids(**params):
        page = client.api("GET", "product-projections", params={"staged": "true", **params})
        return [p["id"] for p in page["results"]]

    literal = 'masterVariant(sku in ("TEE-WHT-M", "NOPE")) or variants(sku in ("TEE-WHT-M", "NOPE"))'
    assert ids(where=literal) == [held["id"]]
    assert ids(where=cw.SKU_PREDICATE, **{"var.skus": ["TEE-WHT-M", "NOPE"]}) == [held["id"]]
    assert ids(where=cw.SKU_PREDICATE, **{"var.skus": ["NOPE"]}) == []
    with pytest.raises(Exception, match="InvalidInput|Malformed"):
        ids(where=cw.SKU_PREDICATE)  # the variable not given


def test_a_new_variant_sold_by_another_product_is_a_conflict_on_update(client, ct):
    [first] = client.publish_products([tee(skus=("TEE-BLK-M",))])
    ct.add_product("White tee", ["TEE-WHT-M"], key="white-tee")  # made by hand meanwhile

    [result] = client.publish_products([tee(skus=("TEE-BLK-M", "TEE-WHT-M"), storefront_id=first.storefront_id)])

    assert (result.ok, result.conflict, result.retryable) == (False, True, False)
    assert "product white-tee" in result.error and "product TEE" in result.error
    assert set(variant_ids(whole(client, first.storefront_id))) == {"TEE-BLK-M"}
