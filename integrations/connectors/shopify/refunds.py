"""Shopify refunds (the `refunds/create` webhook, REST JSON) in our words: a StorefrontRefund.

What Shopify sends and how it is read:
- `refund_line_items[]`: `line_item_id`, `quantity`, `restock_type` (no_restock | cancel | return |
  legacy_restock), `subtotal_set` (the units' amount after their discounts) and `total_tax_set`; the
  embedded `line_item` names the SKU and the tax rates (else the stored order's line does).
- Shipping: `refund_shipping_lines[]` (`subtotal_amount_set`, `tax_amount_set`, 2024-10 and later);
  without them, `order_adjustments[]` of kind `shipping_refund`.
- `duties[]` (`duty_id`, `amount_set`): duties given back.
- Other `order_adjustments[]` (kind `refund_discrepancy`): money returned beyond (or short of) what
  the lines come to, such as a goodwill refund with no line. Order adjustments are amounts added to
  the order, so what a refund credits is their negation (a shipping refund of 8.00 is "-8.00").
- `transactions[]` of kind `refund` and status `success`: the money returned, which the credit memo
  must total.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from integrations.domain import RefundLine, StorefrontRefund, TaxLine

from . import ShopifyClient, _Basis

RESTOCKING_TYPES = {"return", "legacy_restock"}  # the units come back to the shop's stock
_read = ShopifyClient


def _time(value, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where} {value!r} is not an ISO 8601 timestamp") from None


def _split_tax(tax: Decimal, rates: list[TaxLine]) -> tuple[TaxLine, ...]:
    """The refunded tax over the line's own tax lines, in proportion to what each charged (the last
    takes what remains, so the parts add up exactly). No rate known: one line at rate 0, which the
    tax-code mapping then names."""
    if not tax and not rates:
        return ()
    if len(rates) <= 1:
        rate = rates[0] if rates else TaxLine(rate=Decimal(0), amount=Decimal(0))
        return (TaxLine(rate=rate.rate, amount=tax, title=rate.title, country=rate.country),)
    charged = sum((r.amount for r in rates), Decimal(0))
    parts, left = [], tax
    for i, rate in enumerate(rates):
        share = left if i == len(rates) - 1 else (tax * rate.amount / charged if charged else Decimal(0))
        left -= share
        parts.append(TaxLine(rate=rate.rate, amount=share, title=rate.title, country=rate.country))
    return tuple(parts)


def _by_id(rows: list, where: str) -> dict[str, dict]:
    found = {}
    for i, row in enumerate(rows):
        row = _read._object(row, f"{where}[{i}]")
        if row.get("id") is not None:
            found[_read._id(row.get("id"), f"{where}[{i}].id")] = row
    return found


def refund_from_payload(payload: dict, order_payload: dict | None = None, *,
                        currency_basis: str = "shop") -> StorefrontRefund:
    """Translate one refund. `order_payload` (the stored order) fills in what the refund does not
    repeat: the currency, whether taxes are included, the rates of shipping lines. ValueError names
    what is malformed."""
    if not isinstance(payload, dict):
        raise ValueError("refund payload must be a JSON object")
    order = order_payload if isinstance(order_payload, dict) else {}
    refund_id = _read._id(payload.get("id"), "refund.id", required=True)
    order_id = _read._id(payload.get("order_id"), "refund.order_id", required=True)
    shop_currency = _read._currency(order, "currency") if order else ""
    presentment = (_read._currency(order, "presentment_currency") if order else "") or shop_currency
    if currency_basis == "presentment":
        basis, currency = _Basis("presentment_money", plain_ok=presentment == shop_currency), presentment
    else:
        basis, currency = _Basis("shop_money", plain_ok=True), shop_currency
    order_lines = _by_id(_read._list(order.get("line_items"), "order.line_items"), "order.line_items")
    order_shipping = _read._list(order.get("shipping_lines"), "order.shipping_lines")
    shipping_by_id = _by_id(order_shipping, "order.shipping_lines")

    lines: list[RefundLine] = []
    for i, item in enumerate(_read._list(payload.get("refund_line_items"), "refund.refund_line_items")):
        at = f"refund.refund_line_items[{i}]"
        item = _read._object(item, at)
        line_id = _read._id(item.get("line_item_id"), f"{at}.line_item_id")
        line_item = _read._object(item.get("line_item"), f"{at}.line_item") or order_lines.get(line_id, {})
        currency = currency or _money_currency(item, "subtotal", basis)
        quantity = _read._quantity(item.get("quantity"), f"{at}.quantity")
        if quantity == 0:
            continue
        amount = _read._money(item, "subtotal", at, basis)
        tax = _read._money(item, "total_tax", at, basis, default=Decimal(0))
        rates = list(_read._tax_lines(line_item, f"{at}.line_item", basis)) if line_item else []
        restock_type = _read._text(item.get("restock_type"), f"{at}.restock_type").lower()
        lines.append(RefundLine(
            kind="item", amount=amount, tax_lines=_split_tax(tax, rates), quantity=quantity,
            sku=_read._text(line_item.get("sku"), f"{at}.line_item.sku"),
            name=_read._text(line_item.get("name") or line_item.get("title"), f"{at}.line_item.name"),
            line_id=line_id, restock=restock_type in RESTOCKING_TYPES,
        ))

    shipping_lines = _read._list(payload.get("refund_shipping_lines"), "refund.refund_shipping_lines")
    for i, row in enumerate(shipping_lines):
        at = f"refund.refund_shipping_lines[{i}]"
        row = _read._object(row, at)
        shipping_id = _read._id(row.get("shipping_line_id"), f"{at}.shipping_line_id")
        shipping = (_read._object(row.get("shipping_line"), f"{at}.shipping_line")
                    or shipping_by_id.get(shipping_id) or (order_shipping[0] if order_shipping else {}))
        amount = _read._money(row, "subtotal_amount", at, basis)
        tax = _read._money(row, "tax_amount", at, basis, default=Decimal(0))
        rates = list(_read._tax_lines(shipping, f"{at}.shipping_line", basis)) if shipping else []
        if amount or tax:
            lines.append(RefundLine(kind="shipping", amount=amount, tax_lines=_split_tax(tax, rates),
                                    name=_read._text(shipping.get("title"), f"{at}.title") or "Shipping",
                                    line_id=shipping_id))

    first_shipping_rates = (list(_read._tax_lines(order_shipping[0], "order.shipping_lines[0]", basis))
                            if order_shipping else [])
    for i, adjustment in enumerate(_read._list(payload.get("order_adjustments"), "refund.order_adjustments")):
        at = f"refund.order_adjustments[{i}]"
        adjustment = _read._object(adjustment, at)
        kind = _read._text(adjustment.get("kind"), f"{at}.kind").lower()
        amount = -_read._money(adjustment, "amount", at, basis)
        tax = -_read._money(adjustment, "tax_amount", at, basis, default=Decimal(0))
        if not amount and not tax:
            continue
        if kind == "shipping_refund":
            if shipping_lines:
                continue  # the same money, stated again for older readers
            lines.append(RefundLine(kind="shipping", amount=amount, tax_lines=_split_tax(tax, first_shipping_rates),
                                    name="Shipping refund"))
        else:
            reason = _read._text(adjustment.get("reason"), f"{at}.reason")
            lines.append(RefundLine(kind="goodwill", amount=amount, tax_lines=_split_tax(tax, []) if tax else (),
                                    name=reason or "Refund not on a line"))

    for i, duty in enumerate(_read._list(payload.get("duties"), "refund.duties")):
        at = f"refund.duties[{i}]"
        duty = _read._object(duty, at)
        amount = _read._money(duty, "amount", at, basis)
        if amount:
            lines.append(RefundLine(kind="duty", amount=amount, name="Duties refund",
                                    line_id=_read._id(duty.get("duty_id"), f"{at}.duty_id")))

    total, any_money = Decimal(0), False
    for i, transaction in enumerate(_read._list(payload.get("transactions"), "refund.transactions")):
        at = f"refund.transactions[{i}]"
        transaction = _read._object(transaction, at)
        kind = _read._text(transaction.get("kind"), f"{at}.kind").lower()
        status = _read._text(transaction.get("status"), f"{at}.status").lower()
        if (kind, status) != ("refund", "success"):
            continue
        paid_in = _read._text(transaction.get("currency"), f"{at}.currency").upper()
        if transaction.get("amount_set") is not None:
            amount = _read._money(transaction, "amount", at, basis)
        elif currency and paid_in and paid_in != currency:
            raise ValueError(f"{at} was paid in {paid_in}, not in {currency}, and states no {basis.bag}")
        else:
            amount = _read._decimal(transaction.get("amount"), f"{at}.amount")
        currency = currency or paid_in
        total += amount
        any_money = True
    if not currency:
        raise ValueError("refund names no currency (and its order is not known)")
    return StorefrontRefund(
        storefront_refund_id=refund_id, storefront_order_id=order_id, currency=currency, lines=tuple(lines),
        total=total if any_money else Decimal(0),
        created_at=_time(payload.get("created_at"), "refund.created_at"),
        taxes_included=bool(order.get("taxes_included")) if order else False,
        note=_read._text(payload.get("note"), "refund.note"),
    )


def _money_currency(obj: dict, key: str, basis: _Basis) -> str:
    bag = (obj.get(f"{key}_set") or {}).get(basis.bag) if isinstance(obj.get(f"{key}_set"), dict) else None
    code = bag.get("currency_code") if isinstance(bag, dict) else None
    return str(code).upper() if isinstance(code, str) and len(code) == 3 else ""
