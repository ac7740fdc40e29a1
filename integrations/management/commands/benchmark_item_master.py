"""Benchmark: the item master's first load into a Shopify shop and a commercetools project, then a 1 % change.

    manage.py benchmark_item_master                                  # 100,000 items × 3 prices, 1 % changed
    manage.py benchmark_item_master --items 2000 --prices 3          # a quick run

The vendor sandboxes run in a forked child process (so the CPU seconds and peak memory printed are
Ledgerline's own, not the sandboxes'), with Shopify's cost bucket of the chosen plan (default the
standard plan's 100 points/s restore rate and 1,000 points bucket); this process talks to them over
HTTP on loopback, on a throwaway SQLite database (or a copy of DATABASE_URL's), dropped afterwards.

Not timed: seeding the sandbox ERP with N items (variants of products of --variants items each, with
cost, lead time, tax code, depot, a size attribute and P prices each: GBP list, GBP compare-at, EUR list,
then quantity tiers) and the connections. Timed, each phase on its own:

- first load: every item from the ERP to both storefronts through the catalogue flow (the bulk path:
  Shopify bulk mutation with a staged JSONL upload; commercetools products in batches);
- 1 % change: --change of the items get new prices (and every tenth of them a new name) in the ERP, and
  the same flow brings both storefronts up to date.

Printed per phase: seconds, storefront API calls per vendor (requests the sandboxes answered), Shopify
cost points charged, products created / updated / failed, CPU seconds and peak RSS of this process. Then
the first load beside the vendors' documented throughput bound (Shopify: the synchronous productSet
path at the plan's restore rate, which the bulk path avoids; commercetools: none documented, so its
measured request rate at our own concurrency) and the 1 % change against its target (< 60 s within the
vendors' limits).

When the catalogue flow (integrations.flows.catalogue) is not installed, the benchmark drives the
storefront connectors' PUBLISH_PRODUCTS / BULK_PUBLISH directly with the same Products (one per product
key), changed products found by fingerprint: it says so in its first line.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

SIZES = ("S", "M", "L", "XL", "XXL", "3XL", "4XL", "5XL")
TARGET_CHANGE_SECONDS = 60.0
BULK_POLL_SECONDS = 0.2
BULK_WAIT_SECONDS = 3600.0


# --- what the ERP holds (the same figures in the sandbox child and, for the direct path, here) ---------

def item_code(n: int) -> str:
    return f"BM-{n:06d}"


def item_prices(n: int, count: int, *, bump: int = 0) -> list[dict]:
    """`count` prices of item n: GBP list, GBP compare-at, EUR list, then GBP quantity tiers."""
    base = Decimal(1000 + (n % 4000) + bump) / 100
    prices = []
    for i in range(count):
        if i == 0:
            prices.append({"currency": "GBP", "amount": str(base), "type": "list"})
        elif i == 1:
            prices.append({"currency": "GBP", "amount": str((base * Decimal("1.25")).quantize(Decimal("0.01"))),
                           "type": "compare_at"})
        elif i == 2:
            prices.append({"currency": "EUR", "amount": str((base * Decimal("1.17")).quantize(Decimal("0.01"))),
                           "type": "list"})
        else:
            tier = 10 * (i - 2)
            prices.append({"currency": "GBP", "type": "list", "min_quantity": tier,
                           "amount": str((base * (1 - Decimal(i - 2) / 50)).quantize(Decimal("0.01")))})
    return prices


def item_record(n: int, prices: int, variants: int, *, bump: int = 0, renamed: bool = False) -> dict:
    group = n // variants
    return {"code": item_code(n), "product_key": f"BMP-{group:06d}", "size": SIZES[n % variants],
            "name": f"Benchmark tee {group}" + (" (new)" if renamed else ""), "tax_code": "T1", "unit_cost": "4.20",
            "lead_time_days": 14, "supplier": "Acme Textiles", "depot": "MAIN",
            "prices": item_prices(n, prices, bump=bump)}


def changed_items(items: int, fraction: float) -> list[int]:
    """The items a change touches: every k-th, so the 1 % is spread over the whole catalogue."""
    count = max(1, int(round(items * fraction)))
    step = max(1, items // count)
    return list(range(0, items, step))[:count]


# --- the sandbox child -------------------------------------------------------------------------------

def _sandbox_child(pipe, options: dict) -> None:
    """Serve the sandboxes; answer the parent's commands (seed, change, stats, stop) on the pipe."""
    from integrations.sandbox.server import start_sandbox

    server = start_sandbox(**options)
    erp, shop, ct = server.apps["/erp"], server.apps["/shopify"], server.apps["/commercetools"]
    for app in (erp, shop, ct):
        app.reset()
    if hasattr(shop, "reset"):
        shop.reset(seed=False)
    erp.add_depot("MAIN")
    pipe.send({"url": server.url})
    while True:
        message = pipe.recv()
        command = message["cmd"]
        if command == "seed":
            began = time.perf_counter()
            for n in range(message["items"]):
                _erp_put(erp, item_record(n, message["prices"], message["variants"]))
            price_list = shop.add_price_list("Europe", "EUR") if hasattr(shop, "add_price_list") else ""
            pipe.send({"seconds": time.perf_counter() - began, "price_list": price_list})
        elif command == "change":
            for n in message["numbers"]:
                _erp_put(erp, item_record(n, message["prices"], message["variants"], bump=message["bump"],
                                          renamed=n % 10 == 0))
            pipe.send({"changed": len(message["numbers"])})
        elif command == "stats":
            pipe.send(_stats(shop, ct))
        elif command == "stop":
            pipe.send({})
            server.shutdown()
            return


