"""The task cluster's queues: a process killed while it waits for its next task (holding the queue's
read lock) or while it writes does not leave the lock held, so the cluster's other workers go on."""
import multiprocessing
import os
import signal
import time

import pytest

from config.q_queues import KernelLockQueue

fork = multiprocessing.get_context("fork")


def _wait_for_a_task(queue):
    queue.get()  # blocks, holding the read lock


def _take_one(queue, answers):
    answers.put(queue.get(timeout=10))


def test_a_worker_killed_while_it_waits_for_a_task_leaves_the_queue_to_the_others():
    queue, answers = KernelLockQueue(), fork.SimpleQueue()
    waiting = fork.Process(target=_wait_for_a_task, args=(queue,))
    waiting.start()
    time.sleep(0.5)  # now in get(), holding the read lock
    os.kill(waiting.pid, signal.SIGKILL)
    waiting.join()
    queue.put("task-1")
    taker = fork.Process(target=_take_one, args=(queue, answers))
    taker.start()
    taker.join(15)
    assert taker.exitcode == 0 and answers.get() == "task-1"


def test_the_stock_queue_would_stay_locked_after_such_a_kill():
    """Why the queue class is replaced: django-q2's own queue, same kill, and the next get() times out."""
    from django_q.queues import Queue

    queue = Queue()
    waiting = fork.Process(target=_wait_for_a_task, args=(queue,))
    waiting.start()
    time.sleep(0.5)
    os.kill(waiting.pid, signal.SIGKILL)
    waiting.join()
    queue.put("task-1")
    with pytest.raises(Exception):  # queue.Empty: the read lock is held by a dead process
        queue.get(timeout=1)


def test_the_lock_is_a_lock_between_processes_and_threads():
    queue = KernelLockQueue()
    lock = queue._rlock
    assert lock.acquire()
    assert not lock.acquire(block=False) and not lock.acquire(timeout=0.05)  # this process, another thread's view
    holder = fork.Process(target=lambda: os._exit(0 if not queue._rlock.acquire(timeout=0.2) else 1))
    holder.start()
    holder.join(5)
    assert holder.exitcode == 0  # another process cannot take it either
    lock.release()
    for n in range(3):
        queue.put(n)
    assert [queue.get(timeout=5) for _ in range(3)] == [0, 1, 2] and queue.qsize() == 0


def test_the_cluster_makes_its_queues_of_this_class():
    import django_q.cluster

    assert django_q.cluster.Queue is KernelLockQueue


def _hold_and_die(timer):
    with timer.get_lock():
        timer.value = 5  # taken again inside: the lock is recursive
        time.sleep(30)


def test_a_worker_killed_holding_its_timer_does_not_leave_the_guard_waiting():
    from config.q_queues import kernel_value

    timer = kernel_value("f", -1)
    holder = fork.Process(target=_hold_and_die, args=(timer,))
    holder.start()
    time.sleep(0.5)
    assert not timer.get_lock().acquire(timeout=0.1)  # held by the worker
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert timer.get_lock().acquire(timeout=5)  # the guard takes it once the worker is gone
    try:
        assert timer.value == 5
    finally:
        timer.get_lock().release()


def test_the_cluster_makes_its_workers_timers_with_that_lock():
    import django_q.cluster

    from config.q_queues import kernel_value

    assert django_q.cluster.Value is kernel_value
