"""The commercetools fulfilment actions: against our sandbox (keys, parcels added to a delivery, 409
re-read) and, for what it models, the `commercetools` package's own emulator: changeShipmentState at the
order's version. Its addDelivery fails on the orders it can create (imported ones have no shippingInfo
key) and drops delivery and parcel keys and items, so deliveries are shown against the sandbox only."""
import pytest

from integrations.connectors.commercetools import fulfilment as ct_fulfilment
from integrations.connectors.commercetools import CommercetoolsClient, ConcurrentModification
from tests.integrations.connectors.test_commercetools_emulator import emulator, client as emulator_client, import_order  # noqa: F401


def test_the_emulator_takes_the_shipment_state_at_the_orders_version_and_refuses_a_stale_one(emulator_client):
    order = import_order(emulator_client, order_number="EMU-D1", sku="TEE-EMU", cent_amount=1999, quantity=2,
                         payment_state="Paid")
    spec = ct_fulfilment.ParcelSpec(delivery_key="ll-ship-1", parcel_key="ll-DSP-1",
                                    items=((order["lineItems"][0]["id"], 2),), tracking_id="DHL-EMU-1", carrier="DHL")
    actions, needed = ct_fulfilment.parcel_actions(order, spec)
    assert needed and [a["action"] for a in actions] == ["addDelivery", "changeShipmentState"]
    assert actions[1] == {"action": "changeShipmentState", "shipmentState": "Shipped"}
    # The emulator's addDelivery fails on an imported order (it reads a shippingInfo key such orders lack),
    # so only the shipment state is sent to it; deliveries and parcels are shown against the sandbox below.
    updated = emulator_client.api("POST", f"orders/{order['id']}", json={"version": order["version"], "actions": actions[1:]})
    assert updated["shipmentState"] == "Shipped" and updated["version"] == order["version"] + 1
    with pytest.raises(ConcurrentModification):
        emulator_client.api("POST", f"orders/{order['id']}", json={"version": order["version"], "actions": actions[1:]})


@pytest.fixture
def sandbox_client(sandbox):
    return CommercetoolsClient(f"{sandbox.url}/commercetools", f"{sandbox.url}/commercetools/auth", "ledgerline-demo",
                               "sandbox-client", "sandbox-secret", max_attempts=1, sleep=lambda _: None)


def test_a_second_parcel_joins_the_delivery_and_a_resend_adds_nothing(sandbox, sandbox_client):
    order = sandbox.commercetools.create_order(line_items=[{"sku": "A", "quantity": 1, "price": "5"},
                                                           {"sku": "B", "quantity": 1, "price": "5"}])
    a, b = (item["id"] for item in order["lineItems"])
    first = ct_fulfilment.add_parcel(sandbox_client, order["id"], ct_fulfilment.ParcelSpec(
        delivery_key="ll-ship", parcel_key="ll-p1", items=((a, 1),), tracking_id="T1", carrier="UPS"))
    assert first.created and first.shipment_state == "Partial"
    second = ct_fulfilment.add_parcel(sandbox_client, order["id"], ct_fulfilment.ParcelSpec(
        delivery_key="ll-ship", parcel_key="ll-p2", items=((b, 1),), tracking_id="T2", carrier="UPS"))
    assert second.created and second.shipment_state == "Shipped" and second.delivery_id == first.delivery_id
    again = ct_fulfilment.add_parcel(sandbox_client, order["id"], ct_fulfilment.ParcelSpec(
        delivery_key="ll-ship", parcel_key="ll-p2", items=((b, 1),), tracking_id="T2", carrier="UPS"))
    assert not again.created and again.order_version == second.order_version
    [delivery] = sandbox.commercetools.orders[order["id"]]["shippingInfo"]["deliveries"]
    assert [p["key"] for p in delivery["parcels"]] == ["ll-p1", "ll-p2"]
    types = [m["type"] for m in sandbox.commercetools.messages]
    assert {"DeliveryAdded", "ParcelAddedToDelivery", "DeliveryItemsUpdated", "OrderShipmentStateChanged"} <= set(types)


def test_an_unknown_line_item_is_refused_before_anything_is_sent(sandbox, sandbox_client):
    order = sandbox.commercetools.create_order(line_items=[{"sku": "A", "quantity": 1, "price": "5"}])
    with pytest.raises(ct_fulfilment.DeliveryRefused):
        ct_fulfilment.add_parcel(sandbox_client, order["id"], ct_fulfilment.ParcelSpec(
            delivery_key="ll-ship", parcel_key="ll-p1", items=(("not-a-line", 1),)))
    assert not (sandbox.commercetools.orders[order["id"]].get("shippingInfo") or {}).get("deliveries")
