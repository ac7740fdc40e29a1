"""Benchmark: ERP dispatches of posted orders to Shopify fulfilments, by the poller and by the ERP webhook.

    manage.py benchmark_dispatches                       # 1,000 dispatches, a third of them partial
    manage.py benchmark_dispatches --dispatches 100      # a quick run

Everything runs in this process on a throwaway SQLite database: the vendor sandboxes on loopback, the
web server the ERP webhook posts to, and django-q2 in synchronous mode (each queued task runs at once
in the thread that queued it: one worker). Orders are placed in the sandbox shop and posted to the
sandbox ERP through the real webhook and order flow first (not timed). Then half the dispatches are
read by the poller and half pushed by the ERP webhook:

- poll: the dispatches are confirmed in rounds; after each round the poll runs and the storefront updates
  it queued run. Latency = the wait for the next poll (the confirmation falls uniformly within the
  polling interval, default 60 s, so this part is computed, not slept) + the measured time from the
  confirmation to Shopify's answer.
- webhook: the ERP posts each confirmed dispatch to Ledgerline's endpoint; latency is measured from the
  confirmation to Shopify's answer.

Then every dispatch is read again from the start of the cursor and every webhook is delivered again:
duplicates (fulfilments beyond one per dispatch and fulfillment order) and notifications (exactly one
per dispatch) are counted after that. CPU is this process's (Ledgerline and the sandboxes together).
"""
from __future__ import annotations

import json
import logging
import os
import random
import resource
import statistics
import tempfile
import threading
import time

