"""A storefront outage while the fulfilment is sent loses nothing: the update is retried with backoff,
then becomes an ops exception that keeps the tracking details, and its retry after recovery completes
it once. A worker that died after Shopify accepted does not fulfil twice."""
import pytest

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_retry
from integrations.flows.fulfilment import dispatch_send, fulfilment_sweep
from integrations.models import Dispatch, OrderEvent, OutboundWrite

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopify_down(order_setup, monkeypatch):
    """Shopify answers 503 to every API call while `down["on"]`."""
    from integrations.sandbox.server import Response

    shop = order_setup.shopify
    down = {"on": False}
    original = shop.handle_graphql

    def handle(request):
        return Response.json({"errors": "Service Unavailable"}, 503) if down["on"] else original(request)

    monkeypatch.setattr(shop, "routes", [(m, p, handle if h == original else h) for m, p, h in shop.routes])
    return down


def test_an_outage_is_retried_then_owned_by_ops_and_the_retry_after_recovery_completes_it(
    shop_order, order_setup, poll, shopify_down, fast_retries
):
    payload, link = shop_order(line_items=[{"sku": "TEE-BLK-L", "quantity": 1}])
    order_setup.erp.dispatch_order(link.erp_order_id, carrier="Royal Mail", tracking_number="RM-OUT-1")
    shopify_down["on"] = True
    poll()
    dispatch = Dispatch.objects.get()
    assert dispatch.storefront_status == Dispatch.Status.RETRYING and dispatch.next_retry_at is not None
    fulfilment_sweep()  # second attempt, still down
    fulfilment_sweep()  # retries spent: a person owns it
    dispatch.refresh_from_db()
    assert dispatch.storefront_status == Dispatch.Status.FAILED
    [record] = ExceptionRecord.objects.filter(type_code="fulfilment_failed")
    assert record.team == "ops" and record.order == link
    assert record.context["tracking_number"] == "RM-OUT-1" and record.context["tracking_company"] == "Royal Mail"
    assert order_setup.shopify.fulfillments_of(payload["id"]) == []

    shopify_down["on"] = False
    assert exception_retry(record=record)
    record.refresh_from_db()
    assert record.status == "resolved"
    [made] = order_setup.shopify.fulfillments_of(payload["id"])
    assert made["tracking"]["number"] == "RM-OUT-1"
    assert len(order_setup.shopify.notifications) == 1
    assert exception_retry(record=record)  # again: nothing more happens
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1
    assert OrderEvent.objects.filter(order=link, kind=OrderEvent.Kind.FULFILMENT_SENT).count() == 1


def test_a_worker_that_died_after_shopify_accepted_does_not_fulfil_twice(shop_order, order_setup, poll, monkeypatch):
    from integrations.connectors.shopify import fulfilment as shopify

    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    order_setup.erp.dispatch_order(link.erp_order_id, tracking_number="RM-CRASH")
    real = shopify.fulfilment_create

    def accepted_then_died(*args, **kwargs):
        real(*args, **kwargs)
        raise SystemExit("worker killed")

    monkeypatch.setattr(shopify, "fulfilment_create", accepted_then_died)
    with pytest.raises(SystemExit):
        poll()
    assert OutboundWrite.objects.get(action="create_fulfilment").status == OutboundWrite.Status.FAILED
    monkeypatch.setattr(shopify, "fulfilment_create", real)
    Dispatch.objects.update(claimed_at="2000-01-01T00:00:00Z")  # its claim lease ran out

    assert dispatch_send(dispatch_id=Dispatch.objects.get().pk) == Dispatch.Status.SENT
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1
    assert len(order_setup.shopify.notifications) == 1
    assert Dispatch.objects.get().customer_notified


def test_a_fulfilment_shopify_refuses_is_an_ops_exception_at_once(shop_order, order_setup, poll):
    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    [fo] = order_setup.shopify.fulfillment_orders_of(payload["id"])
    order_setup.shopify.set_fulfillment_order_status(fo["id"], "CLOSED")  # fulfilled by hand in Shopify
    order_setup.erp.dispatch_order(link.erp_order_id, tracking_number="RM-X")
    poll()
    dispatch = Dispatch.objects.get()
    assert dispatch.storefront_status == Dispatch.Status.FAILED and dispatch.attempts == 1
    [record] = ExceptionRecord.objects.filter(type_code="fulfilment_failed")
    assert "only 0 still to fulfil" in record.message
