"""Benchmark: Inventory Planner feed files from a year of sales.

    manage.py benchmark_planner_feeds                      # 2,000,000 lines, 100,000 variants, 5 warehouses
    manage.py benchmark_planner_feeds --lines 200000 --variants 10000   # under a minute

On a throwaway SQLite database, the feed tables are filled with bulk_create (not timed): a year of
sales lines spread over the warehouses and two storefront channels (one line in 20 a return, one in
10 a kit component), the catalogue and each item's stock pool in every warehouse. Then:

- snapshot: the CSV connector's products and sales orders files of every warehouse, generated as the
  URLs stream them (written to a temporary file): time, rows, bytes. Peak memory is measured in a
  second pass under tracemalloc (outside the timed one), with the process's peak RSS.
- increment: the Advanced CSV files of the last day (the day's sales lines and the stock pools that
  changed, 1 % of them), as one upload would build them for all warehouses: time and rows. The SFTP
  transfer itself is not included (it depends on the link to the planner).

Targets on the 2-core machine: snapshot < 60 s and < 1 GB; one day's increment < 5 s.
"""
from __future__ import annotations

import os
import random
import resource
import tempfile
import time
import tracemalloc
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Inventory Planner feeds: snapshot generation time and peak memory, one day's increment time."

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=2_000_000, help="sales lines in the year")
        parser.add_argument("--variants", type=int, default=100_000, help="ERP items in the catalogue")
        parser.add_argument("--warehouses", type=int, default=5)
        parser.add_argument("--changed-stock", type=float, default=0.01, help="share of stock pools changed in the day")
        parser.add_argument("--seed", type=int, default=18)
        parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")

    def handle(self, *args, lines, variants, warehouses, changed_stock, seed, no_memory, **options):
        os.environ.setdefault("LEDGERLINE_MODE", "demo")
        from django.conf import settings
        from django.db import connection

        db_file = tempfile.NamedTemporaryFile(prefix="ledgerline-feeds-bench-", suffix=".sqlite3", delete=False).name
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = db_file
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            self._run(lines=lines, variants=variants, warehouses=[f"WH{n + 1}" for n in range(max(1, warehouses))],
                      changed_stock=changed_stock, rng=random.Random(seed), memory=not no_memory)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(db_file + suffix)
                except FileNotFoundError:
                    pass

    # --- data ----------------------------------------------------------------------------------

    def _fill(self, *, lines, variants, warehouses, changed_stock, rng, now):
        from integrations.models import Connection
        from integrations.models.planner_feeds import FeedRun, PlannerItem, PlannerSalesLine, PlannerStock

        started = time.perf_counter()
        uk = Connection.objects.create(code="shopify", kind="shopify", name="UK shop")
        eu = Connection.objects.create(code="shopify-eu", kind="shopify", name="EU shop")
        planner = Connection.objects.create(code="planner", kind="inventory_planner", name="Inventory Planner",
                                            settings={"warehouses": warehouses, "currency": "GBP"})
        year_ago, day_ago = now - timedelta(days=365), now - timedelta(days=1)
        codes = [f"ITEM-{n:06d}" for n in range(variants)]
        PlannerItem.objects.bulk_create(
            (PlannerItem(item_code=code, title=f"Item {code}", currency="GBP", price=Decimal(rng.randint(500, 9000)) / 100,
                         cost=Decimal(rng.randint(100, 4000)) / 100, lead_time_days=rng.choice((14, 21, 28, 35)),
                         supplier=f"Supplier {n % 40}", created_at=year_ago, updated_at=year_ago)
             for n, code in enumerate(codes)), batch_size=5000)
        stock = []
        for warehouse in warehouses:
            for code in codes:
                changed = rng.random() < changed_stock
                stock.append(PlannerStock(item_code=code, warehouse=warehouse, ats=rng.randint(0, 200),
                                          damaged=rng.randint(0, 2), in_transit=rng.randint(0, 5),
                                          updated_at=now - timedelta(hours=2) if changed else year_ago))
                if len(stock) >= 20000:
                    PlannerStock.objects.bulk_create(stock, batch_size=5000)
                    stock = []
        PlannerStock.objects.bulk_create(stock, batch_size=5000)

        seconds = 365 * 86400
        batch, order, left_in_order = [], 0, 0
        channels = (uk, eu)
        for n in range(lines):
            if left_in_order == 0:
                order += 1
                left_in_order = rng.randint(1, 5)
                channel = channels[order % 2]
                warehouse = warehouses[order % len(warehouses)]
                ordered_at = year_ago + timedelta(seconds=seconds * order / max(1, lines // 3))
                if ordered_at > now:
                    ordered_at = year_ago + timedelta(seconds=rng.randrange(seconds))
                region = rng.choice(("ENG", "SCT", "BE", "BY", ""))
            left_in_order -= 1
            returned = n % 20 == 19
            kit = n % 10 == 3
            batch.append(PlannerSalesLine(
                storefront=channel, line_key=f"{900000 + order}:{n}:{'return' if returned else 'sale'}",
                order_key=f"{channel.code}:{900000 + order}", order_number=f"#{order}",
                item_code=codes[rng.randrange(variants)], kit_sku="GIFT-SET" if kit else "", warehouse=warehouse,
                storefront_location=f"gid://shopify/Location/{1000 + order % 3}", currency="GBP" if channel is uk else "EUR",
                quantity=-1 if returned else rng.randint(1, 3), unit_price=Decimal(rng.randint(500, 9000)) / 100,
                discount=Decimal(rng.choice((0, 0, 0, 150, 400))) / 100, ordered_at=ordered_at,
                ship_country="GB" if channel is uk else "DE", ship_region=region,
                discount_codes="SUMMER10" if n % 7 == 0 else "", tags="summer-sale" if n % 5 == 0 else "",
                updated_at=ordered_at))
            if len(batch) >= 20000:
                PlannerSalesLine.objects.bulk_create(batch, batch_size=5000)
                batch = []
        PlannerSalesLine.objects.bulk_create(batch, batch_size=5000)
        FeedRun.objects.create(connection=planner, kind=FeedRun.Kind.INCREMENTAL, status=FeedRun.Status.SUCCEEDED,
                               cursor_to=day_ago, files=[{"kind": "warehouses", "warehouses": sorted(warehouses)}])
        self.stdout.write(f"data: {lines:,} sales lines ({order:,} orders), {variants:,} variants, "
                          f"{len(warehouses)} warehouses, built in {time.perf_counter() - started:.1f} s (not timed)")
        return planner

    # --- measures ------------------------------------------------------------------------------

    def _snapshot(self, warehouses) -> tuple[int, int]:
        from integrations.flows.planner_feeds.files import snapshot_chunks

        rows = size = 0
        with tempfile.TemporaryFile() as sink:
            for warehouse in warehouses:
                for kind in ("products", "sales_orders"):
                    counter = [0]
                    for chunk in snapshot_chunks(kind, warehouse, counter):
                        sink.write(chunk)
                        size += len(chunk)
                    rows += counter[0]
        return rows, size

    def _run(self, *, lines, variants, warehouses, changed_stock, rng, memory):
        from django.db import connection
        from django.utils import timezone

        from integrations.flows.planner_feeds.runs import _build_files, _last_cursor
        from integrations.models.planner_feeds import FeedRun

        now = timezone.now()
        from django.db import transaction

        with transaction.atomic():  # one transaction: the data goes in quickly
            planner = self._fill(lines=lines, variants=variants, warehouses=warehouses, changed_stock=changed_stock,
                                 rng=rng, now=now)
        connection.close()  # the timed part starts on a fresh connection, as a request would

        started = time.perf_counter()
        rows, size = self._snapshot(warehouses)
        elapsed = time.perf_counter() - started
        self.stdout.write(f"snapshot: {rows:,} rows, {size / 1e6:,.1f} MB in {len(warehouses) * 2} files, "
                          f"{elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)   target < 60 s")
        if memory:
            tracemalloc.start()
            self._snapshot(warehouses)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.stdout.write(f"snapshot peak memory: {peak / 1e6:,.1f} MB traced (Python allocations), "
                              f"process peak RSS {rss:,.0f} MB (data generation included)   target < 1 GB")

        run = FeedRun.objects.create(connection=planner, kind=FeedRun.Kind.INCREMENTAL, trigger="benchmark",
                                     cursor_from=_last_cursor(planner), cursor_to=now)
        started = time.perf_counter()
        files = _build_files(run, planner)
        elapsed = time.perf_counter() - started
        for f in files:
            f["data"].close()
        detail = ", ".join(f"{f['kind']} {f['rows']:,}" for f in files)
        self.stdout.write(f"increment (one day): {sum(f['rows'] for f in files):,} rows in {len(files)} files "
                          f"({detail}), {elapsed:.2f} s   target < 5 s")
