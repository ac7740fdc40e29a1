"""Starting a bulk order export while another bulk query runs is a retry later, not a crash."""
from datetime import datetime, timezone

import pytest

from integrations.connectors.base import PermanentError, TransientError
from integrations.connectors.shopify.bulk import BulkOperationInProgress, start_orders_export


class _Shop:
    def __init__(self, errors):
        self.errors = errors

    def graphql(self, query, variables=None):
        return {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": self.errors}}


def test_a_bulk_export_refused_because_one_runs_is_a_transient_error_with_a_wait():
    shop = _Shop([{"field": None, "code": "OPERATION_IN_PROGRESS",
                   "message": "A bulk query operation for this app and shop is already in progress: gid://shopify/BulkOperation/1."}])
    with pytest.raises(BulkOperationInProgress) as refused:
        start_orders_export(shop, datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert isinstance(refused.value, TransientError)
    assert refused.value.retry_after == 30
    assert "already in progress" in str(refused.value)


def test_any_other_refusal_is_permanent_and_names_shopifys_code():
    shop = _Shop([{"field": ["query"], "code": "INVALID", "message": "Invalid bulk query"}])
    with pytest.raises(PermanentError) as refused:
        start_orders_export(shop, datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert refused.value.code == "INVALID"
