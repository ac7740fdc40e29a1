"""Flash-sale benchmark: N paid Shopify orders through the real webhook endpoint into the sandbox ERP.

Starts its own stack on a throw-away SQLite database (or DATABASE_URL when --database-url is
given): the sandbox systems in their own process (ERP rate limit as configured), the web server and
a django-q2 cluster, each a process of its own as in the demo.
Each order is delivered as Shopify would (orders/create and orders/paid, signed), then the command
waits until the ERP holds every order and prints the figures. Not a test: nothing is asserted.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand

from config.settings import q_workers_default
from integrations.sandbox.shopify import ShopifySandbox
from integrations.servers import web_server
from integrations.inbox.webhooks import shopify_hmac

SKUS = ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-001", "HOODIE-GRY-L"]


def _lock_held(folder: Path) -> float:
    """Seconds the SQLite write lock was held so far by the processes that keep their figures in
    `folder` (config/sqlite_queue: one file each, "holds seconds")."""
    total = 0.0
    for path in folder.iterdir():
        try:
            total += float(path.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass  # a file being written for the first time
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host_check_ms() -> float:
    """A fixed CPU-bound workload, timed: the same code measures differently on a busy host, so
    runs are compared together with this figure (lower = the host had more CPU to give)."""
    blob = json.dumps({"lines": [{"sku": f"SKU-{i}", "quantity": i, "price": f"{i}.99"} for i in range(400)]})
    start = time.perf_counter()
    _fixed_work(blob, 200)
    return (time.perf_counter() - start) * 1000


def _fixed_work(blob: str, rounds: int) -> None:
    for _ in range(rounds):
        hashlib.sha256(json.dumps(json.loads(blob)).encode()).digest()


class _HostProbe:
    """The host's speed while the sale runs: every half second, a small fixed workload timed by this
    thread's own CPU counter (not the clock, so waiting for a core does not count). The same work
    costing more CPU means each core ran slower: virtual cores that share a physical one, a busy
    neighbour, a lower clock. The processes' CPU per order is inflated by as much, and the host check
    before the sale cannot see it. Costs 2-3 ms of CPU a second (a 1 ms workload every 0.5 s)."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="host-probe")
        self._blob = json.dumps({"lines": [{"sku": f"SKU-{i}", "quantity": i} for i in range(40)]})

    def once(self) -> float:
        start = time.thread_time()
        _fixed_work(self._blob, 40)
        return (time.thread_time() - start) * 1e6

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append(self.once())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float | None:
        """The median CPU microseconds of the workload over the sale."""
        self._stop.set()
        self._thread.join()
        return statistics.median(self.samples) if self.samples else None


