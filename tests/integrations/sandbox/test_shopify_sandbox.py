"""The Shopify sandbox behaves like Shopify where our code depends on it: signed webhooks that are
retried unchanged, auth, the cost throttle's answer, compare-and-set, quantity names, admin endpoints."""
import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from integrations.models import InboundEvent
from integrations.inbox.webhooks import shopify_hmac

MAIN = "gid://shopify/Location/1"
SECRET = "sandbox-shopify-webhook-secret"


class Receiver:
    """A webhook endpoint on loopback that records raw deliveries and answers scripted statuses."""

    def __init__(self):
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answered in order; 200 once exhausted
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append({"headers": dict(self.headers.items()), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/shopify/shopify/"

    def topic(self, topic: str) -> list[dict]:
        return [r for r in self.received if r["headers"]["X-Shopify-Topic"] == topic]


@pytest.fixture
def receiver(sandbox):
    receiver = Receiver()
    sandbox.shopify.configure(webhook_target=receiver.url, retry_delays=[0.05, 0.05, 0.05])
    yield receiver
    receiver.server.shutdown()


def _wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _graphql(sandbox, query, variables=None, token="shpat_sandbox_token", version="2026-04"):
    """POST a document; a `$key` it declares (the idempotency key) gets a fresh UUID unless given."""
    headers = {"X-Shopify-Access-Token": token} if token else {}
    variables = dict(variables or {})
    if "$key: String!" in query:
        variables.setdefault("key", str(uuid.uuid4()))
    return requests.post(f"{sandbox.url}/shopify/admin/api/{version}/graphql.json",
                         json={"query": query, "variables": variables}, headers=headers, timeout=5)


SET = """mutation($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { changes { name delta } } userErrors { code field message } } }"""
SET_WITHOUT_KEY = """mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) {
  inventoryAdjustmentGroup { changes { name delta } } userErrors { code field message } } }"""
ADJUST = """mutation($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { changes { name delta } } userErrors { code field message } } }"""


# --- webhooks --------------------------------------------------------------------------------------


def test_webhooks_are_signed_over_the_raw_body_as_our_webhook_view_checks(sandbox, receiver, client, shopify_connection):
    payload = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])

    (delivery,) = receiver.received
    headers, body = delivery["headers"], delivery["body"]
    assert headers["X-Shopify-Hmac-Sha256"] == shopify_hmac(SECRET, body)
    assert json.loads(body) == payload
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Shop-Domain"] == "ledgerline-demo.myshopify.com"
    assert headers["X-Shopify-API-Version"] == "2026-04"
    assert headers["X-Shopify-Webhook-Id"] and headers["X-Shopify-Event-Id"] and headers["X-Shopify-Triggered-At"]
    # Our endpoint accepts exactly what the sandbox sent.
    forwarded = {k: v for k, v in headers.items() if k.startswith("X-Shopify")}
    response = client.post("/webhooks/shopify/shopify/", data=body, content_type="application/json", headers=forwarded)
    assert response.status_code == 200, response.content
    assert InboundEvent.objects.get().external_id == headers["X-Shopify-Webhook-Id"]


def test_paying_an_order_sends_orders_paid_then_orders_updated(sandbox, receiver):
    order = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    sandbox.shopify.mark_paid(order["id"])
    assert [r["headers"]["X-Shopify-Topic"] for r in receiver.received] == ["orders/create", "orders/paid", "orders/updated"]
    assert json.loads(receiver.topic("orders/paid")[0]["body"])["financial_status"] == "paid"
    assert len({r["headers"]["X-Shopify-Webhook-Id"] for r in receiver.received}) == 3


def test_a_failed_delivery_is_retried_with_the_same_webhook_id_and_the_original_payload(sandbox, receiver):
    receiver.statuses = [500]
    order = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], deliver="sync")
    sandbox.shopify.update_order(order["id"], note="changed after the first attempt")

    assert _wait_until(lambda: len(receiver.topic("orders/create")) == 2)
    first, retry = receiver.topic("orders/create")
    assert retry["headers"]["X-Shopify-Webhook-Id"] == first["headers"]["X-Shopify-Webhook-Id"]
    assert retry["body"] == first["body"]  # the original payload, not the order as it is now
    assert json.loads(retry["body"])["note"] is None
    assert retry["headers"]["X-Shopify-Hmac-Sha256"] == shopify_hmac(SECRET, retry["body"])
    log = [(d["topic"], d["status"], d["attempt"]) for d in sandbox.shopify.deliveries if d["topic"] == "orders/create"]
    assert log == [("orders/create", 500, 1), ("orders/create", 200, 2)]


