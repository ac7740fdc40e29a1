"""ERP dispatches reach Shopify as fulfilments against its fulfillment orders: only the dispatched lines
and quantities, one fulfilment per fulfillment order (an order split over two locations gets two), the
tracking company from the carrier mapping, and the customer notified once per dispatch."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import Dispatch, OrderEvent, OrderLink, OutboundWrite
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def _carrier(connection, erp_carrier, company):
    from mappings.models import CarrierMapping

    return CarrierMapping.objects.create(connection=connection, erp_carrier=erp_carrier, tracking_company=company)


def test_a_partial_dispatch_fulfils_only_its_lines_and_tells_the_customer_once(shop_order, order_setup, poll,
                                                                               shopify_connection):
    _carrier(shopify_connection, "RM48", "Royal Mail")
    payload, link = shop_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 3}, {"sku": "MUG-001", "quantity": 1}])
    tee = payload["line_items"][0]
    order_setup.erp.dispatch_order(link.erp_order_id, lines=[{"item_code": "TEE-BLK-M", "quantity": 2}],
                                   carrier="RM48", tracking_number="RM123456789GB")
    assert poll()["stored"] == 1

    shop = order_setup.shopify
    [made] = shop.fulfillments_of(payload["id"])
    assert [(line["line_item"], line["quantity"]) for line in made["lines"]] == [(tee["id"], 2)]
    assert made["tracking"]["company"] == "Royal Mail" and made["tracking"]["number"] == "RM123456789GB"
    assert made["tracking"]["url"].startswith("https://www.royalmail.com/")  # Shopify knows the company
    [fo] = shop.fulfillment_orders_of(payload["id"])
    assert fo["status"] == "IN_PROGRESS"
    assert {line["line_item"]: line["remaining"] for line in fo["lines"]} == {tee["id"]: 1,
                                                                             payload["line_items"][1]["id"]: 1}
    assert len(shop.notifications) == 1 and shop.notifications[0]["email"] == "ada@example.com"

    link.refresh_from_db()
    assert link.state == OrderLink.State.PARTLY_DISPATCHED
    dispatch = Dispatch.objects.get()
    assert dispatch.storefront_status == Dispatch.Status.SENT and dispatch.customer_notified
    assert dispatch.tracking_company == "Royal Mail"
    kinds = list(link.timeline.values_list("kind", flat=True))
    assert OrderEvent.Kind.DISPATCHED in kinds and OrderEvent.Kind.FULFILMENT_SENT in kinds
    sent = link.timeline.get(kind=OrderEvent.Kind.FULFILMENT_SENT).message
    assert "RM123456789GB" in sent and "customer notified" in sent

    # The rest leaves: the order is dispatched in full, and the customer hears of the second parcel once.
    order_setup.erp.dispatch_order(link.erp_order_id, carrier="RM48", tracking_number="RM987654321GB")
    poll()
    link.refresh_from_db()
    assert link.state == OrderLink.State.DISPATCHED
    assert [f["status"] for f in shop.fulfillment_orders_of(payload["id"])] == ["CLOSED"]
    assert len(shop.notifications) == 2
    assert not ExceptionRecord.objects.exists()


def test_an_order_split_over_two_locations_gets_one_fulfilment_per_fulfillment_order(shop_order, order_setup, poll):
    shop = order_setup.shopify
    payload, link = shop_order(line_items=[{"sku": "TEE-BLK-S", "quantity": 1, "location_id": 1},
                                           {"sku": "HOODIE-GRY-L", "quantity": 1, "location_id": 2}])
    assert len(shop.fulfillment_orders_of(payload["id"])) == 2
    order_setup.erp.dispatch_order(link.erp_order_id, carrier="Royal Mail", tracking_number="RM1")
    poll()

    made = shop.fulfillments_of(payload["id"])
    assert sorted(f["location"] for f in made) == [1, 2]
    assert [len(f["lines"]) for f in made] == [1, 1]
    assert all(f["tracking"]["number"] == "RM1" for f in made)
    assert [f["status"] for f in shop.fulfillment_orders_of(payload["id"])] == ["CLOSED", "CLOSED"]
    assert len(shop.notifications) == 1  # one dispatch, one shipping confirmation
    writes = OutboundWrite.objects.filter(action="create_fulfilment", status=OutboundWrite.Status.SUCCEEDED)
    assert writes.count() == 2
    dispatch = Dispatch.objects.get()
    assert len(dispatch.storefront_references) == 2
    link.refresh_from_db()
    assert link.state == OrderLink.State.DISPATCHED


def test_re_polling_the_same_dispatches_changes_nothing_and_notifies_nobody_again(shop_order, order_setup, poll):
    from integrations.models import DispatchCursor

    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 2}])
    order_setup.erp.dispatch_order(link.erp_order_id, tracking_number="T-1", carrier="Royal Mail")
    poll()
    DispatchCursor.objects.update(cursor="")  # read everything again from the start
    assert poll()["stored"] == 0
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1
    assert len(order_setup.shopify.notifications) == 1
    assert Dispatch.objects.count() == 1
    assert OrderEvent.objects.filter(kind=OrderEvent.Kind.FULFILMENT_SENT).count() == 1


def test_notify_customer_off_fulfils_without_a_shipping_confirmation(shop_order, order_setup, poll, shopify_connection):
    shopify_connection.settings = {"notify_customer": False}
    shopify_connection.save()
    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    order_setup.erp.dispatch_order(link.erp_order_id, tracking_number="T-2")
    poll()
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1
    assert order_setup.shopify.notifications == []
    assert "customer not notified" in link.timeline.get(kind=OrderEvent.Kind.FULFILMENT_SENT).message


def test_an_unmapped_carrier_still_fulfils_with_the_erps_name_and_url_and_asks_ecommerce_to_map_it(
    shop_order, order_setup, poll, shopify_connection
):
    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    order_setup.erp.dispatch_order(link.erp_order_id, carrier="Speedy Parcels", tracking_number="SP-9",
                                   tracking_url="https://speedy.example/track/SP-9")
    poll()
    [made] = order_setup.shopify.fulfillments_of(payload["id"])
    assert made["tracking"] == {"company": "Speedy Parcels", "number": "SP-9", "url": "https://speedy.example/track/SP-9"}
    [record] = ExceptionRecord.objects.filter(type_code="unmapped_carrier")
    assert record.team == "ecommerce" and record.severity == "low"
    assert "Speedy Parcels" in record.title

    # Mapped: the retry clears it, and the next dispatch is sent with Shopify's own name.
    from exceptions_queue.services import exception_retry

    _carrier(shopify_connection, "speedy parcels", "DPD UK")
    assert exception_retry(record=record)
    record.refresh_from_db()
    assert record.status == "resolved"


def test_a_dispatch_for_an_order_ledgerline_never_posted_is_an_ops_exception(order_setup, poll, shopify_connection):
    erp = order_setup.erp
    erp.customers_add(email="walk-in@example.com", name="Walk in")
    ConnectionFactory(code="erp", kind="rest_erp", name="REST ERP")
    from integrations.connectors import get_erp
    from integrations.connectors.base import ErpSalesOrderLine, ErpSalesOrderRequest

    client = get_erp()
    customer = client.find_customers(email="walk-in@example.com")[0]
    created = client.create_sales_order(ErpSalesOrderRequest(
        external_reference="phone-order-1", customer_id=customer.id, currency="GBP", depot="MAIN",
        order_date="2026-11-20", total="9.50",
        lines=(ErpSalesOrderLine(item_code="MUG-001", description="Mug", quantity=1, unit_price="9.50",
                                 line_total="9.50"),)))
    erp.dispatch_order(created.id)
    poll()
    [record] = ExceptionRecord.objects.filter(type_code="dispatch_without_order")
    assert record.team == "ops" and created.id in record.message
    assert Dispatch.objects.get().storefront_status == Dispatch.Status.NO_ORDER
    assert order_setup.shopify.fulfillments == {}

