"""The REST ERP's later capabilities through the real client against the sandbox ERP over HTTP:
dispatches read by cursor, credit memos, journals, purchase orders and the stock a posted order holds."""
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
)
from integrations.connectors.erp import RestErpClient

NEW_YEAR = 1767225600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def erp(sandbox):
    for code in ("TEE-BLK-M", "MUG-001", "SHIPPING", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN", "Main warehouse")
    sandbox.erp.set_stock("TEE-BLK-M", "MAIN", on_hand=10, allocated=1)
    sandbox.erp.set_stock("MUG-001", "MAIN", on_hand=5)
    return sandbox.erp


@pytest.fixture
def client(erp):
    return RestErpClient.from_settings()


@pytest.fixture
def customer(client):
    return client.create_customer(email="zoe@example.com", name="Zoë Müller", external_reference="shopify:customer:7")


def _order(client, customer, reference="shopify:1001"):
    """Two T-shirts and a mug, with shipping: 49.99 + 10.00 tax."""
    return client.create_sales_order(ErpSalesOrderRequest(
        external_reference=reference, customer_id=customer.id, currency="GBP", depot="MAIN",
        order_date="2026-01-01", total="49.99", tax_total="10.00", gross_total="59.99",
        lines=(ErpSalesOrderLine("TEE-BLK-M", "T-shirt", 2, "20.00", "40.00", "T1", "8.00",
                                 line_reference="gid://shopify/LineItem/11"),
               ErpSalesOrderLine("MUG-001", "Mug", 1, "5.00", "5.00", "T1", "1.00",
                                 line_reference="gid://shopify/LineItem/12"),
               ErpSalesOrderLine("SHIPPING", "Shipping", 1, "4.99", "4.99", "T1", "1.00", kind="shipping"))))


def _dispatch(sandbox, order_id, **body):
    response = requests.post(f"{sandbox.url}/erp/_sandbox/sales-orders/{order_id}/dispatch", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _stock(client, item_code):
    row = next(r for r in client.get_stock(depot="MAIN") if r["item_code"] == item_code)
    return row["on_hand"], row["allocated"]


# --- dispatches ----------------------------------------------------------------------------------


def test_a_partial_dispatch_in_two_parcels_is_read_by_cursor_once_each(sandbox, client, erp, customer):
    erp.clock = lambda: NEW_YEAR  # both parcels in one second: the cursor must tell them apart
    order = _order(client, customer)
    shipped = _dispatch(sandbox, order.id, parcels=[
        {"lines": [{"item_code": "TEE-BLK-M", "quantity": 1}], "carrier": "DPD", "tracking_number": "DPD-1",
         "tracking_url": "https://track.example/DPD-1"},
        {"lines": [{"item_code": "MUG-001"}], "carrier": "Royal Mail", "tracking_number": "RM-2"},
    ])
    assert shipped["status"] == "partly_dispatched"

    first = client.dispatches_since("", limit=1)
    [parcel] = first.dispatches
    assert first.more
    assert (parcel.sales_order_id, parcel.external_reference, parcel.status) == (order.id, "shopify:1001", "confirmed")
    assert [(l.item_code, l.quantity, l.line_reference) for l in parcel.lines] == [
        ("TEE-BLK-M", 1, "gid://shopify/LineItem/11")]
    assert (parcel.carrier, parcel.tracking_number, parcel.tracking_url, parcel.depot) == (
        "DPD", "DPD-1", "https://track.example/DPD-1", "MAIN")
    assert parcel.dispatched_at == parcel.modified_at == "2026-01-01T00:00:00Z"

    second = client.dispatches_since(first.cursor, limit=1)
    assert [(d.carrier, [(l.item_code, l.quantity) for l in d.lines]) for d in second.dispatches] == [
        ("Royal Mail", [("MUG-001", 1)])]
    last = client.dispatches_since(second.cursor)
    assert last.dispatches == [] and last.cursor == second.cursor and not last.more
    assert client.get_sales_order(order.id).status == "partly_dispatched"  # one T-shirt still to go


def test_the_last_units_dispatched_make_the_order_dispatched(sandbox, client, erp, customer):
    order = _order(client, customer)
    _dispatch(sandbox, order.id, partly=True)
    assert client.get_sales_order(order.id).status == "partly_dispatched"
    _dispatch(sandbox, order.id, carrier="DPD")
    assert client.get_sales_order(order.id).status == "dispatched"
    assert sorted((l.item_code, l.quantity) for d in client.dispatches_since().dispatches for l in d.lines) == [
        ("MUG-001", 1), ("TEE-BLK-M", 1), ("TEE-BLK-M", 1)]
    response = requests.post(f"{sandbox.url}/erp/_sandbox/sales-orders/{order.id}/dispatch",
                             json={"lines": [{"item_code": "TEE-BLK-M", "quantity": 1}]}, timeout=5)
    assert response.status_code == 422 and "0 still open" in response.json()["message"]


def test_a_draft_dispatch_is_not_read_until_it_is_confirmed(sandbox, client, erp, customer):
    erp.clock = lambda: NEW_YEAR
    order = _order(client, customer)
    [draft] = _dispatch(sandbox, order.id, draft=True, lines=[{"item_code": "MUG-001"}])["dispatches"]
    [shipped] = _dispatch(sandbox, order.id, lines=[{"item_code": "TEE-BLK-M"}], carrier="DPD")["dispatches"]
    page = client.dispatches_since()
    assert [d.id for d in page.dispatches] == [shipped["id"]]
    assert _stock(client, "MUG-001") == (5, 1)  # a draft moves no stock
    assert client.get_sales_order(order.id).status == "partly_dispatched"

    # Confirmed in the same second as the last dispatch read, with a lower id: still not skipped.
    response = requests.post(f"{sandbox.url}/erp/_sandbox/dispatches/{draft['id']}/confirm", timeout=5)
    assert response.json()["status"] == "confirmed"
    after = client.dispatches_since(page.cursor)
    assert [d.id for d in after.dispatches] == [draft["id"]]
    assert _stock(client, "MUG-001") == (4, 0)
    assert client.get_sales_order(order.id).status == "dispatched"
    assert client.dispatches_since(after.cursor).dispatches == []


def test_the_same_cursor_read_again_returns_the_same_dispatches(sandbox, client, erp, customer):
    seconds = iter(range(100))
    erp.clock = lambda: NEW_YEAR + next(seconds) // 2  # two changes per second
    for number in (1001, 1002, 1003):
        order = _order(client, customer, reference=f"shopify:{number}")
        _dispatch(sandbox, order.id, partly=True)
        _dispatch(sandbox, order.id)
    start = client.dispatches_since(limit=2)
    again = [client.dispatches_since(start.cursor, limit=3) for _ in range(2)]
    assert [d.id for d in again[0].dispatches] == [d.id for d in again[1].dispatches]
    assert len(again[0].dispatches) == 3 and again[0].cursor == again[1].cursor
    rest = client.dispatches_since(again[0].cursor)
    read = [d.id for d in (*start.dispatches, *again[0].dispatches, *rest.dispatches)]
    assert read == [d["id"] for d in erp.dispatches] and len(set(read)) == 6


def test_a_cursor_the_connector_did_not_give_is_refused_clearly(client, erp):
    with pytest.raises(PermanentError) as raised:
        client.dispatches_since("not-a-cursor")
    assert raised.value.code == "invalid_cursor"


# --- stock a posted order holds ------------------------------------------------------------------


def test_a_posted_order_allocates_stock_and_a_cancel_releases_it(client, erp, customer):
    order = _order(client, customer)
    assert _stock(client, "TEE-BLK-M") == (10, 3)  # 1 held before, 2 for this order
    assert _stock(client, "MUG-001") == (5, 1)
    assert not any(code == "SHIPPING" for code, _ in erp.stock)  # a charge holds no stock
    client.cancel_sales_order(order.id)
    assert _stock(client, "TEE-BLK-M") == (10, 1)
    assert _stock(client, "MUG-001") == (5, 0)


def test_a_dispatch_uses_up_what_the_order_allocated(sandbox, client, erp, customer):
    order = _order(client, customer)
    _dispatch(sandbox, order.id, lines=[{"item_code": "TEE-BLK-M", "quantity": 1}])
    assert _stock(client, "TEE-BLK-M") == (9, 2)
    _dispatch(sandbox, order.id)
    assert _stock(client, "TEE-BLK-M") == (8, 1) and _stock(client, "MUG-001") == (4, 0)


# --- credit memos --------------------------------------------------------------------------------


def _memo(order, customer, reference="shopify:refund:501", quantity=1, restock=False):
    return ErpCreditMemoRequest(
        external_reference=reference, sales_order_id=order.id, customer_id=customer.id, currency="GBP",
        lines=(ErpSalesOrderLine("TEE-BLK-M", "T-shirt", quantity, "20.00", f"{20 * quantity}.00", "T1",
                                 f"{4 * quantity}.00"),),
        total=f"{20 * quantity}.00", tax_total=f"{4 * quantity}.00", gross_total=f"{24 * quantity}.00",
        reason="too small", restock=restock)


def test_a_credit_memo_created_twice_is_one_memo(client, erp, customer):
    order = _order(client, customer)
    first = client.create_credit_memo(_memo(order, customer))
    again = client.create_credit_memo(_memo(order, customer))
    assert again == first and first.id.startswith("CM-")
    assert (first.sales_order_id, first.total, first.tax_total, first.gross_total) == (order.id, "20.00", "4.00", "24.00")
    assert client.find_credit_memo("shopify:refund:501") == first
    assert client.find_credit_memo("shopify:refund:nope") is None
    assert len(erp.credit_memos) == 1


def test_the_erp_books_a_memo_at_its_own_figures(client, erp, customer):
    order = _order(client, customer)
    erp.gross_skew = Decimal("0.01")
    memo = client.create_credit_memo(_memo(order, customer))
    assert memo.gross_total == "24.01"  # what the ERP booked, for the flow to compare


def test_crediting_more_than_was_sold_is_refused_with_a_clear_error(client, erp, customer):
    order = _order(client, customer)
    with pytest.raises(PermanentError) as raised:
        client.create_credit_memo(_memo(order, customer, quantity=3))
    assert raised.value.status == 422 and raised.value.code == "over_credit"
    assert f"lines[0].quantity: cannot credit 3 x TEE-BLK-M: order {order.id} sold 2, 0 already credited" in str(
        raised.value)
    client.create_credit_memo(_memo(order, customer, quantity=1))
    with pytest.raises(PermanentError, match="cannot credit 2 x TEE-BLK-M: .* sold 2, 1 already credited"):
        client.create_credit_memo(_memo(order, customer, reference="shopify:refund:502", quantity=2))
    assert len(erp.credit_memos) == 1


def test_a_credit_memo_whose_lines_do_not_add_up_is_refused(client, erp, customer):
    order = _order(client, customer)
    memo = _memo(order, customer)
    with pytest.raises(PermanentError, match="total 19.99 does not equal the sum of the line totals 20.00"):
        client.create_credit_memo(ErpCreditMemoRequest(**{**memo.__dict__, "total": "19.99", "gross_total": ""}))
    assert erp.credit_memos == []


def test_a_restocked_return_goes_back_on_hand(sandbox, client, erp, customer):
    order = _order(client, customer)
    _dispatch(sandbox, order.id)
    assert _stock(client, "TEE-BLK-M") == (8, 1)
    client.create_credit_memo(_memo(order, customer, restock=True))
    assert _stock(client, "TEE-BLK-M") == (9, 1)


# --- journals ------------------------------------------------------------------------------------


def _journal(reference="shopify:payout:88", credit="100.00", currency="GBP"):
    return ErpJournalRequest(external_reference=reference, date="2026-01-02", currency=currency,
                             description="Shopify payout 88", lines=(
                                 ErpJournalLine("1200", debit="97.10", reference="payout 88"),
                                 ErpJournalLine("7700", debit="2.90", description="fees"),
                                 ErpJournalLine("1100", credit=credit, description="sales settled")))


def test_a_balanced_journal_is_booked_once(client, erp):
    first = client.create_journal(_journal())
    assert client.create_journal(_journal()) == first
    assert (first.status, first.debit_total, first.credit_total) == ("posted", "100.00", "100.00")
    assert client.find_journal("shopify:payout:88") == first and client.find_journal("nope") is None
    assert len(erp.journals) == 1


def test_an_unbalanced_journal_is_refused(client, erp):
    with pytest.raises(PermanentError) as raised:
        client.create_journal(_journal(credit="99.99"))
    assert raised.value.code == "unbalanced" and raised.value.status == 422
    assert "debits 100.00 do not equal credits 99.99" in str(raised.value)
    assert erp.journals == []


def test_journal_amounts_must_fit_the_currencys_minor_unit(client, erp):
    with pytest.raises(PermanentError, match=r"lines\[2\].credit 100.001 has more than 2 decimals"):
        client.create_journal(_journal(credit="100.001"))
    with pytest.raises(PermanentError, match="has more than 0 decimals allowed for JPY") as raised:
        client.create_journal(_journal(currency="JPY"))
    assert raised.value.code == "validation_failed" and erp.journals == []


def test_a_new_write_goes_through_the_erps_record_locks(sandbox, client, erp):
    erp.lock_probability = 1.0
    response = requests.post(f"{sandbox.url}/erp/api/v1/journals", json={}, timeout=5,
                             headers={"Authorization": "Bearer sandbox-erp-key"})
    assert response.status_code == 423
    erp.lock_probability = 0.5
    erp.random.seed(1)
    assert client.create_journal(_journal()).status == "posted"
    assert len(erp.journals) == 1


# --- purchase orders -----------------------------------------------------------------------------


def _purchase_order(reference="planner:po:9"):
    return ErpPurchaseOrderRequest(external_reference=reference, supplier="ACME-TEXTILES", depot="MAIN",
                                   currency="GBP", expected_date="2026-02-01", lines=(
                                       ErpPurchaseOrderLine("TEE-BLK-M", 6, "4.50"),
                                       ErpPurchaseOrderLine("MUG-001", 3, "1.20")))


def test_a_purchase_order_created_twice_is_one_purchase_order(client, erp):
    first = client.create_purchase_order(_purchase_order())
    assert client.create_purchase_order(_purchase_order()) == first
    assert (first.status, first.supplier, first.depot, first.expected_date) == (
        "open", "ACME-TEXTILES", "MAIN", "2026-02-01")
    assert [(l.item_code, l.quantity, l.unit_cost, l.received_quantity) for l in first.lines] == [
        ("TEE-BLK-M", 6, "4.50", 0), ("MUG-001", 3, "1.20", 0)]
    assert client.find_purchase_order("planner:po:9") == first and client.find_purchase_order("nope") is None
    assert len(erp.purchase_orders) == 1


def test_a_receipt_shows_in_purchase_orders_since_and_raises_stock(sandbox, client, erp):
    seconds = iter(range(100))
    erp.clock = lambda: NEW_YEAR + next(seconds)
    created = client.create_purchase_order(_purchase_order())
    start = client.purchase_orders_since()
    assert [p.id for p in start.purchase_orders] == [created.id]
    assert client.purchase_orders_since(start.cursor).purchase_orders == []

    base = f"{sandbox.url}/erp/_sandbox/purchase-orders/{created.id}/receive"
    assert requests.post(base, json={"lines": [{"item_code": "TEE-BLK-M", "quantity": 4}]}, timeout=5).ok
    partly = client.purchase_orders_since(start.cursor)
    [received] = partly.purchase_orders
    assert received.status == "partially_received"
    assert [(l.item_code, l.received_quantity) for l in received.lines] == [("TEE-BLK-M", 4), ("MUG-001", 0)]
    assert _stock(client, "TEE-BLK-M") == (14, 1)

    too_many = requests.post(base, json={"lines": [{"item_code": "TEE-BLK-M", "quantity": 3}]}, timeout=5)
    assert too_many.status_code == 422 and "2 outstanding" in too_many.json()["message"]
    assert requests.post(base, json={}, timeout=5).ok
    [done] = client.purchase_orders_since(partly.cursor).purchase_orders
    assert done.status == "received" and _stock(client, "TEE-BLK-M") == (16, 1) and _stock(client, "MUG-001") == (8, 0)


def test_a_purchase_order_for_an_unknown_depot_is_refused(client, erp):
    request = _purchase_order()
    with pytest.raises(PermanentError, match="depot: Depot EAST does not exist"):
        client.create_purchase_order(ErpPurchaseOrderRequest(**{**request.__dict__, "depot": "EAST"}))
    assert erp.purchase_orders == []
