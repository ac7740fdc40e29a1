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
}


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
