"""Shopify Payments payouts and balance transactions: the documents are valid on Shopify's published Admin
schemas (the configured version and the one before), with the variables really sent; the import reads
the sandbox shop over HTTP by cursor, stores every kind of transaction with its payout, and a re-import
changes nothing."""
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from graphql import parse

from exceptions_queue.models import ExceptionRecord
from integrations.connectors import connector_for
from integrations.connectors.shopify import ShopifyAuthError, ShopifyClient
from integrations.connectors.shopify import payments as documents
from integrations.flows.payouts import payouts_import_shopify
from integrations.models import BalanceTransaction, Payout
from integrations.sandbox.shopify_payments import PAYMENTS_SCOPE
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems


class Recording(ShopifyClient):
    def __init__(self):
        super().__init__("http://recording.invalid", "shpat_recording", VERSIONS[0])
        self.sent = []

    def graphql(self, query, variables=None, *, expected_cost=None):
        self.sent.append((query, variables or {}))
        empty = {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
        return {"shopifyPaymentsAccount": {"id": "gid://shopify/ShopifyPaymentsAccount/1", "payouts": empty,
                                           "balanceTransactions": empty}}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["PAYOUTS", "BALANCE_TRANSACTIONS"])
def test_each_document_is_valid_on_the_published_schema(name, version):
    assert problems(version, getattr(documents, name)) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_sent_is_valid_with_its_variables(version):
    client = Recording()
    list(documents.payouts_since(client, date(2026, 11, 1)))
    list(documents.balance_transactions_since(client, None))
    assert {q for q, _ in client.sent} == {documents.PAYOUTS, documents.BALANCE_TRANSACTIONS}
    for query, variables in client.sent:
        assert problems(version, query, variables) == [], query


def test_the_validator_refuses_a_field_the_schema_does_not_have():
    wrong = documents.BALANCE_TRANSACTIONS.replace("sourceOrderTransactionId", "orderTransactionId")
    assert any("orderTransactionId" in p for p in problems(VERSIONS[0], wrong))
    assert parse(documents.PAYOUTS)  # the real one parses


def test_transaction_types_become_our_kinds():
    assert documents.kind_of("CHARGE") == "charge"
    assert documents.kind_of("DISPUTE_WITHDRAWAL") == "dispute"
    assert documents.kind_of("DISPUTE_REVERSAL") == "dispute_reversal"
    assert documents.kind_of("RESERVED_FUNDS") == "reserve"
    assert documents.kind_of("RESERVED_FUNDS_REVERSAL") == "reserve_release"
    assert documents.kind_of("ADJUSTMENT", "currency_conversion") == "currency_conversion"
    assert documents.kind_of("ADJUSTMENT", "goodwill") == "adjustment"
    assert documents.kind_of("TRANSFER") == "payout"
    assert documents.kind_of("SHOP_CASH_CREDIT") == "other"  # kept and shown, never dropped


@pytest.fixture
def shop(sandbox, shopify_connection):
    """The sandbox shop, its token allowed to read payouts (as the app must be granted)."""
    shop = sandbox.shopify
    with shop.lock:
        shop.tokens[shop.access_token] = shop.tokens[shop.access_token] | {PAYMENTS_SCOPE}
    return shop


def _sku_order(shop, price="20.00", quantity=1, **kw):
    return shop.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": quantity, "price": price}],
                             financial_status="paid", **kw)


