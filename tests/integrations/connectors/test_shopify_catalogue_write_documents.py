"""The catalogue publisher's documents (connectors/shopify/catalogue_write.py) are valid on the published
Admin schemas of the configured API version and the one before it, with the variables really sent;
none of them carries `@idempotent`, which 2026-04 documents for inventory, location and refund
mutations only."""
from decimal import Decimal

import pytest

from integrations.connectors.catalogue import ItemPrice, Product, ProductVariant
from integrations.connectors.shopify import catalogue_write
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems, schema
from tests.integrations.connectors.test_shopify_order_documents import documents

TEE = Product(key="TEE-CLASSIC", name="Classic tee", description="Soft & heavy", product_type="T-shirts", variants=(
    ProductVariant(sku="TEE-BLK-S", item_id="1", attributes={"size": "S"}, barcodes=("5012345678900",),
                   prices=(ItemPrice("GBP", Decimal("19.99")), ItemPrice("GBP", Decimal("25.00"), type="compare_at"))),
    ProductVariant(sku="TEE-BLK-M", item_id="2", attributes={"size": "M"}, prices=(ItemPrice("GBP", Decimal("19.99")),)),
))
# With images, attributes that are no option (metafields) and the ids of an adopted product.
PICTURED = Product(key="TEE-CLASSIC", name="Classic tee", variants=(
    ProductVariant(sku="TEE-BLK-S", item_id="1", attributes={"size": "S", "material": "cotton", "weight_g": 180,
                                                            "organic": True, "care": ["wash cold", "no tumble"]},
                   images=("https://cdn.example.com/tee-blk.jpg", "https://cdn.example.com/tee-back.jpg"),
                   prices=(ItemPrice("GBP", Decimal("19.99")),)),
    ProductVariant(sku="TEE-BLK-M", item_id="2", attributes={"size": "M", "material": "cotton", "weight_g": 180,
                                                            "organic": True, "care": ["wash cold", "no tumble"],
                                                            "fit": Decimal("1.5"), "batch": 7},
                   images=("https://cdn.example.com/tee-blk-m.jpg",), prices=(ItemPrice("GBP", Decimal("19.99")),)),
))
ADOPTED = catalogue_write.product_set_variables(
    PICTURED, "GBP", product_id="gid://shopify/Product/7001000001",
    variant_ids={"TEE-BLK-S": "gid://shopify/ProductVariant/41001000001"})
MODULE = "integrations.connectors.shopify.catalogue_write"
SENT_WITH = {
    f"{MODULE}.PRODUCT_SET": catalogue_write.product_set_variables(TEE, "GBP"),
    f"{MODULE}.VARIANTS_BULK_UPDATE": {"productId": "gid://shopify/Product/1", "variants": [
        {"id": "gid://shopify/ProductVariant/1", "price": "19.99", "compareAtPrice": None}]},
    f"{MODULE}.PRICE_LIST_ADD": {"priceListId": "gid://shopify/PriceList/1", "prices": [
        {"variantId": "gid://shopify/ProductVariant/1", "price": {"amount": "22.99", "currencyCode": "EUR"},
         "compareAtPrice": {"amount": "27.50", "currencyCode": "EUR"}}]},
    f"{MODULE}.STAGED_UPLOADS_CREATE": {"input": [{"resource": "BULK_MUTATION_VARIABLES", "filename": "p.jsonl",
                                                   "mimeType": "text/jsonl", "httpMethod": "POST", "fileSize": "120"}]},
    f"{MODULE}.BULK_RUN_MUTATION": {"mutation": catalogue_write.PRODUCT_SET, "stagedUploadPath": "tmp/1/bulk/x/p.jsonl"},
    f"{MODULE}.BULK_POLL": {"id": "gid://shopify/BulkOperation/1"},
    f"{MODULE}.VARIANTS_BY_SKU": {"query": 'sku:"TEE-BLK-S" OR sku:"TEE-BLK-M"', "first": 2, "after": None},
}


def test_the_adopting_write_carries_ids_files_and_metafields():
    """What the checks below validate really holds the adoption's parts."""
    assert ADOPTED["identifier"] == {"id": "gid://shopify/Product/7001000001"} and "handle" not in ADOPTED["input"]
    assert ADOPTED["input"]["variants"][0]["id"] == "gid://shopify/ProductVariant/41001000001"
    assert [f["originalSource"] for f in ADOPTED["input"]["files"]] == [
        "https://cdn.example.com/tee-blk.jpg", "https://cdn.example.com/tee-back.jpg", "https://cdn.example.com/tee-blk-m.jpg"]
    assert {(m["key"], m["type"]) for m in ADOPTED["input"]["metafields"]} == {
        ("material", "single_line_text_field"), ("organic", "boolean"), ("care", "list.single_line_text_field"),
        ("weight_g", "number_integer"), ("image_sources", "json")}
    assert {(m["key"], m["type"], m["value"]) for m in ADOPTED["input"]["variants"][1]["metafields"]} == {
        ("batch", "number_integer", "7"), ("fit", "number_decimal", "1.5")}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_adopting_write_is_valid_on_the_published_schema(version):
    assert problems(version, catalogue_write.PRODUCT_SET, ADOPTED) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_grouping_read_of_a_conflict_is_valid_on_the_published_schema(version):
    document = catalogue_write._grouping_document(2)
    assert problems(version, document, {"g0": "gid://shopify/Product/1", "g1": "gid://shopify/Product/2"}) == []


def test_every_document_is_known():
    assert set(documents(catalogue_write)) == set(SENT_WITH)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(SENT_WITH))
def test_every_document_is_valid_on_the_published_schema(version, name):
    assert problems(version, getattr(catalogue_write, name.rsplit(".", 1)[1]), SENT_WITH[name]) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_handle_lookup_is_valid_on_the_published_schema(version):
    document = catalogue_write._lookup_document(3)
    assert problems(version, document, {"h0": "a", "h1": "b", "h2": "c"}) == []


def test_every_bulk_line_is_valid_variables_of_the_bulk_mutation():
    """What the JSONL carries is what Shopify coerces, line by line, against PRODUCT_SET."""
    retired = Product(key="OLD-1", name="Old", published=False, variants=(
        ProductVariant(sku="OLD-1", item_id="9", prices=(ItemPrice("GBP", Decimal("5")),)),))
    for product in (TEE, retired):
        assert problems(VERSIONS[0], catalogue_write.PRODUCT_SET, catalogue_write.product_set_variables(product, "GBP")) == []


def test_2026_04_documents_idempotency_for_none_of_these_mutations():
    mutations = schema("2026-04").mutation_type.fields
    for name in ("productSet", "productVariantsBulkUpdate", "priceListFixedPricesAdd", "stagedUploadsCreate",
                 "bulkOperationRunMutation"):
        assert "idempotency key" not in (mutations[name].description or ""), name
    assert "idempotency key" in mutations["inventorySetQuantities"].description
    assert all("@idempotent" not in text for text in documents(catalogue_write).values())