def test_an_unreachable_endpoint_is_retried_as_many_times_as_configured(sandbox):
    sandbox.shopify.configure(webhook_target="http://127.0.0.1:9/nothing-listens", retry_delays=[0.01, 0.01])
    status = sandbox.shopify.send_webhook("orders/paid", {"id": 1})
    assert status is None
    assert _wait_until(lambda: len(sandbox.shopify.deliveries) == 3)
    time.sleep(0.05)
    assert [d["attempt"] for d in sandbox.shopify.deliveries] == [1, 2, 3]
    assert all(d["status"] is None and d["error"] for d in sandbox.shopify.deliveries)


def test_redeliver_resends_the_same_webhook_on_demand_over_http(sandbox, receiver):
    sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    webhook_id = receiver.received[0]["headers"]["X-Shopify-Webhook-Id"]

    answer = requests.post(f"{sandbox.url}/shopify/_sandbox/webhooks/{webhook_id}/redeliver", timeout=5)

    assert answer.json() == {"webhook_id": webhook_id, "status": 200}
    assert [r["headers"]["X-Shopify-Webhook-Id"] for r in receiver.received] == [webhook_id, webhook_id]
    assert receiver.received[0]["body"] == receiver.received[1]["body"]
    assert requests.post(f"{sandbox.url}/shopify/_sandbox/webhooks/nope/redeliver", timeout=5).status_code == 404


def test_send_webhook_returns_the_status_for_latency_measurements(sandbox, receiver):
    receiver.statuses = [202]
    assert sandbox.shopify.send_webhook("orders/paid", {"id": 7}) == 202
    assert sandbox.shopify.deliveries[-1]["duration_ms"] >= 0


# --- GraphQL ---------------------------------------------------------------------------------------


def test_graphql_without_the_access_token_is_refused(sandbox):
    for token in (None, "shpat_wrong"):
        response = _graphql(sandbox, "{ shop { name } }", token=token)
        assert response.status_code == 401
        assert "Invalid API key or access token" in response.json()["errors"]


def test_every_answer_carries_its_cost_and_the_bucket_status(sandbox):
    body = _graphql(sandbox, "{ shop { name currencyCode } }").json()
    assert body["data"]["shop"] == {"name": "Ledgerline Demo Store", "currencyCode": "GBP"}
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 1 and cost["actualQueryCost"] == 1
    assert cost["throttleStatus"] == {"maximumAvailable": 1000.0, "currentlyAvailable": 999, "restoreRate": 100.0}


def test_an_empty_bucket_answers_throttled_with_http_200(sandbox):
    sandbox.shopify.configure(bucket_size=5, restore_rate=1)
    query = "{ locations(first: 2) { nodes { id } } }"  # 4 points
    assert "data" in _graphql(sandbox, query).json()
    response = _graphql(sandbox, query)
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    assert "data" not in body
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1


def test_a_query_dearer_than_the_bucket_is_refused_outright(sandbox):
    sandbox.shopify.configure(bucket_size=100)
    body = _graphql(sandbox, "{ productVariants(first: 250) { nodes { sku } } }").json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_set_quantities_with_a_stale_change_from_changes_nothing(sandbox):
    shop = sandbox.shopify
    tee, mug = shop.inventory_item_id("TEE-BLK-S"), shop.inventory_item_id("MUG-001")
    body = _graphql(sandbox, SET, {"input": {"name": "available", "reason": "correction", "referenceDocumentUri": "ledgerline://t",
                                             "quantities": [
                                                 {"inventoryItemId": mug, "locationId": MAIN, "quantity": 1, "changeFromQuantity": 120},
                                                 {"inventoryItemId": tee, "locationId": MAIN, "quantity": 1, "changeFromQuantity": 39},
                                             ]}}).json()
    result = body["data"]["inventorySetQuantities"]
    assert result["inventoryAdjustmentGroup"] is None
    assert result["userErrors"] == [{"code": "CHANGE_FROM_QUANTITY_STALE", "field": ["input", "quantities", "1", "changeFromQuantity"],
                                     "message": "The changeFromQuantity argument no longer matches the persisted quantity."}]
    assert shop.level("MUG-001", MAIN)["available"] == 120  # the valid entry was not applied either
    assert shop.level("TEE-BLK-S", MAIN)["available"] == 40


