"""Benchmark: recompute ATS for N SKUs × M locations from ERP-shaped stock rows, diff against the last
pushed levels, and push the changed ones through the real ShopifyClient batching with the HTTP
transport replaced by a counter. Prints recompute + diff time, peak memory, levels changed, API calls.

    manage.py inventory_benchmark --skus 100000 --locations 5 --changed 0.01
"""
import math
import random
import resource
import time
import tracemalloc
from decimal import Decimal

from django.core.management.base import BaseCommand

from integrations.connectors.shopify import ShopifyClient
from integrations.flows.inventory import LocationRule, SkuPlan, api_calls_needed, levels_compute, levels_diff, stock_index


class CountingShopify(ShopifyClient):
    """The real batching of set_available_quantities; each GraphQL call counted, none sent."""

    def __init__(self):
        super().__init__("http://benchmark.invalid", "token")
        self.calls = 0
        self.largest = 0

    def graphql(self, query, variables=None, *, expected_cost=None):
        self.calls += 1
        entries = variables["input"]["quantities"]
        self.largest = max(self.largest, len(entries))
        return {"inventorySetQuantities": {"userErrors": []}}


class Command(BaseCommand):
    help = "Time the ATS recompute + diff for a large catalogue and count the API calls of the push."

    def add_arguments(self, parser):
        parser.add_argument("--skus", type=int, default=100_000)
        parser.add_argument("--locations", type=int, default=5)
        parser.add_argument("--changed", type=float, default=0.01, help="fraction of levels whose ATS changed")
        parser.add_argument("--kits", type=float, default=0.02, help="fraction of SKUs that are kits of 2 components")
        parser.add_argument("--seed", type=int, default=5)

    def handle(self, *args, skus, locations, changed, kits, seed, **opts):
        rng = random.Random(seed)
        warehouses = [f"WH{n}" for n in range(max(1, (locations + 1) // 2))]  # several locations share a pool
        rules = [LocationRule(f"gid://shopify/Location/{n + 1}", warehouses[n % len(warehouses)],
                              frozenset({"available", "in_transit"} if n % 2 else {"available"}),
                              buffer_units=n % 3, buffer_percent=Decimal("5") if n == 0 else Decimal(0))
                 for n in range(locations)]
        codes = [f"ITEM-{n:06d}" for n in range(skus)]
        n_kits = int(skus * kits)
        plans = [SkuPlan(c, c) for c in codes[n_kits:]] + [
            SkuPlan(f"KIT-{n:06d}", "", ((codes[rng.randrange(n_kits, skus)], 1), (codes[rng.randrange(n_kits, skus)], 2)))
            for n in range(n_kits)]

        def erp_rows():  # the ERP's stock rows, streamed as get_stock() pages would be
            for code in codes:
                for wh in warehouses:
                    on_hand = rng.randrange(0, 500)
                    yield {"item_code": code, "depot": wh, "on_hand": on_hand, "allocated": rng.randrange(0, 20),
                           "reserved": rng.randrange(0, 5), "states": {"in_transit": rng.randrange(0, 10), "damaged": rng.randrange(0, 3)}}

        stock = stock_index(erp_rows())
        # The last confirmed push: equal to today's ATS except for `changed` of the levels.
        pushed = levels_compute(plans, rules, stock)
        keys = list(pushed)
        for key in rng.sample(keys, int(len(keys) * changed)):
            pushed[key] += rng.choice((-3, -1, 1, 2))

        tracemalloc.start()
        started = time.perf_counter()
        computed = levels_compute(plans, rules, stock)
        changed_keys = levels_diff(computed, pushed)
        elapsed = time.perf_counter() - started
        _current, peak_traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        client = CountingShopify()
        push_started = time.perf_counter()
        client.set_available_quantities([
            {"inventory_item_id": f"gid://shopify/InventoryItem/{i}", "location_id": key[1], "quantity": computed[key],
             "change_from": pushed[key]} for i, key in enumerate(changed_keys)])
        push_elapsed = time.perf_counter() - push_started
        expected = api_calls_needed(len(changed_keys), ShopifyClient.MAX_QUANTITIES_PER_CALL)
        maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        out = self.stdout.write
        out(f"SKUs {skus:,} (kits {n_kits:,}) × locations {locations} from {len(warehouses)} warehouses = {len(computed):,} levels")
        out(f"recompute + diff: {elapsed:.2f} s")
        out(f"peak memory: {peak_traced / 2**20:.0f} MiB traced during recompute + diff; process max RSS {maxrss_mb:.0f} MiB")
        out(f"levels changed: {len(changed_keys):,}")
        out(f"API calls made: {client.calls} (largest call {client.largest} quantities; "
            f"ceil({len(changed_keys)} / {ShopifyClient.MAX_QUANTITIES_PER_CALL}) = {expected}) in {push_elapsed:.2f} s")
        if client.calls != expected:
            raise SystemExit("API calls differ from ceil(changed / per-call maximum)")
        assert math.ceil(len(changed_keys) / ShopifyClient.MAX_QUANTITIES_PER_CALL) == expected
