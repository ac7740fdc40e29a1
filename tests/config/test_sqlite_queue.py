"""SQLite writers queue for the database (config/sqlite_queue) instead of polling SQLite's lock."""
import threading
import time

import pytest
from django.db import connection, transaction

from config.sqlite_queue.base import WriterQueue

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the queue is for SQLite only")


def test_a_second_process_writes_right_after_the_first_commits(tmp_path):
    # Two WriterQueues on one file lock each other out exactly as two processes do (flock is per open file).
    web, worker = WriterQueue(str(tmp_path / "db.writers.lock")), WriterQueue(str(tmp_path / "db.writers.lock"))
    assert worker.acquire()
    got_in = threading.Event()
    waiter = threading.Thread(target=lambda: web.acquire() and got_in.set())
    waiter.start()
    assert not got_in.wait(0.3)  # the web server waits while the worker's transaction is open
    worker.release()
    assert got_in.wait(2)  # and gets in as soon as it commits
    waiter.join()
    web.release()


def test_a_writer_that_cannot_get_in_line_goes_ahead_instead_of_hanging(tmp_path):
    holder, late = WriterQueue(str(tmp_path / "db.writers.lock")), WriterQueue(str(tmp_path / "db.writers.lock"))
    assert holder.acquire()
    started = time.monotonic()
    assert late.acquire(wait=0.2) is False  # SQLite's own busy timeout takes over from here
    assert time.monotonic() - started < 2
    holder.release()
    assert late.acquire(wait=0.2) is True
    late.release()


@pytest.mark.django_db(transaction=True)
def test_django_write_transactions_hold_the_queue_until_they_end():
    from integrations.models import Connection

    assert connection.settings_dict["ENGINE"] == "config.sqlite_queue"
    with transaction.atomic():
        Connection.objects.create(code="q1", kind="shopify", name="Queued")
        assert connection._queue_held
    assert not connection._queue_held
    Connection.objects.filter(code="q1").update(name="Renamed")  # autocommit write: queued, then freed
    assert not connection._queue_held
    assert Connection.objects.get(code="q1").name == "Renamed"
