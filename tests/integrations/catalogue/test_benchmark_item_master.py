"""`manage.py benchmark_item_master` with tiny numbers (its own process, its own throwaway database and
forked sandboxes): it loads every item into both storefronts once, the change updates without creating,
and the figures it prints agree with each other and with what the sandboxes hold."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _run(*args: str) -> str:
    env = {**os.environ, "LEDGERLINE_MODE": "test", "LEDGERLINE_NO_BOOTSTRAP": "1"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "manage.py", "benchmark_item_master", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_benchmark_loads_once_changes_without_duplicates_and_prints_consistent_figures():
    out = _run("--items", "40", "--prices", "3", "--variants", "4", "--change", "0.05", "--shopify-restore-rate", "50")
    figures = json.loads(out.split("figures: ", 1)[1])
    load, change = figures["first load"], figures["5% change"]

    # the first load put 40 variants in 10 products into each storefront; the change made no new product
    assert (load["calls"]["shopify"]["products"], load["calls"]["shopify"]["variants"]) == (10, 40)
    assert load["calls"]["commercetools"]["products"] == 10
    assert change["calls"]["shopify"]["products"] == 0 and change["calls"]["commercetools"]["products"] == 0
    # at least one commercetools write per product, and the change (2 items in 2 products) costs far fewer calls
    assert load["calls"]["commercetools"]["requests"] >= 10
    assert 2 <= change["calls"]["commercetools"]["requests"] < load["calls"]["commercetools"]["requests"]
    assert load["calls"]["shopify"]["points"] > 0

    # the table repeats the same figures: seconds, items/s, calls, points
    row = re.search(r"^first load\s+([\d.]+)\s+(\d+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s", out, re.M)
    assert row, out
    seconds, rate, shop_calls, points, ct_calls = row.groups()
    assert abs(float(seconds) - load["seconds"]) < 0.06
    assert abs(int(rate) - 40 / load["seconds"]) <= 1  # items / seconds (the JSON rounds seconds to ms)
    shopify = load["calls"]["shopify"]
    assert int(shop_calls.replace(",", "")) == shopify["graphql"] + shopify["rest"] + shopify["uploads"]
    assert int(points.replace(",", "")) == round(shopify["points"])
    assert int(ct_calls.replace(",", "")) == load["calls"]["commercetools"]["requests"]

    # the bound is computed from the products and the plan asked for: 10 products × 10 points at 50 points/s
    assert "would need at least 2 s for 10 products" in out and "at 50 points/s" in out
    assert re.search(r"target: 2-item change < 60 s .*: met", out)
    assert load["peak_mb"] > 0 and load["cpu"] > 0
