"""The sandbox shop keeps fulfillment orders per location and answers fulfillmentCreate as Shopify does:
user errors for more than remains, a closed fulfillment order or a line not on it; the same
@idempotent key replays the first answer; displayStatus follows the tracking; notifyCustomer (false
unless sent) is what sends the shipping confirmation."""
import uuid

import requests

FOS = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id status
  assignedLocation { name location { id } } lineItems(first: 10) { nodes { id remainingQuantity lineItem { id } } } } }
  fulfillments(first: 5) { id displayStatus trackingInfo { company number url } } } }"""
CREATE = """mutation($f: FulfillmentInput!, $key: String!) { fulfillmentCreate(fulfillment: $f) @idempotent(key: $key) {
  fulfillment { id status displayStatus trackingInfo { company number url } } userErrors { field message } } }"""


def _gql(sandbox, query, variables, token="shpat_sandbox_token"):
    answer = requests.post(f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json", json={"query": query, "variables": variables},
                           headers={"X-Shopify-Access-Token": token}, timeout=5).json()
    assert "errors" not in answer, answer
    return answer["data"]


def _order(sandbox, **fields):
    return sandbox.shopify.create_order(deliver="none", **fields)


def _create(sandbox, fo, lines, *, key=None, notify=False, tracking=None):
    return _gql(sandbox, CREATE, {"key": key or str(uuid.uuid4()), "f": {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo, "fulfillmentOrderLineItems": lines}],
        "notifyCustomer": notify, "trackingInfo": tracking or {}}})["fulfillmentCreate"]


def test_each_location_of_an_order_has_its_own_fulfillment_order(sandbox):
    order = _order(sandbox, line_items=[{"sku": "MUG-001", "quantity": 1, "location_id": 1},
                                        {"sku": "TEE-BLK-S", "quantity": 2, "location_id": 2}])
    nodes = _gql(sandbox, FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"]
    assert [(n["assignedLocation"]["name"], [l["remainingQuantity"] for l in n["lineItems"]["nodes"]]) for n in nodes] == [
        ("Main warehouse", [1]), ("Northern store", [2])]


def test_fulfilling_more_than_remains_a_closed_order_or_a_foreign_line_are_user_errors(sandbox):
    order = _order(sandbox, line_items=[{"sku": "MUG-001", "quantity": 2}])
    other = _order(sandbox, line_items=[{"sku": "MUG-001", "quantity": 1}])
    [fo] = _gql(sandbox, FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"]
    [other_fo] = _gql(sandbox, FOS, {"id": other["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"]
    line = fo["lineItems"]["nodes"][0]["id"]
    too_many = _create(sandbox, fo["id"], [{"id": line, "quantity": 3}])
    assert too_many["fulfillment"] is None and "quantity" in too_many["userErrors"][0]["message"]
    foreign = _create(sandbox, fo["id"], [{"id": other_fo["lineItems"]["nodes"][0]["id"], "quantity": 1}])
    assert foreign["fulfillment"] is None and "does not belong" in foreign["userErrors"][0]["message"]
    sandbox.shopify.set_fulfillment_order_status(fo["id"], "CLOSED")
    closed = _create(sandbox, fo["id"], [{"id": line, "quantity": 1}])
    assert "unfulfillable status" in closed["userErrors"][0]["message"]
    assert sandbox.shopify.fulfillments == {} and sandbox.shopify.notifications == []


def test_the_same_key_replays_the_first_answer_and_only_notify_customer_notifies(sandbox):
    order = _order(sandbox, line_items=[{"sku": "MUG-001", "quantity": 2}], email="ada@example.com")
    [fo] = _gql(sandbox, FOS, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"]
    line = fo["lineItems"]["nodes"][0]["id"]
    quiet = _create(sandbox, fo["id"], [{"id": line, "quantity": 1}])
    assert quiet["fulfillment"]["displayStatus"] == "FULFILLED" and sandbox.shopify.notifications == []
    key = str(uuid.uuid4())
    tracking = {"company": "Royal Mail", "number": "RM1"}
    first = _create(sandbox, fo["id"], [{"id": line, "quantity": 1}], key=key, notify=True, tracking=tracking)
    again = _create(sandbox, fo["id"], [{"id": line, "quantity": 1}], key=key, notify=True, tracking=tracking)
    assert again["fulfillment"]["id"] == first["fulfillment"]["id"]
    assert first["fulfillment"]["displayStatus"] == "CONFIRMED"
    assert first["fulfillment"]["trackingInfo"][0]["url"].startswith("https://www.royalmail.com/")
    assert len(sandbox.shopify.fulfillments) == 2 and sandbox.shopify.idempotent_replays == 1
    assert [n["email"] for n in sandbox.shopify.notifications] == ["ada@example.com"]
    state = _gql(sandbox, FOS, {"id": order["admin_graphql_api_id"]})["order"]
    assert state["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    assert sandbox.shopify.orders[order["id"]]["fulfillment_status"] == "fulfilled"


def test_reading_fulfillment_orders_needs_the_fulfillment_scope(sandbox):
    order = _order(sandbox, line_items=[{"sku": "MUG-001", "quantity": 1}])
    token = sandbox.shopify.add_access_token(["read_orders"])
    answer = requests.post(f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json",
                           json={"query": FOS, "variables": {"id": order["admin_graphql_api_id"]}},
                           headers={"X-Shopify-Access-Token": token}, timeout=5).json()
    assert answer["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
