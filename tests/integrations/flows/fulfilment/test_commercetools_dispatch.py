"""ERP dispatches reach commercetools as parcels with tracking data in a delivery of the order, and the
order's shipment state follows (Partial, then Shipped), always against the order's current version: a
409 ConcurrentModification in between is re-read and re-applied, and nothing is added twice."""
import pytest

from integrations.inbox.commercetools_poll import commercetools_orders_poll
from integrations.models import Dispatch, OrderLink, OutboundWrite

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct_posted(order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = ct.create_order(customer_email="gina@example.de", currency="EUR", country="DE", payment_state="Paid",
                            shipping={"name": "Standard", "price": "4.95", "tax_rate": 0.19},
                            line_items=[{"sku": "TEE-BLK-S", "name": "Tee", "quantity": 2, "price": "20.00", "tax_rate": 0.19},
                                        {"sku": "MUG-001", "name": "Mug", "quantity": 1, "price": "9.50", "tax_rate": 0.19}])
    with django_capture_on_commit_callbacks(execute=True):
        commercetools_orders_poll(connection_code="commercetools")
    link = OrderLink.objects.get(storefront_order_id=order["id"])
    assert link.state == OrderLink.State.POSTED, link.last_error
    return order, link


def test_two_parcels_of_one_shipment_share_a_delivery_and_the_shipment_state_follows_despite_a_409(
    ct_posted, order_setup, poll, monkeypatch
):
    ct = order_setup.commercetools
    order, link = ct_posted
    tee, mug = order["lineItems"]
    # Two parcels booked together (one shipment): the tees in one, the mug in the other.
    order_setup.erp.dispatch_order(link.erp_order_id, parcels=[
        {"lines": [{"item_code": "TEE-BLK-S", "quantity": 2}], "carrier": "DHL", "tracking_number": "DHL-1"},
        {"lines": [{"item_code": "MUG-001", "quantity": 1}], "carrier": "DHL", "tracking_number": "DHL-2"},
    ])
    # Someone changes the order between our read and our first update: commercetools answers 409.
    real_dispatch = ct.dispatch
    bumped = []

    def a_concurrent_change_first(request):
        if request.method == "POST" and f"/orders/{order['id']}" in request.path and not bumped:
            bumped.append(True)
            ct.set_payment_state(order["id"], "Paid")  # moves the order's version on
        return real_dispatch(request)

    monkeypatch.setattr(ct, "dispatch", a_concurrent_change_first)
    poll()

    stored = ct.orders[order["id"]]
    [delivery] = stored["shippingInfo"]["deliveries"]
    assert sorted(p["trackingData"]["trackingId"] for p in delivery["parcels"]) == ["DHL-1", "DHL-2"]
    assert {i["id"]: i["quantity"] for i in delivery["items"]} == {tee["id"]: 2, mug["id"]: 1}
    assert stored["shipmentState"] == "Shipped"
    assert bumped  # the 409 happened and was re-applied
    assert Dispatch.objects.filter(storefront_status=Dispatch.Status.SENT).count() == 2
    link.refresh_from_db()
    assert link.state == OrderLink.State.DISPATCHED


def test_a_partial_dispatch_sets_partial_and_a_resend_adds_nothing(ct_posted, order_setup, poll):
    from integrations.flows.fulfilment import dispatch_send

    ct = order_setup.commercetools
    order, link = ct_posted
    order_setup.erp.dispatch_order(link.erp_order_id, lines=[{"item_code": "TEE-BLK-S", "quantity": 1}],
                                   carrier="DHL", tracking_number="DHL-P1")
    poll()
    stored = ct.orders[order["id"]]
    assert stored["shipmentState"] == "Partial"
    [delivery] = stored["shippingInfo"]["deliveries"]
    [parcel] = delivery["parcels"]
    assert parcel["trackingData"] == {"trackingId": "DHL-P1", "carrier": "DHL", "providerTransaction": "DSP-000001",
                                      "isReturn": False}
    version = stored["version"]

    # A resend (its write recorded as lost) finds the parcel by its key and changes nothing.
    dispatch = Dispatch.objects.get()
    Dispatch.objects.filter(pk=dispatch.pk).update(storefront_status=Dispatch.Status.RETRYING)
    assert dispatch_send(dispatch_id=dispatch.pk) == Dispatch.Status.SENT
    assert ct.orders[order["id"]]["version"] == version
    assert len(ct.orders[order["id"]]["shippingInfo"]["deliveries"][0]["parcels"]) == 1
    assert OutboundWrite.objects.filter(action="add_delivery_parcel").count() == 2
