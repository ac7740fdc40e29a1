"""What forecasting needs from a storefront order that our StorefrontOrder does not carry (yet): the
ship-to region, the discount codes used and the promotion tags. Read from the stored payload, field by
field as each storefront names them; to move into the connectors' translators when another flow needs
them too."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrderFacts:
    ship_region: str = ""
    discount_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def order_facts(kind: str, payload: dict) -> OrderFacts:
    if not isinstance(payload, dict):
        return OrderFacts()
    if kind == "shopify":
        # REST order JSON: shipping_address.province_code, discount_codes[].code, tags "a, b".
        address = payload.get("shipping_address") if isinstance(payload.get("shipping_address"), dict) else {}
        codes = tuple(sorted({_text(c.get("code")) for c in payload.get("discount_codes") or []
                              if isinstance(c, dict) and _text(c.get("code"))}))
        tags = tuple(sorted({t.strip() for t in _text(payload.get("tags")).split(",") if t.strip()}))
        return OrderFacts(_text(address.get("province_code")) or _text(address.get("province")), codes, tags)
    # commercetools Order: shippingAddress.state / region; discountCodes[].discountCode (expanded obj.code,
    # else its id); promotions: the cart discounts included in line prices (their keys or ids).
    address = payload.get("shippingAddress") if isinstance(payload.get("shippingAddress"), dict) else {}
    codes = set()
    for info in payload.get("discountCodes") or []:
        ref = info.get("discountCode") if isinstance(info, dict) else None
        if isinstance(ref, dict):
            obj = ref.get("obj") if isinstance(ref.get("obj"), dict) else {}
            code = _text(obj.get("code")) or _text(ref.get("id"))
            if code:
                codes.add(code)
    tags = set()
    for line in payload.get("lineItems") or []:
        for per_quantity in (line.get("discountedPricePerQuantity") or []) if isinstance(line, dict) else []:
            for included in ((per_quantity.get("discountedPrice") or {}).get("includedDiscounts") or []):
                ref = included.get("discount") if isinstance(included, dict) else None
                if isinstance(ref, dict):
                    obj = ref.get("obj") if isinstance(ref.get("obj"), dict) else {}
                    tag = _text(obj.get("key")) or _text(ref.get("id"))
                    if tag:
                        tags.add(tag)
    return OrderFacts(_text(address.get("state")) or _text(address.get("region")), tuple(sorted(codes)),
                      tuple(sorted(tags)))
