"""Inventory: the ERP's available-to-sell (ATS) per storefront SKU × location, and the runs that push
what changed since the last confirmed push to Shopify / commercetools without overselling.

Model: what a storefront offers = ERP ATS − what the storefront itself holds that the ERP cannot know
yet (Shopify `reserved`; commercetools reservations, which it subtracts itself from quantityOnStock).
Writes are compare-and-set (Shopify changeFromQuantity, commercetools entry version) or deltas read
and applied relative to the storefront's own number, so a checkout made between our read and our
write survives.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

log = logging.getLogger("ledgerline.inventory")

# --- exception types ------------------------------------------------------------------------------

UNKNOWN_SKU = registry.register(ExceptionType(
    code="inventory_unknown_sku", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Stock for SKU {sku} cannot be pushed to {storefront}",
    runbook=(
        "What happened: a stock push found a SKU that one side does not know: the storefront has no "
        "variant/inventory item with it, or the ERP has no stock record for the item it maps to. Its "
        "storefront quantity was NOT changed, so it may be offering stock the warehouse cannot ship.\n"
        "Check: the SKU on the storefront, Mappings → SKUs, and the item in the ERP.\n"
        "Fix: correct the SKU or add the mapping (or set the storefront quantity to 0 by hand), then retry.\n"
        "Escalate: e-commerce catalogue owner."
    ),
    retry_handler="integrations.flows.inventory.inventory_exception_retry",
))

UNMAPPED_LOCATION = registry.register(ExceptionType(
    code="inventory_unmapped_location", team=Team.ECOMMERCE, severity=Severity.HIGH, system="storefront",
    title="Storefront location {location} has no ERP warehouse",
    runbook=(
        "What happened: a storefront location / supply channel has no active location mapping, or a "
        "mapping names a location the storefront does not have. Stock there is not kept in line with "
        "the ERP.\n"
        "Check: Mappings → Locations for the storefront and the storefront's list of locations.\n"
        "Fix: add or correct the mapping (or deactivate the storefront location), then retry.\n"
        "Escalate: warehouse operations lead."
    ),
    retry_handler="integrations.flows.inventory.inventory_exception_retry",
))

STATE_NAMES = ("in_transit", "quality_inspection", "damaged", "returned_awaiting_inspection")

# --- available-to-sell ----------------------------------------------------------------------------

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


# --- the universe of SKUs -------------------------------------------------------------------------


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


# --- exceptions -----------------------------------------------------------------------------------


def _raise(exc_type: ExceptionType, *, connection, key: str, message: str, context: dict, sku: str = "",
           retry_args: dict | None = None):
    from exceptions_queue.services import exception_raise

    return exception_raise(exc_type=exc_type, key=f"{connection.code}:{key}", fingerprint=key, message=message,
                           context={"storefront": connection.name, **context}, sku=sku,
                           retry_args={"connection": connection.code, **(retry_args or {})})


def inventory_exception_retry(record) -> bool:
    """Retry handler: push the SKU's items again (or run a full sync for a location); True when clean."""
    from integrations.models import InventoryLevel, Connection

    connection = Connection.objects.get(code=record.retry_args["connection"])
    codes = record.retry_args.get("erp_item_codes") or []
    if record.type_code == UNKNOWN_SKU.code and codes:
        inventory_push_for_items(connection=connection, erp_item_codes=codes, queue=False)
        levels = InventoryLevel.objects.filter(connection=connection, storefront_sku=record.sku)
        return levels.exists() and not levels.exclude(last_error="").exists()
    run = inventory_sync_start(connection=connection, trigger="retry", queue=False)
    return run.exceptions_raised == 0


# --- runs -----------------------------------------------------------------------------------------


def quiet_hours(spec: str) -> list[tuple[int, int]]:
    """"11-14,18-21" -> [(11, 14), (18, 21)]: full syncs do not start from 11:00 to 13:59 and 18:00-20:59."""
    windows = []
    for part in (spec or "").split(","):
        part = part.strip()
        if part:
            start, _, end = part.partition("-")
            windows.append((int(start), int(end or int(start) + 1)))
    return windows