def test_the_import_stores_payouts_and_every_kind_of_transaction(shop, shopify_connection, monkeypatch):
    monkeypatch.setattr(documents, "PAYOUTS_PAGE_SIZE", 1)  # several pages: read by cursor
    monkeypatch.setattr(documents, "TRANSACTIONS_PAGE_SIZE", 3)
    earlier = _sku_order(shop)
    shop.payments_payout_run()  # an earlier payout: two of them to page through
    first, second = _sku_order(shop), _sku_order(shop, price="44.00")
    shop.payments_refund(first["id"], "5.00", refund_id=777)
    dispute = shop.payments_dispute(second["id"])
    shop.payments_dispute_won(dispute["source_id"])
    shop.payments_reserve("10.00")
    shop.payments_reserve("10.00", release=True)
    shop.payments_adjustment("-1.20", "shipping_label")
    shop.payments_currency_conversion("-0.37")
    [payout] = shop.payments_payout_run()
    assert earlier["id"] not in (first["id"], second["id"])

    result = payouts_import_shopify(connection=shopify_connection, match=False)

    assert Payout.objects.count() == 2
    stored = Payout.objects.get(external_id=f"gid://shopify/ShopifyPaymentsPayout/{payout['number']}")
    assert stored.source == Payout.Source.SHOPIFY_PAYMENTS and stored.status == Payout.Status.IMPORTED
    assert stored.period == stored.payout_date.replace(day=1)
    kinds = sorted(BalanceTransaction.objects.filter(payout=stored).values_list("type", flat=True))
    assert kinds == sorted(["charge", "charge", "refund", "dispute", "dispute_reversal", "reserve",
                            "reserve_release", "adjustment", "currency_conversion", "payout"])
    assert result.transactions_created == 12 and result.payouts_created == 2
    charge = BalanceTransaction.objects.get(type="charge", storefront_order_id=str(first["id"]))
    # The order's total as the shop charged it; the account's fee is 1.5 % + 0.25.
    assert charge.amount_minor == int(Decimal(first["total_price"]) * 100)
    assert charge.fee_minor == int((Decimal(charge.amount_minor) * Decimal("0.015") + 25).quantize(
        Decimal(1), rounding=ROUND_HALF_UP))
    assert charge.net_minor == charge.amount_minor - charge.fee_minor
    assert charge.source_order_transaction_id and charge.payout == stored
    refund = BalanceTransaction.objects.get(type="refund")
    assert (refund.amount_minor, refund.source_id, refund.storefront_order_id) == (-500, "777", str(first["id"]))
    assert BalanceTransaction.objects.get(type="dispute").fee_minor == 1500
    # What the bank got is what the transactions (the payout's own transfer aside) add up to.
    net = sum(BalanceTransaction.objects.filter(payout=stored).exclude(type="payout").values_list("net_minor", flat=True))
    assert stored.amount_minor == net


def test_a_re_import_changes_nothing(shop, shopify_connection):
    order = _sku_order(shop)
    shop.payments_refund(order["id"], "3.00")
    shop.payments_payout_run()
    payouts_import_shopify(connection=shopify_connection)
    before = (list(Payout.objects.values()), list(BalanceTransaction.objects.values()), Payout.history.count())

    again = payouts_import_shopify(connection=shopify_connection)

    assert not again.changed_anything
    assert (list(Payout.objects.values()), list(BalanceTransaction.objects.values()), Payout.history.count()) \
        == (before[0], before[1], before[2])


def test_a_transaction_paid_out_later_joins_its_payout(shop, shopify_connection):
    order = _sku_order(shop)
    payouts_import_shopify(connection=shopify_connection)
    assert BalanceTransaction.objects.get(type="charge").payout is None  # not yet paid out
    shop.payments_payout_run()

    result = payouts_import_shopify(connection=shopify_connection)

    assert result.payouts_created == 1 and result.transactions_changed == 1
    payout = Payout.objects.get()
    assert BalanceTransaction.objects.get(type="charge").payout == payout
    assert payout.status in (Payout.Status.MATCHED, Payout.Status.VARIANCE)  # matched straight away
    assert str(order["id"]) == BalanceTransaction.objects.get(type="charge").storefront_order_id


def test_without_the_payouts_scope_the_import_is_a_finance_exception(sandbox, shopify_connection):
    _sku_order(sandbox.shopify)
    with pytest.raises(ShopifyAuthError, match="read_shopify_payments_payouts"):
        payouts_import_shopify(connection=shopify_connection, client=connector_for(shopify_connection))
    record = ExceptionRecord.objects.get(type_code="payouts_import_failed")
    assert record.team == "finance" and "read_shopify_payments_payouts" in record.message
    assert not Payout.objects.exists()


def test_the_scheduled_import_reads_only_shops_with_the_payouts_flow(shop, shopify_connection):
    from integrations.flows.payouts.shopify_import import payouts_import_all

    _sku_order(shop)
    shop.payments_payout_run()
    # Not enabled: the shop never granted the payouts scope, so nothing is asked and nothing fails.
    assert payouts_import_all() == 0
    assert not Payout.objects.exists() and not ExceptionRecord.objects.exists()
    shopify_connection.settings = {**(shopify_connection.settings or {}), "flows": ["orders", "payouts"]}
    shopify_connection.save()
    assert payouts_import_all() == 1
    assert Payout.objects.filter(connection=shopify_connection).count() == 1
