"""Django's SQLite backend with one queue for every writer on the host.

SQLite lets one writer in at a time; the others poll with growing naps (1, 2, 5 … 100 ms), so a
webhook that meets a worker's short transaction may sleep far longer than the transaction took.
Here every write transaction (BEGIN IMMEDIATE, or a single write statement in autocommit) first
queues on a lock beside the database file: threads on a thread lock, processes (web server,
q2 workers) on an flock they retry every millisecond at most. A writer that cannot
get in line within WAIT seconds goes ahead unqueued and falls back on SQLite's own busy timeout,
so the queue can delay a write but never deadlock one.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time

from django.db.backends.sqlite3 import base

WAIT = 5.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_queues: dict[str, "WriterQueue"] = {}
_queues_lock = threading.Lock()


class WriterQueue:
    def __init__(self, path: str):
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None

    def acquire(self, wait: float = WAIT) -> bool:
        deadline = time.monotonic() + wait
        if not self._threads.acquire(timeout=wait):
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            nap = 0.0001
            while time.monotonic() < deadline:  # another process writes: its transactions are short
                time.sleep(nap)
                nap = min(nap * 2, 0.001)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def writer_queue(database: str) -> WriterQueue:
    with _queues_lock:
        return _queues.setdefault(database, WriterQueue(f"{database}.writers.lock"))


class QueuedCursor(base.SQLiteCursorWrapper):
    wrapper: "DatabaseWrapper"

    def execute(self, query, params=None):
        if self.wrapper.needs_queue(query):
            with self.wrapper.queued():
                return super().execute(query, params)
        return super().execute(query, params)

    def executemany(self, query, param_list):
        if self.wrapper.needs_queue(query):
            with self.wrapper.queued():
                return super().executemany(query, param_list)
        return super().executemany(query, param_list)


class _Queued:
    def __init__(self, wrapper):
        self.wrapper = wrapper

    def __enter__(self):
        self.wrapper._queue_enter()

    def __exit__(self, *exc):
        self.wrapper._queue_exit()


class DatabaseWrapper(base.DatabaseWrapper):
    _queue_held = False

    def _queue(self) -> WriterQueue | None:
        if self.is_in_memory_db():
            return None
        return writer_queue(str(self.settings_dict["NAME"]))

    def _queue_enter(self) -> None:
        queue = self._queue()
        if queue is not None and not self._queue_held:
            self._queue_held = queue.acquire()

    def _queue_exit(self) -> None:
        if self._queue_held:
            self._queue_held = False
            self._queue().release()

    def queued(self) -> _Queued:
        return _Queued(self)

    def needs_queue(self, query: str) -> bool:
        """A write statement outside a transaction is a transaction of its own."""
        return (not self._queue_held and self.get_autocommit() and not self.in_atomic_block
                and query.lstrip()[:7].upper().startswith(_WRITES))

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=QueuedCursor)
        cursor.wrapper = self
        return cursor

    def _start_transaction_under_autocommit(self):
        self._queue_enter()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._queue_exit()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._queue_exit()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._queue_exit()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._queue_exit()