def _erp_put(erp, record: dict) -> None:
    """One item into the sandbox ERP, by the item master's own helper when it has one."""
    fields = dict(record)
    code, prices = fields.pop("code"), fields.pop("prices")
    name, size = fields.pop("name"), fields.pop("size")
    if hasattr(erp, "item_master_put"):
        erp.item_master_put(code, name=name, prices=prices, attributes={"size": size}, **fields)
        return
    erp.add_item(code, description=name, tax_code=fields["tax_code"], prices=prices, unit_cost=fields["unit_cost"],
                 lead_time_days=fields["lead_time_days"], supplier=fields["supplier"])
    item = erp.items[code]
    item.update({"product_key": fields["product_key"], "depot": fields["depot"], "attributes": {"size": size},
                 "name": name})


def _stats(shop, ct) -> dict:
    with shop.lock:
        shopify = {"graphql": shop.graphql_requests, "rest": shop.rest_requests,
                   "uploads": len(getattr(shop, "staged_uploads", {}) or {}),
                   "points": getattr(shop, "points_spent", 0), "throttled": shop.throttled,
                   "products": len(shop.products), "variants": len(shop.variants)}
    with ct.lock:
        seen = list(ct.requests_seen)
        commercetools = {"requests": sum(1 for method, path in seen if "/oauth/" not in path and "/auth" not in path),
                         "token": sum(1 for method, path in seen if "/oauth/" in path or "/auth" in path),
                         "products": len(getattr(ct, "product_records", ct.products)),
                         "rate_limited": ct.limiter.rejected}
    return {"shopify": shopify, "commercetools": commercetools}


# --- this process ------------------------------------------------------------------------------------

def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


@dataclass
class Phase:
    name: str
    seconds: float
    cpu: float
    peak_mb: float
    calls: dict
    outcome: dict


def _delta(after: dict, before: dict) -> dict:
    return {vendor: {k: (v - before[vendor].get(k, 0)) if isinstance(v, (int, float)) else v
                     for k, v in figures.items()} for vendor, figures in after.items()}


