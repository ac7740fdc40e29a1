"""django-q2's in-cluster queues with locks the kernel lets go of when their holder dies.

A cluster hands tasks from its pusher to its workers, and results from the workers to its monitor,
through multiprocessing queues. Each guards its pipe with a process-shared lock: a worker waiting for
its next task holds the read lock the whole time it waits, a process writing a result holds the write
lock. Such a lock is a POSIX semaphore, which nobody releases for a process that is killed (SIGKILL,
the OOM killer): the sentinel starts a new worker, but every worker then waits for that lock for ever
and the cluster stops taking tasks, with nothing in the logs (the flash-sale benchmark's
--kill-workers runs stopped at 327 and 213 of 600 orders that way). Here both locks are `flock` locks on a
file, which the kernel drops with the process that held them; everything else is django-q2's own
queue. The same for each worker's timer (a shared value the worker holds while it hands in a result
and the sentinel's guard takes to check on it). django-q2 has no setting for these classes, so
`install()` (integrations.apps) names these where its cluster creates them.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
import threading
import time

from django_q.queues import Queue

_numbers = itertools.count()


class KernelLock:
    """A lock between processes (and the threads of each) that dies with its holder: flock on a file
    each process opens for itself (an inherited open file would share one lock with the parent)."""

    def __init__(self, path: str):
        self.path = path
        self._pid: int | None = None
        self._fd: int | None = None
        self._threads = threading.Lock()

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def _here(self) -> int:
        if self._pid != os.getpid():  # first use in this process (or a forked child)
            self._threads = threading.Lock()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        fd = self._here()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        if not self._threads.acquire(block, -1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            if block and deadline is None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits in the kernel (the GIL let go)
                return True
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if not block or time.monotonic() >= deadline:
                        break
                    time.sleep(0.005)
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def release(self) -> None:
        fcntl.flock(self._here(), fcntl.LOCK_UN)
        self._threads.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class KernelRLock(KernelLock):
    """KernelLock that the thread holding it may take again (a shared value's lock is taken by
    `with value.get_lock():` and again by each `value.value = …` inside it)."""

    def __init__(self, path: str):
        super().__init__(path)
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        if self._pid == os.getpid() and self._owner == threading.get_ident():
            self._depth += 1
            return True
        if not super().acquire(block, timeout):
            return False
        self._owner, self._depth = threading.get_ident(), 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            super().release()


def _lock_dir() -> str:
    from django.conf import settings

    path = os.path.join(str(getattr(settings, "VAR_DIR", tempfile.gettempdir())), "q-locks")
    os.makedirs(path, exist_ok=True)
    return path


class KernelLockQueue(Queue):
    """django-q2's Queue whose read and write locks are KernelLocks (one lock file each)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        directory, name = _lock_dir(), f"{os.getpid()}-{next(_numbers)}"
        for stale in os.listdir(directory):  # an earlier cluster's, on this host
            pid = stale.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
                try:
                    os.unlink(os.path.join(directory, stale))
                except OSError:
                    pass
        self._rlock = KernelLock(os.path.join(directory, f"{name}-read.lock"))
        self._wlock = KernelLock(os.path.join(directory, f"{name}-write.lock"))


def kernel_value(typecode, value):
    """multiprocessing.Value with a KernelRLock: a worker's timer, which the worker holds while it
    hands in a result and the sentinel's guard takes to look at it (a worker killed holding the stock
    lock left the guard waiting for ever: no dead worker replaced again)."""
    import multiprocessing

    return multiprocessing.Value(typecode, value, lock=KernelRLock(
        os.path.join(_lock_dir(), f"{os.getpid()}-{next(_numbers)}-value.lock")))


def install() -> None:
    """Where django-q2's cluster makes its task and result queues and its workers' timers, make these."""
    import django_q.cluster

    django_q.cluster.Queue = KernelLockQueue
    django_q.cluster.Value = kernel_value