def in_quiet_window(moment: datetime, spec: str) -> bool:
    hour = timezone.localtime(moment).hour if timezone.is_aware(moment) else moment.hour
    for start, end in quiet_hours(spec):
        if (start <= hour < end) if start <= end else (hour >= start or hour < end):
            return True
    return False


def _queue(func: str, run_id: int, *, priority: bool = False) -> None:
    from django_q.tasks import async_task

    options = {"task_name": f"inventory-run-{run_id}"}
    cluster = getattr(settings, "INVENTORY_PRIORITY_CLUSTER", "") if priority else ""
    if cluster:
        options["cluster"] = cluster  # a dedicated qcluster so order-driven pushes never wait behind a full sync
    transaction.on_commit(lambda: async_task(func, run_id, **options))


def inventory_sync_start(*, connection, trigger: str = "manual", user=None, queue: bool = True):
    """Create a full-sync run (or return the one already pending/running) and queue it."""
    from integrations.models import InventorySyncRun

    Run = InventorySyncRun
    stale = timezone.now() - timedelta(hours=2)
    active = Run.objects.filter(connection=connection, kind=Run.Kind.FULL,
                                status__in=[Run.Status.PENDING, Run.Status.RUNNING], created_at__gte=stale).first()
    if active:
        return active
    run = Run.objects.create(connection=connection, kind=Run.Kind.FULL, trigger=trigger,
                             requested_by=user if user and user.is_authenticated else None)
    if queue:
        _queue("integrations.tasks.inventory_sync", run.pk)
        return run
    return inventory_sync_run(run_id=run.pk)


def inventory_push_for_items(*, connection, erp_item_codes: Iterable[str], queue: bool = True, erp=None,
                             storefront=None):
    """The order flow's high-priority path: push the ATS of these ERP items (and the kits made of them)
    to every mapped location of the storefront, immediately, as its own task."""
    from integrations.models import InventorySyncRun

    run = InventorySyncRun.objects.create(connection=connection, kind=InventorySyncRun.Kind.ORDER, trigger="order",
                                          item_codes=sorted(set(erp_item_codes)))
    if queue:
        _queue("integrations.tasks.inventory_push_items", run.pk, priority=True)
        return run
    return inventory_sync_run(run_id=run.pk, erp=erp, storefront=storefront)


def inventory_full_sync_scheduled(*, now: datetime | None = None) -> list[int]:
    """The schedule's entry: a full sync per active storefront, unless inside a quiet window."""
    from integrations.models import Connection

    moment = now or timezone.now()
    if in_quiet_window(moment, getattr(settings, "INVENTORY_QUIET_HOURS", "")):
        log.info("inventory full sync skipped: quiet hours %s", settings.INVENTORY_QUIET_HOURS)
        return []
    return [inventory_sync_start(connection=c, trigger="schedule").pk
            for c in Connection.objects.storefronts().filter(active=True)]


def inventory_sync_run(*, run_id: int, erp=None, storefront=None):
    """Run one queued run. Safe twice: the run is claimed PENDING → RUNNING by a conditional update,
    and every write is a compare-and-set / versioned update, so a replay never double-applies."""
    from integrations.models import InventorySyncRun

    Run = InventorySyncRun
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.PENDING).update(
        status=Run.Status.RUNNING, started_at=timezone.now())
    run = Run.objects.select_related("connection").get(pk=run_id)
    if not claimed:
        return run
    from integrations.connectors import get_erp, get_storefront

    from .inventory_push import run_push

    try:
        run_push(run, erp=erp or get_erp(), storefront=storefront or get_storefront(run.connection))
    except Exception as exc:  # the run row must say it failed; the queue decides about retrying
        log.exception("inventory run %s failed", run_id)
        run.status = Run.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.save()
        raise
    run.status = Run.Status.PARTIAL if run.exceptions_raised else Run.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.save()
    return run


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
