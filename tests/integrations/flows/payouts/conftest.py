from decimal import Decimal

import pytest

from integrations.models import OrderLink
from integrations.sandbox.shopify_payments import PAYMENTS_SCOPE
from tests.payloads import deliver_shopify_webhook


@pytest.fixture
def shop(order_setup):
    """The sandbox shop (its token may read payouts) with the sandbox ERPs ready to take orders and memos."""
    for erp in (order_setup.erp, order_setup.prima):
        erp.add_item("GOODWILL", "Goodwill credit")
    shop = order_setup.shopify
    with shop.lock:
        shop.tokens[shop.access_token] = shop.tokens[shop.access_token] | {PAYMENTS_SCOPE}
    return shop


@pytest.fixture
def sell(client, shop, django_capture_on_commit_callbacks):
    """Place an order in the sandbox shop and deliver it to Ledgerline, which posts it to the ERP.

    `short_by`: Shopify Payments captured that much less than the order's total."""
    def sell(price="20.00", quantity=1, *, short_by=None, post=True, **fields):
        lines = [{"sku": "TEE-BLK-M", "quantity": quantity, "price": price}]
        if short_by is None:
            order = shop.create_order(line_items=lines, financial_status="paid", **fields)
        else:
            order = shop.create_order(line_items=lines, financial_status="pending", **fields)
            shop.payments_charge(order["id"], amount=Decimal(order["total_price"]) - Decimal(short_by))
            order = shop.mark_paid(order["id"])
        if post:
            deliver_shopify_webhook(client, order, django_capture_on_commit_callbacks)
            link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
            assert link.state in (OrderLink.State.POSTED, OrderLink.State.TEST), link.last_error
        return order
    return sell
