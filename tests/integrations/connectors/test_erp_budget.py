"""The ERP's request budget holds for every worker process together: N processes asking as fast as
they can never start more requests than the ERP's limit in any one-second window, whether the budget
is this host's slot file, Redis or a PostgreSQL row (the last two hold across hosts)."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from integrations.connectors import erp_pacer, postgres_conninfo
from integrations.connectors.base import PostgresPacer, RedisPacer, SharedPacer
from tests.redis_server import redis_url  # noqa: F401  (fixture)

LIMIT = 20  # the ERP's requests per second
PACED = 18  # what Ledgerline allows itself, just under it
PROCESSES = 4
SECONDS = 3.0

WORKER = textwrap.dedent("""
    import json, sys, time
    from integrations.connectors.base import PostgresPacer, RedisPacer, SharedPacer
    kind, where, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    pacer = {"file": lambda: SharedPacer(rate, where), "redis": lambda: RedisPacer(rate, where, "test:erp-budget"),
             "postgres": lambda: PostgresPacer(rate, where, "test-erp")}[kind]()
    start = time.time() + 0.5  # every process begins together
    time.sleep(max(0.0, start - time.time()))
    stamps = []
    while time.time() < start + seconds:
        pacer.wait()
        stamps.append(time.time())  # the moment this request would go out
    print(json.dumps(stamps))
""")


def _requests_started(kind: str, where: str | list[str]) -> list[float]:
    wheres = where if isinstance(where, list) else [where] * PROCESSES
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, kind, each, str(PACED), str(SECONDS)],
                                cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True)
               for each in wheres]
    stamps = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        stamps += json.loads(out)
    return sorted(stamps)


def _busiest_second(stamps: list[float]) -> int:
    busiest, first = 0, 0
    for last, at in enumerate(stamps):
        while stamps[first] <= at - 1.0:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


def _assert_within_the_limit(stamps: list[float]) -> None:
    assert _busiest_second(stamps) <= LIMIT
    # …and the budget is spent, not starved: together they get about the paced rate.
    assert len(stamps) >= 0.8 * PACED * SECONDS


def test_processes_sharing_the_hosts_slot_file_stay_within_the_limit(tmp_path):
    _assert_within_the_limit(_requests_started("file", str(tmp_path / "erp.slot")))


def test_processes_sharing_the_budget_in_redis_stay_within_the_limit(redis_url):  # noqa: F811
    _assert_within_the_limit(_requests_started("redis", redis_url))


@pytest.mark.django_db(transaction=True)
def test_processes_sharing_the_budget_row_in_postgres_stay_within_the_limit():
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL budget needs DATABASE_URL to name a PostgreSQL server (.ci/run's second run)")
    _assert_within_the_limit(_requests_started("postgres", postgres_conninfo()))


def test_without_a_shared_budget_the_same_processes_would_exceed_it(tmp_path):
    # What the tests above guard against: one slot file per process is one budget each.
    stamps = _requests_started("file", [str(tmp_path / f"own-{n}.slot") for n in range(PROCESSES)])
    assert _busiest_second(stamps) > LIMIT


def test_settings_choose_where_the_budget_is_kept(settings, tmp_path):
    settings.ERP = {**settings.ERP, "client_rate_limit": 10, "budget": "file"}
    settings.VAR_DIR = tmp_path
    assert isinstance(erp_pacer("rest:http://erp.example"), SharedPacer)
    settings.ERP = {**settings.ERP, "budget": "redis"}
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert isinstance(erp_pacer("rest:http://erp.example"), RedisPacer)
    if connection.vendor == "postgresql":
        settings.ERP = {**settings.ERP, "budget": "postgres"}
        assert isinstance(erp_pacer("rest:http://erp.example"), PostgresPacer)
