"""After posting nothing is ignored: cancellations cancel the ERP order, edits and refunds become
owned exceptions, test orders stay out of the ERP, and a late event never moves an order back."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import OutboundWrite, OrderEvent, OrderLink
from tests.payloads import deliver_shopify_webhook, later, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


_deliver = deliver_shopify_webhook


def _active(type_code):
    return list(ExceptionRecord.objects.filter(type_code=type_code, status__in=ExceptionRecord.ACTIVE_STATUSES))


def _posted(client, capture, erp, **kw):
    paid = shopify_order(**kw)
    _deliver(client, paid, capture)
    link = OrderLink.objects.get(storefront_order_id=str(paid["id"]))
    assert link.state == OrderLink.State.POSTED
    return paid, link


@pytest.mark.parametrize("erp_kind", ["rest", "prima"])
def test_a_late_cancellation_of_a_posted_order_cancels_it_in_the_erp(
    client, order_setup, settings, erp_kind, django_capture_on_commit_callbacks
):
    settings.ERP = {**settings.ERP, "kind": erp_kind}
    erp = order_setup.erp if erp_kind == "rest" else order_setup.prima
    paid, link = _posted(client, django_capture_on_commit_callbacks, erp, number=1401)
    _deliver(client, later(paid, cancelled_at="2026-11-20T10:00:00+00:00", cancel_reason="customer"),
             django_capture_on_commit_callbacks, topic="orders/cancelled")

    link.refresh_from_db()
    assert link.state == OrderLink.State.CANCELLED
    [booked] = erp.sales_orders
    assert booked["status"].lower() == "cancelled"
    assert link.timeline.filter(kind=OrderEvent.Kind.CANCELLED_IN_ERP).exists()
    assert OutboundWrite.objects.filter(order=link, action="cancel_sales_order", status=OutboundWrite.Status.SUCCEEDED).exists()
    assert not ExceptionRecord.objects.exists()


def test_a_cancellation_after_dispatch_is_an_ops_exception_and_the_erp_order_stays(
    client, order_setup, django_capture_on_commit_callbacks
):
    paid, link = _posted(client, django_capture_on_commit_callbacks, order_setup.erp, number=1402)
    order_setup.erp.dispatch_order(link.erp_order_id)
    _deliver(client, later(paid, cancelled_at="2026-11-20T10:00:00+00:00"), django_capture_on_commit_callbacks,
             topic="orders/cancelled")
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    [record] = _active("cancel_not_possible")
    assert record.team == "ops" and "already dispatched" in record.message
    assert order_setup.erp.sales_orders[0]["status"] != "cancelled"


def test_an_edit_after_posting_is_an_ops_exception_showing_what_changed(
    client, order_setup, django_capture_on_commit_callbacks
):
    paid, link = _posted(client, django_capture_on_commit_callbacks, order_setup.erp, number=1403)
    edited = later(shopify_order(order_id=paid["id"], number=1403,
                                 lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 3}]))
    _deliver(client, edited, django_capture_on_commit_callbacks, topic="orders/updated")
    [record] = _active("edited_after_posting")
    assert record.team == "ops"
    assert "item TEE-BLK-M: qty 1 → 3" in record.context["changes"]
    assert "order total 20.00 → 60.00" in record.context["changes"]
    assert len(order_setup.erp.sales_orders) == 1  # never posted twice
    # The same edit delivered again does not reopen what ops resolved.
    record.status = ExceptionRecord.Status.RESOLVED
    record.save()
    _deliver(client, later(edited, minutes=2), django_capture_on_commit_callbacks, topic="orders/updated")
    assert not _active("edited_after_posting")


def test_an_update_that_changes_nothing_of_the_sale_raises_nothing(client, order_setup, django_capture_on_commit_callbacks):
    paid, link = _posted(client, django_capture_on_commit_callbacks, order_setup.erp, number=1404)
    _deliver(client, later(paid, note="leave at the door", tags="vip"), django_capture_on_commit_callbacks,
             topic="orders/updated")
    assert not ExceptionRecord.objects.exists()


def test_a_refund_after_posting_is_held_for_finance(client, order_setup, django_capture_on_commit_callbacks):
    paid, link = _posted(client, django_capture_on_commit_callbacks, order_setup.erp, number=1405)
    _deliver(client, later(paid, financial_status="partially_refunded"), django_capture_on_commit_callbacks,
             topic="orders/updated")
    [record] = _active("refund_pending")
    assert record.team == "finance" and record.order == link
    assert len(order_setup.erp.sales_orders) == 1


def test_a_late_older_event_never_moves_a_cancelled_order_back(client, order_setup, django_capture_on_commit_callbacks):
    pending = shopify_order(number=1406, financial_status="pending")
    cancelled = later(pending, cancelled_at="2026-11-20T10:00:00+00:00")
    _deliver(client, cancelled, django_capture_on_commit_callbacks, topic="orders/cancelled")
    # Shopify's retried orders/create arrives hours late, and one more without a timestamp at all.
    _deliver(client, pending, django_capture_on_commit_callbacks, topic="orders/create")
    _deliver(client, {**pending, "updated_at": None, "financial_status": "paid"}, django_capture_on_commit_callbacks,
             topic="orders/paid")
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.CANCELLED
    assert order_setup.erp.sales_orders == []


def test_a_test_order_is_not_posted_unless_the_connection_says_so(
    client, order_setup, shopify_connection, django_capture_on_commit_callbacks
):
    _deliver(client, shopify_order(number=1407, test=True), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.TEST and link.get_state_display() == "Test order, not posted"
    assert order_setup.erp.sales_orders == []

    shopify_connection.settings = {"post_test_orders": True}
    shopify_connection.save()
    _deliver(client, shopify_order(number=1408, test=True), django_capture_on_commit_callbacks)
    assert len(order_setup.erp.sales_orders) == 1


def test_an_order_first_seen_refunded_still_posts_its_sale(client, order_setup, django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(number=1409, financial_status="refunded"), django_capture_on_commit_callbacks)
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert order_setup.erp.sales_orders[0]["gross_total"] == "20.00"


def test_a_voided_authorisation_cancels_the_order_before_it_posts(client, order_setup, django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(number=1410, financial_status="voided"), django_capture_on_commit_callbacks)
    assert OrderLink.objects.get().state == OrderLink.State.CANCELLED
    assert order_setup.erp.sales_orders == []


def test_partially_paid_waits_unless_configured(client, order_setup, shopify_connection, django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(number=1411, financial_status="partially_paid"), django_capture_on_commit_callbacks)
    assert OrderLink.objects.get().state == OrderLink.State.WAITING_PAYMENT
    shopify_connection.settings = {"release_states": ["paid", "authorized", "partially_paid"]}
    shopify_connection.save()
    _deliver(client, shopify_order(number=1412, financial_status="partially_paid"), django_capture_on_commit_callbacks)
    assert OrderLink.objects.get(order_number="#1412").state == OrderLink.State.POSTED


def test_a_cancellation_arriving_while_the_order_is_being_posted_is_not_dropped(
    client, order_setup, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.flows import orders as order_flow
    from integrations.flows.orders import posting

    paid = shopify_order(number=1413)
    real = posting.ensure_customer

    def customer_then_cancellation(link, order, erp):
        # The customer cancels while this worker is between building the order and creating it.
        response = post_shopify_webhook(client, later(paid, cancelled_at="2026-11-20T10:00:00+00:00"),
                                        topic="orders/cancelled")
        assert order_flow.inbound_event_process(event_id=response.json()["event"]) == OrderLink.State.POSTING
        return real(link, order, erp)

    monkeypatch.setattr(posting, "ensure_customer", customer_then_cancellation)
    _deliver(client, paid, django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.CANCELLED
    [booked] = order_setup.erp.sales_orders
    assert booked["status"] == "cancelled"


def test_an_orders_edited_webhook_reads_the_order_and_shows_the_edit(client, order_setup, django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    paid = shop.create_order(deliver=None, financial_status="paid", email="eve@example.com",
                             line_items=[{"sku": "TEE-BLK-M", "quantity": 1}])
    _deliver(client, paid, django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED
    # Shopify's order edit: the line goes to 2; orders/edited carries the edit, not the order.
    shop.update_order(paid["id"], deliver=None,
                      line_items=[{**paid["line_items"][0], "quantity": 2, "current_quantity": 2}])
    edit = {"order_edit": {"id": 5501, "app_id": None, "created_at": "2026-11-20T10:00:00-05:00",
                           "notify_customer": False, "order_id": paid["id"], "staff_note": "",
                           "user_id": 1, "line_items": {"additions": [], "removals": []}}}
    _deliver(client, edit, django_capture_on_commit_callbacks, topic="orders/edited")
    [record] = _active("edited_after_posting")
    assert any("qty 1 → 2" in change for change in record.context["changes"])
    assert len(order_setup.erp.sales_orders) == 1


def test_a_refunds_create_webhook_goes_to_the_refunds_flow(client, order_setup, django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    paid = shop.create_order(deliver=None, financial_status="paid", email="fay@example.com",
                             line_items=[{"sku": "TEE-BLK-M", "quantity": 1}])
    _deliver(client, paid, django_capture_on_commit_callbacks)
    shop.update_order(paid["id"], deliver=None, financial_status="refunded")
    refund = {"id": 890001, "order_id": paid["id"], "created_at": "2026-11-20T11:00:00-05:00", "note": "damaged",
              "restock": False, "refund_line_items": [], "transactions": [], "order_adjustments": []}
    _deliver(client, refund, django_capture_on_commit_callbacks, topic="refunds/create")
    # The refund is stored as itself; with no money returned there is nothing to credit and nothing to hold.
    from integrations.models import Refund

    [stored] = Refund.objects.all()
    assert stored.storefront_refund_id == "890001" and stored.state == Refund.State.POSTED
    assert order_setup.erp.credit_memos == [] and not _active("refund_pending")
