"""The Inventory Planner client against the sandbox over HTTP: its two headers, paging, refusals and
answers it cannot read (a clear error naming the field, never a KeyError)."""
import pytest
import requests

from integrations.connectors import connector_for
from integrations.connectors.base import NotFound, PermanentError, RateLimited
from integrations.connectors.inventory_planner import InventoryPlannerClient
from tests.factories import ConnectionFactory


@pytest.fixture
def planner(sandbox):
    return sandbox.server.apps["/inventory-planner"]


@pytest.fixture
def client(planner, sandbox, db):
    connection = ConnectionFactory(code="ip", kind="inventory_planner", name="Inventory Planner",
                                   base_url=f"{sandbox.url}/inventory-planner/api/v1",
                                   credentials={"api_key": "sandbox-ip-key"},
                                   settings={"account_id": "a1000", "backoff_base": 0.01, "backoff_max": 0.05})
    return connector_for(connection)


def test_every_request_carries_the_key_bare_and_the_account(client, planner, monkeypatch):
    seen = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):
        response = original(self, method, url, **kwargs)
        seen.append(response.request.headers)
        return response

    monkeypatch.setattr(requests.Session, "request", spy)
    planner.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 5}])
    list(client.list_purchase_orders(status="draft"))
    assert seen[0]["Authorization"] == "sandbox-ip-key"  # no "Bearer"
    assert seen[0]["Account"] == "a1000"


def test_drafts_are_read_across_pages(client, planner):
    for n in range(7):
        planner.add_purchase_order(vendor=f"Vendor {n}", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": n + 1}])
    planner.add_purchase_order(vendor="Sent one", warehouse="MAIN", status="open",
                               items=[{"sku": "MUG-001", "replenishment": 1}])
    orders = list(client.list_purchase_orders(status="draft", limit=3))
    assert [o.vendor for o in orders] == [f"Vendor {n}" for n in range(7)]
    assert [o.items[0].replenishment for o in orders] == [1, 2, 3, 4, 5, 6, 7]
    page = client.purchase_orders_page(status="draft", page=2, limit=3)
    assert (page.total, len(page.rows), page.more) == (7, 1, False)


def test_without_the_account_header_the_planner_answers_401_and_the_client_says_so(planner, sandbox):
    bare = requests.get(f"{sandbox.url}/inventory-planner/api/v1/purchase-orders",
                        headers={"Authorization": "sandbox-ip-key"}, timeout=5)
    assert bare.status_code == 401
    assert "Account" in bare.json()["result"]["message"]
    wrong = InventoryPlannerClient(f"{sandbox.url}/inventory-planner/api/v1", "sandbox-ip-key", "a9999")
    with pytest.raises(PermanentError) as refused:
        wrong.get_purchase_order("1")
    assert refused.value.status == 401 and refused.value.code == "auth"


def test_an_unknown_purchase_order_is_not_found(client):
    with pytest.raises(NotFound):
        client.get_purchase_order("ffffffffffffffffffffffff")


def test_update_marks_the_order_open_with_the_erp_number(client, planner):
    po = planner.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 5}])
    updated = client.update_purchase_order(po["id"], status="open", extra_reference="PO-000042")
    assert (updated.status, updated.extra_reference) == ("open", "PO-000042")
    assert planner.purchase_order(po["id"])["extra_reference"] == "PO-000042"


def test_variants_carry_the_replenishment_figures(client, planner):
    planner.add_variant("MUG-001", warehouse="MAIN", lead_time=14, review_period=45, replenishment=72, oos=3,
                        vendor="Enamel & Co", cost_price="2.75")
    [variant] = list(client.list_variants(skus=["MUG-001"]))
    assert (variant.lead_time, variant.review_period, variant.replenishment, variant.oos) == (14, 45, 72, 3)
    assert str(variant.vendors[0].cost_price) == "2.75"
    assert variant.vendors[0].vendor == "Enamel & Co"  # the name people know, not the lower-case vendor id


@pytest.mark.parametrize("body, field", [
    ('{"meta": {"total": 1}, "purchase-orders": [{"id": "1", "status": "draft", "warehouse": "MAIN", '
     '"items": [{"id": "9", "sku": "MUG-001", "replenishment": "lots"}]}]}', "purchase-orders[0].items[0].replenishment"),
    ('{"meta": {"total": 1}, "purchase-orders": [{"status": "draft", "warehouse": "MAIN"}]}', "purchase-orders[0].id"),
    ('{"meta": {"total": 1}, "purchase-orders": {"id": "1"}}', "purchase-orders"),
    ('{"meta": {"total": 1}, "purchase-orders": [{"id": "1", "status": "draft", "warehouse": "MAIN", '
     '"items": [{"id": "9", "sku": "MUG-001", "replenishment": 2.5}]}]}', "whole number"),
])
def test_a_malformed_answer_is_a_clear_error_naming_the_field(client, planner, body, field):
    planner.fail_next.append((200, body))
    with pytest.raises(PermanentError) as error:
        list(client.list_purchase_orders(status="draft"))
    assert field in str(error.value)
    assert error.value.code == "malformed_answer"


def test_an_answer_that_is_not_json_is_a_clear_error(client, planner):
    planner.fail_next.append((200, "<html>maintenance</html>"))
    with pytest.raises(PermanentError, match="not JSON"):
        client.get_purchase_order("1")


def test_a_rate_limit_is_waited_out(client, planner):
    planner.fail_next.append((429, '{"result": {"status": "error", "message": "Too many requests"}}'))
    po = planner.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 5}])
    assert client.get_purchase_order(po["id"]).vendor == "Acme"
    assert client.stats.rate_limited == 1


def test_429_carries_retry_after(planner, sandbox):
    planner.rate_limiter.limit = 1
    url = f"{sandbox.url}/inventory-planner/api/v1/variants"
    headers = {"Authorization": "sandbox-ip-key", "Account": "a1000"}
    answers = [requests.get(url, headers=headers, timeout=5) for _ in range(3)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["result"]["status"] == "error"


def test_a_rate_limit_that_lasts_is_a_transient_error_after_the_attempts(planner, sandbox):
    planner.fail_next.extend([(429, '{"result": {"status": "error", "message": "slow down"}}')] * 2)
    one = InventoryPlannerClient(f"{sandbox.url}/inventory-planner/api/v1", "sandbox-ip-key", "a1000",
                                 max_attempts=2, sleep=lambda s: None)
    with pytest.raises(RateLimited):
        one.get_variant("x")
