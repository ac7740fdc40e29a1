"""Pushing computed ATS to a storefront: Shopify by compare-and-set (full sync) or read-then-delta
(order-driven), commercetools by versioned add/removeQuantity. Both recover from a concurrent change
(CHANGE_FROM_QUANTITY_STALE / 409 ConcurrentModification) by re-reading and recomputing, never by
overwriting what a checkout did in between.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from itertools import chain

from django.utils import timezone

from integrations.connectors.base import NotFound
from integrations.connectors.shopify import location_gid as shopify_location_gid

from integrations.writes import outbound_write

from .ats import LocationRule, batched, levels_compute, sku_plans, stock_index
from .exception_types import UNKNOWN_SKU, UNMAPPED_LOCATION, inventory_exception_raise

log = logging.getLogger("ledgerline.inventory")
MAX_RECOVERY_ROUNDS = 4


@dataclass
class Target:
    sku: str
    location: str
    ats: int
    pushed_ats: int | None = None
    basis: int | None = None
    ref: str = ""
    version: int | None = None


@dataclass
class Outcome:
    ok: bool
    value: int | None = None
    basis: int | None = None
    ref: str = ""
    version: int | None = None
    error: str = ""
    unknown_sku: bool = False


class _Pusher:
    per_call_max = 1

    def __init__(self, client, run):
        self.client = client
        self.run = run
        self.connection = run.connection
        self.unmapped: list[tuple[str, str]] = []  # (location, why)
        # {location as mappings hold it, and as the storefront spells it: (name, active)}, for the screens.
        self.location_names: dict[str, tuple[str, bool]] = {}
        self.writes = 0

    def logged(self, action: str, call, *, detail: str = ""):
        """One storefront write, in the outbound-write log like every write to an outside system: the
        row (with the idempotency key the call sends) is saved before the call and updated after."""
        self.writes += 1
        key = f"ledgerline://inventory-run/{self.run.pk}/{action}/{self.writes}{detail}"
        with outbound_write(action=action, idempotency_key=key, connection=self.connection,
                            subject=("inventory_run", str(self.run.pk))) as write:
            result = call(key)
            if isinstance(result, list) and result:  # the storefront's user errors: the call happened
                messages = "; ".join(str(e.get("code") or e.get("message") or e) for e in result[:5])
                write.response_id = f"{len(result)} rejected"
                type(write).objects.filter(pk=write.pk).update(error=messages[:2000])
            elif isinstance(result, dict):
                write.response_id = str(result.get("id", ""))
            return result


class ShopifyPusher(_Pusher):
    def __init__(self, client, run):
        super().__init__(client, run)
        self.per_call_max = client.MAX_QUANTITIES_PER_CALL
        self.refs: dict[str, str] = {}

    def check_locations(self, rules: list[LocationRule]) -> list[LocationRule]:
        locations = self.client.list_locations()
        self.run.read_calls += 1
        active = {loc["id"]: loc["name"] for loc in locations if loc.get("is_active", True)}
        known = {loc["id"] for loc in locations}
        mapped = {shopify_location_gid(r.storefront_location) for r in rules}
        self.location_names = {loc["id"]: (loc.get("name") or "", loc.get("is_active", True)) for loc in locations}
        self.location_names.update({r.storefront_location: self.location_names[shopify_location_gid(r.storefront_location)]
                                    for r in rules if shopify_location_gid(r.storefront_location) in known})
        self.unmapped += [(f"{name} ({gid})", "has no active location mapping") for gid, name in active.items() if gid not in mapped]
        kept = []
        for rule in rules:
            if shopify_location_gid(rule.storefront_location) in known:
                kept.append(rule)
            else:
                self.unmapped.append((rule.storefront_location, "is mapped but Shopify has no such location"))
        return kept

    def catalogue_skus(self, rules) -> list[str]:
        count = 0
        for variant in self.client.list_variants():
            count += 1
            if variant["sku"]:
                self.refs.setdefault(variant["sku"], variant["inventory_item_id"])
        self.run.read_calls += max(1, math.ceil(count / self.client.PAGE_SIZE))
        return list(self.refs)

    def _resolve_refs(self, targets: list[Target], outcomes: dict) -> list[Target]:
        missing = sorted({t.sku for t in targets if not t.ref and t.sku not in self.refs})
        if missing:
            found = self.client.find_variants_by_sku(missing)
            self.run.read_calls += math.ceil(len(missing) / self.client.SKUS_PER_QUERY)
            self.refs.update({sku: row["inventory_item_id"] for sku, row in found.items()})
        ready = []
        for t in targets:
            t.ref = t.ref or self.refs.get(t.sku, "")
            if t.ref:
                ready.append(t)
            else:
                outcomes[(t.sku, t.location)] = Outcome(False, error="Shopify has no variant with this SKU", unknown_sku=True)
        return ready

    def _read(self, targets: list[Target]) -> dict[tuple[str, str], dict]:
        items = {t.ref for t in targets}
        levels = self.client.inventory_levels(items, {shopify_location_gid(t.location) for t in targets})
        self.run.read_calls += math.ceil(len(items) / self.client.ITEMS_PER_LEVEL_QUERY)
        return levels

    def push(self, targets: list[Target], *, delta: bool) -> dict[tuple[str, str], Outcome]:
        outcomes: dict[tuple[str, str], Outcome] = {}
        targets = self._resolve_refs(targets, outcomes)
        if delta:
            self._push_delta(targets, outcomes)
        else:
            self._push_compare_and_set(targets, outcomes)
        return outcomes

    def _calls(self, sent: int, errors: list[dict]) -> int:
        calls = math.ceil(sent / self.per_call_max) if sent else 0
        attributable = [e for e in errors if e.get("change") is not None]
        if attributable and len(attributable) == len(errors) and len(attributable) < sent:
            calls += 1  # the connector sent the rest of a rejected batch again
        return calls

    def _push_compare_and_set(self, targets: list[Target], outcomes: dict) -> None:
        # Levels never pushed: read first, offer ATS − Shopify `reserved` (checkouts the ERP cannot know).
        plan: dict[int, tuple[Target, int, int]] = {}  # id -> (target, quantity, change_from)
        unread = [t for t in targets if t.basis is None or t.pushed_ats is None]
        fresh = self._read(unread) if unread else {}
        for t in targets:
            loc = shopify_location_gid(t.location)
            if t.basis is not None and t.pushed_ats is not None:
                # What we set last time was pushed_ats − reserved; keep the same holds: shift by the ATS change.
                plan[id(t)] = (t, max(0, t.basis + t.ats - t.pushed_ats), t.basis)
            elif (t.ref, loc) in fresh:
                level = fresh[(t.ref, loc)]
                plan[id(t)] = (t, max(0, t.ats - level.get("reserved", 0)), level.get("available", 0))
            else:
                outcomes[(t.sku, t.location)] = Outcome(False, error="item not stocked at this Shopify location")
        for _round in range(MAX_RECOVERY_ROUNDS):
            if not plan:
                return
            pending = list(plan.values())
            by_change = {}
            changes = []
            for t, quantity, change_from in pending:
                change = {"inventory_item_id": t.ref, "location_id": shopify_location_gid(t.location),
                          "quantity": quantity, "change_from": change_from}
                by_change[id(change)] = t
                changes.append(change)
            errors = self.logged("set_inventory", lambda key: self.client.set_available_quantities(
                changes, reference=f"ledgerline://inventory-run/{self.run.pk}", idempotency_key=key))
            self.run.api_calls += self._calls(len(changes), errors)
            failed: dict[int, dict] = {}
            unattributed = [e for e in errors if e.get("change") is None]
            for error in errors:
                if error.get("change") is not None:
                    failed[id(by_change[id(error["change"])])] = error
            stale = []
            for t, quantity, change_from in pending:
                error = failed.get(id(t))
                key = (t.sku, t.location)
                if unattributed:
                    outcomes[key] = Outcome(False, error="; ".join(e["message"] for e in unattributed)[:300])
                elif error is None:
                    outcomes[key] = Outcome(True, value=quantity, basis=quantity, ref=t.ref)
                elif error["code"] == "CHANGE_FROM_QUANTITY_STALE":
                    stale.append(t)
                    continue
                else:
                    outcomes[key] = Outcome(False, error=f"{error['code']}: {error['message']}"[:300],
                                            unknown_sku=error["code"] == "INVALID_INVENTORY_ITEM")
                plan.pop(id(t), None)
            if not stale:
                return
            # Someone (a checkout) moved the number since we read it: re-read and recompute, never overwrite.
            self.run.conflicts += len(stale)
            fresh = self._read(stale)
            for t in stale:
                level = fresh.get((t.ref, shopify_location_gid(t.location)))
                if level is None:
                    outcomes[(t.sku, t.location)] = Outcome(False, error="level vanished during the push")
                    plan.pop(id(t), None)
                else:
                    plan[id(t)] = (t, max(0, t.ats - level.get("reserved", 0)), level.get("available", 0))
        for t, _q, _c in plan.values():
            outcomes[(t.sku, t.location)] = Outcome(False, error="the level kept changing; will retry next sync")

    def _push_delta(self, targets: list[Target], outcomes: dict) -> None:
        # Read, then adjust by the difference: whatever Shopify does between read and write is kept.
        fresh = self._read(targets) if targets else {}
        changes, after = [], {}
        for t in targets:
            level = fresh.get((t.ref, shopify_location_gid(t.location)))
            if level is None:
                outcomes[(t.sku, t.location)] = Outcome(False, error="item not stocked at this Shopify location")
                continue
            wanted = max(0, t.ats - level.get("reserved", 0))
            change = {"inventory_item_id": t.ref, "location_id": shopify_location_gid(t.location),
                      "delta": wanted - level.get("available", 0)}
            after[id(change)] = (t, wanted)
            if change["delta"]:
                changes.append(change)
            else:
                outcomes[(t.sku, t.location)] = Outcome(True, value=wanted, basis=wanted, ref=t.ref)
        if not changes:
            return
        errors = self.logged("adjust_inventory", lambda key: self.client.adjust_available_quantities(
            changes, reference=f"ledgerline://inventory-run/{self.run.pk}", idempotency_key=key))
        self.run.api_calls += self._calls(len(changes), errors)
        failed = {id(e["change"]): e for e in errors if e.get("change") is not None}
        for change in changes:
            t, wanted = after[id(change)]
            error = failed.get(id(change))
            if error or (errors and not failed):
                message = f"{error['code']}: {error['message']}" if error else errors[0].get("message", "")
                outcomes[(t.sku, t.location)] = Outcome(False, error=message[:300])
            else:
                outcomes[(t.sku, t.location)] = Outcome(True, value=wanted, basis=wanted, ref=t.ref)


class CommercetoolsPusher(_Pusher):
    """One inventory entry per update request, so the per-call maximum is 1."""

    def __init__(self, client, run):
        super().__init__(client, run)
        self.channels: dict[str, str] = {}  # key -> id
        self.entries: dict[tuple[str, str], dict] = {}  # (sku, channel key) -> entry

    def check_locations(self, rules: list[LocationRule]) -> list[LocationRule]:
        channels = self.client.list_channels()
        self.run.read_calls += 1
        self.channels = {c["key"]: c["id"] for c in channels if c.get("key")}
        self.location_names = {c.get("key") or c["id"]: (_channel_name(c), True) for c in channels}
        mapped = {r.storefront_location for r in rules}
        for channel in channels:
            if "InventorySupply" in (channel.get("roles") or []) and channel.get("key") not in mapped:
                self.unmapped.append((channel.get("key") or channel["id"], "supplies inventory but has no location mapping"))
        kept = []
        for rule in rules:
            if rule.storefront_location in self.channels:
                kept.append(rule)
            else:
                self.unmapped.append((rule.storefront_location, "is mapped but commercetools has no such channel"))
        return kept

    def catalogue_skus(self, rules) -> list[str]:
        skus: dict[str, None] = {}
        for rule in rules:
            channel_id = self.channels[rule.storefront_location]
            count = 0
            for entry in self.client.inventory_entries(where=f'supplyChannel(id = "{channel_id}")'):
                count += 1
                self.entries[(entry["sku"], rule.storefront_location)] = entry
                skus.setdefault(entry["sku"])
            self.run.read_calls += count // 100 + 1
        return list(skus)

    def _entry(self, t: Target) -> dict | None:
        self.run.read_calls += 1
        return self.client.get_inventory_entry(t.sku, self.channels[t.location])

    def push(self, targets: list[Target], *, delta: bool) -> dict[tuple[str, str], Outcome]:
        from integrations.connectors.commercetools import ConcurrentModification

        outcomes = {}
        for t in targets:
            key = (t.sku, t.location)
            entry = self.entries.get(key)
            if entry is None and t.ref and t.version is not None and t.basis is not None:
                entry = {"id": t.ref, "version": t.version, "quantityOnStock": t.basis}  # last confirmed; 409 if moved
            if entry is None:
                entry = self._entry(t)
            for _round in range(MAX_RECOVERY_ROUNDS + 1):
                if entry is None:
                    entry = self.logged("create_inventory_entry", lambda _key: self.client.create_inventory_entry(
                        sku=t.sku, channel_id=self.channels[t.location], quantity_on_stock=t.ats), detail=f"/{t.sku}")
                    self.run.api_calls += 1
                    break
                difference = t.ats - int(entry["quantityOnStock"])
                if difference == 0:
                    break
                action = ({"action": "addQuantity", "quantity": difference} if difference > 0
                          else {"action": "removeQuantity", "quantity": -difference})
                try:
                    self.run.api_calls += 1
                    entry = self.logged("update_inventory_entry", lambda _key: self.client.update_inventory_entry(
                        entry["id"], entry["version"], [action]), detail=f"/{t.sku}")
                    break
                except ConcurrentModification:
                    # A reservation or another writer moved the entry: re-read, recompute, re-apply.
                    self.run.conflicts += 1
                    entry = self._entry(t)
                except NotFound:
                    entry = self._entry(t)
            else:
                outcomes[key] = Outcome(False, error="the entry kept changing; will retry next sync")
                continue
            if "availableQuantity" not in entry:  # optimistic entry that needed no write: read for display
                entry = self._entry(t) or entry
            outcomes[key] = Outcome(True, value=entry.get("availableQuantity", entry["quantityOnStock"]),
                                    basis=entry["quantityOnStock"], ref=entry["id"], version=entry.get("version"))
        return outcomes


def _channel_name(channel: dict) -> str:
    """A channel's name (a commercetools LocalizedString) in English if it has one, else any language."""
    name = channel.get("name") or {}
    if isinstance(name, str):
        return name
    for language in ("en", "en-GB", "en-US"):
        if name.get(language):
            return name[language]
    english = [text for language, text in sorted(name.items()) if language.startswith("en") and text]
    return (english or [text for _language, text in sorted(name.items()) if text] or [""])[0]


