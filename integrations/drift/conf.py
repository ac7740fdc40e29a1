"""Thresholds of the drift checks: the defaults below, overridden by settings.DRIFT (a dict)."""
from django.conf import settings

DEFAULTS = {
    # The benchmark runs the checks on a database without the vendors behind it.
    "skip_vendor_reads": False,
    # Orphaned orders: a paid order with no ERP Sales Order this long after it was received.
    "orphan_after_minutes": 10,
    # The reconciliation poll re-reads this much before its cursor (Shopify's search index lags, and
    # an update written while the last poll ran must not fall between two polls).
    "poll_overlap_minutes": 10,
    # A connection polled for the first time is read back this far.
    "poll_first_lookback_hours": 24,
    # Cancelled / refunded orders whose ERP Sales Order is checked by each run (the newest first).
    "erp_status_checks_per_run": 200,
    "erp_status_window_days": 14,
    # Inventory: a difference of more than this many units is drift.
    "inventory_tolerance": 0,
    # Seconds between polls of a Shopify bulk operation.
    "bulk_poll_seconds": 2,
    # Prices: a difference beyond this many minor units is drift.
    "price_tolerance_minor": 0,
    # Tax: an ERP tax total differing from the storefront's by more than the recorded rounding plus this.
    "tax_tolerance_minor": 0,
    "tax_window_days": 30,
    # Integration health.
    "event_waiting_minutes": 15,
    "cursor_stale_minutes": 60,
    "task_failures": 3,
    "task_failures_window_hours": 24,
    "expiry_warning_days": 14,
}


def drift_setting(name: str):
    return (getattr(settings, "DRIFT", None) or {}).get(name, DEFAULTS[name])
