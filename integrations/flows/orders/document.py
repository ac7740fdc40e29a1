"""The ERP Sales Order for one storefront order, as a pure function of our types, and the check
that it totals what the storefront says.

`build_sales_order` maps every storefront figure (lines, line discounts, tax lines, shipping,
duties, tips, gift cards, order discounts) onto ERP lines through the mapping tables (given as a
`Resolver`), rounds once at the ERP boundary with the storefront's own rounding mode, and compares
the document with the storefront: its gross total with the order total, its tax with the
storefront's total tax and its tax per rate with the storefront's tax lines. Any difference is a
`total_mismatch` problem carrying both breakdowns line by line: such an order is never posted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from exceptions_queue.registry import ExceptionType
from integrations.connectors.base import ErpCreditMemoRequest, ErpSalesOrderLine, ErpSalesOrderRequest
from integrations.domain import (
    OrderLine, StorefrontOrder, StorefrontRefund, TaxLine, format_amount, format_percent, quantum,
)
from mappings.lookup import ResolvedSku

from .exception_types import (
    DUPLICATE_SKU, INVALID_DEPOT, MISSING_TAX_MAPPING, TOTAL_MISMATCH, UNKNOWN_SKU,
)
from .connection_settings import OrderSettings


@dataclass
class Problem:
    """Something a person must fix before the order can post: becomes one owned exception."""

    exc_type: ExceptionType
    key: str
    fingerprint: str
    message: str
    context: dict
    sku: str = ""


class Resolver(Protocol):
    """The mapping tables and the ERP facts the builder needs (the flow passes a real one)."""

    def sku(self, storefront_sku: str) -> ResolvedSku | None: ...

    def item_exists(self, item_code: str) -> bool: ...

    def tax_code(self, *, rate: Decimal, country: str, category: str) -> str | None: ...

    def depot(self, *, country: str, location: str) -> str: ...

    def erp_depots(self) -> set[str]: ...


@dataclass
class SalesOrderDocument:
    request: ErpSalesOrderRequest | None  # None when there are problems
    problems: list[Problem]
    rounding: Decimal  # exact storefront amounts minus what the ERP lines carry (recorded on the order)
    breakdown: dict  # both sides line by line (JSON-ready), shown on a total_mismatch exception
    gross_total: Decimal | None = None


def rate_key(rate: Decimal) -> str:
    return format(Decimal(rate).normalize(), "f")


@dataclass
class _Row:
    """One storefront figure and the ERP lines made from it."""

    what: str
    storefront: Decimal
    storefront_tax: Decimal
    erp: Decimal = Decimal(0)
    erp_tax: Decimal = Decimal(0)


@dataclass
class _Builder:
    order: StorefrontOrder
    settings: OrderSettings
    resolver: Resolver
    number: str
    key_prefix: str
    storefront_name: str = ""
    lines: list[ErpSalesOrderLine] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tax_by_rate: dict[str, Decimal] = field(default_factory=dict)
    rounding: Decimal = Decimal(0)
    # What the check calls the document and the storefront's figure (a credit memo: "refund total").
    mismatch_type: ExceptionType = TOTAL_MISMATCH
    headline: str = ""
    total_label: str = "order total"

    def __post_init__(self):
        self.currency = self.order.currency
        self.quantum = quantum(self.currency)
        self.price_mode = self.order.price_rounding or self.settings.rounding
        self.tax_mode = self.order.tax_rounding or self.settings.rounding
        self.included = self.order.taxes_included or bool(self.order.extra.get("taxes_included"))

    # --- rounding at the boundary -------------------------------------------------------------

    def money(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.quantum, rounding=self.price_mode)

    def tax_money(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.quantum, rounding=self.tax_mode)

    def fmt(self, amount: Decimal) -> str:
        return format_amount(amount, self.currency)

    # --- tax ---------------------------------------------------------------------------------

    def taxes(self, tax_lines: tuple[TaxLine, ...], category: str, what: str) -> tuple[str, Decimal, str]:
        """(ERP tax code(s), rounded tax amount, rate) for one storefront line's tax lines."""
        codes, total = [], Decimal(0)
        for tax in tax_lines:
            country = tax.country or self.order.country
            code = self.resolver.tax_code(rate=tax.rate, country=country, category=tax.title or category)
            rounded = self.tax_money(tax.amount)
            self.rounding += tax.amount - rounded
            total += rounded
            key = rate_key(tax.rate)
            self.tax_by_rate[key] = self.tax_by_rate.get(key, Decimal(0)) + rounded
            if code is None:
                pct = format_percent(tax.rate)
                self.problems.append(Problem(
                    MISSING_TAX_MAPPING, f"{self.key_prefix}:tax:{key}:{country}", f"{key}:{country}",
                    f"Tax rate {pct}% ({tax.title or 'untitled'}) in {country or 'no country'} on {what} of "
                    f"order {self.number} has no ERP tax code: add it under Mappings → Tax codes, then retry.",
                    {"rate": key, "rate_percent": pct, "country": country or "—", "tax_title": tax.title},
                ))
            else:
                codes.append(code)
        rate = rate_key(sum((t.rate for t in tax_lines), Decimal(0))) if tax_lines else ""
        return "+".join(dict.fromkeys(codes)), total, rate

    # --- lines -------------------------------------------------------------------------------

    def add(self, row: _Row, item_code: str, description: str, quantity: int, line_total: Decimal,
            tax_code: str, tax_amount: Decimal, kind: str, tax_rate: str = "", line_reference: str = "") -> None:
        unit = self.money(line_total / quantity) if quantity else line_total
        self.lines.append(ErpSalesOrderLine(
            item_code=item_code, description=description[:200], quantity=quantity or 1,
            unit_price=self.fmt(unit), line_total=self.fmt(line_total), tax_code=tax_code,
            tax_amount=self.fmt(tax_amount), kind=kind, tax_rate=tax_rate,
            # The storefront line it comes from: dispatches and refunds name lines by it.
            line_reference=line_reference[:100],
        ))
        row.erp += line_total
        row.erp_tax += tax_amount

    def amounts(self, line: OrderLine) -> tuple[Decimal, Decimal, Decimal]:
        """(exact storefront amount after discounts, ERP amount before discount, ERP discount).

        The storefront's own line total wins (commercetools totalPrice, authoritative under
        External tax modes); else unit × quantity − discount, each rounded once at the boundary."""
        discount = self.money(line.discount)
        if line.total is not None:
            exact = line.total
            before = self.money(line.total) + discount
            # A high-precision price the storefront rounded into its line total: the difference is
            # recorded (an External tax mode's own total, further off, is not rounding).
            raw = line.unit_price * line.quantity - line.discount
            if raw != line.total and abs(raw - line.total) < self.quantum:
                self.rounding += raw - line.total
            return exact, before, discount
        else:
            exact = line.unit_price * line.quantity - line.discount
            before = self.money(line.unit_price * line.quantity)
        self.rounding += exact - (before - discount)
        return exact, before, discount

    def item_targets(self, line: OrderLine, what: str) -> tuple[str, list[tuple[str, int]]]:
        """(kind, [(ERP item, quantity)]) for a storefront line; [] when it cannot be mapped."""
        s = self.settings
        if line.kind == "gift_card":
            return "gift_card", self.existing([(s.gift_card_item, line.quantity)], line, what, configured=True)
        if line.kind == "custom":
            return "item", self.existing([(s.custom_item, line.quantity)], line, what, configured=True)
        if not line.sku:
            product = line.product_id or "?"
            variant = line.variant_id or "?"
            self.problems.append(Problem(
                UNKNOWN_SKU, f"{self.key_prefix}:nosku:{product}:{variant}", f"nosku:{product}:{variant}",
                f"'{line.name}' on order {self.number} (product {product}, variant {variant}) has no SKU in the "
                "storefront, so it matches no ERP item: give the variant its SKU (or map it under Mappings → "
                "SKUs), then retry.",
                {"sku": f"(blank) product {product} variant {variant}", "product_id": product, "variant_id": variant,
                 "name": line.name},
            ))
            return "item", []
        resolved = self.resolver.sku(line.sku)
        if resolved is None:
            self.problems.append(Problem(
                UNKNOWN_SKU, f"{self.key_prefix}:{line.sku}", line.sku,
                f"SKU {line.sku} on order {self.number} is mapped as inactive: activate or correct it under "
                "Mappings → SKUs, then retry.", {"sku": line.sku}, line.sku))
            return "item", []
        if resolved.components:
            targets = [(code, qty * line.quantity) for code, qty in resolved.components]
        else:
            targets = [(resolved.erp_item_code, line.quantity)]
        return "item", self.existing(targets, line, what)

    def existing(self, targets, line: OrderLine, what: str, configured: bool = False) -> list[tuple[str, int]]:
        missing = [code for code, _ in targets if not self.resolver.item_exists(code)]
        if not missing:
            return targets
        sku = line.sku or missing[0]
        if configured:
            detail = (f"'{line.name}' ({what}) on order {self.number} posts to the configured ERP item "
                      f"{missing[0]}, which the ERP does not have: create it (or change the item in the "
                      "connection's settings), then retry.")
        elif missing == [line.sku]:
            detail = f"SKU {line.sku} on order {self.number} has no ERP item: add it under Mappings → SKUs, then retry."
        else:
            detail = (f"SKU {line.sku} on order {self.number} maps to {', '.join(missing)}, which the ERP does "
                      "not have: correct it under Mappings → SKUs, then retry.")
        self.problems.append(Problem(UNKNOWN_SKU, f"{self.key_prefix}:{sku}", sku, detail,
                                     {"sku": sku, "missing_items": missing}, sku))
        return []

    def storefront_line(self, line: OrderLine, index: int) -> None:
        what = f"line {index + 1} ({line.sku or line.name or 'no name'})"
        label = f"{what} × {line.quantity}"
        tax_code, tax_amount, rate = self.taxes(line.tax_lines, line.tax_category, what)
        exact, before, discount = self.amounts(line)
        row = _Row(label, exact, sum((t.amount for t in line.tax_lines), Decimal(0)))
        self.rows.append(row)
        kind, targets = self.item_targets(line, what)
        if targets:
            self.split(row, targets, line, before, tax_code, tax_amount, kind, rate)
        else:  # the problem is recorded; the figures still appear on the ERP side for the breakdown
            row.erp += before - discount
            row.erp_tax += tax_amount
            return
        if discount:
            self.add(row, self.settings.discount_item, f"Discount on {line.sku or line.name}", 1, -discount,
                     tax_code, Decimal(0), "discount", rate)

    def split(self, row, targets, line, before, tax_code, tax_amount, kind, rate) -> None:
        """One ERP line per item; a kit's amount and tax are split over its components by units,
        exactly: every share but the last is rounded, the last takes what remains."""
        if len(targets) == 1:
            code, qty = targets[0]
            self.add(row, code, line.name, qty, before, tax_code, tax_amount, kind, rate, line.line_id)
            return
        units = sum(qty for _, qty in targets)
        remaining, remaining_tax = before, tax_amount
        for i, (code, qty) in enumerate(targets):
            last = i == len(targets) - 1
            share = remaining if last else self.money(before * qty / units)
            tax_share = remaining_tax if last else self.tax_money(tax_amount * qty / units)
            remaining -= share
            remaining_tax -= tax_share
            self.add(row, code, f"{line.name} (kit {line.sku})", qty, share, tax_code, tax_share, kind, rate,
                     line.line_id)

    def charge(self, line: OrderLine, item_code: str, kind: str, what: str) -> None:
        tax_code, tax_amount, rate = self.taxes(line.tax_lines, line.tax_category, what)
        exact, before, discount = self.amounts(line)
        row = _Row(what, exact, sum((t.amount for t in line.tax_lines), Decimal(0)))
        self.rows.append(row)
        if not self.existing([(item_code, 1)], line, what, configured=True):
            row.erp += before - discount
            row.erp_tax += tax_amount
            return
        self.add(row, item_code, line.name or what, 1, before, tax_code, tax_amount, kind, rate)
        if discount:
            self.add(row, self.settings.discount_item, f"Discount on {line.name or what}", 1, -discount,
                     tax_code, Decimal(0), "discount", rate)

    def order_discount(self) -> None:
        order = self.order
        if not order.order_discount:
            return
        tax_lines = tuple(TaxLine(rate=t.rate, amount=-t.amount, title=t.title, country=t.country)
                          for t in order.order_discount_tax)
        tax_code, tax_amount, rate = self.taxes(tax_lines, "", "the order discount")
        amount = self.money(order.order_discount)
        self.rounding += amount - order.order_discount
        row = _Row("order discount", -order.order_discount, sum((t.amount for t in tax_lines), Decimal(0)))
        self.rows.append(row)
        self.add(row, self.settings.discount_item, "Order discount", 1, -amount, tax_code, tax_amount,
                 "discount", rate)

    def order_level_tax(self) -> None:
        """Tax the storefront states only for the whole order (no line carries any): it is added to
        the first item line, with the rates' tax codes, so the ERP books it."""
        summary = self.order.tax_summary or ()
        if not self.order.extra.get("order_level_tax_only") or not summary or not self.lines:
            return
        tax_code, tax_amount, rate = self.taxes(tuple(summary), "", "the order's tax lines")
        row = _Row("order-level tax", Decimal(0), sum((t.amount for t in summary), Decimal(0)))
        self.rows.append(row)
        first = self.lines[0]
        self.lines[0] = ErpSalesOrderLine(**{**first.__dict__, "tax_code": "+".join(
            c for c in (first.tax_code, tax_code) if c), "tax_amount": self.fmt(Decimal(first.tax_amount) + tax_amount),
            "tax_rate": rate})
        row.erp_tax += tax_amount

    def duplicate_skus(self) -> None:
        products_by_sku: dict[str, set[str]] = {}
        for line in self.order.lines:
            if line.sku and line.product_id:
                products_by_sku.setdefault(line.sku, set()).add(line.product_id)
        for sku, products in products_by_sku.items():
            if len(products) > 1:
                self.problems.append(Problem(
                    DUPLICATE_SKU, f"{self.key_prefix}:{sku}", sku,
                    f"SKU {sku} on order {self.number} belongs to {len(products)} storefront products "
                    f"({', '.join(sorted(products))}): give each its own SKU, then retry.",
                    {"sku": sku, "products": sorted(products)}, sku))

    def depot(self) -> str:
        order = self.order
        depot = self.resolver.depot(country=order.country, location=order.location)
        if not depot:
            self.problems.append(Problem(
                INVALID_DEPOT, f"{self.key_prefix}:depot", f"none:{order.country}",
                f"No depot is mapped for {self.storefront_name} orders shipping to "
                f"{order.country or 'an unknown country'} (order {self.number}): add one under "
                "Mappings → Depots, then retry.", {"country": order.country, "order_number": self.number}))
        elif depot not in self.resolver.erp_depots():
            self.problems.append(Problem(
                INVALID_DEPOT, f"{self.key_prefix}:depot", depot,
                f"Depot {depot} mapped for order {self.number} is not an ERP depot: correct it under "
                "Mappings → Depots, then retry.", {"depot": depot, "order_number": self.number}))
        return depot

    # --- the check ---------------------------------------------------------------------------

    def breakdown(self, net: Decimal, tax: Decimal, gross: Decimal) -> dict:
        order = self.order
        storefront_lines = sum((r.storefront for r in self.rows), Decimal(0))
        storefront_tax = sum((r.storefront_tax for r in self.rows), Decimal(0))
        stated_tax = order.total_tax
        rates = sorted(set(self.tax_by_rate) | {rate_key(t.rate) for t in (order.tax_summary or ())},
                       key=Decimal)
        stated_by_rate: dict[str, Decimal] = {}
        for t in order.tax_summary or ():
            stated_by_rate[rate_key(t.rate)] = stated_by_rate.get(rate_key(t.rate), Decimal(0)) + t.amount
        f = self.fmt
        exact = lambda d: format(d.normalize(), "f") if d != d.quantize(self.quantum) else f(d)  # noqa: E731
        return {
            "currency": self.currency,
            "taxes_included": self.included,
            "rows": [
                {"what": r.what, "storefront": exact(r.storefront), "erp": f(r.erp),
                 "difference": exact(r.erp - r.storefront), "storefront_tax": exact(r.storefront_tax),
                 "erp_tax": f(r.erp_tax), "tax_difference": exact(r.erp_tax - r.storefront_tax)}
                for r in self.rows
            ],
            "tax_by_rate": [
                {"rate": f"{format_percent(Decimal(k))}%",
                 "storefront": f(stated_by_rate[k]) if k in stated_by_rate else "—",
                 "erp": f(self.tax_by_rate.get(k, Decimal(0))),
                 "difference": (f(self.tax_by_rate.get(k, Decimal(0)) - stated_by_rate[k])
                                if k in stated_by_rate else "—")}
                for k in rates
            ],
            "storefront": {
                "lines": exact(storefront_lines), "tax": exact(storefront_tax),
                "stated_tax": f(stated_tax) if stated_tax is not None else "—",
                "total": f(order.total) if order.total is not None else "—",
            },
            "erp": {"lines": f(net), "tax": f(tax), "total": f(gross)},
            "difference": f(gross - order.total) if order.total is not None else "—",
            "rounding": exact(self.rounding),
        }

    def check(self, net: Decimal, tax: Decimal, gross: Decimal, breakdown: dict) -> None:
        order = self.order
        reasons = []
        if order.total is None:
            reasons.append("the storefront states no order total to compare with")
        elif gross != order.total:
            lines_sum = breakdown["storefront"]["lines"]
            reasons.append(f"the ERP document totals {self.fmt(gross)} {self.currency}, the storefront's "
                           f"{self.total_label} is {self.fmt(order.total)} (difference {self.fmt(gross - order.total)}; the "
                           f"storefront's own lines add up to {lines_sum} before tax)")
        if order.total_tax is not None and tax != self.tax_money(order.total_tax):
            reasons.append(f"tax on the document is {self.fmt(tax)}, the storefront's total tax is "
                           f"{self.fmt(order.total_tax)}")
        if order.tax_summary is not None:
            for row in breakdown["tax_by_rate"]:
                if row["difference"] not in ("—", self.fmt(Decimal(0))):
                    reasons.append(f"tax at {row['rate']} is {row['erp']} on the document, {row['storefront']} "
                                   "in the storefront's tax lines")
                elif row["difference"] == "—" and Decimal(row["erp"]):
                    reasons.append(f"tax at {row['rate']} ({row['erp']}) is not in the storefront's tax lines")
        if not reasons:
            return
        self.problems.append(Problem(
            self.mismatch_type, f"{self.key_prefix}:total", f"{self.storefront_name}:total",
            (self.headline or f"Order {self.number} was not posted") + ": " + "; ".join(reasons)
            + ". Both breakdowns are below.",
            {"order_number": self.number, "erp_total": f"{self.fmt(gross)} {self.currency}",
             "storefront_total": (f"{self.fmt(order.total)} {self.currency}" if order.total is not None else "none"),
             "breakdown": breakdown},
        ))


