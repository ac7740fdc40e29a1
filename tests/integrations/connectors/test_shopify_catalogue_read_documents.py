"""The drift checks' catalogue documents (connectors/shopify/catalogue_read.py) are valid on the
published Admin schemas of the configured API version and the one before it; the inventory bulk
query keeps within Shopify's bulk limits (the sandbox refuses it otherwise)."""
import pytest

from integrations.connectors.shopify import catalogue_read
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems
from tests.integrations.connectors.test_shopify_order_documents import documents

SENT_WITH = {
    "integrations.connectors.shopify.catalogue_read.VARIANT_PRICES": {"after": None},
    "integrations.connectors.shopify.catalogue_read.SHOP_CURRENCY": {},
    # bulk.RUN_QUERY, sent with this module's inner query.
    "integrations.connectors.shopify.catalogue_read.RUN_QUERY": {"query": catalogue_read.INVENTORY_BULK_QUERY},
}


def test_every_document_is_known():
    assert set(documents(catalogue_read)) == {*SENT_WITH, "integrations.connectors.shopify.catalogue_read.INVENTORY_BULK_QUERY"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(SENT_WITH))
def test_every_document_is_valid_on_the_published_schema(version, name):
    assert problems(version, getattr(catalogue_read, name.rsplit(".", 1)[1]), SENT_WITH[name]) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_inventory_bulk_query_is_valid_on_the_published_schema(version):
    assert problems(version, catalogue_read.INVENTORY_BULK_QUERY) == []
