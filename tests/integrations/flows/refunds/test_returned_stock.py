"""Restocked returns come back to the ERP awaiting inspection: not sellable, so the storefront's
availability does not rise, until the warehouse passes the inspection (a failed one: damaged)."""
import pytest
import requests

from integrations.flows.inventory import inventory_sync_start
from integrations.models import OrderLink, Refund
from tests.factories import LocationMappingFactory
from tests.payloads import deliver_shopify_webhook, shopify_order, shopify_refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(refund_setup, shopify_connection):
    shop = refund_setup.shopify
    shop.reset(seed=False)
    location = shop.add_location("Web")
    shop.add_product("Tee", [{"sku": "TEE-BLK-M", "price": "20"}])
    shop.set_level("TEE-BLK-M", location, available=0)
    LocationMappingFactory(connection=shopify_connection, storefront_location=location, erp_warehouse="MAIN")
    refund_setup.erp.set_stock("TEE-BLK-M", "MAIN", on_hand=10)
    return location


def _push(connection):
    run = inventory_sync_start(connection=connection, trigger="manual", queue=False)
    assert run.status == "succeeded", run.__dict__
    return run


def _inspect(sandbox, memo_id, result):
    response = requests.post(f"{sandbox.url}/erp/_sandbox/credit-memos/{memo_id}/inspect", json={"result": result},
                             timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _returned_and_credited(client, refund_setup, capture):
    paid = shopify_order(number=2101, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00"}])
    deliver_shopify_webhook(client, paid, capture)
    link = OrderLink.objects.get()
    refund_setup.erp.dispatch_order(link.erp_order_id)  # both units left the warehouse
    deliver_shopify_webhook(client, shopify_refund(paid, lines=[{"index": 0, "quantity": 1, "restock_type": "return"}]),
                            capture, topic="refunds/create")
    row = Refund.objects.get()
    assert row.state == Refund.State.POSTED and row.restock
    return row


def test_returned_stock_is_not_sellable_until_inspected_then_the_storefront_rises(
    client, refund_setup, web, shopify_connection, django_capture_on_commit_callbacks
):
    _push(shopify_connection)
    assert refund_setup.shopify.level("TEE-BLK-M", web)["available"] == 10
    row = _returned_and_credited(client, refund_setup, django_capture_on_commit_callbacks)
    stock = refund_setup.erp.stock[("TEE-BLK-M", "MAIN")]
    assert stock["on_hand"] == 9 and stock["states"]["returned_awaiting_inspection"] == 1  # 10 − 2 shipped + 1 back
    _push(shopify_connection)
    assert refund_setup.shopify.level("TEE-BLK-M", web)["available"] == 8  # the returned unit is not offered

    memo = _inspect(refund_setup, row.credit_memo_id, "passed")
    assert memo["inspections"][0]["result"] == "passed"
    _push(shopify_connection)
    assert refund_setup.shopify.level("TEE-BLK-M", web)["available"] == 9


def test_a_failed_inspection_moves_the_return_to_damaged_and_nothing_rises(
    client, refund_setup, web, shopify_connection, django_capture_on_commit_callbacks
):
    row = _returned_and_credited(client, refund_setup, django_capture_on_commit_callbacks)
    _inspect(refund_setup, row.credit_memo_id, "failed")
    stock = refund_setup.erp.stock[("TEE-BLK-M", "MAIN")]
    assert stock["states"]["returned_awaiting_inspection"] == 0 and stock["states"]["damaged"] == 1
    _push(shopify_connection)
    assert refund_setup.shopify.level("TEE-BLK-M", web)["available"] == 8
    # Inspected once: a second inspection of the same units is refused.
    response = requests.post(f"{refund_setup.url}/erp/_sandbox/credit-memos/{row.credit_memo_id}/inspect",
                             json={"result": "passed"}, timeout=5)
    assert response.status_code == 422
