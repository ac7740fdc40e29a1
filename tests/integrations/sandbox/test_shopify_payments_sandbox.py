"""The sandbox shop's Shopify Payments account behaves like Shopify's where the payouts import depends on
it: its admin endpoints record charges, refunds, chargebacks, reserves, adjustments and FX; a payout run
pays out by day; the GraphQL answer uses the published names, pages by cursor, filters by the documented
search terms and is refused without the payouts scope."""
from decimal import Decimal

import pytest
import requests

from integrations.sandbox.shopify_payments import PAYMENTS_SCOPE

TOKEN = "shpat_sandbox_token"
QUERY = """query($first: Int!, $after: String, $query: String) { shopifyPaymentsAccount {
  balanceTransactions(first: $first, after: $after, query: $query) {
    nodes { id type amount { amount currencyCode } fee { amount } net { amount } sourceType
            associatedOrder { id } associatedPayout { id status } adjustmentReason test }
    pageInfo { hasNextPage endCursor } }
  payouts(first: 5) { nodes { id status transactionType net { amount currencyCode } } } } }"""


def _graphql(sandbox, variables, token=TOKEN):
    response = requests.post(f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json", timeout=10,
                             json={"query": QUERY, "variables": variables}, headers={"X-Shopify-Access-Token": token})
    response.raise_for_status()
    return response.json()


def _admin(sandbox, path, body):
    return requests.post(f"{sandbox.url}/shopify/_sandbox/payments/{path}", json=body, timeout=10)


@pytest.fixture
def shop(sandbox):
    shop = sandbox.shopify
    with shop.lock:
        shop.tokens[TOKEN] = shop.tokens[TOKEN] | {PAYMENTS_SCOPE}
    return shop


def test_admin_endpoints_record_each_kind_and_a_payout_run_pays_it_out(sandbox, shop):
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 2, "price": "9.50"}], financial_status="paid")
    assert _admin(sandbox, "refunds", {"order_id": order["id"], "amount": "4.00"}).status_code == 201
    dispute = _admin(sandbox, "disputes", {"order_id": order["id"], "amount": "10.00"}).json()
    assert _admin(sandbox, f"disputes/{dispute['source_id']}/won", {}).status_code == 201
    assert _admin(sandbox, "reserves", {"amount": "5.00"}).status_code == 201
    assert _admin(sandbox, "adjustments", {"amount": "-1.00", "reason": "shipping_label"}).status_code == 201
    assert _admin(sandbox, "currency-conversions", {"amount": "-0.20"}).status_code == 201
    assert _admin(sandbox, "disputes", {"order_id": 1}).status_code == 404
    assert _admin(sandbox, "reserves", {"amount": "lots"}).status_code == 400
    [payout] = _admin(sandbox, "payouts", {}).json()

    data = _graphql(sandbox, {"first": 50})["data"]["shopifyPaymentsAccount"]

    rows = data["balanceTransactions"]["nodes"]
    types = [r["type"] for r in rows]
    assert types == ["CHARGE", "REFUND", "DISPUTE_WITHDRAWAL", "DISPUTE_REVERSAL", "RESERVED_FUNDS", "ADJUSTMENT",
                     "ADJUSTMENT", "TRANSFER"]
    charge = rows[0]
    assert charge["amount"] == {"amount": order["total_price"], "currencyCode": "GBP"}
    assert charge["associatedOrder"] == {"id": f"gid://shopify/Order/{order['id']}"}
    assert {r["associatedPayout"]["status"] for r in rows} == {"PAID"}
    assert rows[6]["adjustmentReason"] == "currency_conversion" and rows[6]["sourceType"] == "SYSTEM_ADJUSTMENT"
    [listed] = data["payouts"]["nodes"]
    nets = sum(Decimal(r["net"]["amount"]) for r in rows[:-1])  # the transfer is the payout itself
    assert Decimal(listed["net"]["amount"]) == nets and listed["status"] == payout["status"] == "PAID"


def test_a_paid_order_is_charged_once(sandbox, shop):
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="pending")
    shop.mark_paid(order["id"])
    shop.mark_paid(order["id"])
    rows = _graphql(sandbox, {"first": 10})["data"]["shopifyPaymentsAccount"]["balanceTransactions"]["nodes"]
    assert [r["type"] for r in rows] == ["CHARGE"] and rows[0]["associatedPayout"] == {"id": None, "status": None}


def test_an_order_paid_in_several_captures_has_a_charge_for_each(sandbox, shop):
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 2, "price": "9.50"}],
                              financial_status="pending")
    rest = str(Decimal(order["total_price"]) - Decimal("12.00"))
    answer = _admin(sandbox, "captures", {"order_id": order["id"], "amounts": ["12.00", rest]})
    assert answer.status_code == 201 and len({c["order_transaction"] for c in answer.json()}) == 2
    assert _admin(sandbox, "captures", {"order_id": order["id"], "amounts": []}).status_code == 400
    shop.mark_paid(order["id"])  # already captured: paying it charges nothing more

    rows = _graphql(sandbox, {"first": 10})["data"]["shopifyPaymentsAccount"]["balanceTransactions"]["nodes"]

    assert [r["type"] for r in rows] == ["CHARGE", "CHARGE"]
    assert {r["associatedOrder"]["id"] for r in rows} == {f"gid://shopify/Order/{order['id']}"}
    assert sum(Decimal(r["amount"]["amount"]) for r in rows) == Decimal(order["total_price"])
    assert all(Decimal(r["fee"]["amount"]) > 0 for r in rows)  # each capture pays its own fee


def test_pages_by_cursor_and_filters_by_transaction_type(sandbox, shop):
    for _ in range(3):
        shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")
    shop.payments_reserve("1.00")
    first = _graphql(sandbox, {"first": 2})["data"]["shopifyPaymentsAccount"]["balanceTransactions"]
    second = _graphql(sandbox, {"first": 2, "after": first["pageInfo"]["endCursor"]})["data"][
        "shopifyPaymentsAccount"]["balanceTransactions"]
    ids = [n["id"] for n in first["nodes"] + second["nodes"]]
    assert len(ids) == len(set(ids)) == 4 and first["pageInfo"]["hasNextPage"] and not second["pageInfo"]["hasNextPage"]
    reserved = _graphql(sandbox, {"first": 10, "query": "transaction_type:reserved_funds"})["data"][
        "shopifyPaymentsAccount"]["balanceTransactions"]["nodes"]
    assert [n["type"] for n in reserved] == ["RESERVED_FUNDS"]


def test_without_the_payouts_scope_access_is_denied(sandbox):
    body = _graphql(sandbox, {"first": 1})
    assert body["data"]["shopifyPaymentsAccount"] is None
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert PAYMENTS_SCOPE in body["errors"][0]["message"]


def test_a_payout_run_late_in_the_day_lists_its_transfer_after_what_it_pays_out(sandbox, shop):
    from datetime import datetime, timezone
    late = datetime(2026, 12, 1, 23, 40, tzinfo=timezone.utc)
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="pending")
    shop.payments_charge(order["id"], when=late)
    shop.payments_adjustment("-1.00", "shipping_label", when=late.replace(minute=50))
    [payout] = shop.payments_payout_run()
    rows = _graphql(sandbox, {"first": 10})["data"]["shopifyPaymentsAccount"]["balanceTransactions"]["nodes"]
    assert [r["type"] for r in rows] == ["CHARGE", "ADJUSTMENT", "TRANSFER"]
    assert payout["issued_at"].date() == late.date()
