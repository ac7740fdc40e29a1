"""The REST ERP client against the sandbox ERP over real HTTP: lookups, writes, retries, typed errors."""
import time

import pytest
import requests

from integrations.connectors.base import (
    ErpSalesOrderLine,
    ErpSalesOrderRequest,
    PermanentError,
    TransientError,
)
from integrations.connectors.erp import RestErpClient
from integrations.sandbox.server import RateLimiter


@pytest.fixture
def erp(sandbox):
    for code in ("TEE-BLK-M", "MUG-001", "SHIPPING", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN", "Main warehouse")
    sandbox.erp.add_depot("NORTH")
    return sandbox.erp


@pytest.fixture
def client(erp):
    return RestErpClient.from_settings()


def _order(customer_id, reference="shopify:1001", currency="GBP", lines=None, total=None):
    lines = lines or (
        ErpSalesOrderLine("TEE-BLK-M", "T-shirt", 2, "20.00", "40.00", "T1", "8.00"),
        ErpSalesOrderLine("DISCOUNT", "Discount", 1, "-5.00", "-5.00", "T1", "0.00", kind="discount"),
        ErpSalesOrderLine("SHIPPING", "Shipping", 1, "4.99", "4.99", "T1", "1.00", kind="shipping"),
    )
    return ErpSalesOrderRequest(external_reference=reference, customer_id=customer_id, currency=currency,
                                depot="MAIN", order_date="2024-05-01", lines=tuple(lines),
                                total=total or "39.99", customer_reference="#1001")


def _customer(client):
    return client.create_customer(email="zoe@example.com", name="Zoë Müller", external_reference="shopify:customer:7",
                                  country="GB")


def test_a_created_customer_is_found_by_email_and_by_reference(client, erp):
    created = _customer(client)
    assert [c.id for c in client.find_customers(email="ZOE@example.com")] == [created.id]
    [found] = client.find_customers(external_reference="shopify:customer:7")
    assert (found.id, found.name, found.email) == (created.id, "Zoë Müller", "zoe@example.com")
    assert client.find_customers(email="nobody@example.com") == []
    assert len(erp.customers) == 1


def test_a_second_customer_with_the_same_reference_is_a_conflict(client, erp):
    first = _customer(client)
    with pytest.raises(PermanentError) as raised:
        _customer(client)
    assert raised.value.status == 409 and raised.value.body["existing_id"] == first.id
    assert len(erp.customers) == 1


def test_a_sales_order_is_created_with_its_lines_and_found_by_external_reference(client, erp):
    customer = _customer(client)
    created = client.create_sales_order(_order(customer.id))
    assert created.id.startswith("SO-") and created.total == "39.99"
    assert client.find_sales_order("shopify:1001") == created
    assert client.find_sales_order("shopify:nope") is None
    [stored] = erp.sales_orders
    assert stored["customer_id"] == customer.id and stored["depot"] == "MAIN"
    assert [(l["kind"], l["item_code"], l["line_total"]) for l in stored["lines"]] == [
        ("item", "TEE-BLK-M", "40.00"), ("discount", "DISCOUNT", "-5.00"), ("shipping", "SHIPPING", "4.99"),
    ]


def test_posting_the_same_external_reference_twice_returns_the_one_existing_order(client, erp):
    customer = _customer(client)
    first = client.create_sales_order(_order(customer.id))
    # Different lines, same external reference: the ERP answers 409 and the client returns the original.
    again = client.create_sales_order(_order(customer.id, lines=(
        ErpSalesOrderLine("MUG-001", "Mug", 1, "9.00", "9.00", "T1", "1.50"),), total="9.00"))
    replayed = client.create_sales_order(_order(customer.id))  # same key and body: idempotent replay
    assert again.id == first.id == replayed.id
    assert len(erp.sales_orders) == 1


def test_the_sandbox_answers_409_with_the_existing_id_for_a_duplicate_reference(sandbox, client, erp):
    customer = _customer(client)
    first = client.create_sales_order(_order(customer.id))
    body = {"external_reference": "shopify:1001", "customer_id": customer.id, "currency": "GBP", "depot": "MAIN",
            "total": "9.00", "lines": [{"item_code": "MUG-001", "quantity": 1, "unit_price": "9.00",
                                        "line_total": "9.00", "kind": "item"}]}
    response = requests.post(f"{sandbox.url}/erp/api/v1/sales-orders", json=body, timeout=5,
                             headers={"Authorization": "Bearer sandbox-erp-key"})
    assert response.status_code == 409
    assert response.json() == {**response.json(), "error": "duplicate_external_reference", "existing_id": first.id}


def test_a_429_with_retry_after_is_waited_out_and_the_call_succeeds(client, erp):
    erp.rate_limiter = RateLimiter(2)
    slept = []
    client.sleep = lambda seconds: (slept.append(seconds), time.sleep(seconds))
    # Five quick calls span at most two one-second windows (room for four): one must be refused.
    depots = [client.list_depots() for _ in range(5)]
    assert depots == [["MAIN", "NORTH"]] * 5
    assert client.stats.rate_limited >= 1 and erp.rate_limited_count >= 1
    assert slept and all(s >= 1 for s in slept)  # the sandbox's Retry-After, whole seconds


def test_record_locks_are_retried_until_the_write_goes_through(client, erp):
    customer = _customer(client)
    erp.lock_probability = 0.5
    erp.random.seed(3)
    for n in range(4):
        client.create_sales_order(_order(customer.id, reference=f"shopify:{2000 + n}"))
    assert len(erp.sales_orders) == 4
    assert erp.locked_count >= 1 and client.stats.transient_retries == erp.locked_count


def test_an_outage_raises_a_transient_error_after_max_attempts(client, erp):
    erp.outage = True
    client.max_attempts = 3
    with pytest.raises(TransientError) as raised:
        client.list_depots()
    assert raised.value.status == 503
    assert client.stats.requests == 3


def test_an_unknown_item_is_a_permanent_error_naming_the_item(client, erp):
    customer = _customer(client)
    order = _order(customer.id, lines=(ErpSalesOrderLine("TEE-RED-M", "Red tee", 1, "20.00", "20.00", "T1"),),
                   total="20.00")
    before = client.stats.requests
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(order)
    assert raised.value.code == "validation_failed" and raised.value.status == 422
    assert "lines[0].item_code: Item TEE-RED-M does not exist" in str(raised.value)
    assert client.stats.requests == before + 1  # not retried
    assert erp.sales_orders == []


def test_amounts_with_more_decimals_than_the_currency_are_rejected(client, erp):
    customer = _customer(client)
    three_decimals = _order(customer.id, lines=(ErpSalesOrderLine("MUG-001", "Mug", 1, "9.005", "9.005", "T1"),),
                            total="9.005")
    with pytest.raises(PermanentError, match="more than 2 decimals allowed for GBP"):
        client.create_sales_order(three_decimals)
    yen_cents = _order(customer.id, currency="JPY", lines=(ErpSalesOrderLine("MUG-001", "Mug", 1, "900.5", "900.5"),),
                       total="900.5")
    with pytest.raises(PermanentError, match="more than 0 decimals allowed for JPY"):
        client.create_sales_order(yen_cents)
    assert client.create_sales_order(_order(customer.id, reference="jp:1", currency="JPY", lines=(
        ErpSalesOrderLine("MUG-001", "Mug", 1, "900", "900"),), total="900")).total == "900"
    assert len(erp.sales_orders) == 1


def test_a_total_that_is_not_the_sum_of_the_lines_is_rejected(client, erp):
    customer = _customer(client)
    with pytest.raises(PermanentError, match="does not equal the sum of the line totals 39.99"):
        client.create_sales_order(_order(customer.id, total="40.00"))
    assert erp.sales_orders == []


def test_a_wrong_api_key_is_a_permanent_auth_error(erp, settings):
    client = RestErpClient.from_settings(api_key="wrong")
    with pytest.raises(PermanentError) as raised:
        client.list_depots()
    assert raised.value.code == "auth" and raised.value.status == 401


def test_items_stock_and_depots_are_read_page_by_page(client, erp, monkeypatch):
    monkeypatch.setattr("integrations.connectors.erp.PAGE_SIZE", 2)
    erp.add_item("OLD-1", active=False)
    erp.set_stock("TEE-BLK-M", "MAIN", on_hand=10, allocated=2, reserved=1, in_transit=4, damaged=1)
    erp.set_stock("MUG-001", "MAIN", on_hand=3)
    erp.set_stock("MUG-001", "NORTH", on_hand=7)
    assert [i["code"] for i in client.list_items()] == ["DISCOUNT", "MUG-001", "OLD-1", "SHIPPING", "TEE-BLK-M"]
    assert client.item_exists("MUG-001") and not client.item_exists("OLD-1") and not client.item_exists("NOPE/1")
    main = {r["item_code"]: r for r in client.get_stock(depot="MAIN")}
    assert main["TEE-BLK-M"]["on_hand"] == 10 and main["TEE-BLK-M"]["states"]["in_transit"] == 4
    assert main["TEE-BLK-M"]["states"]["damaged"] == 1 and main["TEE-BLK-M"]["states"]["quality_inspection"] == 0
    assert len(client.get_stock()) == 3


def test_admin_endpoints_seed_configure_and_count(sandbox, erp):
    base = f"{sandbox.url}/erp/_sandbox"
    seeded = requests.post(f"{base}/seed-demo", timeout=5).json()
    assert "HOODIE-GRY-L" in seeded["items"] and seeded["depots"] == ["MAIN", "NORTH"]
    assert requests.post(f"{base}/config", json={"outage": True}, timeout=5).json()["outage"] is True
    assert requests.get(f"{sandbox.url}/erp/api/v1/depots", timeout=5).status_code == 503
    requests.post(f"{base}/config", json={"outage": False}, timeout=5)
    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["orders"] == 0 and stats["requests"] == 1 and stats["items"] == 9
    requests.post(f"{base}/reset", timeout=5)
    assert erp.items == {}


def test_worker_processes_share_one_pacing_budget(tmp_path):
    """Each SharedPacer opens the slot file on its own, as each q2 worker process does."""
    from integrations.connectors.base import SharedPacer

    now = [100.0]
    first, second = (SharedPacer(50, tmp_path / "erp.slot", clock=lambda: now[0]) for _ in range(2))
    waits = []
    for pacer in (first, second, first, second):
        pacer.wait(waits.append)
    assert waits == pytest.approx([0.02, 0.04, 0.06])  # the first call goes at once; then one slot each
    now[0] = 101.0  # both workers were busy writing to the database for a second
    waits.clear()
    second.wait(waits.append)
    assert waits == []  # the unused slots are gone, not saved up into a burst


def test_paced_workers_together_stay_under_the_erp_limit(tmp_path, client, erp):
    from concurrent.futures import ThreadPoolExecutor

    from integrations.connectors.base import SharedPacer

    erp.rate_limiter = RateLimiter(10)
    clients = [RestErpClient.from_settings(pacer=SharedPacer(9.8, tmp_path / "erp.slot")) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda c: [c.list_depots() for _ in range(8)], clients))
    assert results == [[["MAIN", "NORTH"]] * 8] * 3
    assert erp.rate_limited_count == 0 and sum(c.stats.rate_limited for c in clients) == 0
