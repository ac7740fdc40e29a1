"""Vendor-shaped payloads for tests: Shopify REST-format order webhooks, signed like Shopify signs them."""
from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from integrations.inbox.webhooks import shopify_hmac

_ids = itertools.count(5_100_000_001)
BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def shopify_order(
    *,
    order_id: int | None = None,
    number: int = 1043,
    financial_status: str = "paid",
    currency: str = "GBP",
    lines: list[dict] | None = None,
    shipping: list[dict] | None = None,
    email: str = "zoe@example.com",
    customer_id: int = 7001,
    country: str = "GB",
    updated_at: datetime | None = None,
    cancelled: bool = False,
    taxes_included: bool = False,
    total_price: str | None = None,
    **extra,
) -> dict:
    """A Shopify order as the orders/* webhooks deliver it (REST JSON, money as strings).

    The order's totals (total_price, total_tax, total_discounts, order-level tax_lines) are what
    Shopify computes from its lines; `total_price` overrides it (an inconsistent order)."""
    order_id = order_id or next(_ids)
    lines = lines if lines is not None else [{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1}]
    line_items = []
    for i, spec in enumerate(lines):
        price = spec["price"]
        tax_rate = spec.get("tax_rate", "0.2")
        tax_price = spec.get("tax_price")
        line_items.append({
            "id": order_id * 10 + i,
            "admin_graphql_api_id": f"gid://shopify/LineItem/{order_id * 10 + i}",
            "sku": spec.get("sku"),
            "title": spec.get("title", spec.get("sku") or "Custom item"),
            "name": spec.get("title", spec.get("sku") or "Custom item"),
            "variant_id": spec.get("variant_id", 4000 + i) if spec.get("sku") else None,
            "product_id": spec.get("product_id", 3000 + i) if spec.get("sku") else None,
            "quantity": spec["quantity"],
            "price": price,
            "price_set": {"shop_money": {"amount": price, "currency_code": currency},
                          "presentment_money": {"amount": price, "currency_code": currency}},
            "taxable": True,
            "tax_lines": [] if tax_rate is None else [{
                "title": spec.get("tax_title", "VAT"), "rate": float(tax_rate),
                "price": tax_price if tax_price is not None else "0.00",
                "price_set": {"shop_money": {"amount": tax_price or "0.00", "currency_code": currency}},
            }],
            "discount_allocations": [
                {"amount": d, "amount_set": {"shop_money": {"amount": d, "currency_code": currency}},
                 "discount_application_index": 0}
                for d in spec.get("discounts", [])
            ],
            "fulfillment_service": "manual",
            "requires_shipping": True,
        })
    shipping_lines = []
    for j, spec in enumerate(shipping or []):
        shipping_lines.append({
            "id": order_id * 100 + j, "title": spec.get("title", "Standard"), "code": spec.get("code", "STD"),
            "price": spec["price"],
            "price_set": {"shop_money": {"amount": spec["price"], "currency_code": currency}},
            "tax_lines": [{"title": "VAT", "rate": float(spec.get("tax_rate", "0.2")), "price": spec.get("tax_price", "0.00")}],
            "discount_allocations": [{"amount": d} for d in spec.get("discounts", [])],
        })
    updated = updated_at or BASE_TIME
    totals = _totals(line_items, shipping_lines, taxes_included)
    if total_price is not None:
        totals["total_price"] = total_price
    order = {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{number}",
        "order_number": number,
        "email": email,
        "contact_email": email,
        "currency": currency,
        "presentment_currency": currency,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "created_at": BASE_TIME.isoformat(),
        "updated_at": updated.isoformat(),
        "processed_at": BASE_TIME.isoformat(),
        "cancelled_at": (updated.isoformat() if cancelled else None),
        "taxes_included": taxes_included,
        "test": False,
        "customer": {"id": customer_id, "email": email, "first_name": "Zoë", "last_name": "Müller"},
        "shipping_address": {"first_name": "Zoë", "last_name": "Müller", "country_code": country, "country": country},
        "billing_address": {"country_code": country},
        "line_items": line_items,
        "shipping_lines": shipping_lines,
        "discount_applications": [],
    }
    for key in ("total_price", "subtotal_price", "total_discounts", "total_tax"):
        order[key] = totals[key]
        order[f"{key}_set"] = {"shop_money": {"amount": totals[key], "currency_code": currency},
                               "presentment_money": {"amount": totals[key], "currency_code": currency}}
    order["current_total_price"] = order["total_price"]
    order["current_total_price_set"] = order["total_price_set"]
    order["tax_lines"] = totals["tax_lines"]
    order.update(extra)
    return order


