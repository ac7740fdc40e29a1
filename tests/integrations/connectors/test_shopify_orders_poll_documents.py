"""The reconciliation poll's document (connectors/shopify/orders_poll.py) is valid on the published
Admin schemas of the configured API version and the one before it, sent with its variables."""
from datetime import datetime, timezone

import pytest

from integrations.connectors.shopify import orders_poll
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems
from tests.integrations.connectors.test_shopify_order_documents import documents


def test_the_poll_sends_one_document():
    assert set(documents(orders_poll)) == {"integrations.connectors.shopify.orders_poll.ORDERS_UPDATED_SINCE"}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_poll_document_is_valid_on_the_published_schema(version):
    variables = {"query": orders_poll.updated_since_query(datetime(2026, 9, 1, tzinfo=timezone.utc)), "after": None}
    assert problems(version, orders_poll.ORDERS_UPDATED_SINCE, variables) == []


def test_the_poll_searches_by_updated_at():
    assert orders_poll.updated_since_query(datetime(2026, 9, 1, 10, 5, tzinfo=timezone.utc)) == \
        "updated_at:>='2026-09-01T10:05:00+00:00'"
    assert "sortKey: UPDATED_AT" in orders_poll.ORDERS_UPDATED_SINCE