def build_sales_order(*, order: StorefrontOrder, settings: OrderSettings, resolver: Resolver,
                      external_reference: str, number: str, key_prefix: str,
                      storefront_name: str = "") -> SalesOrderDocument:
    """The ERP Sales Order for `order` (customer left blank) and every problem that holds it back."""
    b = _Builder(order=order, settings=settings, resolver=resolver, number=number, key_prefix=key_prefix,
                 storefront_name=storefront_name)
    b.duplicate_skus()
    for index, line in enumerate(order.lines):
        b.storefront_line(line, index)
    for ship in order.shipping:
        b.charge(ship, settings.shipping_item, "shipping", f"shipping '{ship.name or 'Shipping'}'")
    for charge in order.charges:
        item = {"duty": settings.duty_item, "tip": settings.tip_item}.get(charge.kind, settings.custom_item)
        b.charge(charge, item, charge.kind if charge.kind in ("duty", "tip") else "item",
                 charge.name or charge.kind)
    b.order_discount()
    b.order_level_tax()
    depot = b.depot()
    net = sum((Decimal(line.line_total) for line in b.lines), Decimal(0))
    tax = sum((Decimal(line.tax_amount) for line in b.lines), Decimal(0))
    # Rows whose item is unknown still count, so the breakdown shows the whole order.
    net_all = sum((r.erp for r in b.rows), Decimal(0))
    tax_all = sum((r.erp_tax for r in b.rows), Decimal(0))
    gross = net_all if b.included else net_all + tax_all
    breakdown = b.breakdown(net_all, tax_all, gross)
    b.check(net_all, tax_all, gross, breakdown)
    if b.problems:
        return SalesOrderDocument(None, b.problems, b.rounding, breakdown, gross)
    request = ErpSalesOrderRequest(
        external_reference=external_reference, customer_id="", currency=order.currency, depot=depot,
        order_date=(order.created_at.date().isoformat() if order.created_at else ""), lines=tuple(b.lines),
        total=b.fmt(net), customer_reference=order.order_number, prices_include_tax=b.included,
        tax_total=b.fmt(tax), gross_total=b.fmt(net if b.included else net + tax),
    )
    return SalesOrderDocument(request, [], b.rounding, breakdown, gross)


