"""commercetools orders to the ERP: found by the poller or announced by a Subscription message,
with exact money (high precision, zero-decimal currencies) and the rounding difference recorded."""
import base64
import json
from decimal import Decimal

import pytest

from integrations.inbox.commercetools_poll import commercetools_orders_poll
from integrations.models import InboundEvent, OrderLink

pytestmark = pytest.mark.django_db


def _poll(capture):
    with capture(execute=True):
        return commercetools_orders_poll(connection_code="commercetools")


def test_a_high_precision_paid_order_reaches_the_erp_exact_to_the_cent_with_its_rounding_difference(
    order_setup, django_capture_on_commit_callbacks
):
    ct = order_setup.commercetools
    order = ct.create_order(
        customer_email="gina@example.de", currency="EUR", country="DE", payment_state="Paid", high_precision=True,
        fraction_digits=4, line_items=[{"sku": "TEE-BLK-S", "name": "Tee", "quantity": 3, "price": "12.3456", "tax_rate": 0.19}],
    )
    assert _poll(django_capture_on_commit_callbacks) == 1
    link = OrderLink.objects.get(storefront_order_id=order["id"])
    assert link.state == OrderLink.State.POSTED, link.last_error
    [sales_order] = order_setup.erp.sales_orders
    [line] = sales_order["lines"]
    # 3 × 12.3456 = 37.0368 EUR exactly, rounded once (half-even) to 37.04; the 0.0032 is recorded.
    assert (line["item_code"], line["quantity"], line["line_total"], line["tax_code"]) == ("TEE-BLK-S", 3, "37.04", "DE19")
    assert sales_order["currency"] == "EUR" and sales_order["total"] == "37.04"
    assert link.rounding_difference == Decimal("-0.0032")
    assert "rounding difference -0.0032 EUR" in link.timeline.last().message


def test_a_zero_decimal_currency_keeps_whole_units(order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    ct.create_order(customer_email="ito@example.jp", currency="JPY", country="JP", payment_state="Paid",
                    line_items=[{"sku": "HOODIE-GRY-L", "name": "Hoodie", "quantity": 2, "price": "8800", "tax_rate": 0.1}],
                    shipping={"name": "Standard", "price": "500", "tax_rate": 0.1})
    _poll(django_capture_on_commit_callbacks)
    [sales_order] = order_setup.erp.sales_orders
    assert [(l["kind"], l["line_total"], l["tax_code"]) for l in sales_order["lines"]] == [
        ("item", "17600", "JP10"), ("shipping", "500", "JP10")]
    assert sales_order["currency"] == "JPY" and sales_order["total"] == "18100"


def test_a_pending_order_waits_and_posts_once_the_next_poll_sees_it_paid(order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = ct.create_order(customer_email="jan@example.de", currency="EUR", country="DE", payment_state="Pending",
                            line_items=[{"sku": "TEE-WHT-M", "name": "Tee", "quantity": 1, "price": "15.00", "tax_rate": 0.19}])
    _poll(django_capture_on_commit_callbacks)
    assert OrderLink.objects.get().state == OrderLink.State.WAITING_PAYMENT
    assert order_setup.erp.sales_orders == []
    ct.set_payment_state(order["id"], "Paid")
    assert _poll(django_capture_on_commit_callbacks) == 1
    assert _poll(django_capture_on_commit_callbacks) == 0  # nothing new: the cursor moved on
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1


def _message_headers(token="sandbox-subscription-token"):
    return {"Authorization": f"Bearer {token}"}


def test_a_subscription_message_posts_the_order_it_announces_once(client, order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = ct.create_order(customer_email="hugo@example.co.uk", currency="GBP", country="GB", payment_state="Paid",
                            line_items=[{"sku": "MUG-001", "name": "Mug", "quantity": 2, "price": "9.50", "tax_rate": 0.2}])
    message = next(m for m in ct.messages if m["resource"]["id"] == order["id"])
    for _ in range(3):  # at-least-once delivery: the same message id arrives again
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps(message),
                                   content_type="application/json", headers=_message_headers())
        assert response.status_code == 200
    assert InboundEvent.objects.count() == 1
    [sales_order] = order_setup.erp.sales_orders
    assert sales_order["lines"][0]["line_total"] == "19.00" and sales_order["lines"][0]["tax_code"] == "T1"


def test_a_pubsub_push_envelope_is_unwrapped(client, order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = ct.create_order(customer_email="x@example.co.uk", currency="GBP", country="GB", payment_state="Paid",
                            line_items=[{"sku": "MUG-001", "name": "Mug", "quantity": 1, "price": "9.50", "tax_rate": 0.2}])
    message = next(m for m in ct.messages if m["resource"]["id"] == order["id"])
    envelope = {"message": {"data": base64.b64encode(json.dumps(message).encode()).decode(), "messageId": "1"},
                "subscription": "projects/demo/subscriptions/ledgerline"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps(envelope),
                               content_type="application/json", headers=_message_headers())
    assert response.status_code == 200
    assert len(order_setup.erp.sales_orders) == 1


def test_a_subscription_message_with_a_wrong_token_is_401(client, order_setup):
    response = client.post("/webhooks/commercetools/commercetools/", data="{}", content_type="application/json",
                           headers=_message_headers("guess"))
    assert response.status_code == 401
    assert InboundEvent.objects.count() == 0


def test_a_message_that_is_not_a_subscription_message_is_400(client, order_setup):
    response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps({"hello": "world"}),
                           content_type="application/json", headers=_message_headers())
    assert response.status_code == 400
    assert "needs 'id' and 'resource'" in response.json()["error"]
