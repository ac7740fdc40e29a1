"""The CSV connector's optional purchase orders file: the ERP's open purchase orders (the planner's
stock on order) at the warehouse's permanent URL; orders raised from the planner's own drafts are not
listed again; an order received in full leaves the file and the planner deletes it; a line for an item
the planner's catalogue lacks is an owned exception."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.connectors import get_erp
from integrations.connectors.base import ErpPurchaseOrderLine, ErpPurchaseOrderRequest
from integrations.flows.planner_feeds import planner_feeds_refresh
from integrations.sandbox.inventory_planner_feeds import import_feeds, imported

from .conftest import FEED_PASSWORD
from .test_csv_connector import auth, feed_url


def _raise(reference, lines, depot="MAIN", supplier="Northern Textiles"):
    return get_erp().create_purchase_order(ErpPurchaseOrderRequest(
        external_reference=reference, supplier=supplier, depot=depot, currency="GBP", expected_date="2026-08-01",
        lines=tuple(ErpPurchaseOrderLine(item_code=code, quantity=qty, unit_cost=cost) for code, qty, cost in lines)))


def _body(live_server):
    return {"csv": [{"warehouse": "MAIN", "username": "planner", "password": FEED_PASSWORD,
                     "products_url": live_server.url + feed_url("products.csv"),
                     "purchase_orders_url": live_server.url + feed_url("purchase_orders.csv")}]}


@pytest.mark.django_db(transaction=True)
def test_open_erp_purchase_orders_reach_the_planner_and_leave_it_when_received(world, live_server, planner_app, sandbox):
    bought = _raise("BUYER-0001", [("TEE-BLK-M", 120, "6.40"), ("MUG-001", 48, "3.15")])
    _raise("planner:planner:64f0c0ffee", [("MUG-001", 10, "3.15")])  # raised from the planner's draft: it has it
    _raise("BUYER-0002", [("TEE-BLK-M", 30, "6.40")], depot="NORTH")  # another warehouse's file
    sandbox.erp.receive_purchase_order(bought.id, [{"item_code": "MUG-001", "quantity": 8}])
    planner_feeds_refresh()

    result = import_feeds(planner_app, _body(live_server))["csv"]["MAIN"]
    assert result["purchase_orders"]["rows"] == 2 and result["purchase_orders"]["unknown_skus"] == []
    rows = imported(planner_app)["csv"]["MAIN"]["purchase_orders"]
    assert sorted((r["id"], r["sku"], r["replenishment"], r["received"], r["status"], r["cost_price"]) for r in rows) == [
        (bought.id, "MUG-001", "48", "8", "partial", "3.15"), (bought.id, "TEE-BLK-M", "120", "0", "open", "6.40")]
    tee = next(r for r in rows if r["sku"] == "TEE-BLK-M")
    assert (tee["vendor"], tee["warehouse"], tee["expected_date"], tee["line_item_id"]) == (
        "Northern Textiles", "MAIN", "2026-08-01", f"{bought.id}:1")

    sandbox.erp.receive_purchase_order(bought.id)  # everything outstanding arrives
    planner_feeds_refresh()
    again = import_feeds(planner_app, _body(live_server))["csv"]["MAIN"]
    assert again["purchase_orders"]["rows"] == 0 and len(again["purchase_orders"]["deleted"]) == 2


@pytest.mark.django_db
def test_the_file_is_listed_on_the_status_screen_and_needs_the_feed_password(world, client, ops_user):
    planner_feeds_refresh()
    body = b"".join(client.get(feed_url("purchase_orders.csv"), **auth()).streaming_content)
    assert body.startswith(b"id,reference,status,warehouse,vendor,created_date,line_item_id,sku,replenishment,")
    assert client.get(feed_url("purchase_orders.csv"), **auth(password="guess")).status_code == 401
    assert client.head(feed_url("purchase_orders.csv"), **auth()).status_code == 200
    client.force_login(ops_user)
    page = client.get(f"/planner-feeds/{world.planner.code}/").content.decode()
    assert "/planner-feeds/planner/MAIN/purchase_orders.csv" in page


@pytest.mark.django_db
def test_a_purchase_order_line_for_an_item_the_planner_lacks_is_an_owned_exception(world, client, sandbox):
    sandbox.erp.add_item("LAMP-9", "Desk lamp", active=False)  # retired: not in the planner's catalogue
    order = _raise("BUYER-0003", [("LAMP-9", 5, "11.00"), ("MUG-001", 6, "3.15")])
    planner_feeds_refresh()
    record = ExceptionRecord.objects.get(type_code="planner_unknown_sku", sku="LAMP-9")
    assert record.team == "ops" and order.id in record.message and "purchase order line" in record.message.lower()
    body = b"".join(client.get(feed_url("purchase_orders.csv"), **auth()).streaming_content).decode()
    assert "MUG-001" in body and "LAMP-9" not in body