class Command(BaseCommand):
    help = "The item master's first load into Shopify and commercetools, then a 1 % change: time, API calls, cost points, memory."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000, help="ERP items (SKUs)")
        parser.add_argument("--prices", type=int, default=3, help="prices per item")
        parser.add_argument("--change", type=float, default=0.01, help="share of items changed after the first load")
        parser.add_argument("--variants", type=int, default=4, help="items (variants) per product")
        parser.add_argument("--shopify-restore-rate", type=float, default=100,
                            help="Shopify cost points restored per second (plans: 100, 200, 1000, 2000)")
        parser.add_argument("--shopify-bucket", type=float, default=1000, help="Shopify cost bucket size (points)")

    def handle(self, *args, items, prices, change, variants, shopify_restore_rate, shopify_bucket, **options):
        if items < 1 or prices < 1 or not 0 < change <= 1 or not 1 <= variants <= len(SIZES):
            raise CommandError(f"--items ≥ 1, --prices ≥ 1, 0 < --change ≤ 1, 1 ≤ --variants ≤ {len(SIZES)}")
        os.environ.setdefault("LEDGERLINE_MODE", "demo")
        logging.getLogger("ledgerline").setLevel(logging.WARNING)  # a line per product would drown the figures
        from django.conf import settings
        from django.db import connection, connections

        db_file = None
        if connection.vendor == "sqlite":
            db_file = tempfile.NamedTemporaryFile(prefix="ledgerline-items-bench-", suffix=".sqlite3", delete=False).name
            settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = db_file
        connections.close_all()  # the child must share no database connection with this process
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        child = context.Process(target=_sandbox_child, name="sandboxes", daemon=True, args=(theirs, {
            "erp_rate_limit": 0, "shopify_restore_rate": shopify_restore_rate, "shopify_bucket_size": shopify_bucket}))
        child.start()
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            url = ours.recv()["url"]
            self._run(ours, url, items=items, prices=prices, change=change, variants=variants,
                      plan=(shopify_restore_rate, shopify_bucket))
        finally:
            try:
                ours.send({"cmd": "stop"})
                ours.recv()
            except (BrokenPipeError, EOFError):
                pass
            child.join(10)
            connection.creation.destroy_test_db(old_name, verbosity=0)
            if db_file:
                for suffix in ("", "-wal", "-shm", ".writers.lock"):
                    try:
                        os.unlink(db_file + suffix)
                    except FileNotFoundError:
                        pass

    # --- setup ---------------------------------------------------------------------------------------

    def _ask(self, pipe, **message) -> dict:
        pipe.send(message)
        return pipe.recv()

    def _connections(self, url: str, price_list: str):
        from django.conf import settings

        from integrations.models import Connection
        from mappings.models import DepotMapping, TaxCodeMapping

        settings.SHOPIFY = {**settings.SHOPIFY, "shop_url": f"{url}/shopify"}
        settings.COMMERCETOOLS = {**settings.COMMERCETOOLS, "api_url": f"{url}/commercetools",
                                  "auth_url": f"{url}/commercetools/auth"}
        settings.ERP = {**settings.ERP, "kind": "rest", "base_url": f"{url}/erp/api/v1", "backoff_base": 0.01,
                        "backoff_max": 0.05}
        # Both publish the item master (the flow's setting), new items go live on their own; commercetools
        # products are of the project's "default" type, taxed by the ERP's tax code's category.
        shop = Connection.objects.create(code="shopify", kind="shopify", name="Shopify store", settings={
            "catalogue_publish": True, **({"price_lists": {"EUR": price_list}} if price_list else {})})
        ct = Connection.objects.create(code="commercetools", kind="commercetools", name="commercetools shop", settings={
            "catalogue_publish": True, "product_type": "default", "catalogue_tax_categories": {"T1": "standard"}})
        erp = Connection.objects.create(code="erp", kind="rest_erp", name="REST ERP")
        for storefront in (shop, ct):
            DepotMapping.objects.create(connection=storefront, country="", depot_code="MAIN")
            TaxCodeMapping.objects.create(connection=storefront, rate="0.2", country="GB", erp_tax_code="T1")
        return erp, shop, ct

    # --- the two ways of publishing ------------------------------------------------------------------

    @staticmethod
    def _flow():
        try:
            from integrations.flows import catalogue
        except ImportError:
            return None
        return catalogue if hasattr(catalogue, "pull_and_gate") and hasattr(catalogue, "publish") else None

    def _publish_flow(self, flow, erp, storefronts, *, bulk: bool | None) -> dict:
        """The catalogue flow, step by step (each timed): pull and gate what changed in the ERP, then publish
        each storefront (bulk=True: the bulk path; None: the flow's own choice by its bulk threshold) until
        it has everything: a bulk job is waited for, an unfinished run resumed as the next round would."""
        from integrations.models.catalogue import CatalogRun

        steps: dict[str, float] = {}
        clock = time.perf_counter()
        result: dict = {erp.code: flow.pull_and_gate(erp, storefronts)}
        steps["pull and gate"] = time.perf_counter() - clock
        for storefront in storefronts:
            clock = time.perf_counter()
            run = flow.publish(storefront, bulk=bulk, wait=BULK_WAIT_SECONDS)
            while CatalogRun.objects.filter(connection=storefront, state__in=CatalogRun.ACTIVE).exists():
                run = flow.publish(storefront, bulk=bulk, wait=BULK_WAIT_SECONDS) or run
            steps[storefront.code] = time.perf_counter() - clock
            result[storefront.code] = ({"path": "nothing to push", "ok": 0, "failed": 0} if run is None else
                                       {"path": {"bulk": "bulk mutation", "publish": "batches"}.get(run.kind, run.kind),
                                        "ok": run.done, "failed": run.failed,
                                        "error": run.error})
        result["steps"] = steps
        return result

    def _products(self, numbers, prices: int, variants: int, bumps: dict[int, int]) -> list:
        from integrations.connectors.catalogue import ItemPrice, Product, ProductVariant

        groups: dict[int, list[int]] = {}
        for n in numbers:
            groups.setdefault(n // variants, []).append(n)
        out = []
        for group, members in sorted(groups.items()):
            records = [item_record(n, prices, variants, bump=bumps.get(n, 0), renamed=bumps.get(n, 0) and n % 10 == 0)
                       for n in members]
            out.append(Product(key=records[0]["product_key"], name=records[0]["name"], product_type="default",
                               tax_category="standard", variants=tuple(
                                   ProductVariant(sku=r["code"], item_id=r["code"], attributes={"size": r["size"]},
                                                  prices=tuple(ItemPrice(currency=p["currency"], amount=Decimal(p["amount"]),
                                                                         type=p["type"],
                                                                         min_quantity=int(p.get("min_quantity", 1)))
                                                               for p in r["prices"]))
                                   for r in records)))
        return out

    def _publish_direct(self, storefronts, products: list) -> dict:
        """Each storefront's capability: Shopify's bulk mutation for many products, commercetools batches."""
        from integrations.connectors import connector_for
        from integrations.connectors.base import supports
        from integrations.connectors.catalogue import BULK_PUBLISH, PUBLISH_PRODUCTS

        outcome: dict = {"steps": {}}
        for connection in storefronts:
            clock = time.perf_counter()
            client = connector_for(connection)
            if supports(client, BULK_PUBLISH) and len(products) > 50:
                handle = client.bulk_publish_start(products)
                while (status := client.bulk_publish_status(handle)).state == "running":
                    time.sleep(BULK_POLL_SECONDS)
                results = client.bulk_publish_results(handle, products) if status.state == "completed" else []
                path = "bulk mutation"
            elif supports(client, PUBLISH_PRODUCTS):
                results = []
                for start in range(0, len(products), 500):
                    results.extend(client.publish_products(products[start:start + 500]))
                path = "batches" if connection.kind == "commercetools" else "productSet"
            else:
                outcome[connection.code] = {"path": "not supported", "ok": 0, "failed": len(products), "created": 0}
                continue
            ok = [r for r in results if r.ok]
            errors = sorted({r.error for r in results if not r.ok})[:3]
            outcome[connection.code] = {"path": path, "ok": len(ok), "failed": len(products) - len(ok),
                                        "created": sum(1 for r in ok if r.created), "errors": errors,
                                        "points": getattr(client, "cost_points", None)}
            outcome["steps"][connection.code] = time.perf_counter() - clock
        return outcome

    # --- the run -------------------------------------------------------------------------------------

    def _phase(self, name: str, pipe, work) -> Phase:
        before, cpu, clock = self._ask(pipe, cmd="stats"), _cpu(), time.perf_counter()
        outcome = work()
        seconds, used = time.perf_counter() - clock, _cpu() - cpu
        return Phase(name, seconds, used, _peak_mb(), _delta(self._ask(pipe, cmd="stats"), before), outcome)

    def _run(self, pipe, url: str, *, items: int, prices: int, change: float, variants: int, plan) -> None:
        seeded = self._ask(pipe, cmd="seed", items=items, prices=prices, variants=variants)
        erp, shop, ct = self._connections(url, seeded.get("price_list", ""))
        flow = self._flow()
        products_total = (items + variants - 1) // variants
        self.stdout.write(
            f"item master: {items:,} items × {prices} prices ({products_total:,} products of up to {variants} "
            f"variants); sandbox ERP seeded in {seeded['seconds']:.1f} s (not timed); Shopify plan {plan[0]:g} "
            f"points/s, bucket {plan[1]:g}; "
            + ("through the catalogue flow" if flow else
               "the catalogue flow is not installed: the storefront connectors are driven directly"))
        storefronts = [shop, ct]
        bumps: dict[int, int] = {}

        def first_load():
            if flow:
                return self._publish_flow(flow, erp, storefronts, bulk=True)
            return self._publish_direct(storefronts, self._products(range(items), prices, variants, bumps))

        numbers = changed_items(items, change)

        def one_change():
            if flow:
                return self._publish_flow(flow, erp, storefronts, bulk=None)
            # The products holding a changed item, whole (a product sent with some variants left out would
            # lose the others), those whose fingerprint moved.
            members = [n for g in sorted({n // variants for n in numbers})
                       for n in range(g * variants, min(items, (g + 1) * variants))]
            before = {p.key: _fingerprint(p) for p in self._products(members, prices, variants, {})}
            changed = [p for p in self._products(members, prices, variants, bumps) if _fingerprint(p) != before[p.key]]
            return self._publish_direct(storefronts, changed)

        load = self._phase("first load", pipe, first_load)
        for n in numbers:
            bumps[n] = 7  # +0.07 on every price
        self._ask(pipe, cmd="change", numbers=numbers, prices=prices, variants=variants, bump=7)
        delta = self._phase(f"{change:.0%} change", pipe, one_change)
        self._report([load, delta], items=items, products=products_total, changed=len(numbers), plan=plan)

    def _report(self, phases: list[Phase], *, items: int, products: int, changed: int, plan) -> None:
        from integrations.connectors.commercetools import catalogue_write as ct_write

        self.stdout.write(f"{'phase':12} {'seconds':>8} {'items/s':>9} {'shopify calls':>14} {'points':>9} "
                          f"{'ct calls':>9} {'CPU s':>7} {'peak MB':>8}  storefronts")
        for phase, count in zip(phases, (items, changed)):
            s, c = phase.calls["shopify"], phase.calls["commercetools"]
            shop_calls = s["graphql"] + s["rest"] + s["uploads"]
            outcome = "; ".join(_outcome(code, o) for code, o in phase.outcome.items()
                                if isinstance(o, dict) and code != "steps")
            self.stdout.write(f"{phase.name:12} {phase.seconds:8.1f} {count / phase.seconds if phase.seconds else 0:9.0f} "
                              f"{shop_calls:14,} {s['points']:9,.0f} {c['requests']:9,} {phase.cpu:7.1f} "
                              f"{phase.peak_mb:8.0f}  {outcome}")
            if phase.outcome.get("steps"):
                self.stdout.write(" " * 13 + "steps: " + ", ".join(f"{step} {seconds:.1f} s"
                                                                   for step, seconds in phase.outcome["steps"].items()))
        load = phases[0]
        restore = plan[0]
        product_set_cost = 10  # productSet's documented single-query cost is 10 points (a mutation)
        sync_bound = products * product_set_cost / restore
        steps = load.outcome.get("steps") or {}
        ct_seconds = steps.get("commercetools", load.seconds)
        ct_rate = load.calls["commercetools"]["requests"] / ct_seconds if ct_seconds else 0
        self.stdout.write(
            f"first load beside the vendors' bounds: Shopify's synchronous path (productSet, {product_set_cost} points "
            f"a product at {restore:g} points/s) would need at least {sync_bound:,.0f} s for {products:,} products; the "
            f"bulk mutation charged {load.calls['shopify']['points']:,.0f} points and took "
            f"{steps.get('shopify', load.seconds):.1f} s "
            f"(Shopify documents no bulk throughput, only ≤ 5 bulk mutations at a time from 2026-01 and 24 h each). "
            f"commercetools documents no request rate (DOCUMENTED_LIMITS request_rate: "
            f"{ct_write.DOCUMENTED_LIMITS.get('request_rate')}): {ct_rate:,.0f} requests/s measured ({ct_seconds:.1f} s) "
            f"at {ct_write.CONCURRENCY} products in flight.")
        change = phases[1]
        throttled = change.calls["shopify"]["throttled"] + change.calls["commercetools"]["rate_limited"]
        met = change.seconds < TARGET_CHANGE_SECONDS
        self.stdout.write(f"target: {changed:,}-item change < {TARGET_CHANGE_SECONDS:.0f} s within the vendors' limits "
                          f"({throttled} throttled answers): " + ("met" if met else f"NOT met ({change.seconds:.1f} s)"))
        self.stdout.write("figures: " + json.dumps({p.name: {"seconds": round(p.seconds, 3), "cpu": round(p.cpu, 3),
                                                            "peak_mb": round(p.peak_mb), "calls": p.calls,
                                                            "outcome": p.outcome} for p in phases}, default=str))


def _outcome(code: str, o: dict) -> str:
    """One storefront's (or the ERP's) line: the path taken, products published and failed, errors."""
    if "read" in o:  # the ERP: items read and changed
        return f"{code}: {o['read']:,} items read, {o.get('changed', 0):,} changed"
    path = o.get("path") or o.get("kind") or "?"
    ok = o.get("ok", o.get("published", 0))
    errors = o.get("errors") or ([o["error"]] if o.get("error") else [])
    return f"{code}: {path}, {ok:,} ok, {o.get('failed', 0):,} failed" + (f" ({' | '.join(errors)})" if errors else "")


def _fingerprint(product) -> str:
    return hashlib.sha1(repr(product).encode()).hexdigest()
