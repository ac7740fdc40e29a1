"""commercetools Order JSON as the HTTP API returns it, for tests.

Payloads follow the shape of commercetools' published example Order (api-specs/api/examples/order.example.json
in commercetools-api-reference): typed Money, TaxRate on each line, TaxedItemPrice per line, TaxedPrice with
taxPortions on the order. Amounts are stated by the caller, worked out as the platform does.
"""
from decimal import ROUND_HALF_EVEN, Decimal

from integrations.domain import currency_exponent

D = Decimal


def money(amount: str, currency: str = "EUR") -> dict:
    exponent = currency_exponent(currency)
    return {"type": "centPrecision", "currencyCode": currency,
            "centAmount": int(D(amount).scaleb(exponent)), "fractionDigits": exponent}


def precise(amount: str, digits: int, currency: str = "EUR") -> dict:
    exponent = currency_exponent(currency)
    cents = D(amount).scaleb(exponent).quantize(D(1), rounding=ROUND_HALF_EVEN)
    return {"type": "highPrecision", "currencyCode": currency, "centAmount": int(cents),
            "preciseAmount": int(D(amount).scaleb(digits)), "fractionDigits": digits}


def tax_rate(amount: float, name: str, country: str = "DE", included: bool = False) -> dict:
    return {"id": f"rate-{name}", "name": name, "amount": amount, "includedInPrice": included,
            "country": country, "subRates": []}


def taxed(net: str, gross: str, rate: float, name: str, currency: str = "EUR", total_tax: bool = True) -> dict:
    """A TaxedItemPrice (one portion)."""
    tax = str(D(gross) - D(net))
    price = {"totalNet": money(net, currency), "totalGross": money(gross, currency),
             "taxPortions": [{"rate": rate, "amount": money(tax, currency), "name": name}]}
    if total_tax:
        price["totalTax"] = money(tax, currency)
    return price


def order_taxed(net: str, gross: str, portions: list[tuple[float, str, str]], currency: str = "EUR") -> dict:
    """An order TaxedPrice: portions as (rate, amount, name)."""
    return {"totalNet": money(net, currency), "totalGross": money(gross, currency),
            "totalTax": money(str(D(gross) - D(net)), currency),
            "taxPortions": [{"rate": r, "amount": money(a, currency), "name": n} for r, a, n in portions]}


def line_item(sku: str, name, quantity: int, price: dict, total: str, *, rate: dict | None = None,
              taxed_price: dict | None = None, discounted: dict | None = None, currency: str = "EUR",
              line_id: str = "", variant_id: int = 1, price_mode: str = "Platform") -> dict:
    item = {
        "id": line_id or f"li-{sku}",
        "productId": f"prod-{sku}",
        "name": name if isinstance(name, dict) else {"en": name},
        "productType": {"typeId": "product-type", "id": "a5c7e173-9754-4f02-9b18-a600896ae0e1"},
        "productSlug": {"en": sku.lower()},
        "variant": {"id": variant_id, "sku": sku, "prices": [], "images": [], "attributes": [], "assets": []},
        "price": {"id": f"price-{sku}", "value": price},
        "quantity": quantity,
        "discountedPricePerQuantity": [],
        "state": [{"quantity": quantity, "state": {"typeId": "state", "id": "initial"}}],
        "priceMode": price_mode,
        "lineItemMode": "Standard",
        "totalPrice": money(total, currency),
        "perMethodTaxRate": [],
        "taxedPricePortions": [],
    }
    if discounted:
        item["discountedPricePerQuantity"] = [{"quantity": quantity, "discountedPrice": {
            "value": discounted, "includedDiscounts": [{"discount": {"typeId": "cart-discount", "id": "cd-1"},
                                                        "discountedAmount": money("0", currency)}]}}]
    if rate is not None:
        item["taxRate"] = rate
    if taxed_price is not None:
        item["taxedPrice"] = taxed_price
    return item


def shipping_info(name: str, price: str, *, rate: dict | None = None, taxed_price: dict | None = None,
                  discounted: str | None = None, currency: str = "EUR", method_id: str = "sm-standard") -> dict:
    info = {"shippingMethodName": name, "price": money(price, currency),
            "shippingRate": {"price": money(price, currency), "tiers": []},
            "shippingMethod": {"typeId": "shipping-method", "id": method_id},
            "shippingMethodState": "MatchesCart", "deliveries": []}
    if discounted is not None:
        info["discountedPrice"] = {"value": money(discounted, currency), "includedDiscounts": []}
    if rate is not None:
        info["taxRate"] = rate
    if taxed_price is not None:
        info["taxedPrice"] = taxed_price
    return info


def address(country: str = "DE", **extra) -> dict:
    return {"firstName": "Ada", "lastName": "Buyer", "streetName": "Hauptstrasse", "streetNumber": "1",
            "postalCode": "10115", "city": "Berlin", "country": country, **extra}


def order(line_items, total_price: str, *, currency: str = "EUR", taxed_price: dict | None = None,
          **fields) -> dict:
    payload = {
        "type": "Order",
        "id": "92f5a867-bf19-47ab-982c-6720a03a3921",
        "version": 3,
        "orderNumber": "CT-10001",
        "createdAt": "2024-01-04T19:54:49.797Z",
        "lastModifiedAt": "2024-01-04T19:55:01.123Z",
        "customerId": "7297c742-d8b0-484b-aadc-1d0ba6769dc9",
        "customerEmail": "ada@example.com",
        "lineItems": line_items,
        "customLineItems": [],
        "totalPrice": money(total_price, currency),
        "shippingAddress": address(),
        "billingAddress": address(),
        "orderState": "Open",
        "paymentState": "Paid",
        "taxMode": "Platform",
        "priceRoundingMode": "HalfEven",
        "taxRoundingMode": "HalfEven",
        "taxCalculationMode": "LineItemLevel",
        "inventoryMode": "None",
        "shippingMode": "Single",
        "shipping": [],
        "origin": "Customer",
        "syncInfo": [],
        "returnInfo": [],
        "refusedGifts": [],
        "discountCodes": [],
        "lastMessageSequenceNumber": 1,
    }
    if taxed_price is not None:
        payload["taxedPrice"] = taxed_price
    payload.update(fields)
    return payload


