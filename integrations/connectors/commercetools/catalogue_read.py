"""Reading a commercetools project's prices for the drift checks: every variant of every published
product (current projections) with its embedded prices, each scoped by currency, country, customer
group and channel, with its quantity tiers. Products in the Standalone price mode embed no prices
(they live in /standalone-prices): such a variant reads as having none."""
from __future__ import annotations

from decimal import Decimal
from typing import Iterator

from ..base import PermanentError
from . import CommercetoolsClient, _quote


def _money(value: dict) -> tuple[str, Decimal]:
    """A commercetools Money/TypedMoney as (currency, amount): centAmount over 10^fractionDigits, or for
    highPrecision the preciseAmount over 10^fractionDigits (its centAmount is only the rounded figure)."""
    digits = int(value.get("fractionDigits", 2))
    if value.get("type") == "highPrecision":
        return str(value.get("currencyCode") or "").upper(), Decimal(int(value["preciseAmount"])).scaleb(-digits)
    return str(value.get("currencyCode") or "").upper(), Decimal(int(value["centAmount"])).scaleb(-digits)


def price_rows(price: dict, channel_keys: dict[str, str]) -> list[dict]:
    """One price and its tiers as scoped rows {currency, amount, customer_group, channel, country, min_quantity}."""
    group = price.get("customerGroup") or {}
    channel = price.get("channel") or {}
    scope = {"customer_group": (group.get("obj") or {}).get("key") or group.get("id") or "",
             "channel": channel_keys.get(channel.get("id", ""), channel.get("id") or ""),
             "country": price.get("country") or ""}
    currency, amount = _money(price["value"])
    rows = [{"currency": currency, "amount": amount, "min_quantity": 1, **scope}]
    for tier in price.get("tiers") or ():
        tier_currency, tier_amount = _money(tier["value"])
        rows.append({"currency": tier_currency, "amount": tier_amount,
                     "min_quantity": int(tier.get("minimumQuantity") or 1), **scope})
    return rows


def variant_prices(client: CommercetoolsClient, *, page_size: int = 100) -> Iterator[dict]:
    """{sku, variant_id, product_id, product_title, prices: [scoped rows]} of every published variant."""
    channel_keys = {c["id"]: c.get("key") or c["id"] for c in client.list_channels()}
    last_id = ""
    while True:
        where = f"id > {_quote(last_id)}" if last_id else None
        params = client._query_params(where, ["id asc"], page_size, 0, with_total=False)
        # Customer groups expanded: a price names its group by id, the ERP by key.
        expand = [("expand", f"{part}.prices[*].customerGroup") for part in ("masterVariant", "variants[*]")]
        page = client.api("GET", "product-projections", params=[("staged", "false"), *params, *expand])
        results = page.get("results") or []
        for product in results:
            name = product.get("name") or {}
            title = next(iter(name.values()), "") if isinstance(name, dict) else str(name)
            for variant in [product.get("masterVariant") or {}, *(product.get("variants") or [])]:
                rows = []
                for price in variant.get("prices") or ():
                    rows.extend(price_rows(price, channel_keys))
                yield {"sku": variant.get("sku") or "", "variant_id": f"{product['id']}/{variant.get('id', '')}",
                       "product_id": product["id"], "product_title": title, "prices": rows}
        if len(results) < page_size:
            return
        if results[-1]["id"] <= last_id:
            raise PermanentError("commercetools product cursor did not advance")
        last_id = results[-1]["id"]
