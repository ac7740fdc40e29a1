"""The ORM broker the task cluster runs on (config/q_broker.py): tasks taken once, handed out
again when their lock runs out, gone once acknowledged."""
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from config.q_broker import CompiledORM

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(monkeypatch):
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    return get_broker()


def test_the_cluster_uses_the_compiled_broker(queue):
    assert isinstance(queue, CompiledORM)


def test_queued_tasks_are_taken_once_with_their_signed_packages(queue):
    async_task("math.floor", 1.5, task_name="first")
    async_task("math.floor", 2.5, task_name="second")
    taken = queue.dequeue()
    assert [SignedPackage.loads(payload)["name"] for _, payload in taken] == ["first", "second"]
    assert get_broker().dequeue() is None  # a second cluster finds them locked
    assert OrmQ.objects.count() == 2  # still there until acknowledged


def test_a_task_whose_lock_ran_out_is_handed_out_again_and_an_acknowledged_one_never(queue):
    async_task("math.floor", 1.5, task_name="lost")
    async_task("math.floor", 2.5, task_name="done")
    (lost_id, _), (done_id, _) = queue.dequeue()
    queue.acknowledge(done_id)
    assert not OrmQ.objects.filter(pk=done_id).exists()
    OrmQ.objects.filter(pk=lost_id).update(lock=timezone.now() - timedelta(seconds=1))  # its worker died
    [(again, payload)] = get_broker().dequeue()
    assert again == lost_id and SignedPackage.loads(payload)["name"] == "lost"


def test_a_task_another_cluster_took_first_is_not_taken_twice(queue, monkeypatch):
    async_task("math.floor", 1.5, task_name="contended")
    other = get_broker()
    read = queue._waiting

    def read_then_lose_the_race(using):
        rows = read(using)
        assert len(other.dequeue()) == 1  # the other cluster takes it between this one's read and take
        return rows

    monkeypatch.setattr(queue, "_waiting", read_then_lose_the_race)
    assert queue.dequeue() == []