# --- credit memos: a storefront refund, through the same lines, tax and rounding ------------------


@dataclass
class CreditMemoDocument:
    request: ErpCreditMemoRequest | None  # None when there are problems
    problems: list[Problem]
    rounding: Decimal
    breakdown: dict  # both sides line by line, shown on a credit_memo_mismatch exception
    gross_total: Decimal | None = None


def _refund_as_order(refund: StorefrontRefund, *, number: str, country: str, price_rounding: str,
                     tax_rounding: str) -> StorefrontOrder:
    """The refund as the builder reads a sale: what it credits is what the "order" sells, and the
    money the storefront returned is its total."""
    return StorefrontOrder(
        storefront_order_id=refund.storefront_order_id, order_number=number, currency=refund.currency,
        payment_state="refunded", updated_at=None, created_at=refund.created_at, customer_email="", customer_name="",
        customer_storefront_id="", country=country, lines=(), total=refund.total,
        taxes_included=refund.taxes_included, price_rounding=price_rounding, tax_rounding=tax_rounding,
    )


def build_credit_memo(*, refund: StorefrontRefund, settings: OrderSettings, resolver: Resolver, goodwill_item: str,
                      mismatch_type: ExceptionType, external_reference: str, sales_order_id: str, customer_id: str,
                      number: str, key_prefix: str, storefront_name: str = "", country: str = "",
                      price_rounding: str = "", tax_rounding: str = "") -> CreditMemoDocument:
    """The ERP credit memo for one storefront refund and every problem that holds it back.

    Refunded units map to ERP items exactly as the sale did (SKU mapping, kits, tax codes, one
    rounding at the boundary); shipping and duties refunds go on the connection's shipping and duty
    items, money on no line (goodwill) on `goodwill_item`. The memo must total the money the
    storefront returned, else `mismatch_type` carries both breakdowns and nothing is sent. Amounts
    are positive: what is credited."""
    order = _refund_as_order(refund, number=number, country=country, price_rounding=price_rounding,
                             tax_rounding=tax_rounding)
    b = _Builder(order=order, settings=settings, resolver=resolver, number=number, key_prefix=key_prefix,
                 storefront_name=storefront_name, mismatch_type=mismatch_type,
                 headline=f"Refund {refund.storefront_refund_id} on order {number} was not credited",
                 total_label="refund total (money returned)")
    items = 0
    for line in refund.lines:
        quantity = max(1, line.quantity)
        as_line = OrderLine(sku=line.sku, name=line.name, quantity=quantity, unit_price=line.amount / quantity,
                            tax_lines=line.tax_lines, line_id=line.line_id, kind="item", total=line.amount)
        if line.kind == "item":
            b.storefront_line(as_line, items)
            items += 1
            # The unit price is only the amount over the units: what it loses in division is no rounding.
            noise = as_line.unit_price * quantity - line.amount
            if noise and abs(noise) < b.quantum:
                b.rounding -= noise
        elif line.kind == "shipping":
            b.charge(as_line, settings.shipping_item, "shipping", f"shipping refund '{line.name or 'Shipping'}'")
        elif line.kind == "duty":
            b.charge(as_line, settings.duty_item, "duty", line.name or "duties refund")
        else:  # goodwill, a refund discrepancy: money on no line, on the configured item
            b.charge(as_line, goodwill_item, "discount", f"goodwill '{line.name or 'no line'}'")
    net_all = sum((r.erp for r in b.rows), Decimal(0))
    tax_all = sum((r.erp_tax for r in b.rows), Decimal(0))
    gross = net_all if b.included else net_all + tax_all
    breakdown = b.breakdown(net_all, tax_all, gross)
    b.check(net_all, tax_all, gross, breakdown)
    if b.problems:
        return CreditMemoDocument(None, b.problems, b.rounding, breakdown, gross)
    net = sum((Decimal(line.line_total) for line in b.lines), Decimal(0))
    tax = sum((Decimal(line.tax_amount) for line in b.lines), Decimal(0))
    request = ErpCreditMemoRequest(
        external_reference=external_reference, sales_order_id=sales_order_id, customer_id=customer_id,
        currency=refund.currency, lines=tuple(b.lines), total=b.fmt(net), tax_total=b.fmt(tax),
        gross_total=b.fmt(net if b.included else net + tax), prices_include_tax=b.included,
        reason=(refund.note or f"Refund {refund.storefront_refund_id} in {storefront_name or 'the storefront'}")[:200],
        restock=refund.restock,
    )
    return CreditMemoDocument(request, [], b.rounding, breakdown, gross)
