"""Available-to-sell: pure computation from the ERP's stock figures, location rules and kits to the level each storefront location should show, and what changed."""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, Iterator


STATE_NAMES = ("in_transit", "quality_inspection", "damaged", "returned_awaiting_inspection")


# Compact stock figures: (on_hand, allocated, reserved, in_transit, quality_inspection, damaged, returned)
Stock = tuple


def stock_figures(row: dict) -> Stock:
    states = row.get("states") or {}
    return (int(row.get("on_hand") or 0), int(row.get("allocated") or 0), int(row.get("reserved") or 0),
            *(int(states.get(name) or 0) for name in STATE_NAMES))


def stock_index(rows: Iterable[dict]) -> dict[tuple[str, str], Stock]:
    """{(item_code, warehouse): figures} from the ERP's stock rows (REST ERP and Prima alike)."""
    return {(row["item_code"], row["depot"]): stock_figures(row) for row in rows}


@dataclass(frozen=True)
class LocationRule:
    storefront_location: str
    erp_warehouse: str
    sellable_states: frozenset = frozenset({"available"})
    buffer_units: int = 0
    buffer_percent: Decimal = Decimal(0)

    @classmethod
    def from_mapping(cls, mapping) -> "LocationRule":
        return cls(mapping.storefront_location, mapping.erp_warehouse, frozenset(mapping.sellable_states or ()),
                   int(mapping.buffer_units), Decimal(mapping.buffer_percent or 0))

    @property
    def nonsellable_mask(self) -> tuple[bool, ...]:
        return tuple(name not in self.sellable_states for name in STATE_NAMES)


def available_to_sell(figures: Stock | None, rule: LocationRule, *, _mask=None, _hundredths=None) -> int:
    """on hand − allocated − reserved − non-sellable states − buffer (units, then percent rounded
    up so the buffer never rounds towards overselling); never below zero."""
    if figures is None:
        return 0
    mask = _mask if _mask is not None else rule.nonsellable_mask
    on_hand, allocated, reserved, *states = figures
    base = on_hand - allocated - reserved
    for held, excluded in zip(states, mask):
        if excluded:
            base -= held
    if base <= 0:
        return 0
    hundredths = _hundredths if _hundredths is not None else int(rule.buffer_percent * 100)
    buffer = rule.buffer_units + (-(-base * hundredths // 10000) if hundredths else 0)
    return max(0, base - buffer)


def kit_available_to_sell(components: Iterable[tuple[str, int]], ats_of: Callable[[str], int]) -> int:
    """A kit: the minimum over its components of floor(component ATS ÷ quantity per kit)."""
    counts = [ats_of(code) // max(1, int(quantity)) for code, quantity in components]
    return max(0, min(counts)) if counts else 0


@dataclass(frozen=True)
class SkuPlan:
    storefront_sku: str
    erp_item_code: str  # blank for a kit
    components: tuple[tuple[str, int], ...] = ()

    @property
    def item_codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.components) if self.components else (self.erp_item_code,)


def levels_compute(plans: Iterable[SkuPlan], rules: Iterable[LocationRule],
                   stock: dict[tuple[str, str], Stock]) -> dict[tuple[str, str], int]:
    """{(storefront_sku, storefront_location): ATS} for every plan at every location."""
    result: dict[tuple[str, str], int] = {}
    plans = list(plans)
    for rule in rules:
        mask, hundredths, warehouse, location = (rule.nonsellable_mask, int(rule.buffer_percent * 100),
                                                 rule.erp_warehouse, rule.storefront_location)
        get = stock.get

        def ats(code: str) -> int:
            return available_to_sell(get((code, warehouse)), rule, _mask=mask, _hundredths=hundredths)

        for plan in plans:
            if plan.components:
                result[(plan.storefront_sku, location)] = kit_available_to_sell(plan.components, ats)
            else:
                result[(plan.storefront_sku, location)] = ats(plan.erp_item_code)
    return result


def levels_diff(computed: dict[tuple[str, str], int], pushed: dict[tuple[str, str], int | None]) -> list[tuple[str, str]]:
    """The levels whose ATS differs from the last confirmed push (or were never pushed)."""
    get = pushed.get
    return [key for key, ats in computed.items() if get(key) != ats]


def api_calls_needed(changed: int, per_call_max: int) -> int:
    return math.ceil(changed / per_call_max) if changed else 0



def sku_plans(connection, storefront_skus: Iterable[str] = (), erp_item_codes: Iterable[str] = ()) -> list[SkuPlan]:
    """Plans for the storefront SKUs given, plus every SKU whose mapping touches one of
    `erp_item_codes` (kits containing them included). No mapping row = identity; inactive = skipped."""
    from mappings.models import SkuMapping

    rows = {row.storefront_sku: row for row in SkuMapping.objects.filter(connection=connection).prefetch_related("components")}
    mapped_away = {row.erp_item_code for row in rows.values() if row.erp_item_code and row.erp_item_code != row.storefront_sku}
    wanted = dict.fromkeys(storefront_skus)
    codes = set(erp_item_codes)
    if codes:
        for sku, row in rows.items():
            if row.erp_item_code in codes or any(c.erp_item_code in codes for c in row.components.all()):
                wanted.setdefault(sku)
        for code in sorted(codes):
            if code not in mapped_away or code in rows:
                wanted.setdefault(code)
    plans = []
    for sku in wanted:
        row = rows.get(sku)
        if row is None:
            plans.append(SkuPlan(sku, sku))
        elif row.active:
            components = tuple((c.erp_item_code, c.quantity) for c in row.components.all())
            plans.append(SkuPlan(sku, "" if components else row.erp_item_code, components))
    return plans


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