def test_set_on_hand_moves_available_and_reports_both_changes(sandbox):
    shop = sandbox.shopify
    shop.reserve("MUG-001", MAIN, 5)
    body = _graphql(sandbox, SET, {"input": {"name": "on_hand", "reason": "cycle_count_available", "quantities": [
        {"inventoryItemId": shop.inventory_item_id("MUG-001"), "locationId": MAIN, "quantity": 100, "changeFromQuantity": 120}]}}).json()
    assert body["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"] == [
        {"name": "available", "delta": -20}, {"name": "on_hand", "delta": -20}]
    level = shop.level("MUG-001", MAIN)
    assert (level["available"], level["reserved"], level["on_hand"]) == (95, 5, 100)


def test_more_quantities_than_the_api_maximum_is_a_user_error(sandbox):
    shop = sandbox.shopify
    shop.add_product("Bulk", [{"sku": f"B-{i}", "price": "1"} for i in range(126)])
    quantities = [{"inventoryItemId": shop.inventory_item_id(f"B-{i}"), "locationId": loc, "quantity": 3, "changeFromQuantity": 0}
                  for i in range(126) for loc in ("gid://shopify/Location/1", "gid://shopify/Location/2")]
    assert len(quantities) == 252
    body = _graphql(sandbox, SET, {"input": {"name": "available", "reason": "correction", "quantities": quantities}}).json()
    (error,) = body["data"]["inventorySetQuantities"]["userErrors"]
    assert error["field"] == ["input", "quantities"] and "maximum allowed of 250" in error["message"]
    assert shop.level("B-0", MAIN)["available"] == 0


def test_unknown_items_and_reasons_are_user_errors(sandbox):
    body = _graphql(sandbox, SET, {"input": {"name": "committed", "reason": "because", "quantities": [
        {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": MAIN, "quantity": 1, "changeFromQuantity": None}]}}).json()
    codes = [e["code"] for e in body["data"]["inventorySetQuantities"]["userErrors"]]
    assert codes == ["INVALID_NAME", "INVALID_REASON", "INVALID_INVENTORY_ITEM"]


def test_on_hand_is_the_sum_of_the_quantities_held_in_the_warehouse(sandbox):
    shop = sandbox.shopify
    shop.set_level("TEE-WHT-M", MAIN, available=10, committed=2, reserved=1, damaged=3, quality_control=1, safety_stock=4, incoming=50)
    query = """query($id: ID!) { inventoryItem(id: $id) { inventoryLevel(locationId: "gid://shopify/Location/1") {
      quantities(names: ["available", "on_hand", "incoming"]) { name quantity } } } }"""
    body = _graphql(sandbox, query, {"id": shop.inventory_item_id("TEE-WHT-M")}).json()
    quantities = {q["name"]: q["quantity"] for q in body["data"]["inventoryItem"]["inventoryLevel"]["quantities"]}
    assert quantities == {"available": 10, "on_hand": 21, "incoming": 50}


def test_checkout_simulator_moves_stock_between_quantity_names(sandbox):
    shop = sandbox.shopify
    shop.reserve("TEE-BLK-L", MAIN, 4)
    shop.sell("TEE-BLK-L", MAIN, 2)
    level = shop.level("TEE-BLK-L", MAIN)
    assert (level["available"], level["reserved"], level["committed"], level["on_hand"]) == (24, 4, 2, 30)
    with pytest.raises(ValueError, match="only 24 available"):
        shop.reserve("TEE-BLK-L", MAIN, 25)


def test_an_order_commits_stock_and_cancelling_it_gives_it_back(sandbox):
    shop = sandbox.shopify
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 3}])
    assert (shop.level("MUG-001", MAIN)["available"], shop.level("MUG-001", MAIN)["committed"]) == (117, 3)
    cancelled = shop.cancel_order(order["id"])
    assert cancelled["cancelled_at"] and cancelled["updated_at"] > order["updated_at"]
    assert (shop.level("MUG-001", MAIN)["available"], shop.level("MUG-001", MAIN)["committed"]) == (120, 0)


def test_orders_query_filters_by_updated_at_and_pages_with_cursors(sandbox):
    shop = sandbox.shopify
    orders = [shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}]) for _ in range(3)]
    query = """query($after: String, $q: String) { orders(first: 2, after: $after, query: $q, sortKey: UPDATED_AT) {
      nodes { legacyResourceId name } pageInfo { hasNextPage endCursor } } }"""
    page = _graphql(sandbox, query).json()["data"]["orders"]
    assert [n["name"] for n in page["nodes"]] == ["#1001", "#1002"] and page["pageInfo"]["hasNextPage"]
    rest = _graphql(sandbox, query, {"after": page["pageInfo"]["endCursor"]}).json()["data"]["orders"]
    assert [n["name"] for n in rest["nodes"]] == ["#1003"] and not rest["pageInfo"]["hasNextPage"]
    since = _graphql(sandbox, query, {"q": f"updated_at:>'{orders[1]['updated_at']}'"}).json()["data"]["orders"]
    assert [n["legacyResourceId"] for n in since["nodes"]] == [str(orders[2]["id"])]


