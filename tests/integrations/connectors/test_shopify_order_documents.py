"""The documents that read orders back from Shopify (orders_read.py, bulk.py) are valid on the
published Admin schemas of the configured API version and the one before it, the bulk operation's
inner query included; and an order read back translates exactly as its webhook does."""
import dataclasses
from datetime import datetime, timezone

import pytest
from graphql import GraphQLError, OperationDefinitionNode, parse

from integrations.connectors import connector_for
from integrations.connectors.shopify import ShopifyClient, bulk, orders_read
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems

SINCE = datetime(2026, 9, 1, tzinfo=timezone.utc)


# Selection pieces the documents are built from (they parse as shorthand queries but are never sent),
# and the bulk query's template (sent rendered, checked as "bulk inner query").
PIECES = {"_BAG", "_TAX", "ORDERS_BULK_QUERY"}


def documents(module) -> dict[str, str]:
    found = {}
    for name, value in vars(module).items():
        if isinstance(value, str) and name not in PIECES:
            try:
                parsed = parse(value)
            except GraphQLError:
                continue
            if any(isinstance(d, OperationDefinitionNode) for d in parsed.definitions):
                found[f"{module.__name__}.{name}"] = value
    return found


ALL = {**documents(orders_read), **documents(bulk), "bulk inner query": bulk.orders_bulk_query(SINCE)}
SENT_WITH = {
    "integrations.connectors.shopify.orders_read.ORDER_BY_ID": {"id": "gid://shopify/Order/1"},
    "integrations.connectors.shopify.orders_read.LINE_ITEMS_PAGE": {"id": "gid://shopify/Order/1", "after": "c"},
    "integrations.connectors.shopify.orders_read.ORDERS_BY_NAME": {"query": 'name:"#1001"'},
    "integrations.connectors.shopify.bulk.RUN_QUERY": {"query": bulk.orders_bulk_query(SINCE)},
    "integrations.connectors.shopify.bulk.POLL": {"id": "gid://shopify/BulkOperation/1"},
}


def test_every_document_is_known():
    assert set(ALL) == {*SENT_WITH, "bulk inner query"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(ALL))
def test_every_order_document_is_valid_on_the_published_schema(version, name):
    assert problems(version, ALL[name], SENT_WITH.get(name)) == []


def test_the_bulk_query_searches_orders_updated_since_the_date():
    assert "orders(query: \"updated_at:>='2026-09-01T00:00:00+00:00'\", sortKey: UPDATED_AT)" in \
        bulk.orders_bulk_query(SINCE)


@pytest.mark.django_db
def test_an_order_read_back_translates_as_its_webhook_does(sandbox, shopify_connection):
    shop = sandbox.shopify
    webhook = shop.create_order(
        line_items=[{"sku": "TEE-BLK-S", "quantity": 2, "discount": "1.50", "duty": {"amount": "3.10", "hs_code": "6109"}},
                    {"title": "Gift wrap", "price": "2.00", "quantity": 1}],
        shipping_lines=[{"title": "Express", "price": "7.00", "discount": "1.00"}], tip="2.00",
        financial_status="paid", email="ana@example.com")
    read_back = orders_read.fetch_order(connector_for(shopify_connection), webhook["id"])
    ours, theirs = ShopifyClient.order_from_payload(read_back), ShopifyClient.order_from_payload(webhook)
    differ = {f.name for f in dataclasses.fields(ours) if getattr(ours, f.name) != getattr(theirs, f.name)}
    assert differ == {"extra"}  # REST's order_number only
    assert {k for k in ours.extra if ours.extra[k] != theirs.extra[k]} == {"order_number"}


@pytest.mark.django_db
def test_an_order_older_than_60_days_reads_as_none_without_read_all_orders(sandbox, shopify_connection):
    order = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}],
                                         created_at="2025-01-02T10:00:00+00:00")
    assert orders_read.fetch_order(connector_for(shopify_connection), order["id"]) is None