def _tree_cpu_seconds(root_pid: int) -> float | None:
    """CPU seconds (user + system) a process tree spent, from the processes' own counters in /proc:
    each live process's time plus what its finished children left in its cutime/cstime (a recycled
    q2 worker is still counted). None where /proc is not there."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        rest = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry)] = (int(rest[1]), sum(int(v) for v in rest[11:15]))
    except (OSError, ValueError, AttributeError):
        return None
    tree, frontier = set(), {root_pid}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier and pid not in tree}
    return sum(stats[pid][1] for pid in tree if pid in stats) / ticks


# What the sandbox ERP counts (requests_by_kind), in the benchmark's words.
REQUEST_KINDS = [("create", "sales order create"), ("existence_check", "existence check"),
                 ("customer_search", "customer search"), ("customer_create", "customer create"),
                 ("customer_match_or_create", "customer match-or-create"), ("batch", "sales order batch"),
                 ("item_check", "item check"), ("depots", "depot list")]


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


class _Chaos:
    """--kill-workers: SIGKILL one process of a task cluster every `every` seconds while the sale is sent
    (a child of a cluster's sentinel: a worker, the pusher or the monitor, never the sentinel itself,
    which starts another), then run the orders sweep every 10 s while the benchmark waits, as the
    "orders-sweep" schedule would (the benchmark turns the scheduler off)."""

    def __init__(self, cluster_pids: list[int], every: float, manage: str, env: dict):
        self.cluster_pids, self.every, self.manage, self.env = cluster_pids, every, manage, env
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._kill_loop, daemon=True, name="kill-workers")
        self._next_sweep = 0.0

    def start(self) -> None:
        self._thread.start()

    def _kill_loop(self) -> None:
        import random

        chooser = random.Random(17)
        while not self._stop.wait(self.every):
            victims = [grandchild for pid in self.cluster_pids for sentinel in _children(pid)
                       for grandchild in _children(sentinel)]
            if victims:
                try:
                    os.kill(chooser.choice(victims), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass

    def stop_killing(self) -> None:
        self._stop.set()
        self._thread.join()

    def sweep_when_due(self) -> None:
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + 10
        subprocess.run([sys.executable, self.manage, "shell", "-c",
                        "from integrations.tasks import sweep_orders; sweep_orders()"],
                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


class Command(BaseCommand):
    help = "Benchmark a flash sale through the webhook endpoint into the sandbox ERP and print the figures."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=10000)
        parser.add_argument("--customers", type=int, default=2000, help="distinct buyers among the orders")
        parser.add_argument("--concurrency", type=int, default=8, help="parallel webhook senders")
        parser.add_argument("--rate", type=float, default=110, help="orders per second to offer, 2 webhooks each (0 = as fast as accepted)")
        parser.add_argument("--erp-rate-limit", type=float, default=50, help="the sandbox ERP's requests per second")
        parser.add_argument("--workers", type=int, default=0, help="django-q2 workers per cluster (default: Q_WORKERS, else as the settings choose for the database)")
        parser.add_argument("--timeout", type=float, default=3600, help="give up waiting for the ERP after this")
        parser.add_argument("--database-url", default="", help="default: a throw-away SQLite file")
        parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                            help="postgres: a fresh database (dropped and created again) at --database-url or "
                                 "DATABASE_URL")
        parser.add_argument("--broker", choices=["orm", "redis"], default="orm",
                            help="django-q2's broker: the database (default) or Redis")
        parser.add_argument("--clusters", type=int, default=1,
                            help="qcluster processes, each in a working directory of its own, sharing only "
                                 "the database and the broker (as on separate hosts); 0 measures the webhook "
                                 "intake alone")
        parser.add_argument("--budget", choices=["file", "redis", "postgres"], default="",
                            help="where the ERP budget is kept (default: redis with the Redis broker, postgres "
                                 "with several clusters on PostgreSQL, else this host's slot file)")
        parser.add_argument("--redis-url", default="", help="default: a redis-server of its own on a free port")
        parser.add_argument("--kill-workers", type=float, default=0,
                            help="every this many seconds while the webhooks are sent, SIGKILL one process of a "
                                 "task cluster (a worker, the pusher or the monitor; django-q2's sentinel starts "
                                 "another); the cluster then hands a task out again after 15 s and the orders "
                                 "sweep runs every 10 s, so what a killed process held is recovered by the product")

    def handle(self, *args, **opts):
        tmp = Path(tempfile.mkdtemp(prefix="ledgerline-bench-"))
        # Orders are built by a Shopify sandbox object here (not served); the served sandboxes run apart.
        shopify = ShopifySandbox()
        shopify.seed_demo()
        port, sandbox_port = _free_port(), _free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        database_url = opts["database_url"] or f"sqlite:///{tmp / 'bench.sqlite3'}"
        if opts["database"] == "postgres":
            database_url = opts["database_url"] or os.environ.get("DATABASE_URL", "")
            if not database_url.startswith("postgres"):
                raise SystemExit("--database postgres needs --database-url (or DATABASE_URL) naming a PostgreSQL database")
            self._fresh_postgres(database_url)
        budget = opts["budget"] or ("redis" if opts["broker"] == "redis" else
                                    "postgres" if opts["database"] == "postgres" and opts["clusters"] > 1 else "file")
        redis_server = None
        redis_url = opts["redis_url"]
        if not redis_url and "redis" in (opts["broker"], budget):
            redis_server, redis_url = self._start_redis(tmp)
        env = {
            **os.environ, "LEDGERLINE_NO_BOOTSTRAP": "1", "SANDBOX_URL": sandbox_url,
            "DATABASE_URL": database_url, "Q_BROKER": opts["broker"], "ERP_BUDGET": budget,
            "REDIS_URL": redis_url or os.environ.get("REDIS_URL", ""),
            "Q_WORKERS": str(opts["workers"] or os.environ.get("Q_WORKERS") or q_workers_default(database_url)), "LOG_LEVEL": "WARNING", "Q_LOG_LEVEL": "ERROR",
            # Ledgerline paces itself just under the ERP's published limit (429s still honoured).
            "ERP_CLIENT_RATE_LIMIT": os.environ.get("ERP_CLIENT_RATE_LIMIT", str(opts["erp_rate_limit"] * 0.98)),
            "INVENTORY_PUSH_ON_ORDER": "0",  # this measures the order path alone
            "Q_SCHEDULER": "0",  # ... without the drift, stock and planner schedules running beside it
        }
        if opts["kill_workers"]:  # a lost task comes back in seconds, not after the production minutes
            env.update({"Q_TIMEOUT": "10", "Q_RETRY": "15"})
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        self.stdout.write(f"Preparing a fresh database in {tmp} ...")
        subprocess.run([sys.executable, manage, "demo_seed"], env=env, check=True, stdout=subprocess.DEVNULL)
        logs = open(tmp / "servers.log", "wb")
        lock_stats = {role: tmp / "sqlite-lock" / role for role in ("webhooks", "tasks")}
        for folder in lock_stats.values():
            folder.mkdir(parents=True)
        children = [
            subprocess.Popen([sys.executable, manage, "sandbox", "--port", str(sandbox_port), "--seed",
                              "--erp-rate-limit", str(opts["erp_rate_limit"])], env=env, stdout=logs,
                             stderr=subprocess.STDOUT),
            web_server(port, {**env, "SQLITE_LOCK_STATS": str(lock_stats["webhooks"])}, stdout=logs,
                       stderr=subprocess.STDOUT),
        ]
        clusters = [self._task_cluster(manage, {**env, "SQLITE_LOCK_STATS": str(lock_stats["tasks"])},
                                       tmp / f"cluster-{n + 1}", logs) for n in range(opts["clusters"])]
        children += clusters
        try:
            base = f"http://127.0.0.1:{port}"
            self._wait_for(f"{base}/health/")
            self._wait_for(f"{sandbox_url}/erp/_sandbox/stats")
            trees = {"webhooks": children[1].pid}
            trees.update({("tasks" if len(clusters) == 1 else f"tasks {n + 1}"): c.pid for n, c in enumerate(clusters)})
            chaos = _Chaos([c.pid for c in clusters], opts["kill_workers"], manage, env) if opts["kill_workers"] else None
            lock_before = {role: _lock_held(folder) for role, folder in lock_stats.items()}
            figures = self._run(base, f"{sandbox_url}/erp/_sandbox", shopify, opts, cpu_trees=trees,
                                outside_trees={"sandbox systems": children[0].pid}, chaos=chaos)
            figures["lock_held"] = {role: _lock_held(folder) - lock_before[role] for role, folder in lock_stats.items()}
            figures.update(self._ledgerline_counts(manage, env, chaos))
            figures["setup"] = (f"{opts['database']} database, {opts['broker']} broker, {opts['clusters']} task "
                                f"cluster(s) of {env['Q_WORKERS']} workers, ERP budget in {budget}")
            self._print(figures, opts)
        finally:
            if redis_server is not None:
                children.append(redis_server)
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
            for cluster in clusters:  # what a cluster left running (its sentinel and workers): gone too
                try:
                    os.killpg(cluster.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            logs.close()
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _task_cluster(manage: str, env: dict, workdir: Path, logs) -> subprocess.Popen:
        """One qcluster in a working directory of its own (its lock and slot files there too): it
        shares nothing with the others but the database and the broker, as on another host."""
        workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([sys.executable, manage, "qcluster"], env={**env, "LEDGERLINE_VAR_DIR": str(workdir)},
                                cwd=str(workdir), stdout=logs, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(5),
                                start_new_session=True)  # a process group of its own, ended whole

    @staticmethod
    def _fresh_postgres(url: str) -> None:
        """Drop and create the benchmark's database, so every run starts from the same empty one."""
        import psycopg

        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    @staticmethod
    def _start_redis(tmp: Path) -> tuple[subprocess.Popen, str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("--broker redis / --budget redis need redis-server (Debian package) or --redis-url")
        redis_port = _free_port()
        server = subprocess.Popen([binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", redis_port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        return server, f"redis://127.0.0.1:{redis_port}/0"

    def _wait_for(self, url: str) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(url, timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit(f"no answer from {url}")

    def _run(self, base: str, erp_admin: str, shopify, opts, cpu_trees: dict | None = None,
             outside_trees: dict | None = None, chaos: "_Chaos | None" = None) -> dict:
        n = opts["orders"]
        secret = settings.SHOPIFY["webhook_secret"]
        url = f"{base}/webhooks/shopify/shopify/"
        payloads = []
        for i in range(n):
            buyer = i % opts["customers"]
            order = shopify.create_order(
                deliver=None, financial_status="paid", email=f"buyer{buyer}@example.com",
                customer={"id": 900000 + buyer, "email": f"buyer{buyer}@example.com"},
                line_items=[{"sku": SKUS[i % len(SKUS)], "quantity": 1 + i % 3}],
            )
            payloads.append(order)
        # Bodies and signatures are made before the clock starts: the sender stands in for Shopify,
        # which runs on its own machines, so it should take as little of this machine's CPU as it can.
        deliveries = []
        for index, order in enumerate(payloads):
            body = json.dumps(order, separators=(",", ":")).encode()
            signature = shopify_hmac(secret, body)
            deliveries.append([(body, {
                "Content-Type": "application/json", "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": signature, "Content-Length": str(len(body)),
                "X-Shopify-Webhook-Id": f"bench-{index}-{topic}", "X-Shopify-Event-Id": f"evt-{index}-{topic}",
                "X-Shopify-Triggered-At": order["updated_at"],
                "X-Shopify-Shop-Domain": "ledgerline-demo.myshopify.com", "X-Shopify-API-Version": "2026-04",
            }) for topic in ("orders/create", "orders/paid")])
        parsed = urlsplit(url)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        local = threading.local()
        interval = 1 / opts["rate"] if opts["rate"] else 0
        start = time.perf_counter()

        def post(body: bytes, headers: dict) -> int:
            """One delivery over this sender's keep-alive connection (reconnecting once if it dropped)."""
            for attempt in (1, 2):
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
                try:
                    conn.request("POST", parsed.path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    return response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    local.conn = None
                    if attempt == 2:
                        return 0
            return 0

        def send(index: int) -> None:
            if interval:
                delay = start + index * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            for body, headers in deliveries[index]:
                t0 = time.perf_counter()
                code = post(body, headers)
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    statuses[code] = statuses.get(code, 0) + 1

        host_ms = _host_check_ms()
        probe = _HostProbe()
        probe_quiet = statistics.median(probe.once() for _ in range(20))
        self.stdout.write(f"Sending {n} orders ({2 * n} webhooks) with {opts['concurrency']} senders ...")
        erp_before = requests.get(f"{erp_admin}/stats", timeout=10).json()
        cpu_before = {name: _tree_cpu_seconds(pid) for name, pid in (cpu_trees or {}).items()}
        # What else this machine spends on the sale (not Ledgerline's): the sandboxes and this sender.
        outside_before = {name: _tree_cpu_seconds(pid) for name, pid in (outside_trees or {}).items()}
        outside_before["load generator"] = sum(os.times()[:2])
        if chaos is not None:
            chaos.start()
        probe.start()
        with ThreadPoolExecutor(opts["concurrency"]) as pool:
            list(pool.map(send, range(n)))
        if chaos is not None:
            chaos.stop_killing()
        send_seconds = time.perf_counter() - start
        self.stdout.write(
            f"  accepted in {send_seconds:.1f}s ({statuses.get(200, 0) / send_seconds:.0f}/s; latency p50 "
            f"{_percentile(latencies, 50) * 1000:.1f} ms, p99 {_percentile(latencies, 99) * 1000:.1f} ms); "
            "waiting for the ERP ...")
        deadline, last_count, last_change = time.time() + opts["timeout"], -1, time.time()
        if not opts["clusters"]:
            deadline = 0  # --clusters 0 measures the webhook intake alone: nothing posts the orders
        while time.time() < deadline:
            count = requests.get(f"{erp_admin}/stats", timeout=10).json()["orders"]
            if count >= n:
                break
            if count != last_count:
                last_count, last_change = count, time.time()
                self.stdout.write(f"  ERP has {count}/{n} orders", ending="\r")
                self.stdout.flush()
            elif time.time() - last_change > 120:
                break  # no progress for two minutes: report what we have
            if chaos is not None:
                chaos.sweep_when_due()
            time.sleep(0.5)
        total_seconds = time.perf_counter() - start
        probe_sale = probe.stop()
        cpu_after = {name: _tree_cpu_seconds(pid) for name, pid in (cpu_trees or {}).items()}
        outside_after = {name: _tree_cpu_seconds(pid) for name, pid in (outside_trees or {}).items()}
        outside_after["load generator"] = sum(os.times()[:2])
        erp_after = requests.get(f"{erp_admin}/stats", timeout=10).json()
        booked = requests.get(f"{erp_admin}/references", timeout=60).json()
        references = booked["references"]
        # Money: the gross total the ERP booked for each order against the storefront's own total
        # (total_price_set in shop money, as the webhook carried it).
        paid = {f"shopify:{o['id']}": Decimal(str(o["total_price_set"]["shop_money"]["amount"])) for o in payloads}
        wrong_totals = sum(
            1 for ref, total in booked.get("gross_totals", {}).items()
            if ref in paid and (not total or Decimal(total) != paid[ref]))
        erp_requests = erp_after["requests"] - erp_before["requests"]
        rate_limited = erp_after["rate_limited"] - erp_before["rate_limited"]
        served = erp_requests - rate_limited
        return {
            "orders": n, "webhooks": len(latencies), "host_check_ms": host_ms,
            "probe_us": (probe_quiet, probe_sale), "statuses": statuses,
            "accepted_per_s": statuses.get(200, 0) / send_seconds if send_seconds else 0,
            "p50_ms": _percentile(latencies, 50) * 1000, "p99_ms": _percentile(latencies, 99) * 1000,
            "max_ms": max(latencies) * 1000 if latencies else 0,
            "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0,
            "erp_orders": len(references), "duplicates": len(references) - len(set(references)),
            "lost": n - len(set(references)), "seconds_total": total_seconds,
            "orders_per_s": len(references) / total_seconds if total_seconds else 0,
            "erp_requests": erp_requests, "erp_served": served, "erp_429": rate_limited,
            "erp_served_per_s": served / total_seconds if total_seconds else 0,
            "wrong_totals": wrong_totals,
            "buyers": len({i % opts["customers"] for i in range(n)}),
            "by_kind": {kind: erp_after.get("requests_by_kind", {}).get(kind, 0)
                        - erp_before.get("requests_by_kind", {}).get(kind, 0)
                        for kind in set(erp_after.get("requests_by_kind", {})) | set(erp_before.get("requests_by_kind", {}))},
            "customers_with_documents": {
                outcome: erp_after.get("customers_with_documents", {}).get(outcome, 0)
                - erp_before.get("customers_with_documents", {}).get(outcome, 0) for outcome in ("opened", "matched")},
            "kills": chaos.kills if chaos is not None else None,
            "erp_customers": erp_after.get("customers", 0) - erp_before.get("customers", 0),
            "outside_cpu_seconds": {name: (outside_after[name] - outside_before[name])
                                    if outside_after.get(name) is not None and outside_before.get(name) is not None
                                    else None for name in outside_before},
            "cpu_seconds": {name: (cpu_after[name] - cpu_before[name])
                            if cpu_after.get(name) is not None and cpu_before.get(name) is not None else None
                            for name in cpu_before},
        }

    def _ledgerline_counts(self, manage: str, env: dict, chaos: "_Chaos | None" = None) -> dict:
        code = (
            "import json; from exceptions_queue.models import ExceptionRecord as E; "
            "from integrations.models import OrderLink as O, InboundEvent as I; from django.db.models import Count; "
            "from django_q.models import OrmQ as Q; "
            "print(json.dumps({'exceptions': {r['type_code']: r['n'] for r in E.objects.values('type_code').annotate(n=Count('id'))},"
            " 'states': {r['state']: r['n'] for r in O.objects.values('state').annotate(n=Count('id'))},"
            " 'events': {r['status']: r['n'] for r in I.objects.values('status').annotate(n=Count('id'))},"
            " 'queued_tasks': Q.objects.count()}))"
        )
        # The ERP holding every order is counted before the last batch's answers are recorded on
        # their links: give that bookkeeping a few seconds to finish before the states are read. After
        # kills, a batch booked by a worker that died before recording its answers is left POSTING until
        # the orders sweep takes it past its lease, so the sweep goes on running meanwhile.
        deadline = time.time() + (90 if chaos is not None else 30)
        while True:
            if chaos is not None:
                chaos.sweep_when_due()
            out = subprocess.run([sys.executable, manage, "shell", "-c", code], env=env, capture_output=True, text=True)
            try:
                counts = json.loads(out.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                return {"exceptions": {"?": out.stderr[-300:]}, "states": {}}
            if not counts["states"].get("posting") or time.time() > deadline:
                return counts
            time.sleep(2)

    @staticmethod
    def _probe_lines(probe) -> list[str]:
        if not probe or not probe[1]:
            return []
        quiet, sale = probe
        return [f"  host speed during the sale  {sale:.0f} us of CPU for a small fixed workload ({quiet:.0f} us just "
                f"before; x{sale / quiet:.2f}: what the same work costs with the cores busy, the sale's and any neighbour's; "
                f"every CPU figure below is inflated by it)"]

    @staticmethod
    def _per_order_lines(f: dict) -> list[str]:
        orders = f["erp_orders"] or 1
        by_kind = f.get("by_kind", {})
        served = sum(by_kind.values())
        customer = sum(by_kind.get(k, 0) for k in ("customer_search", "customer_create", "customer_match_or_create"))
        per_order = by_kind.get("create", 0) + by_kind.get("existence_check", 0) + by_kind.get("batch", 0)
        lines = [f"  ERP requests per order      {served / orders:.2f} on average ({served} served for {orders} orders; "
                 f"{f['buyers']} distinct buyers, {f['orders'] - f['buyers']} orders from repeat buyers)"]
        lines += [f"    {label:<26}{by_kind.get(kind, 0) / orders:.3f} per order ({by_kind.get(kind, 0)})"
                  for kind, label in REQUEST_KINDS if by_kind.get(kind)]
        others = {k: v for k, v in by_kind.items() if k not in dict(REQUEST_KINDS) and v}
        if others:
            lines.append(f"    other                     {others}")
        lines.append(f"    a new buyer's order       ~{(per_order / orders) + customer / max(1, f['buyers']):.2f} "
                     f"(customer requests per new buyer {customer / max(1, f['buyers']):.2f})")
        lines.append(f"    a repeat buyer's order    ~{per_order / orders:.2f}")
        with_documents = f.get("customers_with_documents") or {}
        if any(with_documents.values()):
            lines.append(f"    new buyers in batches     {with_documents.get('opened', 0)} opened, "
                         f"{with_documents.get('matched', 0)} matched (no request of their own)")
        if by_kind.get("batch"):
            lines.append(f"    orders per batch request  {(orders - by_kind.get('create', 0)) / by_kind['batch']:.1f} "
                         "on average (at most 100)")
        cpu = f.get("cpu_seconds") or {}
        if cpu and all(v is not None for v in cpu.values()):
            total = sum(cpu.values())
            # The intake alone (--clusters 0) posts nothing: its CPU is per order sent (2 webhooks).
            sent = f["erp_orders"] or f["orders"] or 1
            parts = ", ".join(f"{name} {1000 * seconds / sent:.1f}" for name, seconds in cpu.items())
            lines.append(f"  CPU per order               {1000 * total / sent:.1f} ms ({parts}; the processes' own "
                         "counters, from the first webhook to the last ERP order"
                         + (")" if f["erp_orders"] else "; per order sent: none posted)"))
            outside = {name: v for name, v in (f.get("outside_cpu_seconds") or {}).items() if v is not None}
            if outside:
                lines.append("  the rest of this machine    " + ", ".join(
                    f"{name} {1000 * seconds / sent:.1f}" for name, seconds in outside.items())
                    + " ms per order (not Ledgerline's: the vendors' side and the sender)")
        else:
            lines.append("  CPU per order               n/a (no /proc here)")
        held = f.get("lock_held") or {}
        if any(held.values()):
            sent = f["erp_orders"] or f["orders"] or 1
            parts = ", ".join(f"{role} {1000 * seconds / sent:.1f}" for role, seconds in held.items())
            busy = 100 * sum(held.values()) / f["seconds_total"] if f["seconds_total"] else 0
            lines.append(f"  SQLite write lock held      {1000 * sum(held.values()) / sent:.1f} ms per order ({parts}), "
                         f"{busy:.0f}% of the sale (one writer at a time: held near 100%, it is this set-up's ceiling)")
        return lines

    def _print(self, f: dict, opts) -> None:
        limit = opts["erp_rate_limit"]
        exceptions = f.get("exceptions", {})
        lines = [
            "",
            "Flash sale benchmark",
            f"  set-up                      {f.get('setup', '')}",
            f"  host CPU check              {f['host_check_ms']:.0f} ms for a fixed workload (compare runs by it)",
            *self._probe_lines(f.get("probe_us")),
            f"  orders sent                 {f['orders']} ({f['webhooks']} webhooks; HTTP statuses {f['statuses']})",
            f"  webhooks accepted/s         {f['accepted_per_s']:.0f}",
            f"  webhook latency p50 / p99   {f['p50_ms']:.1f} ms / {f['p99_ms']:.1f} ms (max {f['max_ms']:.0f} ms)",
            f"  orders in the ERP           {f['erp_orders']} in {f['seconds_total']:.1f}s = {f['orders_per_s']:.1f} orders/s end to end",
            f"  ERP requests served/s       {f['erp_served_per_s']:.1f} of a {limit:g}/s limit "
            f"({100 * f['erp_served_per_s'] / limit if limit else 0:.0f}%)",
            f"  one-request-per-order ceiling {limit / 1:.1f} orders/s (the limit ÷ 1 request); reached "
            f"{100 * f['orders_per_s'] / limit if limit else 0:.0f}% of it",
            f"  ERP 429s seen               {f['erp_429']} (all retried after Retry-After)",
            *self._per_order_lines(f),
            *([f"  processes killed (SIGKILL)  {f['kills']} while the webhooks were sent (a worker, the pusher or "
               "the monitor; the orders sweep ran every 10 s after)"] if f.get("kills") is not None else []),
            f"  duplicates in the ERP       {f['duplicates']}",
            f"  ERP customers per buyer     {f['erp_customers'] / max(1, f['buyers']):.2f} ({f['erp_customers']} opened "
            f"for {f['buyers']} distinct buyers; more than 1.00 is a duplicate account)",
            f"  lost orders                 {f['lost']}",
            f"  posted with a wrong total   {f['wrong_totals']} (ERP gross total differs from the storefront's; must be 0)",
            f"  exceptions raised           {sum(exceptions.values())}",
            *[f"    {code:<26}{count}" for code, count in sorted(exceptions.items())],
            f"  order links by state        {f.get('states')}",
            f"  inbound events by status    {f.get('events')} ({f.get('queued_tasks')} tasks still queued)",
        ]
        self.stdout.write("\n".join(lines))
