"""Inventory drift: per SKU and storefront location, what the storefront shows as available now, the
ATS Ledgerline last pushed and the ERP's current ATS, beyond a tolerance. Shopify's levels are read
by one bulk operation (started first: the ERP's stock is read while Shopify builds the file),
commercetools' entries per supply channel, the ERP's stock once per depot (one export request per
depot where the ERP offers STOCK_EXPORT, else its pages); the comparison walks the stored levels
with `.iterator()` (no query per row)."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

from exceptions_queue.registry import Team
from integrations.connectors.base import STOCK_EXPORT, ConnectorError, supports
from integrations.models import Connection, DriftRun, InventoryLevel

from .. import exception_types as types
from ..conf import drift_setting
from ..registry import Finding, drift_check

log = logging.getLogger("ledgerline.drift")


def _location_key(connection: Connection, location: str) -> str:
    if connection.kind == "shopify":
        from integrations.connectors.shopify import location_gid

        return location_gid(location)
    return location


def shopify_bulk_start(client):
    """Ask Shopify to build the stock file (its bulk operation runs on Shopify's side, minutes for a
    large catalogue: the check reads the ERP meanwhile)."""
    from integrations.connectors.shopify import catalogue_read

    return catalogue_read.start_inventory_export(client)


def shopify_available(connection: Connection, client, operation=None) -> dict[tuple[str, str], int]:
    """{(sku, location GID): available} from one bulk operation over the whole catalogue (started here,
    or already started by shopify_bulk_start)."""
    from integrations.connectors.shopify import bulk, catalogue_read

    operation = operation or catalogue_read.start_inventory_export(client)
    wait = float(drift_setting("bulk_poll_seconds"))
    operation = bulk.wait_until_finished(client, operation.id, interval=wait, timeout=1800,
                                         sleep=time.sleep if wait else (lambda s: None))
    return catalogue_read.available_from_raw_lines(bulk.download_raw_lines(operation.url))


def commercetools_available(connection: Connection, client) -> dict[tuple[str, str], int]:
    """{(sku, channel key): quantityOnStock} of every inventory entry in the mapped supply channels."""
    from integrations.flows.inventory.ats import LocationRule
    from integrations.flows.inventory.push import CommercetoolsPusher
    from mappings.models import LocationMapping

    pusher = CommercetoolsPusher(client, SimpleNamespace(read_calls=0, connection=connection))
    rules = pusher.check_locations([LocationRule.from_mapping(m) for m in
                                    LocationMapping.objects.filter(connection=connection, active=True)])
    pusher.catalogue_skus(rules)
    return {key: int(entry.get("quantityOnStock") or 0) for key, entry in pusher.entries.items()}


def erp_ats_now(connection: Connection, erp, stock_cache: dict) -> dict[tuple[str, str], int]:
    """The ATS the ERP's current stock gives, computed as the inventory push computes it."""
    from integrations.flows.inventory.ats import LocationRule, levels_compute, sku_plans, stock_index
    from mappings.models import LocationMapping

    rules = [LocationRule.from_mapping(m) for m in LocationMapping.objects.filter(connection=connection, active=True)]
    skus = InventoryLevel.objects.filter(connection=connection).values_list("storefront_sku", flat=True).distinct()
    plans = sku_plans(connection, list(skus))
    # Each depot read once per run and kept as figures, not as the ERP's rows (a third of the memory):
    # by the ERP's export when it has one (a request per depot), else page by page (Prima).
    export = supports(erp, STOCK_EXPORT)
    for warehouse in sorted({r.erp_warehouse for r in rules} - set(stock_cache)):
        rows = erp.export_stock(depot=warehouse) if export else erp.get_stock(depot=warehouse)
        stock_cache[warehouse] = stock_index(rows)
    needed = {code for plan in plans for code in plan.item_codes}
    stock = {key: figures for warehouse in sorted({r.erp_warehouse for r in rules})
             for key, figures in stock_cache[warehouse].items() if key[0] in needed}
    return levels_compute(plans, rules, stock)


def _cause(storefront: int | None, pushed: int | None, erp: int | None) -> str:
    if storefront is None:
        return "the storefront has no stock record for this SKU at this location"
    if pushed is None:
        return "Ledgerline never pushed this level"
    if storefront != pushed:
        return "the storefront changed since the last push (a manual edit, or sales not yet posted)"
    return "the ERP's stock moved since the last push (the next sync pushes it)"


@drift_check("inventory_drift", "Inventory drift", Team.OPS, "inventory", 60,
             "Per SKU and location: the storefront's available quantity, the ATS Ledgerline last pushed and "
             "the ERP's current ATS, beyond the tolerance. Shopify is read by one bulk operation.")
def inventory_drift(run: DriftRun) -> list[Finding]:
    from integrations.connectors import connector_for, get_erp

    tolerance = int(drift_setting("inventory_tolerance"))
    vendors = not drift_setting("skip_vendor_reads")
    findings: list[Finding] = []
    stock_cache: dict = {}
    erp = get_erp() if vendors else None
    compared = 0
    for connection in Connection.objects.storefronts().filter(active=True).order_by("code"):
        storefront_now = erp_now = None
        if vendors:
            try:
                client = connector_for(connection)
                if connection.kind == "shopify":  # the ERP is read while Shopify builds the file
                    operation = shopify_bulk_start(client)
                    erp_now = erp_ats_now(connection, erp, stock_cache)
                    storefront_now = shopify_available(connection, client, operation)
                else:
                    storefront_now = commercetools_available(connection, client)
                    erp_now = erp_ats_now(connection, erp, stock_cache)
            except ConnectorError as exc:
                # Not read this time: its open findings stay open, and the next run reads it again.
                log.warning("inventory drift: %s not read: %s", connection.code, exc)
                run.keep_open.add(f"{connection.code}:")
                run.summary.setdefault("not_read", {})[connection.code] = str(exc)[:300]
                continue
        rows = (InventoryLevel.objects.filter(connection=connection)
                .values_list("storefront_sku", "storefront_location", "erp_ats", "pushed_ats", "storefront_value")
                .iterator(chunk_size=5000))
        for sku, location, stored_ats, pushed, stored_value in rows:
            compared += 1
            if vendors:
                shown = storefront_now.get((sku, _location_key(connection, location)))
                ats = erp_now.get((sku, location), stored_ats)
            else:
                shown, ats = stored_value, stored_ats
            if shown is not None and abs(shown - ats) <= tolerance:
                continue
            if shown is None and ats <= tolerance:
                continue
            findings.append(Finding(
                key=f"{connection.code}:{sku}@{location}", exception_type=types.INVENTORY_DRIFT.code,
                connection=connection, subject_type="sku", subject_id=sku, sku=sku,
                group=f"inventory:{connection.code}",
                message=(f"{sku} at {location} on {connection}: the storefront shows "
                         f"{'nothing' if shown is None else shown}, Ledgerline last pushed "
                         f"{'nothing' if pushed is None else pushed}, the ERP's ATS is {ats} "
                         f"({_cause(shown, pushed, ats)})."),
                context={"sku": sku, "location": location},
                detail={"storefront": {"available": shown}, "ledgerline": {"last_pushed": pushed},
                        "erp": {"ats": ats}, "tolerance": tolerance}))
    run.summary["levels_compared"] = compared
    return findings
