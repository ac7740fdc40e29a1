"""The sandbox Inventory Planner over HTTP: its headers, paging, validation and error shapes, the rate
limit knob, the demo seed and the admin endpoints tests and the file import use."""
import sys
import types

import pytest
import requests

KEY = {"Authorization": "sandbox-ip-key", "Account": "a1000"}


@pytest.fixture
def ip(sandbox):
    app = sandbox.server.apps["/inventory-planner"]
    app.url = f"{sandbox.url}/inventory-planner"
    return app


def _get(ip, path, headers=KEY, **params):
    return requests.get(f"{ip.url}/api/v1/{path}", headers=headers, params=params, timeout=5)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "sandbox-ip-key"}, {"Account": "a1000"},
                                     {"Authorization": "Bearer sandbox-ip-key", "Account": "a1000"},
                                     {"Authorization": "sandbox-ip-key", "Account": "a2"}])
def test_without_both_headers_right_it_answers_401(ip, headers):
    response = _get(ip, "purchase-orders", headers=headers)
    assert response.status_code == 401
    assert response.json()["result"]["status"] == "error"


def test_collections_are_paged_from_zero_with_meta(ip):
    for n in range(5):
        ip.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": n + 1}])
    body = _get(ip, "purchase-orders", page=1, limit=2).json()
    assert body["meta"] == {"name": "purchase-order", "display_name": "Purchase orders", "total": 5, "count": 2,
                            "limit": 2, "start": 2}
    assert [o["items"][0]["replenishment"] for o in body["purchase-orders"]] == [3, 4]
    assert _get(ip, "purchase-orders", limit=5000).status_code == 422


def test_filters_select_by_status_and_warehouse(ip):
    ip.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 1}])
    ip.add_purchase_order(vendor="Acme", warehouse="NORTH", status="open", items=[{"sku": "MUG-001", "replenishment": 1}])
    assert _get(ip, "purchase-orders", status_eqi="DRAFT").json()["meta"]["total"] == 1
    assert _get(ip, "purchase-orders", warehouse="NORTH").json()["purchase-orders"][0]["status"] == "open"


def test_unknown_ids_are_404_and_bad_patches_422_naming_the_field(ip):
    assert _get(ip, "purchase-orders/nope").status_code == 404
    po = ip.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 1}])
    url = f"{ip.url}/api/v1/purchase-orders/{po['id']}"
    bad = requests.patch(url, headers=KEY, json={"purchase-order": {"status": "shipped"}}, timeout=5)
    assert bad.status_code == 422 and "status" in bad.json()["result"]["message"]
    bad_item = requests.patch(url, headers=KEY, json={"purchase-order": {"items": [{"id": "999", "received": 1}]}},
                              timeout=5)
    assert bad_item.status_code == 422 and "items[0].id" in bad_item.json()["result"]["message"]
    assert requests.patch(url, headers=KEY, data="{", timeout=5).status_code == 400
    ok = requests.patch(url, headers=KEY, json={"purchase-order": {"status": "open", "extra_reference": "PO-1"}},
                        timeout=5)
    assert ok.json()["purchase-order"]["extra_reference"] == "PO-1"


def test_a_received_quantity_is_kept_with_its_history(ip):
    po = ip.add_purchase_order(vendor="Acme", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 10}])
    item = po["items"][0]["id"]
    requests.patch(f"{ip.url}/api/v1/purchase-orders/{po['id']}", headers=KEY,
                   json={"purchase-order": {"items": [{"id": item, "received": 4}]}}, timeout=5)
    [line] = ip.purchase_order(po["id"])["items"]
    assert line["received"] == 4 and line["received_history"][0]["value"] == 4


def test_creating_a_purchase_order_validates_its_lines(ip):
    url = f"{ip.url}/api/v1/purchase-orders"
    bad = requests.post(url, headers=KEY, json={"purchase-order": {"vendor": "Acme", "warehouse": "MAIN",
                                                                    "items": [{"sku": "MUG-001", "replenishment": 0}]}},
                        timeout=5)
    assert bad.status_code == 422 and "items[0].replenishment" in bad.json()["result"]["message"]
    made = requests.post(url, headers=KEY, json={"purchase-order": {"vendor": "Acme", "warehouse": "MAIN",
                                                                     "items": [{"sku": "MUG-001", "replenishment": 3}]}},
                         timeout=5)
    assert made.status_code == 201 and made.json()["purchase-order"]["status"] == "draft"


def test_the_rate_limit_knob_answers_429_with_retry_after(ip):
    requests.post(f"{ip.url}/_sandbox/config", json={"rate_limit": 1}, timeout=5)
    answers = [_get(ip, "variants") for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1


def test_the_demo_seed_has_variants_and_drafts_per_warehouse(ip):
    assert requests.post(f"{ip.url}/_sandbox/seed-demo", timeout=5).json()["variants"] == 12
    drafts = _get(ip, "purchase-orders", status="draft").json()["purchase-orders"]
    assert {o["warehouse"] for o in drafts} == {"MAIN", "NORTH"}
    mug = _get(ip, "variants", sku="MUG-001", warehouse="MAIN").json()["variants"][0]
    assert mug["lead_time"] == 14 and mug["replenishment"] > 0


def test_admin_endpoints_add_and_reset(ip):
    requests.post(f"{ip.url}/_sandbox/variants", json={"sku": "X-1", "warehouse": "MAIN"}, timeout=5)
    requests.post(f"{ip.url}/_sandbox/purchase-orders",
                  json={"vendor": "V", "warehouse": "MAIN", "items": [{"sku": "X-1", "replenishment": 2}]}, timeout=5)
    stats = requests.get(f"{ip.url}/_sandbox/stats", timeout=5).json()
    assert (stats["variants"], stats["purchase_orders"]) == (1, 1)
    requests.post(f"{ip.url}/_sandbox/reset", timeout=5)
    assert requests.get(f"{ip.url}/_sandbox/stats", timeout=5).json()["purchase_orders"] == 0


def test_the_file_import_is_handed_to_the_feeds_module_and_kept(ip, monkeypatch):
    feeds = types.ModuleType("integrations.sandbox.inventory_planner_feeds")
    feeds.import_feeds = lambda app, body: {"rows": 3, "asked": body}
    monkeypatch.setitem(sys.modules, "integrations.sandbox.inventory_planner_feeds", feeds)
    answer = requests.post(f"{ip.url}/_sandbox/import", json={"feed": "products"}, timeout=5)
    assert answer.json()["imported"] == {"rows": 3, "asked": {"feed": "products"}}
    assert requests.get(f"{ip.url}/_sandbox/imported", timeout=5).json()["imported"] == [
        {"rows": 3, "asked": {"feed": "products"}}]


def test_without_the_feeds_module_the_import_is_501(ip, monkeypatch):
    monkeypatch.setitem(sys.modules, "integrations.sandbox.inventory_planner_feeds", None)
    answer = requests.post(f"{ip.url}/_sandbox/import", json={}, timeout=5)
    assert answer.status_code == 501 and "file import not available" in answer.json()["result"]["message"]

