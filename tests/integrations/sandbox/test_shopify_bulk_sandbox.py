"""The sandbox Shopify's bulk query operations behave like Shopify's: CREATED, RUNNING, then
COMPLETED with a url serving JSONL in which nested connections are lines naming their parent
(`__parentId`); one bulk query per app at a time; queries Shopify refuses are refused."""
import json

import requests

from integrations.connectors.shopify.bulk import POLL, RUN_QUERY

TOKEN = "shpat_sandbox_token"


def _graphql(sandbox, query, variables=None, token=TOKEN):
    response = requests.post(f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json", timeout=10,
                             json={"query": query, "variables": variables or {}},
                             headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 200, response.text
    return response.json()


ORDERS = """{ orders(query: "financial_status:paid") { edges { node { id name
  lineItems { edges { node { id sku quantity } } } } } } }"""


def _run(sandbox, query=ORDERS, token=TOKEN):
    return _graphql(sandbox, RUN_QUERY, {"query": query}, token)["data"]["bulkOperationRunQuery"]


def _poll(sandbox, operation_id, token=TOKEN):
    return _graphql(sandbox, POLL, {"id": operation_id}, token)["data"]["bulkOperation"]


def test_a_bulk_query_runs_then_completes_with_a_jsonl_of_parents_and_children(sandbox):
    shop = sandbox.shopify
    first = shop.create_order(line_items=[{"sku": "TEE-BLK-S", "quantity": 2}, {"sku": "MUG-001", "quantity": 1}],
                              financial_status="paid")
    shop.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 1}])  # pending: not matched

    started = _run(sandbox)
    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    operation_id = started["bulkOperation"]["id"]
    assert _poll(sandbox, operation_id)["status"] == "RUNNING"
    done = _poll(sandbox, operation_id)
    assert done["status"] == "COMPLETED"
    assert done["objectCount"] == "3" and done["rootObjectCount"] == "1"

    body = requests.get(done["url"], timeout=10)  # a signed link: no access token needed
    assert body.status_code == 200
    lines = [json.loads(line) for line in body.text.splitlines()]
    assert lines[0] == {"id": first["admin_graphql_api_id"], "name": first["name"]}
    assert [(line["sku"], line["quantity"], line["__parentId"]) for line in lines[1:]] == [
        ("TEE-BLK-S", 2, first["admin_graphql_api_id"]), ("MUG-001", 1, first["admin_graphql_api_id"])]


def test_a_second_bulk_query_while_one_runs_gets_shopifys_user_error(sandbox):
    operation_id = _run(sandbox)["bulkOperation"]["id"]
    second = _run(sandbox)
    assert second["bulkOperation"] is None
    assert second["userErrors"] == [{"field": None, "code": "OPERATION_IN_PROGRESS", "message":
                                     f"A bulk query operation for this app and shop is already in progress: {operation_id}."}]
    _poll(sandbox, operation_id)
    _poll(sandbox, operation_id)
    assert _run(sandbox)["userErrors"] == []  # finished: the next one may start


def test_a_query_that_finds_nothing_completes_without_a_url(sandbox):
    operation_id = _run(sandbox)["bulkOperation"]["id"]
    _poll(sandbox, operation_id)
    done = _poll(sandbox, operation_id)
    assert (done["status"], done["url"], done["objectCount"]) == ("COMPLETED", None, "0")


def test_queries_shopify_refuses_in_bulk_are_refused(sandbox):
    no_connection = _run(sandbox, '{ shop { name } }')
    assert no_connection["userErrors"][0]["code"] == "INVALID"
    assert "at least one connection" in no_connection["userErrors"][0]["message"]
    in_list = _run(sandbox, "{ orders { edges { node { id refunds { refundLineItems { nodes { quantity } } } } } } }")
    assert "connection field within a list field" in in_list["userErrors"][0]["message"]
    invalid = _run(sandbox, "{ orders { edges { node { id totalPrice2 } } } }")
    assert "totalPrice2" in invalid["userErrors"][0]["message"]


def test_the_result_is_read_with_the_apps_scopes(sandbox):
    shop = sandbox.shopify
    shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")
    token = shop.add_access_token(["read_products"])
    operation_id = _run(sandbox, token=token)["bulkOperation"]["id"]
    _poll(sandbox, operation_id, token)
    done = _poll(sandbox, operation_id, token)
    assert (done["status"], done["errorCode"], done["url"]) == ("FAILED", "ACCESS_DENIED", None)


def test_the_result_of_an_unknown_or_unfinished_operation_is_not_served(sandbox):
    operation_id = _run(sandbox)["bulkOperation"]["id"]
    number = operation_id.rsplit("/", 1)[-1]
    assert requests.get(f"{sandbox.url}/shopify/_bulk/{number}.jsonl", timeout=10).status_code == 404
    assert _poll(sandbox, operation_id, token=sandbox.shopify.add_access_token(["read_orders"])) is None
