"""The sandbox shop's Shopify Payments account: balance transactions and payouts, as Shopify keeps them.

A paid order is a CHARGE (gross = the order's total, fee = the account's rate, net = gross - fee), or
several when it was paid in several captures (a split tender, a later capture), each with its own
order transaction; a refund a REFUND (negative, no fee); a chargeback a DISPUTE_WITHDRAWAL (negative, with the chargeback
fee) and, when won, a DISPUTE_REVERSAL; reserves RESERVED_FUNDS / RESERVED_FUNDS_REVERSAL; an
adjustment an ADJUSTMENT with its reason; a currency conversion, which has no transaction type before
2026-10, a SYSTEM_ADJUSTMENT whose `adjustmentReason` is `currency_conversion`. A payout run groups
what is not yet paid out by day (`transactionDate`), one payout per day, with a TRANSFER transaction
for the money that left the balance. `associatedPayout { id }` is null until then.

Served as `shopifyPaymentsAccount { payouts, balanceTransactions }` with the published schema's names
(amounts are MoneyV2, BigInt ids are strings), filtered by the search terms Shopify documents
(`issued_at`, `processed_at`, `payments_transfer_id`), paged by cursor, only to a token with
`read_shopify_payments_payouts`. Mixed into ShopifySandbox; imports nothing of the product.
"""
from __future__ import annotations

import itertools
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from graphql import GraphQLError

from .server import Request, Response

PAYMENTS_SCOPE = "read_shopify_payments_payouts"
CHARGE_FEE_PERCENT = Decimal("1.5")  # the account's card rate: 1.5% + 0.25 per charge
CHARGE_FEE_FIXED = Decimal("0.25")
CHARGEBACK_FEE = Decimal("15.00")

PAYMENTS_SDL = """
scalar BigInt
enum PayoutSortKeys { ADJUSTMENT_GROSS ADVANCE_GROSS AMOUNT CHARGE_GROSS DUTIES_GROSS FEE_AMOUNT ID ISSUED_AT REFUND_GROSS SHIPPING_LABEL_GROSS STATUS }
enum BalanceTransactionSortKeys { AMOUNT FEE ID NET ORDER_NAME PAYMENT_METHOD_NAME PAYOUT_DATE PAYOUT_STATUS PROCESSED_AT TRANSACTION_TYPE }
enum ShopifyPaymentsPayoutTransactionType { DEPOSIT WITHDRAWAL }
extend type Query { shopifyPaymentsAccount: ShopifyPaymentsAccount }
type ShopifyPaymentsAccount {
  id: ID!
  activated: Boolean!
  defaultCurrency: String!
  payouts(first: Int, after: String, last: Int, before: String, query: String, reverse: Boolean, sortKey: PayoutSortKeys, savedSearchId: ID, transactionType: ShopifyPaymentsPayoutTransactionType): ShopifyPaymentsPayoutConnection!
  balanceTransactions(first: Int, after: String, last: Int, before: String, query: String, reverse: Boolean, sortKey: BalanceTransactionSortKeys, savedSearchId: ID, hideTransfers: Boolean): ShopifyPaymentsBalanceTransactionConnection!
}
type ShopifyPaymentsPayoutSummary {
  adjustmentsFee: MoneyV2! adjustmentsGross: MoneyV2! advanceFees: MoneyV2! advanceGross: MoneyV2!
  chargesFee: MoneyV2! chargesGross: MoneyV2! refundsFee: MoneyV2! refundsFeeGross: MoneyV2!
  reservedFundsFee: MoneyV2! reservedFundsGross: MoneyV2! retriedPayoutsFee: MoneyV2! retriedPayoutsGross: MoneyV2!
  usdcRebateCreditAmount: MoneyV2!
}
type ShopifyPaymentsPayout {
  id: ID! legacyResourceId: String! status: String! transactionType: String! issuedAt: DateTime!
  net: MoneyV2! gross: MoneyV2! summary: ShopifyPaymentsPayoutSummary! externalTraceId: String
}
type ShopifyPaymentsPayoutEdge { cursor: String! node: ShopifyPaymentsPayout! }
type ShopifyPaymentsPayoutConnection { edges: [ShopifyPaymentsPayoutEdge!]! nodes: [ShopifyPaymentsPayout!]! pageInfo: PageInfo! }
type ShopifyPaymentsAssociatedOrder { id: ID! name: String! }
type ShopifyPaymentsBalanceTransactionAssociatedPayout { id: ID status: String }
type ShopifyPaymentsBalanceTransaction {
  id: ID! type: String! test: Boolean! transactionDate: DateTime! adjustmentReason: String
  sourceType: String sourceId: BigInt sourceOrderTransactionId: BigInt
  amount: MoneyV2! fee: MoneyV2! net: MoneyV2!
  associatedOrder: ShopifyPaymentsAssociatedOrder
  associatedPayout: ShopifyPaymentsBalanceTransactionAssociatedPayout!
}
type ShopifyPaymentsBalanceTransactionEdge { cursor: String! node: ShopifyPaymentsBalanceTransaction! }
type ShopifyPaymentsBalanceTransactionConnection { edges: [ShopifyPaymentsBalanceTransactionEdge!]! nodes: [ShopifyPaymentsBalanceTransaction!]! pageInfo: PageInfo! }
"""

