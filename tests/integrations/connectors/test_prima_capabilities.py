"""Prima's later capabilities through the real client against the sandbox Prima over SOAP: despatch
notes read by cursor, credit notes, journals, purchase orders and the stock a posted order holds."""
from dataclasses import replace
from decimal import Decimal

import pytest
import requests

from integrations.connectors.base import (
    ErpCreditMemoRequest,
    ErpJournalLine,
    ErpJournalRequest,
    ErpPurchaseOrderLine,
    ErpPurchaseOrderRequest,
    ErpSalesOrderLine,
    ErpSalesOrderRequest,
    PermanentError,
    TransientError,
)
from integrations.connectors.prima import PrimaClient

NEW_YEAR = 1767225600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def prima(sandbox):
    for code in ("TEE-BLK-M", "MUG-001", "SHIPPING", "DISCOUNT"):
        sandbox.prima.add_item(code)
    sandbox.prima.add_depot("MAIN", "Main warehouse")
    sandbox.prima.set_stock("TEE-BLK-M", "MAIN", on_hand=10, allocated=1)
    sandbox.prima.set_stock("MUG-001", "MAIN", on_hand=5)
    return sandbox.prima


@pytest.fixture
def client(prima):
    return PrimaClient.from_settings()


@pytest.fixture
def account(client):
    return client.create_customer(email="zoe@example.com", name="Zoë Müller", external_reference="shopify:customer:7")


def _order(client, account, reference="shopify:1001"):
    """Two T-shirts and a mug, with carriage: 49.99 + 10.00 tax."""
    return client.create_sales_order(ErpSalesOrderRequest(
        external_reference=reference, customer_id=account.id, currency="GBP", depot="MAIN",
        order_date="2026-01-01", total="49.99", tax_total="10.00", gross_total="59.99",
        lines=(ErpSalesOrderLine("TEE-BLK-M", "T-shirt", 2, "20.00", "40.00", "T1", "8.00",
                                 line_reference="gid://shopify/LineItem/11"),
               ErpSalesOrderLine("MUG-001", "Mug", 1, "5.00", "5.00", "T1", "1.00"),
               ErpSalesOrderLine("SHIPPING", "Carriage", 1, "4.99", "4.99", "T1", "1.00", kind="shipping"))))


