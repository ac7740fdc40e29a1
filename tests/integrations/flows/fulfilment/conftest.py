"""Orders placed in the sandbox Shopify shop, paid, delivered to our webhook and posted to the sandbox ERP:
what the ERP then dispatches comes back to the shop through the fulfilment flow."""
import json

import pytest

from integrations.models import OrderLink
from tests.payloads import deliver_shopify_webhook


@pytest.fixture
def fast_retries(settings):
    settings.FULFILMENT = {"retry_base_seconds": 0, "retry_max_seconds": 0, "max_auto_retries": 2}


@pytest.fixture
def shop_order(order_setup, client, django_capture_on_commit_callbacks):
    """place(**fields) -> (Shopify payload, posted OrderLink)."""
    shop = order_setup.shopify

    def place(**fields):
        fields.setdefault("financial_status", "paid")
        fields.setdefault("email", "ada@example.com")
        payload = shop.create_order(deliver="none", **fields)
        deliver_shopify_webhook(client, json.loads(json.dumps(payload)), django_capture_on_commit_callbacks,
                                topic="orders/paid")
        link = OrderLink.objects.get(storefront_order_id=str(payload["id"]))
        assert link.state == OrderLink.State.POSTED, link.last_error
        return payload, link

    return place


@pytest.fixture
def poll(django_capture_on_commit_callbacks):
    """Run one dispatch poll and the storefront updates it queued (synchronously)."""
    from integrations.flows.fulfilment import dispatches_poll

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return dispatches_poll()

    return run