def _gid(kind: str, number) -> str:
    return f"gid://shopify/{kind}/{number}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _cents(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class ShopifyPayments:
    """Needs the sandbox's `lock`, `orders`, `currency` and `tokens`."""

    def _reset_payments(self) -> None:
        self.balance_transactions: dict[int, dict] = {}
        self._charged_orders: set = set()  # the orders with a CHARGE (a paid order is charged once)
        self.payouts: dict[int, dict] = {}
        self.payments_fee = (CHARGE_FEE_PERCENT, CHARGE_FEE_FIXED)
        self._payment_ids = {"ShopifyPaymentsBalanceTransaction": itertools.count(2_201_000_001),
                             "ShopifyPaymentsPayout": itertools.count(8_801_000_001),
                             "OrderTransaction": itertools.count(6_601_000_001),
                             "ShopifyPaymentsDispute": itertools.count(3_301_000_001),
                             "Refund": itertools.count(9_101_000_001),
                             "Adjustment": itertools.count(7_701_000_001)}

    def register_payment_routes(self) -> None:
        self.route("POST", r"/_sandbox/payments/charges", self.admin_payments_charge)
        self.route("POST", r"/_sandbox/payments/captures", self.admin_payments_captures)
        self.route("POST", r"/_sandbox/payments/refunds", self.admin_payments_refund)
        self.route("POST", r"/_sandbox/payments/disputes", self.admin_payments_dispute)
        self.route("POST", r"/_sandbox/payments/disputes/(?P<number>\d+)/won", self.admin_payments_dispute_won)
        self.route("POST", r"/_sandbox/payments/reserves", self.admin_payments_reserve)
        self.route("POST", r"/_sandbox/payments/adjustments", self.admin_payments_adjustment)
        self.route("POST", r"/_sandbox/payments/currency-conversions", self.admin_payments_fx)
        self.route("POST", r"/_sandbox/payments/payouts", self.admin_payments_payout)

    # --- the ledger --------------------------------------------------------------------------------

    def _ledger_add(self, type_: str, amount, *, fee=0, order: dict | None = None, source_type: str, source_id=None,
                order_transaction=None, reason: str | None = None, test: bool = False, when: datetime | None = None,
                currency: str | None = None) -> dict:
        """One balance transaction. Call under the lock."""
        number = next(self._payment_ids["ShopifyPaymentsBalanceTransaction"])
        amount, fee = _cents(amount), _cents(fee)
        row = {"number": number, "type": type_, "amount": amount, "fee": fee, "net": amount - fee,
               "currency": currency or (order or {}).get("currency") or self.currency, "order": (order or {}).get("id"),
               "order_name": (order or {}).get("name", ""), "source_type": source_type,
               "source_id": source_id, "order_transaction": order_transaction, "reason": reason, "test": test,
               "date": when or datetime.now(timezone.utc), "payout": None}
        self.balance_transactions[number] = row
        if type_ == "CHARGE":
            self._charged_orders.add(row["order"])
        return dict(row)

    def payments_charge(self, order_id, *, amount=None, test: bool | None = None, when: datetime | None = None) -> dict:
        """The order's payment captured through Shopify Payments (done when an order is paid)."""
        with self.lock:
            order = self._order(order_id)
            gross = _cents(amount if amount is not None else order["total_price"])
            percent, fixed = self.payments_fee
            fee = _cents(gross * percent / 100 + fixed)
            transaction = next(self._payment_ids["OrderTransaction"])
            return self._ledger_add("CHARGE", gross, fee=fee, order=order, source_type="CHARGE", source_id=transaction,
                                order_transaction=transaction, when=when,
                                test=bool(order.get("test")) if test is None else test)

    def payments_captures(self, order_id, amounts, *, when: datetime | None = None) -> list[dict]:
        """The order's payment taken in several captures (a split tender, or an authorisation captured in
        parts, the rest later): one CHARGE each, with its own order transaction and its own fee. Paying
        the order afterwards charges nothing more."""
        if not amounts:
            raise ValueError("at least one capture amount is needed")
        return [self.payments_charge(order_id, amount=amount, when=when) for amount in amounts]

    def payments_on_paid(self, order_id) -> dict | None:
        """The order was paid: its CHARGE, once (a repeated orders/paid charges nothing more)."""
        with self.lock:
            number = self._order(order_id)["id"]
            if number in self._charged_orders:
                return None
        return self.payments_charge(order_id)

    def payments_refund(self, order_id, amount, *, refund_id=None, when: datetime | None = None) -> dict:
        with self.lock:
            order = self._order(order_id)
            refund = int(refund_id) if refund_id else next(self._payment_ids["Refund"])
            return self._ledger_add("REFUND", -_cents(amount), order=order, source_type="REFUND", source_id=refund,
                                order_transaction=next(self._payment_ids["OrderTransaction"]), when=when,
                                test=bool(order.get("test")))

    def payments_dispute(self, order_id, amount=None, *, when: datetime | None = None) -> dict:
        """A chargeback: the disputed amount is taken back, with Shopify's chargeback fee."""
        with self.lock:
            order = self._order(order_id)
            dispute = next(self._payment_ids["ShopifyPaymentsDispute"])
            return self._ledger_add("DISPUTE_WITHDRAWAL", -_cents(amount if amount is not None else order["total_price"]),
                                fee=CHARGEBACK_FEE, order=order, source_type="DISPUTE", source_id=dispute, when=when)

    def payments_dispute_won(self, dispute_number: int, *, when: datetime | None = None) -> dict:
        with self.lock:
            withdrawal = next((t for t in self.balance_transactions.values() if t["type"] == "DISPUTE_WITHDRAWAL"
                               and t["source_id"] == int(dispute_number)), None)
            if withdrawal is None:
                raise KeyError(f"no dispute {dispute_number}")
            order = self.orders.get(withdrawal["order"])
            return self._ledger_add("DISPUTE_REVERSAL", -withdrawal["amount"], order=order, source_type="DISPUTE",
                                source_id=withdrawal["source_id"], when=when)

    def payments_reserve(self, amount, *, release: bool = False, when: datetime | None = None) -> dict:
        with self.lock:
            amount = _cents(amount)
            return self._ledger_add("RESERVED_FUNDS_REVERSAL" if release else "RESERVED_FUNDS",
                                amount if release else -amount, source_type="SYSTEM_ADJUSTMENT", when=when)

    def payments_adjustment(self, amount, reason: str, *, order_id=None, when: datetime | None = None) -> dict:
        with self.lock:
            order = self._order(order_id) if order_id else None
            return self._ledger_add("ADJUSTMENT", amount, order=order, source_type="ADJUSTMENT", reason=reason,
                                source_id=next(self._payment_ids["Adjustment"]), when=when)

    def payments_currency_conversion(self, amount, *, when: datetime | None = None) -> dict:
        """What converting a sale in another currency into the payout currency gained or lost."""
        with self.lock:
            return self._ledger_add("ADJUSTMENT", amount, source_type="SYSTEM_ADJUSTMENT", reason="currency_conversion",
                                source_id=next(self._payment_ids["Adjustment"]), when=when)

    def payments_payout_run(self, *, up_to: date | None = None, status: str = "PAID") -> list[dict]:
        """Pay out what is not paid out yet, one payout per day of transactions (up to a day, inclusive)."""
        made = []
        with self.lock:
            by_day: dict[date, list[dict]] = {}
            for row in sorted(self.balance_transactions.values(), key=lambda r: (r["date"], r["number"])):
                if row["payout"] is None and row["type"] != "TRANSFER" and (up_to is None or row["date"].date() <= up_to):
                    by_day.setdefault(row["date"].date(), []).append(row)
            for day, rows in sorted(by_day.items()):
                number = next(self._payment_ids["ShopifyPaymentsPayout"])
                net = sum((r["net"] for r in rows), Decimal(0))
                # Issued at 23:00 of its day, or at its last transaction when that came later in the day
                # (a run after 23:00 UTC), so the transfer always lists after what it pays out.
                issued = max(datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc).replace(hour=23),
                             max(r["date"] for r in rows))
                payout = {"number": number, "status": status, "issued_at": issued, "currency": self.currency,
                          "transaction_type": "DEPOSIT" if net >= 0 else "WITHDRAWAL", "net": abs(net)}
                self.payouts[number] = payout
                for row in rows:
                    row["payout"] = number
                transfer = self._ledger_add("TRANSFER", -net, source_type="TRANSFER", source_id=number, when=issued)
                self.balance_transactions[transfer["number"]]["payout"] = number
                made.append(dict(payout))
        return made

    # --- GraphQL ----------------------------------------------------------------------------------

    def _payments_money(self, amount: Decimal, currency: str) -> dict:
        return {"amount": str(amount), "currencyCode": currency}

    def _payout_node(self, payout: dict) -> dict:
        currency = payout["currency"]
        rows = [r for r in self.balance_transactions.values() if r["payout"] == payout["number"] and r["type"] != "TRANSFER"]

        def total(types, key):
            return self._payments_money(sum((r[key] for r in rows if r["type"] in types), Decimal("0.00")), currency)

        other = {r["type"] for r in rows} - {"CHARGE", "REFUND", "RESERVED_FUNDS", "RESERVED_FUNDS_REVERSAL"}
        zero = self._payments_money(Decimal("0.00"), currency)
        summary = {
            "chargesGross": total({"CHARGE"}, "amount"), "chargesFee": total({"CHARGE"}, "fee"),
            "refundsFeeGross": total({"REFUND"}, "amount"), "refundsFee": total({"REFUND"}, "fee"),
            "reservedFundsGross": total({"RESERVED_FUNDS", "RESERVED_FUNDS_REVERSAL"}, "amount"),
            "reservedFundsFee": total({"RESERVED_FUNDS", "RESERVED_FUNDS_REVERSAL"}, "fee"),
            "adjustmentsGross": total(other, "amount"), "adjustmentsFee": total(other, "fee"),
            "retriedPayoutsGross": zero, "retriedPayoutsFee": zero, "advanceGross": zero, "advanceFees": zero,
            "usdcRebateCreditAmount": zero,
        }
        net = self._payments_money(payout["net"], currency)
        return {"id": _gid("ShopifyPaymentsPayout", payout["number"]), "legacyResourceId": str(payout["number"]),
                "status": payout["status"], "transactionType": payout["transaction_type"],
                "issuedAt": _iso(payout["issued_at"]), "net": net, "gross": net, "summary": summary,
                "externalTraceId": None}

    def _balance_transaction_node(self, row: dict) -> dict:
        currency = row["currency"]
        payout = self.payouts.get(row["payout"]) if row["payout"] else None
        return {
            "id": _gid("ShopifyPaymentsBalanceTransaction", row["number"]), "type": row["type"], "test": row["test"],
            "transactionDate": _iso(row["date"]), "adjustmentReason": row["reason"], "sourceType": row["source_type"],
            "sourceId": str(row["source_id"]) if row["source_id"] is not None else None,
            "sourceOrderTransactionId": str(row["order_transaction"]) if row["order_transaction"] else None,
            "amount": self._payments_money(row["amount"], currency), "fee": self._payments_money(row["fee"], currency),
            "net": self._payments_money(row["net"], currency),
            "associatedOrder": {"id": _gid("Order", row["order"]), "name": row["order_name"]} if row["order"] else None,
            "associatedPayout": {"id": _gid("ShopifyPaymentsPayout", payout["number"]) if payout else None,
                                 "status": payout["status"] if payout else None},
        }

    @staticmethod
    def _payments_matches(terms_groups, values: dict) -> bool:
        from . import shopify_graphql as gql  # it builds its schema from PAYMENTS_SDL: imported late

        if not terms_groups:
            return True
        for terms in terms_groups:
            if all(name not in values or gql.compare(values[name], op, wanted) for name, op, wanted in terms):
                return True
        return False

    def shopify_payments_account(self, info) -> dict:
        if PAYMENTS_SCOPE not in info.context["scopes"]:
            required = f"`{PAYMENTS_SCOPE}` access scope."
            raise GraphQLError(f"Access denied for shopifyPaymentsAccount field. Required access: {required}",
                               extensions={"code": "ACCESS_DENIED", "requiredAccess": required})
        from . import shopify_graphql as gql  # it builds its schema from PAYMENTS_SDL: imported late

        sb = self

        def payouts(info, first=None, after=None, last=None, before=None, query=None, reverse=False, **_):
            groups = gql.search_terms(query)
            rows = [p for p in sb.payouts.values() if sb._payments_matches(groups, {
                "issued_at": p["issued_at"].date().isoformat(), "status": p["status"].lower(), "id": str(p["number"])})]
            rows.sort(key=lambda p: (_iso(p["issued_at"]), p["number"]), reverse=bool(reverse))
            return gql.connection(rows, first=first, after=after, last=last, before=before, reverse=bool(reverse),
                                  key=lambda p: p["number"], value=lambda p: _iso(p["issued_at"]),
                                  node=sb._payout_node)

        def balance_transactions(info, first=None, after=None, last=None, before=None, query=None, reverse=False,
                                 hideTransfers=False, **_):
            groups = gql.search_terms(query)
            rows = [r for r in sb.balance_transactions.values()
                    if not (hideTransfers and r["type"] == "TRANSFER") and sb._payments_matches(groups, {
                        "processed_at": r["date"].date().isoformat(), "transaction_type": r["type"].lower(),
                        "payments_transfer_id": str(r["payout"] or ""), "currency": r["currency"].lower()})]
            rows.sort(key=lambda r: (_iso(r["date"]), r["number"]), reverse=bool(reverse))
            return gql.connection(rows, first=first, after=after, last=last, before=before, reverse=bool(reverse),
                                  key=lambda r: r["number"], value=lambda r: _iso(r["date"]),
                                  node=sb._balance_transaction_node)

        return {"id": "gid://shopify/ShopifyPaymentsAccount/1", "activated": True, "defaultCurrency": self.currency,
                "payouts": payouts, "balanceTransactions": balance_transactions}

    # --- admin endpoints (tests, the demo) ---------------------------------------------------------

    def _payment_answer(self, request: Request, make) -> Response:
        try:
            body = request.json() or {}
            row = make(body)
        except KeyError as exc:
            return Response.json({"error": str(exc).strip("'\"")}, 404)
        except (ValueError, TypeError, ArithmeticError) as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json(self._payments_json(row), 201)

    @staticmethod
    def _payments_json(value):
        if isinstance(value, list):
            return [ShopifyPayments._payments_json(v) for v in value]
        if isinstance(value, dict):
            return {k: ShopifyPayments._payments_json(v) for k, v in value.items()}
        if isinstance(value, (Decimal, datetime, date)):
            return str(value)
        return value

    def admin_payments_charge(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_charge(b["order_id"], amount=b.get("amount")))

    def admin_payments_captures(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_captures(b["order_id"], list(b["amounts"])))

    def admin_payments_refund(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_refund(b["order_id"], b["amount"],
                                                                            refund_id=b.get("refund_id")))

    def admin_payments_dispute(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_dispute(b["order_id"], b.get("amount")))

    def admin_payments_dispute_won(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_dispute_won(int(request.params["number"])))

    def admin_payments_reserve(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_reserve(b["amount"], release=bool(b.get("release"))))

    def admin_payments_adjustment(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_adjustment(b["amount"], b.get("reason") or "other",
                                                                                order_id=b.get("order_id")))

    def admin_payments_fx(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_currency_conversion(b["amount"]))

    def admin_payments_payout(self, request: Request) -> Response:
        return self._payment_answer(request, lambda b: self.payments_payout_run(
            up_to=date.fromisoformat(b["up_to"]) if b.get("up_to") else None))
