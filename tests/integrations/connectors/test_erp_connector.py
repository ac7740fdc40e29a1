"""The REST ERP client against the sandbox ERP over real HTTP: lookups, writes, retries, typed errors."""
import time
from dataclasses import replace
from decimal import Decimal

import pytest
import requests

from integrations.connectors.base import (
    AmbiguousCustomer,
    Conflict,
    ErpSalesOrderLine,
    ErpSalesOrderRequest,
    NotFound,
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


def test_match_or_create_creates_once_then_matches_by_reference_or_email_in_one_request(client, erp):
    before = erp.requests_count
    created, matched_on = client.match_or_create_customer(email="zoe@example.com", name="Zoë",
                                                          external_reference="shopify:customer:7", country="GB")
    assert matched_on == "" and len(erp.customers) == 1
    again, matched_on = client.match_or_create_customer(email="zoe@example.com", name="Zoë",
                                                        external_reference="shopify:customer:7")
    assert (again.id, matched_on) == (created.id, "external_reference")
    by_email, matched_on = client.match_or_create_customer(email="ZOE@example.com", name="Zoë",
                                                           external_reference="commercetools:customer:1")
    assert (by_email.id, matched_on) == (created.id, "email")
    assert len(erp.customers) == 1 and erp.requests_count - before == 3
    assert erp.requests_by_kind["customer_match_or_create"] == 3


def test_match_or_create_names_every_candidate_when_an_email_matches_several(client, erp):
    a = erp.customers_add(email="cat@example.com", name="Cat A")
    b = erp.customers_add(email="cat@example.com", name="Cat B")
    with pytest.raises(AmbiguousCustomer) as raised:
        client.match_or_create_customer(email="cat@example.com", name="Cat", external_reference="shopify:customer:9")
    assert sorted(c.id for c in raised.value.candidates) == sorted([a["id"], b["id"]])
    assert len(erp.customers) == 2


def test_the_sandbox_refuses_a_match_on_field_it_does_not_know(sandbox, erp):
    response = requests.post(f"{sandbox.url}/erp/api/v1/customers", timeout=5,
                             headers={"Authorization": "Bearer sandbox-erp-key"},
                             json={"email": "a@example.com", "name": "A", "match_on": ["surname"]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "match_on"
    assert erp.customers == []


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
    assert again.already_existed and not first.already_existed  # the flow links it, books nothing
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
    assert stats["orders"] == 0 and stats["requests"] == 1 and stats["items"] == 13
    assert {"DUTIES", "TIPS", "GIFT-CARD-LIABILITY", "CUSTOM", "SHIPPING", "DISCOUNT"} <= set(seeded["items"])
    assert not any(code == "DUTIES" for code, _ in erp.stock)  # charges, not goods: no stock kept
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


# --- totals: the ERP books its own figures ------------------------------------------------------


def _taxed(order, **overrides):
    """The order with the totals a current client sends: 9.00 tax on 39.99 net."""
    return replace(order, **{"tax_total": "9.00", "gross_total": "48.99", **overrides})


def test_the_erp_books_net_tax_and_gross_totals_and_reports_them_back(client, erp):
    customer = _customer(client)
    lines = tuple(replace(line, tax_rate="0.2") for line in _order(customer.id).lines)
    created = client.create_sales_order(_taxed(_order(customer.id, lines=lines)))
    assert (created.total, created.tax_total, created.gross_total, created.status) == ("39.99", "9.00", "48.99", "open")
    assert client.find_sales_order("shopify:1001") == created == client.get_sales_order(created.id)
    [stored] = erp.sales_orders
    assert (stored["net_total"], stored["tax_total"], stored["gross_total"]) == ("39.99", "9.00", "48.99")
    assert [line["tax_rate"] for line in stored["lines"]] == ["0.2", "0.2", "0.2"]


def test_an_order_with_tax_included_prices_is_booked_at_its_total(client, erp):
    customer = _customer(client)
    mug = ErpSalesOrderLine("MUG-001", "Mug", 1, "12.00", "12.00", "T1", "2.00", tax_rate="0.2")
    order = _order(customer.id, lines=(mug,), total="12.00")
    created = client.create_sales_order(replace(order, prices_include_tax=True, tax_total="2.00", gross_total="12.00"))
    assert (created.total, created.tax_total, created.gross_total) == ("12.00", "2.00", "12.00")
    assert erp.sales_orders[0]["net_total"] == "10.00"


def test_a_tax_total_that_is_not_the_sum_of_the_line_taxes_is_rejected_naming_the_field(client, erp):
    customer = _customer(client)
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(_taxed(_order(customer.id), tax_total="8.00", gross_total="47.99"))
    assert raised.value.status == 422
    assert "tax_total: tax_total 8.00 does not equal the sum of the line tax amounts 9.00" in str(raised.value)
    assert erp.sales_orders == []


def test_a_gross_total_that_is_not_total_plus_tax_is_rejected_naming_the_field(client, erp):
    customer = _customer(client)
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(_taxed(_order(customer.id), gross_total="39.99"))
    assert "gross_total: gross_total 39.99 does not equal total + tax_total 48.99" in str(raised.value)
    inclusive = replace(_order(customer.id), prices_include_tax=True, tax_total="9.00", gross_total="48.99")
    with pytest.raises(PermanentError, match="gross_total 48.99 does not equal the total .prices include tax. 39.99"):
        client.create_sales_order(inclusive)
    assert erp.sales_orders == []


def test_an_order_without_tax_and_gross_totals_is_still_booked_from_its_lines(sandbox, client, erp):
    customer = _customer(client)
    body = {"external_reference": "old:1", "customer_id": customer.id, "currency": "GBP", "depot": "MAIN",
            "total": "9", "lines": [{"item_code": "MUG-001", "quantity": 1, "unit_price": "9",
                                     "line_total": "9", "tax_amount": "1.80"}]}
    response = requests.post(f"{sandbox.url}/erp/api/v1/sales-orders", json=body, timeout=5,
                             headers={"Authorization": "Bearer sandbox-erp-key"})
    assert response.status_code == 201
    booked = response.json()
    assert (booked["total"], booked["tax_total"], booked["gross_total"]) == ("9.00", "1.80", "10.80")


def test_the_gross_skew_knob_makes_the_erp_report_a_different_gross_total(sandbox, client, erp):
    customer = _customer(client)
    erp.gross_skew = Decimal("0.01")
    created = client.create_sales_order(_taxed(_order(customer.id)))
    assert (created.total, created.gross_total) == ("39.99", "49.00")  # the client said 48.99
    config = requests.post(f"{sandbox.url}/erp/_sandbox/config", json={"gross_skew": "-0.02"}, timeout=5).json()
    assert config["gross_skew"] == "-0.02"
    assert client.create_sales_order(_taxed(_order(customer.id, reference="shopify:1002"))).gross_total == "48.97"


def test_duty_tip_gift_card_and_rounding_lines_are_booked(client, erp):
    customer = _customer(client)
    for code in ("DUTIES", "TIPS", "GIFT-CARD-LIABILITY", "CUSTOM"):
        erp.add_item(code)
    lines = (
        ErpSalesOrderLine("TEE-BLK-M", "T-shirt", 1, "20.00", "20.00", "T1", "4.00", tax_rate="0.2"),
        ErpSalesOrderLine("DUTIES", "Import duties", 1, "3.10", "3.10", kind="duty"),
        ErpSalesOrderLine("TIPS", "Tip", 1, "2.00", "2.00", kind="tip"),
        ErpSalesOrderLine("GIFT-CARD-LIABILITY", "Gift card", 1, "25.00", "25.00", kind="gift_card"),
        ErpSalesOrderLine("CUSTOM", "Cash rounding", 1, "-0.02", "-0.02", kind="rounding"),
    )
    created = client.create_sales_order(replace(_order(customer.id, lines=lines, total="50.08"), tax_total="4.00",
                                                gross_total="54.08"))
    assert created.gross_total == "54.08"
    assert [line["kind"] for line in erp.sales_orders[0]["lines"]] == ["item", "duty", "tip", "gift_card", "rounding"]


def test_an_unknown_line_kind_and_a_percentage_tax_rate_are_rejected(client, erp):
    customer = _customer(client)
    order = _order(customer.id, lines=(ErpSalesOrderLine("MUG-001", "Mug", 1, "9.00", "9.00", tax_rate="20",
                                                         kind="fee"),), total="9.00")
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(order)
    assert "lines[0].kind must be one of item, shipping, discount, duty, tip, gift_card, rounding" in str(raised.value)
    assert "lines[0].tax_rate '20' must be a decimal fraction" in str(raised.value)


# --- cancel --------------------------------------------------------------------------------------


def test_an_open_order_is_cancelled_and_stays_listed_as_cancelled(client, erp):
    customer = _customer(client)
    created = client.create_sales_order(_taxed(_order(customer.id)))
    cancelled = client.cancel_sales_order(created.id, reason="customer changed their mind")
    assert (cancelled.id, cancelled.status, cancelled.gross_total) == (created.id, "cancelled", "48.99")
    assert client.find_sales_order("shopify:1001").status == "cancelled"
    [stored] = erp.sales_orders
    assert stored["status"] == "cancelled" and stored["cancel_reason"] == "customer changed their mind"


def test_cancelling_a_cancelled_order_again_changes_nothing(client, erp):
    customer = _customer(client)
    created = client.create_sales_order(_order(customer.id))
    client.cancel_sales_order(created.id, reason="first")
    before = erp.sales_order(created.id)
    assert client.cancel_sales_order(created.id, reason="second").status == "cancelled"
    assert erp.sales_order(created.id) == before  # reason and time of the first cancel kept


def test_a_dispatched_order_cannot_be_cancelled(sandbox, client, erp):
    customer = _customer(client)
    shipped = client.create_sales_order(_order(customer.id))
    erp.dispatch_order(shipped.id)
    with pytest.raises(Conflict) as raised:
        client.cancel_sales_order(shipped.id)
    assert raised.value.code == "already_dispatched" and raised.value.status == 409
    assert erp.sales_order(shipped.id)["status"] == "dispatched"
    part = client.create_sales_order(_order(customer.id, reference="shopify:1002"))
    response = requests.post(f"{sandbox.url}/erp/_sandbox/sales-orders/{part.id}/dispatch", json={"partly": True},
                             timeout=5)
    assert response.json()["status"] == "partly_dispatched"
    with pytest.raises(Conflict, match="partly_dispatched and can no longer be cancelled"):
        client.cancel_sales_order(part.id)


def test_cancelling_an_unknown_order_is_not_found(client, erp):
    with pytest.raises(NotFound):
        client.cancel_sales_order("SO-999999")


def test_a_cancelled_orders_external_reference_stays_taken(client, erp):
    customer = _customer(client)
    first = client.create_sales_order(_order(customer.id))
    client.cancel_sales_order(first.id)
    again = client.create_sales_order(_order(customer.id, lines=(
        ErpSalesOrderLine("MUG-001", "Mug", 1, "9.00", "9.00", "T1"),), total="9.00"))
    assert (again.id, again.status) == (first.id, "cancelled")
    assert len(erp.sales_orders) == 1


def test_a_cancel_goes_through_the_erps_record_locks(sandbox, client, erp):
    customer = _customer(client)
    created = client.create_sales_order(_order(customer.id))
    erp.lock_probability = 1.0
    response = requests.post(f"{sandbox.url}/erp/api/v1/sales-orders/{created.id}/cancel", json={}, timeout=5,
                             headers={"Authorization": "Bearer sandbox-erp-key"})
    assert response.status_code == 423 and erp.sales_order(created.id)["status"] == "open"
    erp.lock_probability = 0.5
    erp.random.seed(1)
    assert client.cancel_sales_order(created.id).status == "cancelled"


# --- customers -----------------------------------------------------------------------------------


def test_a_customer_without_email_or_phone_is_rejected(client, erp):
    with pytest.raises(PermanentError) as raised:
        client.create_customer(email="", name="Zoë Müller", external_reference="shopify:customer:8")
    assert raised.value.status == 422 and "email: email or phone is required" in str(raised.value)
    assert erp.customers == []


def test_a_customer_with_only_a_phone_is_opened_and_found_by_phone(client, erp):
    created = client.create_customer(email="", name="Zoë Müller", external_reference="shopify:customer:8",
                                     phone="+44 20 7946 0958")
    assert created.phone == "+44 20 7946 0958" and created.email == ""
    assert [c.id for c in client.find_customers(phone="+44-20-7946-0958")] == [created.id]
    assert client.find_customers(phone="+44 20 7946 0000") == [] == client.find_customers(phone="none given")
    assert erp.customers[0]["account_type"] == "customer"


def test_a_guest_account_needs_neither_email_nor_phone(client, erp):
    guest = client.create_customer(email="", name="Web guest orders", external_reference="shopify:guest", guest=True)
    assert guest.name == "Web guest orders"
    [stored] = erp.customers
    assert (stored["id"], stored["account_type"], stored["email"], stored["phone"]) == (guest.id, "guest", "", "")


def test_match_or_create_on_phone_matches_the_same_number_written_another_way(client, erp):
    created = client.create_customer(email="", name="Zoë Müller", external_reference="shopify:customer:8",
                                     phone="+44 20 7946 0958")
    matched, matched_on = client.match_or_create_customer(
        email="", name="Zoë", external_reference="shopify:customer:80", phone="+44-20-7946-0958",
        match_on=("phone",))
    assert (matched.id, matched_on) == (created.id, "phone") and len(erp.customers) == 1


def test_get_customer_returns_the_account_or_none_when_unknown(client, erp):
    created = _customer(client)
    assert client.get_customer(created.id) == created
    assert client.get_customer("C-999999") is None


def test_a_batch_books_each_order_once_and_a_bad_one_fails_only_itself(client, erp):
    customer = _customer(client)
    first = client.create_sales_order(_order(customer.id, reference="shopify:1"))
    bad = _order(customer.id, reference="shopify:3", lines=(
        ErpSalesOrderLine("NOPE", "Unknown", 1, "9.00", "9.00", "T1", "1.50"),), total="9.00")
    batch = [_order(customer.id, reference="shopify:1"), _order(customer.id, reference="shopify:2"), bad]
    before = erp.requests_count
    again, created, refused = client.create_sales_orders(batch)
    assert erp.requests_count - before == 1  # one request for the three
    assert again.id == first.id and again.already_existed
    assert created.id.startswith("SO-") and not created.already_existed and created.gross_total
    assert isinstance(refused, PermanentError) and "NOPE" in str(refused)
    assert sorted(o["external_reference"] for o in erp.sales_orders) == ["shopify:1", "shopify:2"]
    replayed = client.create_sales_orders(batch[:2])  # a retried batch books nothing twice
    assert [o.id for o in replayed] == [first.id, created.id] and len(erp.sales_orders) == 2


def test_the_sandbox_refuses_a_batch_of_more_than_100_orders(sandbox, erp):
    response = requests.post(f"{sandbox.url}/erp/api/v1/sales-orders/batch", timeout=5,
                             headers={"Authorization": "Bearer sandbox-erp-key"},
                             json={"sales_orders": [{"external_reference": f"x:{i}"} for i in range(101)]})
    assert response.status_code == 422 and "at most 100" in response.json()["errors"][0]["message"]
    assert erp.sales_orders == []


def _new_customer(email="nia@example.com", reference="shopify:customer:42", name="Nia"):
    return {"email": email, "name": name, "external_reference": reference, "country": "GB", "phone": "",
            "account_type": "customer", "match_on": ["external_reference", "email"]}


def test_a_batch_document_may_carry_its_new_customer_matched_or_opened_as_it_is_booked(client, erp):
    known = _customer(client)  # zoe@example.com
    batch = [replace(_order("", reference="shopify:11"), new_customer=_new_customer()),
             replace(_order("", reference="shopify:12"), new_customer=_new_customer()),  # Nia again
             replace(_order("", reference="shopify:13"), new_customer=_new_customer(
                 email="Zoe@Example.com", reference="shopify:customer:99")),
             replace(_order(known.id, reference="shopify:14"), new_customer=None)]
    before = erp.requests_count
    opened, again, matched, plain = client.create_sales_orders(batch)
    assert erp.requests_count - before == 1
    assert opened.customer_created and not opened.customer_matched_on and opened.customer_id != known.id
    assert again.customer_id == opened.customer_id and again.customer_matched_on == "external_reference"
    assert not again.customer_created
    assert matched.customer_id == known.id and matched.customer_matched_on == "email"
    assert plain.customer_id == known.id and not plain.customer_matched_on and not plain.customer_created
    assert len(erp.customers) == 2
    assert {o["external_reference"]: o["customer_id"] for o in erp.sales_orders}["shopify:13"] == known.id


def test_a_batch_document_whose_new_customer_matches_several_accounts_is_refused_alone(client, erp):
    for n in (1, 2):
        client.create_customer(email="twin@example.com", name=f"Twin {n}", external_reference=f"crm:{n}")
    refused, booked = client.create_sales_orders([
        replace(_order("", reference="shopify:21"), new_customer=_new_customer(email="twin@example.com")),
        replace(_order("", reference="shopify:22"), new_customer=_new_customer(reference="shopify:customer:43"))])
    assert isinstance(refused, AmbiguousCustomer) and refused.code == "multiple_matches"
    assert sorted(c.name for c in refused.candidates) == ["Twin 1", "Twin 2"]
    assert booked.customer_created and [o["external_reference"] for o in erp.sales_orders] == ["shopify:22"]


def test_an_invalid_document_opens_no_account_for_the_customer_it_carries(client, erp):
    bad = replace(_order("", reference="shopify:31", lines=(
        ErpSalesOrderLine("NOPE", "Unknown", 1, "9.00", "9.00", "T1", "1.50"),), total="9.00"),
        new_customer=_new_customer())
    nameless = replace(_order("", reference="shopify:32"), new_customer={**_new_customer(), "name": "", "email": ""})
    [refused, unnamed] = client.create_sales_orders([bad, nameless])
    assert isinstance(refused, PermanentError) and "NOPE" in str(refused)
    assert isinstance(unnamed, PermanentError) and "customer.name" in str(unnamed)
    assert erp.customers == [] and erp.sales_orders == []


def test_the_sandbox_wants_customer_id_or_a_customer_with_match_on_not_both(sandbox, client, erp):
    known = _customer(client)
    payload = client._order_payload(_order(known.id, reference="shopify:41"))
    url, auth = f"{sandbox.url}/erp/api/v1/sales-orders", {"Authorization": "Bearer sandbox-erp-key"}
    both = requests.post(url, timeout=5, headers=auth, json={**payload, "customer": _new_customer()})
    assert both.status_code == 422 and "not both" in str(both.json()["errors"])
    no_match_on = {k: v for k, v in _new_customer().items() if k != "match_on"}
    without = requests.post(url, timeout=5, headers=auth, json={**payload, "customer_id": "", "customer": no_match_on})
    assert without.status_code == 422 and "customer.match_on" in str(without.json()["errors"])
    single = requests.post(url, timeout=5, headers=auth, json={**payload, "customer_id": "", "customer": _new_customer()})
    assert single.status_code == 201 and single.json()["customer"]["created"] is True
    assert single.json()["customer_id"] == single.json()["customer"]["id"] != known.id