# --- admin endpoints (a sandbox in another process) -------------------------------------------------


def test_admin_endpoints_create_and_pay_orders_and_report_stats(sandbox, receiver):
    base = f"{sandbox.url}/shopify/_sandbox"
    created = requests.post(f"{base}/orders", json={"line_items": [{"sku": "TEE-BLK-M", "quantity": 2}], "paid": True}, timeout=5)
    assert created.status_code == 201
    assert [w["topic"] for w in created.json()["webhooks"]] == ["orders/create", "orders/paid", "orders/updated"]
    assert all(w["status"] == 200 for w in created.json()["webhooks"])
    assert created.json()["order"]["financial_status"] == "paid"

    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert (stats["orders"], stats["webhooks"], stats["deliveries_ok"]) == (1, 3, 3)

    requests.post(f"{base}/config", json={"bucket_size": 50, "restore_rate": 5}, timeout=5)
    assert sandbox.shopify.bucket.size == 50 and sandbox.shopify.bucket.restore_rate == 5
    requests.post(f"{base}/reset", json={"seed": False}, timeout=5)
    assert sandbox.shopify.orders == {} and sandbox.shopify.variants == {}
    requests.post(f"{base}/seed-demo", timeout=5)
    assert sandbox.shopify.variant_by_sku("HOODIE-GRY-L") is not None


# --- API versions --------------------------------------------------------------------------------------


def test_each_answer_says_which_api_version_served_it(sandbox):
    for version in ("2026-01", "2026-04"):
        response = _graphql(sandbox, "{ shop { name } }", version=version)
        assert response.headers["X-Shopify-API-Version"] == version
        assert response.json()["data"]["shop"]["name"] == "Ledgerline Demo Store"


@pytest.mark.parametrize("asked", ["2025-10", "2025-07", "2026-05", "2099-01"], ids=["retired", "older", "never", "future"])
def test_a_retired_or_unknown_version_is_served_as_the_oldest_supported_one(sandbox, asked):
    response = _graphql(sandbox, "{ shop { name } }", version=asked)
    assert response.status_code == 200
    assert response.headers["X-Shopify-API-Version"] == "2026-01"
    assert sandbox.shopify.stats()["versions_served"] == {"2026-01": 1}


