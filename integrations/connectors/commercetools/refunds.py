"""commercetools refunds in our words: a Payment's transaction of type Refund in state Success,
credited against the order's returned items (Order.returnInfo[].items[]).

commercetools keeps the money and the goods apart: `addReturnInfo` (message ReturnInfoAdded) records
the return items (lineItemId, quantity, shipmentState Advised | Returned | BackInStock | Unusable,
paymentState), and the money goes back as a Payment transaction (type Refund, state Success; messages
PaymentTransactionAdded / PaymentTransactionStateChanged on the payment). The order names its
payments in `paymentInfo.payments`. One refund transaction becomes one credit memo: it credits the
returned items no earlier refund credited (a return with no refund yet waits for its money), and
money with no returned item is goodwill.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from integrations.domain import RefundLine, StorefrontRefund, TaxLine, currency_exponent

from . import CommercetoolsClient

RESTOCKED_STATES = {"Returned", "BackInStock"}  # the goods are back at the merchant
NOT_REFUNDED = {"NonRefundable", "NotRefunded"}  # return items whose money the merchant keeps


def payment_refunds(client: CommercetoolsClient, payment_id: str) -> tuple[dict | None, list[dict]]:
    """(the order that pays with this payment, or None; the payment's successful Refund transactions)."""
    payment = client.api("GET", f"payments/{payment_id}")
    quoted = payment_id.replace("\\", "\\\\").replace('"', '\\"')
    found = client.query_orders(where=f'paymentInfo(payments(id = "{quoted}"))', limit=1, with_total=False)
    order = (found.get("results") or [None])[0]
    refunds = [t for t in payment.get("transactions") or []
               if isinstance(t, dict) and t.get("type") == "Refund" and t.get("state") == "Success"]
    return order, refunds


def stored_refund(order: dict | None, payment_id: str, transaction: dict, *, order_id: str = "",
                  credited_return_items: set[str] = frozenset()) -> dict:
    """What Ledgerline stores of one refund transaction: the transaction, the order as it was, and
    the return items this refund credits (those no earlier refund of the order credited)."""
    items = []
    for info in (order or {}).get("returnInfo") or []:
        for item in info.get("items") or []:
            if (isinstance(item, dict) and item.get("type", "LineItemReturnItem") == "LineItemReturnItem"
                    and item.get("id") not in credited_return_items and item.get("paymentState") not in NOT_REFUNDED):
                items.append(item)
    return {"transaction": transaction, "payment_id": payment_id,
            "order_id": (order or {}).get("id") or order_id, "order": order, "return_items": items}


def _money(value, where: str) -> tuple[Decimal, str]:
    if not isinstance(value, dict) or not isinstance(value.get("currencyCode"), str):
        raise ValueError(f"{where} is not a Money object")
    currency = value["currencyCode"].upper()
    if value.get("type") == "highPrecision":
        units, digits = value.get("preciseAmount"), value.get("fractionDigits")
    else:
        units, digits = value.get("centAmount"), value.get("fractionDigits", currency_exponent(currency))
    if isinstance(units, bool) or not isinstance(units, int) or isinstance(digits, bool) or not isinstance(digits, int):
        raise ValueError(f"{where} has no whole centAmount")
    return Decimal(f"{units}E-{digits}"), currency


def refund_from_stored(stored: dict) -> StorefrontRefund:
    """The stored refund (see stored_refund) as a StorefrontRefund; ValueError names what is malformed."""
    if not isinstance(stored, dict) or not isinstance(stored.get("transaction"), dict):
        raise ValueError("commercetools refund: the transaction is missing")
    transaction = stored["transaction"]
    if not isinstance(transaction.get("id"), str):
        raise ValueError("commercetools refund: transaction.id is missing")
    total, currency = _money(transaction.get("amount"), "transaction.amount")
    order_json = stored.get("order")
    lines: list[RefundLine] = []
    taxes_included = False
    if isinstance(order_json, dict):
        order = CommercetoolsClient.order_from_payload(order_json)
        taxes_included = order.taxes_included
        by_id = {line.line_id: line for line in order.lines}
        for i, item in enumerate(stored.get("return_items") or []):
            line = by_id.get(item.get("lineItemId"))
            quantity = item.get("quantity")
            if line is None:
                raise ValueError(f"return item {item.get('id')} names line item {item.get('lineItemId')!r}, "
                                 "which is not on the order")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= line.quantity:
                raise ValueError(f"return item {item.get('id')} has quantity {quantity!r} of {line.quantity}")
            line_total = line.total if line.total is not None else line.unit_price * line.quantity - line.discount
            share = Decimal(quantity) / Decimal(line.quantity)
            lines.append(RefundLine(
                kind="item", amount=line_total * share, quantity=quantity, sku=line.sku, name=line.name,
                line_id=line.line_id, restock=item.get("shipmentState") in RESTOCKED_STATES,
                tax_lines=tuple(TaxLine(rate=t.rate, amount=t.amount * share, title=t.title, country=t.country)
                                for t in line.tax_lines),
            ))
    if not lines:
        lines.append(RefundLine(kind="goodwill", amount=total, name="Refund with no returned item"))
    at = transaction.get("timestamp")
    try:
        created = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else None
    except ValueError:
        created = None
    return StorefrontRefund(
        storefront_refund_id=transaction["id"], storefront_order_id=str(stored.get("order_id") or ""),
        currency=currency, lines=tuple(lines), total=total, created_at=created, taxes_included=taxes_included,
        note=f"commercetools refund {transaction.get('interactionId') or transaction['id']}",
        extra={"return_item_ids": [item.get("id") for item in stored.get("return_items") or []]},
    )
