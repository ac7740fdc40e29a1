"""Fire a flash sale at a running demo: the Shopify sandbox creates paid orders and delivers their
signed webhooks to Ledgerline, exactly as a real shop would."""
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from django.conf import settings
from django.core.management.base import BaseCommand

SKUS = ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-001", "HOODIE-GRY-L"]


class Command(BaseCommand):
    help = "Create N paid orders in the running Shopify sandbox at a given rate (webhooks go to Ledgerline)."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=1000)
        parser.add_argument("--rate", type=float, default=100, help="orders per second")
        parser.add_argument("--sandbox-url", default=settings.SANDBOX_URL)

    def handle(self, *args, **opts):
        url = f"{opts['sandbox_url'].rstrip('/')}/shopify/_sandbox/orders"
        interval, start = 1 / opts["rate"], time.perf_counter()
        session = requests.Session()
        failures = []

        def create(i: int) -> None:
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = {"paid": True, "deliver": "sync", "email": f"flash{i % 500}@example.com",
                    "line_items": [{"sku": SKUS[i % len(SKUS)], "quantity": 1 + i % 2}]}
            try:
                response = session.post(url, json=body, timeout=30)
                if response.status_code != 201:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
            except requests.RequestException as exc:
                failures.append(str(exc))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(opts["orders"])))
        took = time.perf_counter() - start
        self.stdout.write(f"{opts['orders'] - len(failures)} orders created in {took:.1f}s "
                          f"({opts['orders'] / took:.0f}/s); {len(failures)} failed")
        for failure in failures[:5]:
            self.stderr.write(f"  {failure}")
