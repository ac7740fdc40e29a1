"""ISO 4217 minor units, the sandboxes' own copy: a sandbox never imports the product, so a product
mistake about a currency's decimals shows up as a refused request instead of agreeing with itself."""
from __future__ import annotations

from decimal import Decimal

# Minor-unit exponents that differ from 2.
EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3, "CLF": 4, "UYW": 4,
}


def currency_exponent(currency: str) -> int:
    return EXPONENTS.get(currency.upper(), 2)


def on_grid(amount: Decimal, currency: str) -> Decimal:
    """An amount written with exactly the currency's decimals ("40" GBP -> "40.00")."""
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)))
