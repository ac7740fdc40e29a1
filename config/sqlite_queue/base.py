"""Django's SQLite backend with one queue for every writer on the host.

SQLite lets one writer in at a time; the others poll with growing naps (1, 2, 5 … 100 ms), so a
webhook that meets a worker's short transaction may sleep far longer than the transaction took.
Here every write transaction (BEGIN IMMEDIATE, or a single write statement in autocommit) first
queues on a lock beside the database file: threads on a thread lock, processes (web server,
q2 workers) on an flock. A process waits for the flock in the kernel, woken the moment it is free
(polling for it, as this did at first, cost a busy flash sale more CPU than some of its writes): a
helper thread per process makes the blocking call, so the writer can stop waiting after WAIT
seconds. A writer that cannot get in line within WAIT seconds goes ahead unqueued and falls back
on SQLite's own busy timeout, so the queue can delay a write but never deadlock one; should the
helper get the lock after that, it lets go of it at once (or hands it to the next writer).
A forked child (django-q2 forks its workers) opens its own lock file: an inherited
open file would share the parent's lock instead of queueing behind it.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time

from django.db.backends.sqlite3 import base

WAIT = 5.0
# Where each process keeps how long it held the lock (its file: holds and seconds, rewritten in
# place at every release): set by the flash-sale benchmark, which reports the lock's busy time.
STATS_DIR = os.environ.get("SQLITE_LOCK_STATS", "")
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_queues: dict[str, "WriterQueue"] = {}
_queues_lock = threading.Lock()


class WriterQueue:
    def __init__(self, path: str):
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        # The helper's hand-over, under _cond: `_wanted` (a writer waits), `_busy` (the helper is
        # blocked in flock for it), `_granted` (the helper got the lock for the waiting writer).
        self._cond = threading.Condition()
        self._wanted = self._busy = self._granted = False
        self._helper: threading.Thread | None = None
        self.holds, self.held_seconds, self._since = 0, 0.0, 0.0
        self._stats_fd: int | None = None
        if STATS_DIR:
            name = f"{os.getpid()}-{id(self)}"  # (one queue per database and process)
            try:
                self._stats_fd = os.open(os.path.join(STATS_DIR, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except OSError:  # figures are never worth a write: none are kept
                self._stats_fd = None

    def _held(self) -> None:
        self.holds += 1
        self.held_seconds += time.monotonic() - self._since
        try:
            os.pwrite(self._stats_fd, f"{self.holds} {self.held_seconds:.6f}".ljust(40).encode(), 0)
        except OSError:  # (a full disk…): the lock is let go all the same, and no more figures are kept
            fd, self._stats_fd = self._stats_fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def acquire(self, wait: float = WAIT) -> bool:
        if self._get(wait):
            if self._stats_fd is not None:
                self._since = time.monotonic()
            return True
        return False

    def _get(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        if not self._threads.acquire(timeout=wait):
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._cond:
                if not self._busy:  # (while the helper waits, the lock is its to hand over)
                    try:
                        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return True
                    except BlockingIOError:
                        pass
                if self._wait_for_helper(deadline):
                    return True
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def _wait_for_helper(self, deadline: float) -> bool:
        """Under _cond: ask the helper for the lock and wait for it until the deadline."""
        self._wanted, self._granted = True, False
        if not self._busy:
            self._busy = True
            if self._helper is None or not self._helper.is_alive():
                self._helper = threading.Thread(target=self._help, daemon=True, name="sqlite-writer-queue")
                self._helper.start()
            self._cond.notify_all()
        while not self._granted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.wait(remaining)
        granted, self._wanted, self._granted = self._granted, False, False
        return granted

    def _help(self) -> None:
        """The helper thread: blocks in flock whenever a writer asks, then hands the lock over (or,
        when the writer gave up meanwhile, lets go of it)."""
        while True:
            with self._cond:
                while not self._busy:
                    self._cond.wait()
                fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._cond:
                if self._wanted:
                    self._granted = True
                    self._cond.notify_all()
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                self._busy = False

    def release(self) -> None:
        if self._stats_fd is not None:
            self._held()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

def writer_queue(database: str) -> WriterQueue:
    """The process's one queue for this database, made on first use (asked at every write transaction)."""
    queue = _queues.get(database)
    if queue is None:
        with _queues_lock:
            queue = _queues.get(database)
            if queue is None:
                queue = _queues[database] = WriterQueue(f"{database}.writers.lock")
    return queue


def _forget_queues_in_child() -> None:
    """After fork: the parent's queues (open lock files, thread locks, helper) are not this process's."""
    global _queues_lock
    for queue in _queues.values():
        for fd in (queue._fd, queue._stats_fd):
            if fd is not None:
                try:
                    os.close(fd)  # the parent's lock, if it holds one, stays the parent's (its figures too)
                except OSError:
                    pass
    _queues.clear()
    _queues_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues_in_child)


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
