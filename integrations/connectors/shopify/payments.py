"""Shopify Payments payouts and balance transactions (`shopifyPaymentsAccount`), read by cursor and
translated into our words: `PaymentsPayout` and `PaymentsBalanceTransaction`, money in minor units.

What Shopify sends and how it is read (Admin GraphQL, fields of the published 2026-04 schema):
- A payout: `id`, `status` (SCHEDULED, PAID, FAILED, CANCELED), `transactionType` (DEPOSIT or
  WITHDRAWAL: a withdrawal takes money from the bank), `issuedAt`, `net` (what the bank receives) and
  `summary` (gross and fee per kind: charges, refunds, adjustments, reserved funds, retried payouts).
- A balance transaction: `type` (ShopifyPaymentsTransactionType), `amount` (gross, signed: a refund
  is negative), `fee` (what Shopify kept, positive), `net` (amount - fee), `sourceType`/`sourceId`,
  `sourceOrderTransactionId`, `associatedOrder { id }`, `associatedPayout { id }` (null id while the
  money is not yet paid out), `adjustmentReason` (adjustments only), `test`, `transactionDate`.
- Currency conversion has its own type only from 2026-10 (CURRENCY_CONVERSION, read when it comes);
  on 2026-04 it is an adjustment whose `adjustmentReason` says so.
The account is null for a shop that does not use Shopify Payments: `PaymentsNotEnabled`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from integrations.domain import to_minor_units

from ..base import PermanentError

# Requested cost (Shopify's model: each object 1, a connection `first` times what a node holds) must stay
# under the 1,000-point single-query limit: a payout holds 12 objects (net and 10 summary amounts).
PAYOUTS_PAGE_SIZE = 50
TRANSACTIONS_PAGE_SIZE = 100
_MONEY = "{ amount currencyCode }"

PAYOUTS = """
query ShopifyPaymentsPayouts($first: Int!, $after: String, $query: String) {
  shopifyPaymentsAccount {
    id
    payouts(first: $first, after: $after, query: $query, sortKey: ISSUED_AT) {
      nodes {
        id
        status
        transactionType
        issuedAt
        net MONEY
        summary {
          chargesGross MONEY
          chargesFee MONEY
          refundsFeeGross MONEY
          refundsFee MONEY
          adjustmentsGross MONEY
          adjustmentsFee MONEY
          reservedFundsGross MONEY
          reservedFundsFee MONEY
          retriedPayoutsGross MONEY
          retriedPayoutsFee MONEY
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}""".replace("MONEY", _MONEY)

BALANCE_TRANSACTIONS = """
query ShopifyPaymentsBalanceTransactions($first: Int!, $after: String, $query: String) {
  shopifyPaymentsAccount {
    id
    balanceTransactions(first: $first, after: $after, query: $query, sortKey: PROCESSED_AT) {
      nodes {
        id
        type
        test
        transactionDate
        adjustmentReason
        sourceType
        sourceId
        sourceOrderTransactionId
        amount MONEY
        fee MONEY
        net MONEY
        associatedOrder { id }
        associatedPayout { id status }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}""".replace("MONEY", _MONEY)

# ShopifyPaymentsTransactionType -> our kind. Whatever is not named here is "other" (kept, shown, and
# left for a person: never dropped).
TYPES = {
    "CHARGE": "charge",
    "REFUND": "refund", "REFUND_FAILURE": "refund",
    "DISPUTE_WITHDRAWAL": "dispute", "CHARGEBACK_HOLD": "dispute",
    "DISPUTE_REVERSAL": "dispute_reversal", "CHARGEBACK_HOLD_RELEASE": "dispute_reversal",
    "RESERVED_FUNDS": "reserve", "RESERVED_FUNDS_WITHDRAWAL": "reserve", "RISK_WITHDRAWAL": "reserve",
    "RESERVED_FUNDS_REVERSAL": "reserve_release", "RISK_REVERSAL": "reserve_release",
    "ADJUSTMENT": "adjustment", "CHARGE_ADJUSTMENT": "adjustment", "REFUND_ADJUSTMENT": "adjustment",
    "TRANSFER": "payout", "TRANSFER_FAILURE": "payout", "TRANSFER_CANCEL": "payout", "TRANSFER_REFUND": "payout",
    "CURRENCY_CONVERSION": "currency_conversion",  # 2026-10 and later
    "CHARGEBACK_FEE": "fee", "CHARGEBACK_FEE_REFUND": "fee", "STRIPE_FEE": "fee", "APPLICATION_FEE_REFUND": "fee",
    "REFERRAL_FEE": "fee", "REFERRAL_FEE_TAX": "fee", "BILLING_DEBIT": "fee", "BILLING_DEBIT_REVERSAL": "fee",
}
_FX_WORDS = ("currency", "conversion", "exchange", "fx")


class PaymentsNotEnabled(PermanentError):
    """The shop has no Shopify Payments account (or the token may not read it)."""


@dataclass(frozen=True)
class PaymentsPayout:
    external_id: str
    status: str
    currency: str
    amount_minor: int  # net to the bank; negative for a withdrawal
    gross_minor: int
    fee_minor: int
    payout_date: date
    raw: dict


@dataclass(frozen=True)
class PaymentsBalanceTransaction:
    external_id: str
    type: str  # our kind (BalanceTransaction.Type values)
    vendor_type: str
    source_type: str
    source_id: str
    source_order_transaction_id: str
    storefront_order_id: str  # the order's numeric id, as the order flows store it
    payout_external_id: str  # blank while not yet paid out
    currency: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    adjustment_reason: str
    test: bool
    transaction_date: datetime | None
    raw: dict


def _minor(money, where: str) -> tuple[int, str]:
    if not isinstance(money, dict):
        raise ValueError(f"{where} is missing")
    currency = str(money.get("currencyCode") or "").upper()
    if len(currency) != 3:
        raise ValueError(f"{where}.currencyCode {money.get('currencyCode')!r} is not a currency code")
    try:
        return to_minor_units(Decimal(str(money.get("amount"))), currency), currency
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{where}.amount {money.get('amount')!r} is not an amount in {currency}") from exc


def _numeric(gid_value) -> str:
    """gid://shopify/Order/5801000001 -> 5801000001 (the id the webhooks and order links use)."""
    return str(gid_value or "").split("?", 1)[0].rsplit("/", 1)[-1]


def _time(value, where: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where} {value!r} is not an ISO 8601 timestamp") from None


def kind_of(vendor_type: str, adjustment_reason: str = "") -> str:
    kind = TYPES.get(vendor_type, "other")
    if kind == "adjustment" and any(w in (adjustment_reason or "").lower() for w in _FX_WORDS):
        return "currency_conversion"
    return kind


def payout_from_node(node: dict) -> PaymentsPayout:
    where = f"payout {node.get('id')}"
    net, currency = _minor(node.get("net"), f"{where}.net")
    summary = node.get("summary") or {}
    gross = fee = 0
    for name in ("chargesGross", "refundsFeeGross", "adjustmentsGross", "reservedFundsGross", "retriedPayoutsGross"):
        if summary.get(name):
            gross += _minor(summary[name], f"{where}.summary.{name}")[0]
    for name in ("chargesFee", "refundsFee", "adjustmentsFee", "reservedFundsFee", "retriedPayoutsFee"):
        if summary.get(name):
            fee += _minor(summary[name], f"{where}.summary.{name}")[0]
    if node.get("transactionType") == "WITHDRAWAL":
        net = -abs(net)
    issued = _time(node.get("issuedAt"), f"{where}.issuedAt")
    if issued is None:
        raise ValueError(f"{where}.issuedAt is missing")
    return PaymentsPayout(external_id=str(node["id"]), status=str(node.get("status") or ""), currency=currency,
                          amount_minor=net, gross_minor=gross, fee_minor=fee, payout_date=issued.date(), raw=node)


def balance_transaction_from_node(node: dict) -> PaymentsBalanceTransaction:
    where = f"balance transaction {node.get('id')}"
    amount, currency = _minor(node.get("amount"), f"{where}.amount")
    fee, _ = _minor(node.get("fee"), f"{where}.fee")
    net, _ = _minor(node.get("net"), f"{where}.net")
    vendor_type = str(node.get("type") or "")
    reason = str(node.get("adjustmentReason") or "")
    return PaymentsBalanceTransaction(
        external_id=str(node["id"]), type=kind_of(vendor_type, reason), vendor_type=vendor_type,
        source_type=str(node.get("sourceType") or ""), source_id=str(node.get("sourceId") or ""),
        source_order_transaction_id=str(node.get("sourceOrderTransactionId") or ""),
        storefront_order_id=_numeric((node.get("associatedOrder") or {}).get("id")),
        payout_external_id=str((node.get("associatedPayout") or {}).get("id") or ""),
        currency=currency, amount_minor=amount, fee_minor=fee, net_minor=net, adjustment_reason=reason,
        test=bool(node.get("test")), transaction_date=_time(node.get("transactionDate"), f"{where}.transactionDate"),
        raw=node,
    )


def _pages(client, document: str, root: str, query: str | None, page_size: int) -> Iterator[dict]:
    after = None
    seen: set[str] = set()
    while True:
        data = client.graphql(document, {"first": page_size, "after": after, "query": query})
        account = data.get("shopifyPaymentsAccount")
        if account is None:
            raise PaymentsNotEnabled("the shop has no Shopify Payments account (or the app may not read payouts: "
                                     "it needs read_shopify_payments_payouts)", code="payments_not_enabled")
        page = account[root]
        for node in page["nodes"]:
            if node["id"] not in seen:  # a cursor is a position in the sort: a moved row may come again
                seen.add(node["id"])
                yield node
        if not page["pageInfo"]["hasNextPage"]:
            return
        after = page["pageInfo"]["endCursor"]


def payouts_since(client, since: date | None = None) -> Iterator[PaymentsPayout]:
    query = f"issued_at:>={since.isoformat()}" if since else None
    for node in _pages(client, PAYOUTS, "payouts", query, PAYOUTS_PAGE_SIZE):
        yield payout_from_node(node)


def balance_transactions_since(client, since: date | None = None) -> Iterator[PaymentsBalanceTransaction]:
    query = f"processed_at:>={since.isoformat()}" if since else None
    for node in _pages(client, BALANCE_TRANSACTIONS, "balanceTransactions", query, TRANSACTIONS_PAGE_SIZE):
        yield balance_transaction_from_node(node)