def test_a_document_is_validated_against_the_published_schema_of_the_version_served(sandbox):
    removed_in_2026_04 = "{ deliverySettings { legacyModeProfiles } }"
    body = _graphql(sandbox, removed_in_2026_04, version="2026-04").json()
    assert "data" not in body
    assert body["errors"][0]["message"].startswith("Cannot query field 'deliverySettings'")
    # Valid on 2026-01: Shopify would answer it; the sandbox says it does not implement it.
    body = _graphql(sandbox, removed_in_2026_04, version="2026-01").json()
    assert body["errors"][0]["extensions"]["code"] == "SANDBOX_NOT_IMPLEMENTED"


def test_variables_the_version_does_not_define_are_refused(sandbox):
    # compareQuantity was the compare-and-set before changeFromQuantity; neither version served has it.
    body = _graphql(sandbox, SET, {"input": {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": sandbox.shopify.inventory_item_id("MUG-001"), "locationId": MAIN, "quantity": 1,
         "compareQuantity": 120}]}}).json()
    assert "data" not in body
    assert "compareQuantity" in body["errors"][0]["message"]
    assert sandbox.shopify.mutation_calls == {}


def test_from_2026_04_inventory_mutations_need_an_idempotency_key(sandbox):
    shop = sandbox.shopify
    change = {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": shop.inventory_item_id("MUG-001"), "locationId": MAIN, "quantity": 100, "changeFromQuantity": 120}]}

    body = _graphql(sandbox, SET_WITHOUT_KEY, {"input": change}, version="2026-04").json()
    assert body["data"]["inventorySetQuantities"] is None
    assert "@idempotent directive is required" in body["errors"][0]["message"]
    assert shop.level("MUG-001", MAIN)["available"] == 120

    body = _graphql(sandbox, SET_WITHOUT_KEY, {"input": change}, version="2026-01").json()  # optional there
    assert body["data"]["inventorySetQuantities"]["userErrors"] == []
    assert shop.level("MUG-001", MAIN)["available"] == 100


def test_an_empty_idempotency_key_is_refused(sandbox):
    body = _graphql(sandbox, SET, {"key": "  ", "input": {"name": "available", "reason": "correction", "quantities": []}}).json()
    assert body["data"]["inventorySetQuantities"] is None
    assert "cannot be an empty string" in body["errors"][0]["message"]


def test_from_2026_04_each_adjustment_names_its_change_from_quantity(sandbox):
    shop = sandbox.shopify
    mug = shop.inventory_item_id("MUG-001")
    implicit = {"name": "available", "reason": "correction", "changes": [{"inventoryItemId": mug, "locationId": MAIN, "delta": 5}]}
    explicit = {**implicit, "changes": [{"inventoryItemId": mug, "locationId": MAIN, "delta": 5, "changeFromQuantity": None}]}

    errors = _graphql(sandbox, ADJUST, {"input": implicit}).json()["data"]["inventoryAdjustQuantities"]["userErrors"]
    assert errors[0]["field"] == ["input", "changes", "0", "changeFromQuantity"]
    assert shop.level("MUG-001", MAIN)["available"] == 120
    assert _graphql(sandbox, ADJUST, {"input": implicit}, version="2026-01").json()[
        "data"]["inventoryAdjustQuantities"]["userErrors"] == []
    assert _graphql(sandbox, ADJUST, {"input": explicit}).json()["data"]["inventoryAdjustQuantities"]["userErrors"] == []
    assert shop.level("MUG-001", MAIN)["available"] == 130


def test_the_same_idempotency_key_answers_the_first_result_and_applies_once(sandbox):
    shop = sandbox.shopify
    change = {"name": "available", "reason": "correction", "changes": [
        {"inventoryItemId": shop.inventory_item_id("MUG-001"), "locationId": MAIN, "delta": 3, "changeFromQuantity": None}]}
    first = _graphql(sandbox, ADJUST, {"key": "k-1", "input": change}).json()
    again = _graphql(sandbox, ADJUST, {"key": "k-1", "input": change}).json()

    assert again["data"] == first["data"]
    assert shop.level("MUG-001", MAIN)["available"] == 123  # not 126
    assert shop.stats()["idempotent_replays"] == 1

    other = {**change, "changes": [{**change["changes"][0], "delta": 4}]}
    errors = _graphql(sandbox, ADJUST, {"key": "k-1", "input": other}).json()["data"]["inventoryAdjustQuantities"]["userErrors"]
    assert [e["code"] for e in errors] == ["IDEMPOTENCY_KEY_PARAMETER_MISMATCH"]
    assert shop.level("MUG-001", MAIN)["available"] == 123


# --- access scopes ---------------------------------------------------------------------------------


def test_a_token_without_write_inventory_gets_access_denied_and_changes_nothing(sandbox):
    shop = sandbox.shopify
    reader = shop.add_access_token(["read_products", "read_inventory", "read_locations"])
    body = _graphql(sandbox, SET, {"input": {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": shop.inventory_item_id("MUG-001"), "locationId": MAIN, "quantity": 1, "changeFromQuantity": 120}]}},
        token=reader).json()

    assert body["data"] == {"inventorySetQuantities": None}
    (error,) = body["errors"]
    assert error["path"] == ["inventorySetQuantities"]
    assert error["message"] == "Access denied for inventorySetQuantities field. Required access: `write_inventory` access scope."
    assert error["extensions"] == {"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes",
                                   "requiredAccess": "`write_inventory` access scope."}
    assert shop.level("MUG-001", MAIN)["available"] == 120
    # What it may read, it reads.
    levels = _graphql(sandbox, "{ locations(first: 5) { nodes { id } } }", token=reader).json()
    assert "errors" not in levels


def test_a_write_scope_grants_its_read_scope(sandbox):
    writer = sandbox.shopify.add_access_token(["write_inventory"])
    query = """query($id: ID!) { inventoryItem(id: $id) { inventoryLevels(first: 2) { nodes { quantities(names: ["available"]) { quantity } } } } }"""
    body = _graphql(sandbox, query, {"id": sandbox.shopify.inventory_item_id("MUG-001")}, token=writer).json()
    assert "errors" not in body
    body = _graphql(sandbox, "{ orders(first: 1) { nodes { id } } }", token=writer).json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_orders_need_read_orders_on_graphql_and_rest(sandbox):
    shop = sandbox.shopify
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    stock_only = shop.add_access_token(["write_inventory", "read_products", "read_locations"])
    body = _graphql(sandbox, "{ orders(first: 5) { nodes { id } } }", token=stock_only).json()
    assert body["errors"][0]["extensions"]["requiredAccess"] == "`read_orders` access scope."
    rest = requests.get(f"{sandbox.url}/shopify/admin/api/2026-04/orders/{order['id']}.json",
                        headers={"X-Shopify-Access-Token": stock_only}, timeout=5)
    assert rest.status_code == 403
    assert rest.json() == {"errors": "[API] This action requires merchant approval for read_orders scope."}


def test_orders_older_than_60_days_need_read_all_orders(sandbox):
    shop = sandbox.shopify
    old = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], created_at="2026-08-01T10:00:00+00:00")
    recent = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    query = "{ orders(first: 10) { nodes { legacyResourceId } } }"
    names = [n["legacyResourceId"] for n in _graphql(sandbox, query).json()["data"]["orders"]["nodes"]]
    assert names == [str(recent["id"])]
    everything = shop.add_access_token([*shop.tokens["shpat_sandbox_token"], "read_all_orders"])
    names = [n["legacyResourceId"] for n in _graphql(sandbox, query, token=everything).json()["data"]["orders"]["nodes"]]
    assert names == [str(old["id"]), str(recent["id"])]


def test_tokens_are_made_and_listed_over_http(sandbox):
    made = requests.post(f"{sandbox.url}/shopify/_sandbox/access-tokens", json={"scopes": ["read_orders"]}, timeout=5)
    assert made.status_code == 201
    token = made.json()["access_token"]
    listed = requests.get(f"{sandbox.url}/shopify/admin/oauth/access_scopes.json",
                          headers={"X-Shopify-Access-Token": token}, timeout=5)
    assert listed.json() == {"access_scopes": [{"handle": "read_orders"}]}
    assert requests.get(f"{sandbox.url}/shopify/admin/oauth/access_scopes.json", timeout=5).status_code == 401


# --- paging ----------------------------------------------------------------------------------------


def test_an_order_updated_between_pages_comes_again_instead_of_being_skipped(sandbox):
    shop = sandbox.shopify
    orders = [shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}]) for _ in range(4)]
    query = """query($after: String) { orders(first: 2, after: $after, sortKey: UPDATED_AT) {
      nodes { legacyResourceId } pageInfo { hasNextPage endCursor } } }"""
    first = _graphql(sandbox, query).json()["data"]["orders"]
    assert [n["legacyResourceId"] for n in first["nodes"]] == [str(orders[0]["id"]), str(orders[1]["id"])]
    shop.update_order(orders[1]["id"], note="changed while we page")  # the row under the cursor moves to the end

    rest = _graphql(sandbox, query, {"after": first["pageInfo"]["endCursor"]}).json()["data"]["orders"]
    more = _graphql(sandbox, query, {"after": rest["pageInfo"]["endCursor"]}).json()["data"]["orders"]
    seen = [n["legacyResourceId"] for n in rest["nodes"] + more["nodes"]]
    assert seen == [str(orders[2]["id"]), str(orders[3]["id"]), str(orders[1]["id"])]  # none skipped, the moved one again
    assert not more["pageInfo"]["hasNextPage"]


