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


def test_a_waiting_writer_sleeps_in_the_kernel_instead_of_polling(tmp_path):
    holder, waiter = WriterQueue(str(tmp_path / "db.writers.lock")), WriterQueue(str(tmp_path / "db.writers.lock"))
    assert holder.acquire()
    spent = {}

    def wait_for_it():
        started = time.thread_time()
        assert waiter.acquire()
        spent["cpu"] = time.thread_time() - started

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    time.sleep(1.0)  # the holder's transaction takes a second
    holder.release()
    thread.join(5)
    waiter.release()
    # Polling every millisecond for that second cost more than ten times this.
    assert spent["cpu"] < 0.002


def test_a_lock_the_helper_gets_after_its_writer_gave_up_goes_to_the_next_writer_or_back(tmp_path):
    path = str(tmp_path / "db.writers.lock")
    holder, late, other_process = WriterQueue(path), WriterQueue(path), WriterQueue(path)
    assert holder.acquire()
    assert late.acquire(wait=0.1) is False  # gave up; its helper still waits in the kernel
    holder.release()
    time.sleep(0.2)  # the helper got the lock for nobody: it let go of it
    assert other_process.acquire(wait=0.5)
    got = threading.Event()
    threading.Thread(target=lambda: late.acquire() and got.set(), daemon=True).start()
    assert not got.wait(0.2)  # the next writer of the same process waits again, behind the other
    other_process.release()
    assert got.wait(2)
    late.release()


def test_a_forked_child_queues_behind_its_parent_instead_of_sharing_its_lock(tmp_path):
    import os

    from config.sqlite_queue.base import writer_queue

    database = str(tmp_path / "db.sqlite3")
    parent = writer_queue(database)
    assert parent.acquire()  # the parent has written before (its lock file is open) ...
    parent.release()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: waits until the parent writes again, then tries to write too
        os.read(ready_r, 1)
        os._exit(0 if writer_queue(database).acquire(wait=0.3) is False else 1)
    try:
        assert parent.acquire()  # ... and writes again after forking its worker
        os.write(ready_w, b"x")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # the child was kept out
    finally:
        parent.release()


def test_with_lock_stats_on_each_process_keeps_how_long_it_held_the_write_lock(tmp_path, monkeypatch):
    """What the flash-sale benchmark reads to say how busy the one write lock was (SQLITE_LOCK_STATS)."""
    from config.sqlite_queue import base

    stats = tmp_path / "stats"
    stats.mkdir()
    monkeypatch.setattr(base, "STATS_DIR", str(stats))
    queue = WriterQueue(str(tmp_path / "db.writers.lock"))
    for hold in (0.05, 0.1):
        assert queue.acquire()
        time.sleep(hold)
        queue.release()
    late = WriterQueue(str(tmp_path / "db.writers.lock"))
    assert queue.acquire() and late.acquire(wait=0.1) is False  # went ahead unqueued: held nothing
    queue.release()
    [own, other] = sorted(stats.iterdir(), key=lambda path: path.stat().st_size, reverse=True)
    holds, seconds = own.read_text().split()
    assert int(holds) == 3 and 0.15 <= float(seconds) < 1.0
    assert other.read_text() == ""  # (the writer that never got the lock)


def test_without_lock_stats_nothing_is_written(tmp_path):
    from config.sqlite_queue import base

    assert base.STATS_DIR == ""  # the product's own processes keep no figures
    queue = WriterQueue(str(tmp_path / "db.writers.lock"))
    assert queue.acquire()
    queue.release()
    assert queue.holds == 0 and sorted(path.name for path in tmp_path.iterdir()) == ["db.writers.lock"]


def test_every_write_transaction_of_a_process_queues_on_its_one_queue_and_its_figures_file(tmp_path, monkeypatch):
    """A long sale makes hundreds of thousands of write transactions: none may leave an open file
    (or a lock) behind. (Each one made a new queue before: with lock stats on, the web server ran out
    of file descriptors in a 10,000-order sale.)"""
    import os

    from config.sqlite_queue import base

    stats = tmp_path / "stats"
    stats.mkdir()
    monkeypatch.setattr(base, "STATS_DIR", str(stats))
    database = str(tmp_path / "db.sqlite3")
    open_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    queues = {id(base.writer_queue(database)) for _ in range(500)}
    assert len(queues) == 1 and len(list(stats.iterdir())) == 1
    if open_before is not None:
        assert len(os.listdir("/proc/self/fd")) <= open_before + 1
    base._queues.pop(database, None)


def test_lock_stats_that_cannot_be_written_never_stop_a_writer(tmp_path, monkeypatch):
    import os

    from config.sqlite_queue import base

    monkeypatch.setattr(base, "STATS_DIR", str(tmp_path / "missing"))  # no such folder: nothing kept
    queue = WriterQueue(str(tmp_path / "db.writers.lock"))
    assert queue.acquire()
    queue.release()
    stats = tmp_path / "stats"
    stats.mkdir()
    monkeypatch.setattr(base, "STATS_DIR", str(stats))
    queue = WriterQueue(str(tmp_path / "db.writers.lock"))
    os.close(queue._stats_fd)  # as if the disk refused the write: pwrite fails
    queue._stats_fd = os.open(os.devnull, os.O_RDONLY)
    assert queue.acquire()
    queue.release()  # lets go of the lock all the same
    other = WriterQueue(str(tmp_path / "db.writers.lock"))
    assert other.acquire(wait=0.5) is True
    other.release()
