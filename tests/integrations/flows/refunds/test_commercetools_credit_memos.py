"""commercetools returns and refunds: a return (ReturnInfoAdded) and the payment's Refund transaction
(PaymentTransactionAdded) become one exact credit memo, however often the messages arrive."""
import json

import pytest

from integrations.inbox.commercetools_poll import commercetools_orders_poll
from integrations.models import InboundEvent, OrderEvent, OrderLink, Refund

pytestmark = pytest.mark.django_db


def _deliver(client, capture, message):
    with capture(execute=True):
        response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps(message),
                               content_type="application/json",
                               headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 200, response.content


def _posted_order(ct, capture):
    order = ct.create_order(customer_email="rita@example.de", currency="EUR", country="DE", payment_state="Paid",
                            line_items=[{"sku": "TEE-BLK-S", "name": "Tee", "quantity": 2, "price": "10.00",
                                         "tax_rate": 0.19}])
    payment = ct.add_payment(order["id"])
    with capture(execute=True):
        commercetools_orders_poll(connection_code="commercetools")
    link = OrderLink.objects.get(storefront_order_id=order["id"])
    assert link.state == OrderLink.State.POSTED, link.last_error
    return order, payment, link


def test_a_return_and_its_refund_transaction_become_one_credit_memo(client, refund_setup, django_capture_on_commit_callbacks):
    ct = refund_setup.commercetools
    order, payment, link = _posted_order(ct, django_capture_on_commit_callbacks)
    ct.add_return_info(order["id"], [{"sku": "TEE-BLK-S", "quantity": 1, "shipment_state": "Returned"}])
    returned = ct.messages[-1]
    _deliver(client, django_capture_on_commit_callbacks, returned)
    assert refund_setup.erp.credit_memos == []  # the goods are announced; no money went back yet
    assert link.timeline.filter(kind=OrderEvent.Kind.REFUND_RECEIVED, message__contains="Return announced").exists()

    transaction = ct.refund_payment(payment["id"], "11.90")
    refunded = ct.messages[-1]
    for _ in range(3):  # at-least-once: the same message again
        _deliver(client, django_capture_on_commit_callbacks, refunded)
    _deliver(client, django_capture_on_commit_callbacks, returned)

    [memo] = refund_setup.erp.credit_memos
    assert memo["sales_order_id"] == link.erp_order_id and memo["restock"] is True
    assert [(l["item_code"], l["quantity"], l["line_total"], l["tax_amount"], l["tax_code"]) for l in memo["lines"]] == [
        ("TEE-BLK-S", 1, "10.00", "1.90", "DE19")]
    assert (memo["currency"], memo["gross_total"]) == ("EUR", "11.90")
    row = Refund.objects.get()
    assert row.storefront_refund_id == transaction["id"] and row.credit_memo_id == memo["id"]
    assert InboundEvent.objects.filter(topic="message/payment/PaymentTransactionAdded").count() == 1


def test_a_refund_transaction_with_no_return_is_goodwill(client, refund_setup, django_capture_on_commit_callbacks):
    ct = refund_setup.commercetools
    order, payment, link = _posted_order(ct, django_capture_on_commit_callbacks)
    ct.refund_payment(payment["id"], "5.00")
    _deliver(client, django_capture_on_commit_callbacks, ct.messages[-1])
    [memo] = refund_setup.erp.credit_memos
    assert [(l["item_code"], l["line_total"]) for l in memo["lines"]] == [("GOODWILL", "5.00")]
    assert memo["restock"] is False


def test_a_pending_refund_transaction_credits_once_it_succeeds(client, refund_setup, django_capture_on_commit_callbacks):
    ct = refund_setup.commercetools
    order, payment, link = _posted_order(ct, django_capture_on_commit_callbacks)
    transaction = ct.refund_payment(payment["id"], "5.00", state="Pending")
    _deliver(client, django_capture_on_commit_callbacks, ct.messages[-1])
    assert refund_setup.erp.credit_memos == []
    ct.change_transaction_state(payment["id"], transaction["id"], "Success")
    _deliver(client, django_capture_on_commit_callbacks, ct.messages[-1])
    [memo] = refund_setup.erp.credit_memos
    assert memo["gross_total"] == "5.00"