def _money(value) -> Decimal:
    return Decimal(str(value or "0"))


def _totals(line_items: list[dict], shipping_lines: list[dict], taxes_included: bool) -> dict:
    """What Shopify computes for an order from its lines (all amounts exact decimal strings)."""
    subtotal = discounts = tax = shipping = Decimal(0)
    by_rate: dict[tuple, Decimal] = {}
    for line in line_items:
        line_discount = sum((_money(d["amount"]) for d in line["discount_allocations"]), Decimal(0))
        subtotal += _money(line["price"]) * line["quantity"] - line_discount
        discounts += line_discount
    for line in shipping_lines:
        ship_discount = sum((_money(d["amount"]) for d in line["discount_allocations"]), Decimal(0))
        shipping += _money(line["price"]) - ship_discount
        discounts += ship_discount
    for line in (*line_items, *shipping_lines):
        for t in line["tax_lines"]:
            tax += _money(t["price"])
            key = (t["title"], str(t["rate"]))
            by_rate[key] = by_rate.get(key, Decimal(0)) + _money(t["price"])
    total = subtotal + shipping + (Decimal(0) if taxes_included else tax)
    return {
        "total_price": str(total), "subtotal_price": str(subtotal), "total_discounts": str(discounts),
        "total_tax": str(tax),
        "tax_lines": [{"title": title, "rate": float(rate), "price": str(amount),
                       "price_set": {"shop_money": {"amount": str(amount)}}}
                      for (title, rate), amount in by_rate.items()],
    }


def later(payload: dict, minutes: int = 1, **changes) -> dict:
    """The same order as Shopify would send it after a later change."""
    updated = datetime.fromisoformat(payload["updated_at"]) + timedelta(minutes=minutes)
    return {**payload, **changes, "updated_at": updated.isoformat()}


def shopify_headers(body: bytes, *, topic: str = "orders/paid", webhook_id: str | None = None,
                    secret: str = "sandbox-shopify-webhook-secret", signature: str | None = None,
                    event_id: str | None = None, shop_domain: str = "ledgerline-demo.myshopify.com") -> dict:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(timezone.utc).isoformat(),
    }
    headers["X-Shopify-Hmac-Sha256"] = signature if signature is not None else shopify_hmac(secret, body)
    return headers


def post_shopify_webhook(client, payload: dict | bytes, *, connection_code: str = "shopify", **header_kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        f"/webhooks/shopify/{connection_code}/", data=body, content_type="application/json",
        headers=shopify_headers(body, **header_kw),
    )


def deliver_shopify_webhook(client, payload: dict | bytes, capture, **header_kw):
    """Post a signed webhook and run what its commit queued (the task, synchronously): the order
    is processed by the time this returns."""
    with capture(execute=True):
        response = post_shopify_webhook(client, payload, **header_kw)
    assert response.status_code == 200, response.content
    return response


_refund_ids = itertools.count(890_000_001)


def _set(amount: str, currency: str) -> dict:
    return {"shop_money": {"amount": amount, "currency_code": currency},
            "presentment_money": {"amount": amount, "currency_code": currency}}