def make_pusher(client, run):
    return ShopifyPusher(client, run) if run.connection.kind == "shopify" else CommercetoolsPusher(client, run)


def run_push(run, *, erp, storefront) -> None:
    """Compute ATS, diff against the last confirmed push, push the difference, record everything."""
    from integrations.models import InventoryDriftSample, InventoryLevel, InventorySyncRun
    from integrations.models.inventory import storefront_locations_remember
    from mappings.models import LocationMapping

    connection = run.connection
    full = run.kind == InventorySyncRun.Kind.FULL
    pusher = make_pusher(storefront, run)
    rules = [LocationRule.from_mapping(m) for m in LocationMapping.objects.filter(connection=connection, active=True)]
    rules = pusher.check_locations(rules)
    storefront_locations_remember(connection=connection, names=pusher.location_names)
    exceptions = 0
    for location, why in pusher.unmapped:
        inventory_exception_raise(UNMAPPED_LOCATION, connection=connection, key=f"location:{location}",
               message=f"Storefront location {location} {why}; its stock is not kept in line with the ERP.",
               context={"location": location})
        exceptions += 1

    storefront_skus = pusher.catalogue_skus(rules) if full else []
    plans = sku_plans(connection, storefront_skus, () if full else run.item_codes)
    needed = {code for plan in plans for code in plan.item_codes}
    rows = chain.from_iterable(erp.get_stock(depot=w) for w in sorted({r.erp_warehouse for r in rules}))
    stock = stock_index(row for row in rows if row["item_code"] in needed)
    known = {code for code, _w in stock}
    kept_plans = []
    for plan in plans:
        unknown = [code for code in plan.item_codes if code not in known]
        if unknown and rules:
            inventory_exception_raise(UNKNOWN_SKU, connection=connection, key=f"sku:{plan.storefront_sku}", sku=plan.storefront_sku,
                   message=(f"SKU {plan.storefront_sku}: the ERP has no stock record for {', '.join(unknown)}; "
                            "its storefront quantity was not changed."),
                   context={"sku": plan.storefront_sku, "erp_item_codes": unknown},
                   retry_args={"erp_item_codes": list(plan.item_codes)})
            exceptions += 1
        else:
            kept_plans.append(plan)
    computed = levels_compute(kept_plans, rules, stock)
    plan_of = {p.storefront_sku: p for p in kept_plans}
    warehouse_of = {r.storefront_location: r.erp_warehouse for r in rules}

    levels = InventoryLevel.objects.filter(connection=connection)
    if not full:
        levels = levels.filter(storefront_sku__in=list(plan_of))
    existing = {(lv.storefront_sku, lv.storefront_location): lv for lv in levels}
    changed = [key for key, ats in computed.items()
               if key not in existing or existing[key].pushed_ats != ats or existing[key].last_error]
    now = timezone.now()
    run.levels_total, run.levels_changed = len(computed), len(changed)
    run.progress_total, run.progress_done = len(changed), 0
    run.save()

    # Unchanged levels: only the computed figure and its time move.
    stale_figures = [lv for key, lv in existing.items() if key in computed and lv.erp_ats != computed[key]]
    for lv in stale_figures:
        lv.erp_ats, lv.computed_at = computed[(lv.storefront_sku, lv.storefront_location)], now
    InventoryLevel.objects.bulk_update(stale_figures, ["erp_ats", "computed_at"], batch_size=1000)

    units = 0
    failed_skus: set[str] = set()
    chunk = max(pusher.per_call_max * 4, 200)
    for batch in batched(changed, chunk):
        targets = []
        for key in batch:
            lv = existing.get(key)
            ats = computed[key]
            previous = (lv.pushed_ats if lv.pushed_ats is not None else lv.storefront_value) if lv else None
            units += abs(ats - (previous or 0))
            targets.append(Target(key[0], key[1], ats, lv.pushed_ats if lv else None, lv.storefront_basis if lv else None,
                                  lv.storefront_ref if lv else "", lv.storefront_version if lv else None))
        outcomes = pusher.push(targets, delta=not full)
        to_create, to_update = [], []
        for key in batch:
            outcome = outcomes.get(key) or Outcome(False, error="not pushed")
            plan = plan_of[key[0]]
            lv = existing.get(key)
            if lv is None:
                lv = InventoryLevel(connection=connection, storefront_sku=key[0], storefront_location=key[1])
                to_create.append(lv)
            else:
                to_update.append(lv)
            lv.erp_item_code, lv.erp_warehouse = plan.erp_item_code, warehouse_of[key[1]]
            lv.erp_ats, lv.computed_at = computed[key], now
            if outcome.ok:
                lv.pushed_ats, lv.pushed_at, lv.last_error = computed[key], timezone.now(), ""
                lv.storefront_value, lv.storefront_basis = outcome.value, outcome.basis
                lv.storefront_ref, lv.storefront_version = outcome.ref or lv.storefront_ref, outcome.version
                run.levels_pushed += 1
            else:
                lv.last_error = outcome.error[:300]
                failed_skus.add(key[0])
                if outcome.unknown_sku:
                    inventory_exception_raise(UNKNOWN_SKU, connection=connection, key=f"sku:{key[0]}", sku=key[0],
                           message=f"SKU {key[0]}: {outcome.error}; its storefront quantity was not changed.",
                           context={"sku": key[0], "location": key[1]},
                           retry_args={"erp_item_codes": list(plan.item_codes)})
                    exceptions += 1
        level_fields = ["erp_item_code", "erp_warehouse", "erp_ats", "computed_at", "pushed_ats", "pushed_at",
                        "last_error", "storefront_value", "storefront_basis", "storefront_ref", "storefront_version"]
        # Two order-driven pushes for the same new SKU may both create its level: the later one
        # updates the row the earlier one inserted (an upsert on the unique key), never fails.
        InventoryLevel.objects.bulk_create(
            to_create, batch_size=1000, update_conflicts=True,
            unique_fields=["connection", "storefront_sku", "storefront_location"], update_fields=level_fields)
        InventoryLevel.objects.bulk_update(to_update, level_fields, batch_size=1000)
        run.progress_done += len(batch)
        run.exceptions_raised = exceptions
        run.save()
    run.exceptions_raised = exceptions
    _resolve_cleared(connection, computed, failed_skus=failed_skus,
                     unmapped_keys={f"location:{location}" for location, _why in pusher.unmapped})
    if full:
        InventoryDriftSample.objects.create(connection=connection, run=run, levels_total=len(computed),
                                            levels_drifted=len(changed), units_drifted=units)


def _resolve_cleared(connection, computed, *, failed_skus: set[str], unmapped_keys: set[str]) -> int:
    """Exceptions a later push proved fixed resolve by themselves: a SKU whose every level was pushed
    (or was already in line) this run, and a location the run's full check of the storefront's
    locations no longer reports (mapped now, or gone from the storefront)."""
    from exceptions_queue.models import ExceptionRecord
    from exceptions_queue.services import exception_resolve

    active = ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    clean_skus = {sku for sku, _location in computed} - failed_skus
    resolved = 0
    for record in active.filter(key__startswith=f"{UNKNOWN_SKU.code}:{connection.code}:sku:"):
        if record.sku not in clean_skus:
            continue
        exception_resolve(record=record, action="auto_resolved",
                          note=f"A later stock push reached every location for SKU {record.sku}.")
        resolved += 1
    prefix = f"{UNMAPPED_LOCATION.code}:{connection.code}:"
    for record in active.filter(key__startswith=prefix):
        if record.key[len(prefix):] not in unmapped_keys:
            exception_resolve(record=record, action="auto_resolved",
                              note="The storefront's locations were checked again: this one is mapped (or gone) now.")
            resolved += 1
    return resolved
