"""Vendor-shaped payloads for tests: Shopify REST-format order webhooks, signed like Shopify signs them."""
from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone

from integrations.webhooks import shopify_hmac

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
) -> dict:
    """A Shopify order as the orders/* webhooks deliver it (REST JSON, money as strings)."""
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
    return {
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
        "total_price": "0.00",
        "subtotal_price": "0.00",
        "total_discounts": "0.00",
        "taxes_included": False,
        "customer": {"id": customer_id, "email": email, "first_name": "Zoë", "last_name": "Müller"},
        "shipping_address": {"first_name": "Zoë", "last_name": "Müller", "country_code": country, "country": country},
        "billing_address": {"country_code": country},
        "line_items": line_items,
        "shipping_lines": shipping_lines,
        "tax_lines": [],
        "discount_applications": [],
    }


def later(payload: dict, minutes: int = 1, **changes) -> dict:
    """The same order as Shopify would send it after a later change."""
    updated = datetime.fromisoformat(payload["updated_at"]) + timedelta(minutes=minutes)
    return {**payload, **changes, "updated_at": updated.isoformat()}


def shopify_headers(body: bytes, *, topic: str = "orders/paid", webhook_id: str | None = None,
                    secret: str = "sandbox-shopify-webhook-secret", signature: str | None = None) -> dict:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "ledgerline-demo.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
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