from django.core.management.base import BaseCommand


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Command(BaseCommand):
    help = "ERP dispatches to Shopify fulfilments by poll and by webhook: latency, API calls, duplicates, notifications."

    def add_arguments(self, parser):
        parser.add_argument("--dispatches", type=int, default=1000, help="dispatches in all (half poll, half webhook)")
        parser.add_argument("--partial", type=float, default=1 / 3, help="share of dispatches that are partial")
        parser.add_argument("--poll-interval", type=float, default=60.0, help="seconds between polls (schedule)")
        parser.add_argument("--rounds", type=int, default=10, help="poll rounds the polled half is confirmed in")
        parser.add_argument("--seed", type=int, default=14)

    def handle(self, *args, dispatches, partial, poll_interval, rounds, seed, **options):
        os.environ.setdefault("LEDGERLINE_MODE", "demo")
        logging.getLogger("ledgerline").setLevel(logging.WARNING)  # one line per dispatch would drown the figures
        from django.conf import settings
        from django.db import connection

        db_file = tempfile.NamedTemporaryFile(prefix="ledgerline-dispatch-bench-", suffix=".sqlite3", delete=False).name
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = db_file
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            self._run(dispatches=dispatches, partial=partial, poll_interval=poll_interval, rounds=max(1, rounds),
                      rng=random.Random(seed))
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(db_file + suffix)
                except FileNotFoundError:
                    pass

    # --- setup ------------------------------------------------------------------------------

    def _setup(self):
        from django.conf import settings
        from django_q.conf import Conf

        from integrations.flows.orders import erp_caches_clear
        from integrations.models import Connection
        from integrations.sandbox.server import start_sandbox
        from mappings.models import CarrierMapping, DepotMapping, TaxCodeMapping

        Conf.SYNC = True  # one worker: each queued task runs in the thread that queued it
        settings.INVENTORY_PUSH_ON_ORDER = False
        sandbox = start_sandbox(erp_rate_limit=0, shopify_restore_rate=1000, shopify_bucket_size=2000)
        base = sandbox.url
        settings.SHOPIFY = {**settings.SHOPIFY, "shop_url": f"{base}/shopify"}
        settings.ERP = {**settings.ERP, "kind": "rest", "base_url": f"{base}/erp/api/v1", "backoff_base": 0.01,
                        "backoff_max": 0.05}
        erp, shop = sandbox.apps["/erp"], sandbox.apps["/shopify"]
        erp.reset()
        shop.reset()
        erp_caches_clear()
        for code in ("TEE-BLK-S", "TEE-BLK-M", "MUG-001", "HOODIE-GRY-L", "SHIPPING", "CUSTOM", "DISCOUNT"):
            erp.add_item(code)
        erp.add_depot("MAIN")
        shopify = Connection.objects.create(code="shopify", kind="shopify", name="Shopify store")
        erp_connection = Connection.objects.create(code="erp", kind="rest_erp", name="REST ERP",
                                                   credentials={"webhook_secret": "benchmark-erp-webhook-secret"})
        DepotMapping.objects.create(connection=shopify, country="", depot_code="MAIN")
        TaxCodeMapping.objects.create(connection=shopify, rate="0.2", country="GB", erp_tax_code="T1")
        CarrierMapping.objects.create(connection=shopify, erp_carrier="RM48", tracking_company="Royal Mail")
        return sandbox, erp, shop, erp_connection

    def _web_server(self):
        """Ledgerline's WSGI app on loopback, for the ERP webhook."""
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler, get_internal_wsgi_application

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=True)
        server.set_app(get_internal_wsgi_application())
        threading.Thread(target=server.serve_forever, daemon=True, name="ledgerline-web").start()
        return server

    # --- the run ----------------------------------------------------------------------------

    def _run(self, *, dispatches: int, partial: float, poll_interval: float, rounds: int, rng) -> None:
        from integrations.flows.fulfilment import dispatches_poll
        from integrations.models import Dispatch, DispatchCursor, OrderLink

        sandbox, erp, shop, erp_connection = self._setup()
        web = self._web_server()
        try:
            self.stdout.write(f"Posting {dispatches} orders to the sandbox ERP (not timed)…")
            links = self._place_orders(shop, dispatches, rng)
            partial_ids = set(rng.sample(range(len(links)), int(round(len(links) * partial))))
            polled, pushed = links[: len(links) // 2], links[len(links) // 2:]

            # Poll: confirmed in rounds, each followed by the scheduled poll.
            before = self._counters(erp, shop)
            cpu = _cpu()
            confirmed: dict[str, float] = {}
            per_round = max(1, -(-len(polled) // rounds))
            for start in range(0, len(polled), per_round):
                for index, link in enumerate(polled[start:start + per_round], start):
                    for booked in self._dispatch(erp, link, partial=index in partial_ids):
                        confirmed[booked] = time.time()
                dispatches_poll(page_size=100, max_pages=1000)
            poll_cpu = _cpu() - cpu
            poll_counts = self._delta(before, self._counters(erp, shop))
            poll_latency = self._latencies(confirmed, wait=lambda: rng.uniform(0, poll_interval))

            # Webhook: the ERP pushes each confirmed dispatch to our endpoint.
            erp.configure_webhook(url=f"http://127.0.0.1:{web.server_address[1]}/webhooks/erp/erp/",
                                  secret="benchmark-erp-webhook-secret", mode="sync")
            before = self._counters(erp, shop)
            cpu = _cpu()
            pushed_confirmed: dict[str, float] = {}
            offset = len(polled)
            for index, link in enumerate(pushed, offset):
                started = time.time()
                for booked in self._dispatch(erp, link, partial=index in partial_ids):
                    pushed_confirmed[booked] = started
            hook_cpu = _cpu() - cpu
            hook_counts = self._delta(before, self._counters(erp, shop))
            hook_latency = self._latencies(pushed_confirmed, wait=lambda: 0.0)

            # Everything again: re-poll from the start, redeliver every webhook.
            DispatchCursor.objects.update(cursor="")
            dispatches_poll(page_size=100, max_pages=1000)
            for delivery in list(erp.webhook_deliveries):
                erp.redeliver_webhook(delivery["id"])

            total = Dispatch.objects.count()
            sent = Dispatch.objects.filter(storefront_status=Dispatch.Status.SENT).count()
            fulfilments = len(shop.fulfillments)
            expected = sum(len(d.storefront_references) or 1 for d in Dispatch.objects.all())
            duplicates = fulfilments - expected + (total - len(set(Dispatch.objects.values_list("erp_dispatch_id",
                                                                                                flat=True))))
            notified = Dispatch.objects.filter(customer_notified=True).count()
            states = {state: OrderLink.objects.filter(state=state).count()
                      for state in (OrderLink.State.PARTLY_DISPATCHED, OrderLink.State.DISPATCHED)}
            self._report(total=total, sent=sent, partial=len(partial_ids), duplicates=duplicates,
                         notifications=len(shop.notifications), notified=notified, states=states,
                         poll=(poll_latency, poll_counts, poll_cpu, len(confirmed), poll_interval),
                         hook=(hook_latency, hook_counts, hook_cpu, len(pushed_confirmed)))
        finally:
            web.shutdown()
            sandbox.shutdown()

    def _place_orders(self, shop, count: int, rng) -> list:
        from django.test import Client

        from integrations.inbox.webhooks import shopify_hmac
        from integrations.models import OrderLink

        client = Client()
        links = []
        for n in range(count):
            lines = [{"sku": rng.choice(("TEE-BLK-S", "TEE-BLK-M", "HOODIE-GRY-L")), "quantity": rng.randint(2, 3)},
                     {"sku": "MUG-001", "quantity": 1}]
            payload = shop.create_order(deliver="none", financial_status="paid", email=f"buyer{n}@example.com",
                                        line_items=lines)
            body = json.dumps(payload).encode()
            response = client.post("/webhooks/shopify/shopify/", data=body, content_type="application/json", headers={
                "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": shop.shop_domain,
                "X-Shopify-Webhook-Id": f"bench-{n}", "X-Shopify-Event-Id": f"bench-event-{n}",
                "X-Shopify-Hmac-Sha256": shopify_hmac(shop.webhook_secret, body)})
            if response.status_code != 200:
                raise RuntimeError(f"order {n} was refused: {response.content[:200]!r}")
            links.append(OrderLink.objects.get(storefront_order_id=str(payload["id"])))
        posted = [link for link in links if link.state == OrderLink.State.POSTED]
        if len(posted) != count:
            raise RuntimeError(f"only {len(posted)} of {count} orders were posted")
        return posted

    @staticmethod
    def _dispatch(erp, link, *, partial: bool) -> list[str]:
        """The warehouse ships the order (partial: one unit of its first line), carrier RM48 with tracking."""
        lines = None
        if partial:
            first = erp.sales_order(link.erp_order_id)["lines"][0]
            lines = [{"line_number": first["line_number"], "quantity": 1}]
        booked = erp.dispatch_order(link.erp_order_id, lines=lines, carrier="RM48",
                                    tracking_number=f"RM{link.pk:09d}GB")
        return [d["id"] for d in booked["dispatches"]]

    @staticmethod
    def _latencies(confirmed: dict[str, float], *, wait) -> list[float]:
        from integrations.models import Dispatch

        sent = dict(Dispatch.objects.filter(erp_dispatch_id__in=list(confirmed), sent_at__isnull=False)
                    .values_list("erp_dispatch_id", "sent_at"))
        return [wait() + max(0.0, sent[d].timestamp() - at) for d, at in confirmed.items() if d in sent]

    @staticmethod
    def _counters(erp, shop) -> dict:
        return {"shopify_requests": shop.graphql_requests, "erp_requests": erp.requests_count}

    @staticmethod
    def _delta(before: dict, after: dict) -> dict:
        return {k: after[k] - before[k] for k in before}

    def _report(self, *, total, sent, partial, duplicates, notifications, notified, states, poll, hook) -> None:
        write = self.stdout.write

        def section(name, latency, counts, cpu, n, extra=""):
            write(f"{name} ({n} dispatches{extra}):")
            if latency:
                write(f"  dispatch-to-storefront latency p50 {statistics.median(latency):.2f} s, "
                      f"p95 {_percentile(latency, 0.95):.2f} s, max {max(latency):.2f} s")
            write(f"  Shopify API calls per dispatch {counts['shopify_requests'] / max(n, 1):.2f}, "
                  f"ERP requests per dispatch {counts['erp_requests'] / max(n, 1):.2f}")
            write(f"  CPU {cpu * 1000 / max(n, 1):.1f} ms per dispatch (Ledgerline and the sandboxes, one process)")

        poll_latency, poll_counts, poll_cpu, poll_n, interval = poll
        section("Poll", poll_latency, poll_counts, poll_cpu, poll_n, f", every {interval:g} s")
        section("ERP webhook", *hook)
        write(f"Dispatches stored {total} ({partial} partial), storefront updated {sent}")
        write(f"Orders partly dispatched {states['partly_dispatched']}, dispatched {states['dispatched']}")
        write(f"Duplicates after re-polling and redelivering everything: {duplicates} (must be 0)")
        write(f"Customer notifications sent {notifications} for {total} dispatches "
              f"({'exactly one each' if notifications == notified == total else 'NOT one each'})")
