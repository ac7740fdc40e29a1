"""A refund made in the sandbox shop (as the demo makes one) reaches the ERP as one credit memo of
exactly what the customer got back."""
import json

from integrations.models import OrderLink
from integrations.models.refunds import Refund
from tests.payloads import deliver_shopify_webhook


def test_a_refund_made_in_the_shop_becomes_one_credit_memo_of_what_was_returned(
        order_setup, client, django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    order = shop.create_order(deliver="none", financial_status="paid", email="gail@example.com",
                              line_items=[{"sku": "MUG-001", "quantity": 2, "price": "12.00"}])
    deliver_shopify_webhook(client, json.loads(json.dumps(order)), django_capture_on_commit_callbacks, topic="orders/paid")
    assert OrderLink.objects.get(storefront_order_id=str(order["id"])).state == OrderLink.State.POSTED

    refund = shop.refund_order(order["id"], lines=[(0, 1)], restock_type="return", deliver="none")
    # One mug of two, with its share of the order's 20 % tax: 12.00 + 2.40.
    assert refund["transactions"][0]["amount"] == "14.40"
    assert shop._order(order["id"])["financial_status"] == "partially_refunded"
    for _ in range(2):  # Shopify may deliver it twice
        deliver_shopify_webhook(client, json.loads(json.dumps(refund)), django_capture_on_commit_callbacks,
                                topic="refunds/create")
    stored = Refund.objects.get()
    assert stored.credit_memo_id
    [memo] = [m for m in order_setup.erp.credit_memos]
    assert memo["gross_total"] == "14.40"