def _despatch(sandbox, number, **body):
    response = requests.post(f"{sandbox.url}/prima/_sandbox/orders/{number}/dispatch", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _stock(client, item_code):
    row = next(r for r in client.get_stock(depot="MAIN") if r["item_code"] == item_code)
    return row["on_hand"], row["allocated"]


# --- despatches ----------------------------------------------------------------------------------


def test_a_partial_despatch_in_two_parcels_is_read_by_cursor_once_each(sandbox, client, prima, account):
    prima.clock = lambda: NEW_YEAR  # both parcels in one second: the cursor must tell them apart
    order = _order(client, account)
    _despatch(sandbox, order.id, parcels=[
        {"lines": [{"item_code": "TEE-BLK-M", "quantity": 1}], "carrier": "DPD", "tracking_number": "DPD-1",
         "tracking_url": "https://track.example/DPD-1"},
        {"lines": [{"item_code": "MUG-001"}], "carrier": "Royal Mail", "tracking_number": "RM-2"},
    ])
    assert client.get_sales_order(order.id).status == "Part Despatched"

    first = client.dispatches_since("", limit=1)
    [parcel] = first.dispatches
    assert first.more and parcel.id.startswith("DN")
    assert (parcel.sales_order_id, parcel.external_reference, parcel.status) == (order.id, "shopify:1001", "confirmed")
    assert [(l.item_code, l.quantity, l.line_reference) for l in parcel.lines] == [
        ("TEE-BLK-M", 1, "gid://shopify/LineItem/11")]
    assert (parcel.carrier, parcel.tracking_number, parcel.tracking_url, parcel.depot, parcel.modified_at) == (
        "DPD", "DPD-1", "https://track.example/DPD-1", "MAIN", "2026-01-01T00:00:00Z")
    second = client.dispatches_since(first.cursor, limit=1)
    assert [(d.tracking_number, [(l.item_code, l.quantity, l.line_reference) for l in d.lines])
            for d in second.dispatches] == [("RM-2", [("MUG-001", 1, "")])]
    last = client.dispatches_since(second.cursor)
    assert last.dispatches == [] and last.cursor == second.cursor and not last.more


def test_a_draft_despatch_is_not_read_until_it_is_confirmed(sandbox, client, prima, account):
    prima.clock = lambda: NEW_YEAR
    order = _order(client, account)
    [draft] = _despatch(sandbox, order.id, draft=True, lines=[{"item_code": "MUG-001"}])["dispatches"]
    [shipped] = _despatch(sandbox, order.id, lines=[{"item_code": "TEE-BLK-M"}])["dispatches"]
    page = client.dispatches_since()
    assert [d.id for d in page.dispatches] == [shipped["id"]]
    assert _stock(client, "MUG-001") == (5, 1)  # a draft moves no stock

    response = requests.post(f"{sandbox.url}/prima/_sandbox/despatches/{draft['id']}/confirm", timeout=5)
    assert response.json()["status"] == "confirmed"
    after = client.dispatches_since(page.cursor)
    assert [d.id for d in after.dispatches] == [draft["id"]]  # same second, lower number: not skipped
    assert _stock(client, "MUG-001") == (4, 0)
    assert client.get_sales_order(order.id).status == "Despatched"


def test_the_same_cursor_read_again_returns_the_same_despatches(sandbox, client, prima, account):
    seconds = iter(range(100))
    prima.clock = lambda: NEW_YEAR + next(seconds) // 2
    for number in (1001, 1002, 1003):
        order = _order(client, account, reference=f"shopify:{number}")
        _despatch(sandbox, order.id, partly=True)
        _despatch(sandbox, order.id)
    start = client.dispatches_since(limit=2)
    again = [client.dispatches_since(start.cursor, limit=3) for _ in range(2)]
    assert [d.id for d in again[0].dispatches] == [d.id for d in again[1].dispatches]
    rest = client.dispatches_since(again[0].cursor)
    read = [d.id for d in (*start.dispatches, *again[0].dispatches, *rest.dispatches)]
    assert read == [d["id"] for d in prima.dispatches] and len(set(read)) == 6


def test_despatches_are_read_page_by_page(sandbox, client, prima, account, monkeypatch):
    monkeypatch.setattr("integrations.connectors.prima.PAGE_SIZE", 2)
    prima.clock = lambda: NEW_YEAR  # five despatches in one second, over three pages
    for number in range(1001, 1006):
        _despatch(sandbox, _order(client, account, reference=f"shopify:{number}").id)
    page = client.dispatches_since(limit=3)
    rest = client.dispatches_since(page.cursor)
    assert [d.id for d in (*page.dispatches, *rest.dispatches)] == [d["id"] for d in prima.dispatches]
    assert page.more and not rest.more


# --- stock a posted order holds ------------------------------------------------------------------


def test_a_posted_order_allocates_stock_and_a_cancel_releases_it(client, prima, account):
    order = _order(client, account)
    assert _stock(client, "TEE-BLK-M") == (10, 3) and _stock(client, "MUG-001") == (5, 1)
    client.cancel_sales_order(order.id)
    assert _stock(client, "TEE-BLK-M") == (10, 1) and _stock(client, "MUG-001") == (5, 0)


def test_a_despatch_uses_up_what_the_order_allocated(sandbox, client, prima, account):
    order = _order(client, account)
    _despatch(sandbox, order.id)
    assert _stock(client, "TEE-BLK-M") == (8, 1) and _stock(client, "MUG-001") == (4, 0)


# --- credit notes --------------------------------------------------------------------------------


def _memo(order, account, reference="shopify:refund:501", quantity=1, restock=False):
    return ErpCreditMemoRequest(
        external_reference=reference, sales_order_id=order.id, customer_id=account.id, currency="GBP",
        lines=(ErpSalesOrderLine("TEE-BLK-M", "T-shirt", quantity, "20.00", f"{20 * quantity}.00", "T1",
                                 f"{4 * quantity}.00"),),
        total=f"{20 * quantity}.00", tax_total=f"{4 * quantity}.00", gross_total=f"{24 * quantity}.00",
        reason="too small", restock=restock)


def test_a_credit_note_created_twice_is_one_credit_note(client, prima, account):
    order = _order(client, account)
    first = client.create_credit_memo(_memo(order, account))
    assert client.create_credit_memo(_memo(order, account)) == first
    assert first.id.startswith("CN") and (first.total, first.tax_total, first.gross_total) == ("20.00", "4.00", "24.00")
    assert client.find_credit_memo("shopify:refund:501") == first and client.find_credit_memo("nope") is None
    assert len(prima.credit_memos) == 1


def test_the_gross_total_is_primas_own(client, prima, account):
    order = _order(client, account)
    prima.gross_skew = Decimal("0.01")
    assert client.create_credit_memo(_memo(order, account)).gross_total == "24.01"


def test_crediting_more_than_was_sold_is_refused_with_a_clear_error(client, prima, account):
    order = _order(client, account)
    with pytest.raises(PermanentError) as raised:
        client.create_credit_memo(_memo(order, account, quantity=3))
    assert raised.value.code == "over_credit" and raised.value.body[0]["code"] == "OVER_CREDIT"
    assert raised.value.body[0]["StockCode"] == "TEE-BLK-M" and raised.value.body[0]["Field"] == "Quantity"
    assert f"Line 1: cannot credit 3 x TEE-BLK-M: order {order.id} sold 2, 0 already credited" in str(raised.value)
    assert prima.credit_memos == []


def test_a_credit_note_for_another_account_is_refused(client, prima, account):
    order = _order(client, account)
    other = client.create_customer(email="ann@example.com", name="Ann", external_reference="shopify:customer:8")
    with pytest.raises(PermanentError, match=f"Account {other.id} is not the account of order {order.id}"):
        client.create_credit_memo(replace(_memo(order, account), customer_id=other.id))


def test_a_restocked_return_goes_back_on_hand(sandbox, client, prima, account):
    order = _order(client, account)
    _despatch(sandbox, order.id)
    client.create_credit_memo(_memo(order, account, quantity=2, restock=True))
    assert _stock(client, "TEE-BLK-M") == (10, 1)


# --- journals ------------------------------------------------------------------------------------


def _journal(reference="shopify:payout:88", credit="100.00", currency="GBP"):
    return ErpJournalRequest(external_reference=reference, date="2026-01-02", currency=currency,
                             description="Shopify payout 88", lines=(
                                 ErpJournalLine("1200", debit="97.10"), ErpJournalLine("7700", debit="2.90"),
                                 ErpJournalLine("1100", credit=credit)))


def test_a_balanced_journal_is_booked_once(client, prima):
    first = client.create_journal(_journal())
    assert client.create_journal(_journal()) == first
    assert (first.status, first.debit_total, first.credit_total) == ("Posted", "100.00", "100.00")
    assert client.find_journal("shopify:payout:88") == first and client.find_journal("nope") is None
    assert len(prima.journals) == 1


def test_an_unbalanced_journal_is_refused(client, prima):
    with pytest.raises(PermanentError) as raised:
        client.create_journal(_journal(credit="99.99"))
    assert raised.value.code == "unbalanced" and raised.value.body[0]["code"] == "JOURNAL_UNBALANCED"
    assert "debits 100.00, credits 99.99" in str(raised.value)
    assert prima.journals == []


def test_journal_amounts_must_fit_the_currencys_minor_unit(client, prima):
    with pytest.raises(PermanentError, match="Debit on line 1 97.10 has more than 0 decimals allowed for JPY"):
        client.create_journal(_journal(currency="JPY"))


def test_a_new_write_meets_primas_record_locks(client, prima):
    prima.lock_probability = 1.0
    with pytest.raises(TransientError) as raised:
        client.create_journal(_journal())
    assert raised.value.code == "RECORD_LOCKED" and prima.journals == []
    prima.lock_probability = 0.5
    prima.random.seed(1)
    assert client.create_journal(_journal()).status == "Posted"


# --- purchase orders -----------------------------------------------------------------------------


def _purchase_order(reference="planner:po:9"):
    return ErpPurchaseOrderRequest(external_reference=reference, supplier="ACME-TEXTILES", depot="MAIN",
                                   currency="GBP", expected_date="2026-02-01", lines=(
                                       ErpPurchaseOrderLine("TEE-BLK-M", 6, "4.50"),
                                       ErpPurchaseOrderLine("MUG-001", 3, "1.20")))


def test_a_purchase_order_created_twice_is_one_purchase_order(client, prima):
    first = client.create_purchase_order(_purchase_order())
    assert client.create_purchase_order(_purchase_order()) == first
    assert (first.status, first.supplier, first.expected_date) == ("open", "ACME-TEXTILES", "2026-02-01")
    assert [(l.item_code, l.quantity, l.unit_cost) for l in first.lines] == [("TEE-BLK-M", 6, "4.50"),
                                                                              ("MUG-001", 3, "1.20")]
    assert client.find_purchase_order("planner:po:9") == first and client.find_purchase_order("nope") is None
    assert len(prima.purchase_orders) == 1


def test_a_receipt_shows_in_purchase_orders_since_and_raises_stock(sandbox, client, prima):
    seconds = iter(range(100))
    prima.clock = lambda: NEW_YEAR + next(seconds)
    created = client.create_purchase_order(_purchase_order())
    start = client.purchase_orders_since()
    assert [p.id for p in start.purchase_orders] == [created.id]
    base = f"{sandbox.url}/prima/_sandbox/purchase-orders/{created.id}/receive"
    assert requests.post(base, json={"lines": [{"item_code": "TEE-BLK-M", "quantity": 4}]}, timeout=5).ok
    partly = client.purchase_orders_since(start.cursor)
    [received] = partly.purchase_orders
    assert received.status == "partially_received" and received.lines[0].received_quantity == 4
    assert _stock(client, "TEE-BLK-M") == (14, 1)
    assert requests.post(base, json={}, timeout=5).ok
    [done] = client.purchase_orders_since(partly.cursor).purchase_orders
    assert done.status == "received" and _stock(client, "MUG-001") == (8, 0)


def test_a_purchase_order_for_an_unknown_stock_code_is_refused(client, prima):
    request = _purchase_order()
    with pytest.raises(PermanentError) as raised:
        client.create_purchase_order(replace(request, lines=(ErpPurchaseOrderLine("NOPE", 1, "1.00"),)))
    assert raised.value.code == "UNKNOWN_STOCK_CODE" and prima.purchase_orders == []
