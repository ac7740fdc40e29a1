"""Inventory: the ERP's available-to-sell (ATS) per storefront SKU × location, and the runs that push
what changed since the last confirmed push to Shopify / commercetools without overselling.

Model: what a storefront offers = ERP ATS − what the storefront itself holds that the ERP cannot know
yet (Shopify `reserved`; commercetools reservations, which it subtracts itself from quantityOnStock).
Writes are compare-and-set (Shopify changeFromQuantity, commercetools entry version) or deltas read
and applied relative to the storefront's own number, so a checkout made between our read and our
write survives.

Modules: ats.py (pure computation), push.py (the storefront writes), runs.py (queued runs),
exception_types.py. None imports runs, so there is no import circle.
"""
from .ats import (
    LocationRule, SkuPlan, Stock, api_calls_needed, available_to_sell, batched, kit_available_to_sell, levels_compute,
    levels_diff, sku_plans, stock_figures, stock_index,
)
from .exception_types import UNKNOWN_SKU, UNMAPPED_LOCATION
from .runs import (
    in_quiet_window, inventory_exception_retry, inventory_full_sync_scheduled, inventory_push_for_items,
    inventory_sync_run, inventory_sync_start, quiet_hours,
)

__all__ = [
    "UNKNOWN_SKU", "UNMAPPED_LOCATION", "LocationRule", "SkuPlan", "Stock", "api_calls_needed", "available_to_sell",
    "batched", "in_quiet_window", "inventory_exception_retry", "inventory_full_sync_scheduled",
    "inventory_push_for_items", "inventory_sync_run", "inventory_sync_start", "kit_available_to_sell",
    "levels_compute", "levels_diff", "quiet_hours", "sku_plans", "stock_figures", "stock_index",
]
