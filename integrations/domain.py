"""Our own words for what the storefronts send: money, order lines and orders.

Storefront connectors translate their vendor payloads into these once; flows only see these.
Money is `Decimal` (exact), never float.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3, "CLF": 4, "UYW": 4,
}


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Exact conversion of an amount already on the currency's grid (raises if it is not)."""
    scaled = amount.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(scaled)


def from_minor_units(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency))


def round_to_currency(amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return amount.quantize(quantum(currency), rounding=rounding)


def format_amount(amount: Decimal, currency: str) -> str:
    """A decimal string with exactly the currency's minor digits ("12.30", "1200", "1.250")."""
    return str(amount.quantize(quantum(currency)))


def format_percent(rate: Decimal) -> str:
    """A tax rate as people write it: 0.1 -> "10", 0.075 -> "7.5", 0.2 -> "20" (never "1E+1")."""
    pct = (Decimal(rate) * 100).normalize()
    text = format(pct, "f")
    return text


@dataclass(frozen=True)
class TaxLine:
    rate: Decimal  # 0.2 for 20 %
    amount: Decimal  # exact, may carry more digits than the currency (high precision)
    title: str = ""
    country: str = ""  # the tax's own country (commercetools taxRate.country); blank = the order's


@dataclass(frozen=True)
class OrderLine:
    sku: str  # blank for a custom line item without SKU
    name: str
    quantity: int
    unit_price: Decimal  # exact, may be high precision
    discount: Decimal = Decimal(0)  # total discount allocated to this line
    tax_lines: tuple[TaxLine, ...] = ()
    line_id: str = ""
    tax_category: str = ""
    # item | custom | shipping | duty | tip | gift_card (a gift card sold: a liability, not revenue)
    kind: str = "item"
    product_id: str = ""  # the storefront product the SKU belongs to (duplicate-SKU check)
    variant_id: str = ""  # the storefront variant (blank for a custom line)
    # The storefront's own line amount after line discounts (commercetools totalPrice, which is
    # authoritative under External tax modes and for high-precision prices); None = unit × qty − discount.
    total: Decimal | None = None


@dataclass(frozen=True)
class StorefrontOrder:
    storefront_order_id: str
    order_number: str
    currency: str
    payment_state: str  # vendor words: Shopify financial_status, commercetools paymentState
    updated_at: datetime | None
    created_at: datetime | None
    customer_email: str
    customer_name: str
    customer_storefront_id: str
    country: str
    lines: tuple[OrderLine, ...]
    shipping: tuple[OrderLine, ...] = ()
    order_discount: Decimal = Decimal(0)  # discount not allocated to lines
    total: Decimal | None = None  # the storefront's own order total (authoritative; tax included)
    location: str = ""  # storefront location / supply channel the order ships from, if known
    cancelled: bool = False
    extra: dict = field(default_factory=dict)
    # Duties, tips and other charges of the order (OrderLine with kind duty / tip / fee).
    charges: tuple[OrderLine, ...] = ()
    # True when line, shipping and charge amounts include their tax (Shopify taxes_included,
    # commercetools taxRate.includedInPrice): tax is then contained, not added.
    taxes_included: bool = False
    # The storefront's own tax per rate for the whole order (Shopify order tax_lines, commercetools
    # taxedPrice.taxPortions), and its total tax; None when the storefront states none.
    tax_summary: tuple[TaxLine, ...] | None = None
    total_tax: Decimal | None = None
    # Tax removed together with `order_discount` (commercetools discountOnTotalPrice gross − net).
    order_discount_tax: tuple[TaxLine, ...] = ()
    # Python decimal rounding mode the storefront rounds with (commercetools priceRoundingMode /
    # taxRoundingMode); blank = the configured default.
    price_rounding: str = ""
    tax_rounding: str = ""
    is_test: bool = False  # Shopify test: true
    customer_phone: str = ""
    presentment_currency: str = ""
    presentment_total: Decimal | None = None
    # The storefront's version of the order (commercetools version); orders edits are told apart by it.
    version: int | None = None

    @property
    def all_lines(self) -> tuple[OrderLine, ...]:
        return (*self.lines, *self.shipping, *self.charges)


@dataclass(frozen=True)
class RefundLine:
    """One thing a storefront refund gives money back for: units of an order line, shipping, a
    duty, or an amount on no line at all (goodwill, a refund discrepancy)."""

    kind: str  # item | shipping | duty | goodwill
    amount: Decimal  # exact, positive = credited; net of tax unless the refund's taxes are included
    tax_lines: tuple[TaxLine, ...] = ()
    quantity: int = 1
    sku: str = ""
    name: str = ""
    line_id: str = ""  # the storefront order line (or shipping line, duty) it refunds
    restock: bool = False  # the units come back to stock (Shopify restock_type return; commercetools Returned)


@dataclass(frozen=True)
class StorefrontRefund:
    """A storefront refund in our words: what it credits, line by line, and the money it returned."""

    storefront_refund_id: str
    storefront_order_id: str
    currency: str
    lines: tuple[RefundLine, ...]
    # The money the storefront returned (successful refund transactions): the credit memo must total it.
    total: Decimal | None
    created_at: datetime | None = None
    taxes_included: bool = False
    note: str = ""
    # Order lines named by the refund that the storefront itself states (for people reading the memo).
    extra: dict = field(default_factory=dict)

    @property
    def restock(self) -> bool:
        return any(line.restock for line in self.lines)
