"""Seed N exceptions and measure the server time of the inbox and the nav badge.

    DATABASE_URL=postgres://... manage.py migrate
    DATABASE_URL=postgres://... manage.py exceptions_benchmark --rows 1000000 --repeat 50

Rows are keyed "bench:<n>", so a second run only adds what is missing (and --drop removes them).
Times are measured through Django's test Client (URL routing, middleware, auth, view, template),
i.e. server time without the network."""
from __future__ import annotations

import statistics
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from exceptions_queue import registry
from exceptions_queue.models import ExceptionRecord
from exceptions_queue.registry import ExceptionType

TEAMS = ["ops", "finance", "ecommerce"]
SEVERITIES = ["low", "medium", "high", "critical"]
SPACING_SECONDS = 7  # a million rows spread over ~80 days


def _status(i: int) -> str:
    # ~8 % active (6 % open, 2 % in progress), the rest closed: a backlog that people do clear
    r = i % 100
    return "open" if r < 6 else "in_progress" if r < 8 else "ignored" if r < 10 else "resolved"


def register_bench_types() -> None:
    for team in TEAMS:
        for k in range(4):
            registry.register(ExceptionType(
                code=f"bench_{team}_{k}", team=team, severity=SEVERITIES[k], system="erp",
                title="Benchmark cause {cause}", runbook="Seeded by exceptions_benchmark.",
            ))


PG_INSERT = """
INSERT INTO exceptions_queue_exceptionrecord
  (type_code, team, severity, system, status, key, fingerprint, title, message, last_error, context, sku,
   retry_args, occurrences, first_seen, last_seen, resolution_note, resolved_at, due_at)
SELECT 'bench_' || t.team || '_' || (i %% 4), t.team, (ARRAY['low','medium','high','critical'])[1 + i %% 4], 'erp',
  CASE WHEN i %% 100 < 6 THEN 'open' WHEN i %% 100 < 8 THEN 'in_progress' WHEN i %% 100 < 10 THEN 'ignored' ELSE 'resolved' END,
  'bench:' || i, 'bench_' || t.team || '_' || (i %% 4) || ':C' || (i %% 5000), 'Benchmark cause C' || (i %% 5000),
  'Seeded exception ' || i, '', jsonb_build_object('cause', 'C' || (i %% 5000)), 'SKU-' || (i %% 20000),
  '{}'::jsonb, 1 + i %% 3, t.seen - interval '1 hour', t.seen, '', NULL, t.seen + interval '4 hours'
FROM generate_series(%s, %s) AS i,
LATERAL (SELECT (ARRAY['ops','finance','ecommerce'])[1 + i %% 3] AS team,
                %s::timestamptz - ((%s - i) * interval '7 seconds') AS seen) AS t
"""


class Command(BaseCommand):
    help = "Seed N exceptions (keys bench:<n>) and print p50/p95 server times of the inbox and badge."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--repeat", type=int, default=30)
        parser.add_argument("--batch", type=int, default=50_000)
        parser.add_argument("--drop", action="store_true", help="delete the seeded rows and stop")

    def handle(self, *args, rows, repeat, batch, drop, **options):
        bench = ExceptionRecord.objects.filter(key__startswith="bench:")
        if drop:
            deleted, _ = bench.delete()
            self.stdout.write(f"deleted {deleted} rows")
            return
        register_bench_types()
        self.seed(rows, batch)
        self.measure(rows, repeat)

    # --- seeding ---------------------------------------------------------------------------------

    def seed(self, rows: int, batch: int) -> None:
        have = ExceptionRecord.objects.filter(key__startswith="bench:").count()
        if have >= rows:
            self.stdout.write(f"{have} benchmark rows present; no seeding needed")
            self._vacuum()
            return
        now = timezone.now()
        started = time.perf_counter()
        for start in range(have, rows, batch):
            end = min(start + batch, rows) - 1
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(PG_INSERT, [start, end, now, rows])
            else:
                ExceptionRecord.objects.bulk_create(self._objects(start, end, now, rows), batch_size=5000)
            self.stdout.write(f"  seeded {end + 1}/{rows} ({time.perf_counter() - started:.0f}s)")
        self.stdout.write(f"seeded {rows - have} rows in {time.perf_counter() - started:.1f}s")
        self._vacuum()

    @staticmethod
    def _vacuum() -> None:
        # what autovacuum does soon after a bulk load: statistics, and the visibility map that
        # lets the badge and sidebar counts be answered from the partial indexes alone
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE exceptions_queue_exceptionrecord")

    @staticmethod
    def _objects(start: int, end: int, now, rows: int):
        for i in range(start, end + 1):
            team = TEAMS[i % 3]
            code = f"bench_{team}_{i % 4}"
            seen = now - timedelta(seconds=(rows - i) * SPACING_SECONDS)
            yield ExceptionRecord(
                type_code=code, team=team, severity=SEVERITIES[i % 4], system="erp", status=_status(i),
                key=f"bench:{i}", fingerprint=f"{code}:C{i % 5000}", title=f"Benchmark cause C{i % 5000}",
                message=f"Seeded exception {i}", context={"cause": f"C{i % 5000}"}, sku=f"SKU-{i % 20000}",
                occurrences=1 + i % 3, first_seen=seen - timedelta(hours=1), last_seen=seen,
                due_at=seen + timedelta(hours=4),
            )

    # --- measuring -------------------------------------------------------------------------------

    def _client(self, username: str, group: str) -> Client:
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.groups.add(Group.objects.get_or_create(name=group)[0])
        client = Client()
        client.force_login(user)
        return client

    def measure(self, rows: int, repeat: int) -> None:
        ops = self._client("bench-ops", "ops")
        admin = self._client("bench-admin", "admin")
        inbox = reverse("exceptions")
        first = ops.get(inbox)
        cursor = first.context["page"].next_cursor if first.context and first.context.get("page") else None
        cases = [
            ("inbox, ops team, first page", ops, inbox, {}),
            ("inbox, admin (all teams), first page", admin, inbox, {}),
            ("inbox, ops, next page (cursor)", ops, inbox, {"after": cursor} if cursor else {}),
            ("inbox, filtered: type+severity", admin, inbox, {"type": "bench_ops_2", "severity": "high"}),
            ("inbox, filtered: overdue, HTMX fragment", ops, inbox, {"overdue": "true"}),
            ("inbox, filtered: resolved, all teams", admin, inbox, {"status": "resolved", "team": ""}),
            ("inbox, free text: a SKU", ops, inbox, {"q": "SKU-1234"}),
            ("inbox, free text: nothing matches", ops, inbox, {"q": "NO-SUCH-SKU"}),
            ("badge count, ops", ops, reverse("exceptions-badge"), {}),
            ("badge count, admin", admin, reverse("exceptions-badge"), {}),
        ]
        total = ExceptionRecord.objects.count()
        active = ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES).count()
        self.stdout.write(
            f"\n{connection.vendor}: {total} exceptions ({active} open or in progress); {repeat} requests per case\n"
        )
        self.stdout.write(f"{'case':45} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for label, client, url, params in cases:
            headers = {"HTTP_HX_REQUEST": "true"} if "HTMX" in label or "badge" in label else {}
            for _ in range(3):  # warm up caches and connections
                client.get(url, params, **headers)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                response = client.get(url, params, **headers)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.status_code
            times.sort()
            p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
            self.stdout.write(f"{label:45} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