def test_a_cursor_is_a_position_in_the_sort(sandbox):
    body = _graphql(sandbox, "{ locations(first: 1) { pageInfo { endCursor } } }").json()
    cursor = json.loads(base64.b64decode(body["data"]["locations"]["pageInfo"]["endCursor"]))
    assert cursor == {"last_id": 1, "last_value": 1}
    bad = _graphql(sandbox, '{ locations(first: 1, after: "not-a-cursor") { nodes { id } } }').json()
    assert "Invalid cursor" in bad["errors"][0]["message"]


# --- REST rate limit -------------------------------------------------------------------------------


def test_rest_calls_have_shopifys_leaky_bucket(sandbox):
    shop = sandbox.shopify
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    shop.configure(rest_bucket_size=3, rest_leak_rate=0.5)
    url = f"{sandbox.url}/shopify/admin/api/2026-04/orders/{order['id']}.json"
    headers = {"X-Shopify-Access-Token": "shpat_sandbox_token"}

    answers = [requests.get(url, headers=headers, timeout=5) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-Shopify-Shop-Api-Call-Limit"] for a in answers] == ["1/3", "2/3", "3/3", "3/3"]
    assert 0 < float(answers[3].headers["Retry-After"]) <= 2.0
    assert answers[3].json()["errors"].startswith("Exceeded 2 calls per second")
    assert shop.stats()["rest_throttled"] == 1
    # Another app installation (token) has its own bucket.
    other = shop.add_access_token(["read_orders"])
    assert requests.get(url, headers={"X-Shopify-Access-Token": other}, timeout=5).status_code == 200


def test_the_default_rest_bucket_is_40_leaking_2_a_second(sandbox):
    order = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    url = f"{sandbox.url}/shopify/admin/api/2026-04/orders/{order['id']}.json"
    answer = requests.get(url, headers={"X-Shopify-Access-Token": "shpat_sandbox_token"}, timeout=5)
    assert answer.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
    assert sandbox.shopify.rest_leak_rate == 2


# --- the HTTP server -------------------------------------------------------------------------------


def test_keep_alive_requests_are_answered_without_the_delayed_ack_stall(sandbox):
    # Headers and body in one write (and TCP_NODELAY): each answer leaves at once. In two writes the
    # body waited ~40 ms for the client's delayed ACK, so 50 requests took over 2 s.
    session = requests.Session()
    url = f"{sandbox.url}/shopify/_sandbox/stats"
    session.get(url, timeout=5)
    started = time.perf_counter()
    for _ in range(50):
        assert session.get(url, timeout=5).status_code == 200
    assert time.perf_counter() - started < 1.0


def test_the_shopify_sandbox_imports_nothing_of_the_product():
    import subprocess
    import sys

    code = ("import sys, integrations.sandbox.shopify, integrations.sandbox.server; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('integrations', 'mappings', "
            "'exceptions_queue', 'config', 'django') and not m.startswith('integrations.sandbox') and m != 'integrations'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"
