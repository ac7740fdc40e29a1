"""Re-sync over real HTTP: an order read again from its storefront is re-applied through the inbox,
and an order Ledgerline never saw is imported by its number."""
import pytest

from integrations.flows.backfill import ResyncRefused, order_import_by_number, order_resync
from integrations.models import OrderEvent, OrderLink

pytestmark = pytest.mark.django_db


def test_an_unknown_shopify_order_is_imported_by_number_then_a_resync_posts_it_once_paid(
        order_setup, shopify_connection, django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 2}])  # no webhook reached us
    with django_capture_on_commit_callbacks(execute=True):
        result = order_import_by_number(connection=shopify_connection, number=order["name"].lstrip("#"))
    assert result.created
    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    assert link.state == OrderLink.State.WAITING_PAYMENT and link.order_number == order["name"]

    shop.mark_paid(order["id"])  # the orders/paid webhook was lost
    with django_capture_on_commit_callbacks(execute=True):
        order_resync(link=link)
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    assert OrderEvent.Kind.RESYNCED in link.timeline.values_list("kind", flat=True)
    [sales_order] = order_setup.erp.sales_orders
    assert sales_order["external_reference"] == f"shopify:{order['id']}"

    with django_capture_on_commit_callbacks(execute=True):
        order_resync(link=link)  # again: applied, nothing posted twice
    assert len(order_setup.erp.sales_orders) == 1
    assert list(link.timeline.values_list("kind", flat=True)).count(OrderEvent.Kind.RESYNCED) == 2


def test_a_commercetools_order_is_imported_by_number_and_resynced(order_setup, ct_connection,
                                                                  django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = ct.create_order(customer_email="kai@example.de", currency="EUR", country="DE", payment_state="Pending",
                            order_number="WEB/2026 #7",
                            line_items=[{"sku": "TEE-WHT-M", "name": "Tee", "quantity": 1, "price": "15.00", "tax_rate": 0.19}])
    with django_capture_on_commit_callbacks(execute=True):
        order_import_by_number(connection=ct_connection, number="WEB/2026 #7")
    link = OrderLink.objects.get(storefront_order_id=order["id"])
    assert link.state == OrderLink.State.WAITING_PAYMENT
    ct.set_payment_state(order["id"], "Paid")
    with django_capture_on_commit_callbacks(execute=True):
        order_resync(link=link)
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1


def test_an_order_number_the_storefront_does_not_have_says_so(order_setup, shopify_connection, ct_connection):
    with pytest.raises(ResyncRefused, match="has no order 9999"):
        order_import_by_number(connection=shopify_connection, number="9999")
    with pytest.raises(ResyncRefused, match="has no order CT-404"):
        order_import_by_number(connection=ct_connection, number="CT-404")
    assert not OrderLink.objects.exists()