def shopify_refund(order: dict, *, lines: list[dict] | None = None, shipping: str | None = None,
                   shipping_tax: str = "0.00", legacy_shipping: bool = False, duties: str | None = None,
                   goodwill: str | None = None, refunded: str | None = None, refund_id: int | None = None,
                   note: str = "") -> dict:
    """A Shopify refunds/create payload (REST JSON, 2026-04) for an order built by shopify_order.

    `lines`: [{"index": order line, "quantity", "restock_type"?, "subtotal"?, "total_tax"?}] (amounts
    worked out from the order line unless given); `shipping` refunds that much of the first shipping
    line (as refund_shipping_lines, or `legacy_shipping` as a shipping_refund order adjustment);
    `duties` refunds a duty; `goodwill` returns money on no line (a refund_discrepancy adjustment, as
    Shopify records it). The refund transaction returns what all of it comes to unless `refunded`
    says otherwise."""
    currency = order["currency"]
    refund_id = refund_id or next(_refund_ids)
    total = Decimal(0)
    refund_lines = []
    for n, spec in enumerate(lines or []):
        item = order["line_items"][spec.get("index", 0)]
        quantity = spec["quantity"]
        discount = sum((_money(d["amount"]) for d in item["discount_allocations"]), Decimal(0))
        subtotal = spec.get("subtotal") or str((_money(item["price"]) * item["quantity"] - discount)
                                                 * quantity / item["quantity"])
        tax = spec.get("total_tax") or str(sum((_money(t["price"]) for t in item["tax_lines"]), Decimal(0))
                                           * quantity / item["quantity"])
        total += _money(subtotal) + (Decimal(0) if order.get("taxes_included") else _money(tax))
        refund_lines.append({
            "id": refund_id * 10 + n, "line_item_id": item["id"], "quantity": quantity, "location_id": 1001,
            "restock_type": spec.get("restock_type", "no_restock"), "subtotal": float(subtotal),
            "total_tax": float(tax), "subtotal_set": _set(subtotal, currency), "total_tax_set": _set(tax, currency),
            "line_item": item,
        })
    adjustments, shipping_lines = [], []
    if shipping is not None:
        total += _money(shipping) + _money(shipping_tax)
        if legacy_shipping:
            adjustments.append({"id": refund_id * 10 + 7, "order_id": order["id"], "refund_id": refund_id,
                                "amount": str(-_money(shipping)), "tax_amount": str(-_money(shipping_tax)),
                                "kind": "shipping_refund", "reason": "Shipping refund",
                                "amount_set": _set(str(-_money(shipping)), currency),
                                "tax_amount_set": _set(str(-_money(shipping_tax)), currency)})
        else:
            ship = order["shipping_lines"][0]
            shipping_lines.append({"id": refund_id * 10 + 8, "shipping_line_id": ship["id"], "shipping_line": ship,
                                   "subtotal_amount_set": _set(shipping, currency),
                                   "tax_amount_set": _set(shipping_tax, currency)})
    if goodwill is not None:
        total += _money(goodwill)
        adjustments.append({"id": refund_id * 10 + 9, "order_id": order["id"], "refund_id": refund_id,
                            "amount": str(-_money(goodwill)), "tax_amount": "0.00", "kind": "refund_discrepancy",
                            "reason": "Refund discrepancy", "amount_set": _set(str(-_money(goodwill)), currency),
                            "tax_amount_set": _set("0.00", currency)})
    refund_duties = []
    if duties is not None:
        total += _money(duties)
        refund_duties.append({"duty_id": order["id"] * 1000 + 1, "amount_set": _set(duties, currency)})
    amount = refunded if refunded is not None else str(total)
    return {
        "id": refund_id, "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}", "order_id": order["id"],
        "created_at": "2026-11-21T10:00:00-05:00", "processed_at": "2026-11-21T10:00:00-05:00", "note": note,
        "restock": any(l["restock_type"] == "return" for l in refund_lines), "user_id": None,
        "refund_line_items": refund_lines, "refund_shipping_lines": shipping_lines,
        "order_adjustments": adjustments, "duties": refund_duties,
        "refund_duties": [{"duty_id": d["duty_id"], "refund_type": "FULL"} for d in refund_duties],
        "transactions": [{
            "id": refund_id + 5_000_000, "order_id": order["id"], "kind": "refund", "gateway": "shopify_payments",
            "status": "success", "message": None, "created_at": "2026-11-21T10:00:00-05:00", "test": False,
            "parent_id": order["id"] + 1, "amount": amount, "currency": currency,
        }] if _money(amount) else [],
    }
