"""Raising and resolving many exceptions at once (what the drift checks use): the same rows and the same
timeline as one at a time (raised, a recurrence counted without a line, a closed one reopened with one
line, auto-resolved with one line), in tens of queries however many there are (one at a time: four per exception)."""
import pytest

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import (
    ExceptionToRaise, exception_ignore, exception_raise, exception_resolve, exceptions_raise_many,
    exceptions_resolve_many,
)

from .conftest import TYPES

pytestmark = pytest.mark.django_db


def _item(n, cause="D1", **extra):
    return ExceptionToRaise(exc_type=TYPES["t_ops"], key=f"k{n}", fingerprint=cause,
                            message=f"depot {cause} refused {n}", context={"depot": cause}, **extra)


def _actions(key):
    return list(ExceptionRecord.objects.get(key=key).activity.values_list("action", flat=True))


def test_new_exceptions_open_like_one_raised_at_a_time():
    single = exception_raise(exc_type=TYPES["t_ops"], key="k0", fingerprint="D1", message="depot D1 refused 0",
                             context={"depot": "D1"}, sku="TEE-RED-M")
    records = exceptions_raise_many(items=[_item(1, sku="TEE-RED-M"), _item(2, sku="TEE-RED-M")])
    assert set(records) == {"t_ops:k1", "t_ops:k2"}
    fields = ("team", "severity", "system", "status", "fingerprint", "title", "sku", "subject_type", "subject_id",
              "occurrences")
    many = ExceptionRecord.objects.get(key="t_ops:k1")
    assert [getattr(many, f) for f in fields] == [getattr(single, f) for f in fields]
    assert many.title == "Depot D1 rejected the order" and many.team == "ops" and many.status == "open"
    assert many.due_at - many.first_seen == TYPES["t_ops"].sla
    assert _actions("t_ops:k1") == ["raised"]
    assert many.activity.get().note == "depot D1 refused 1"


def test_an_open_one_counts_a_recurrence_without_a_timeline_line():
    exceptions_raise_many(items=[_item(1)])
    exceptions_raise_many(items=[_item(1, cause="D2"), _item(1, cause="D2")])  # seen twice more
    record = ExceptionRecord.objects.get(key="t_ops:k1")
    assert (record.occurrences, record.status, record.fingerprint) == (3, "open", "t_ops:D2")
    assert _actions("t_ops:k1") == ["raised"]


def test_a_closed_one_reopens_with_one_line_and_a_fresh_sla(ops_user):
    first, second = exception_raise(**vars(_item(1))), exception_raise(**vars(_item(2)))
    exception_resolve(record=first, note="fixed", actor=ops_user)
    exception_ignore(record=second, reason="known", actor=ops_user)
    exceptions_raise_many(items=[_item(1), _item(2)])
    for key, closed in (("t_ops:k1", "resolved"), ("t_ops:k2", "ignored")):
        record = ExceptionRecord.objects.get(key=key)
        assert (record.status, record.resolved_at, record.occurrences) == ("open", None, 2)
        assert _actions(key) == ["raised", closed, "reopened"]


def test_a_thousand_exceptions_take_tens_of_queries_not_thousands(django_assert_max_num_queries):
    exceptions_raise_many(items=[_item(n) for n in range(500)])  # half of them exist already
    with django_assert_max_num_queries(60):
        records = exceptions_raise_many(items=[_item(n) for n in range(1000)])
    assert len(records) == 1000 and ExceptionRecord.objects.count() == 1000
    assert ExceptionRecord.objects.filter(occurrences=2).count() == 500
    ids = [r.pk for r in records.values()]
    with django_assert_max_num_queries(20):
        assert exceptions_resolve_many(ids=ids, note="gone") == 1000
    assert ExceptionRecord.objects.filter(status="resolved").count() == 1000


def test_resolving_many_closes_only_active_ones_each_with_its_line(ops_user):
    records = exceptions_raise_many(items=[_item(n) for n in range(3)])
    ignored = exception_ignore(record=records["t_ops:k2"], reason="known", actor=ops_user)
    resolved = exceptions_resolve_many(ids=[r.pk for r in records.values()], note="The check no longer finds this.")
    assert resolved == 2
    assert _actions("t_ops:k0") == ["raised", "auto_resolved"]
    record = ExceptionRecord.objects.get(key="t_ops:k0")
    assert record.resolution_note == "The check no longer finds this." and record.resolved_at
    assert record.activity.last().actor_name == "Ledgerline"
    ignored.refresh_from_db()
    assert ignored.status == "ignored" and _actions("t_ops:k2") == ["raised", "ignored"]
    assert exceptions_resolve_many(ids=[records["t_ops:k0"].pk], note="again") == 0  # already closed: unchanged


def test_a_key_another_worker_inserted_meanwhile_is_not_duplicated(monkeypatch):
    real = ExceptionRecord.objects.bulk_create
    calls = []

    def racing_bulk_create(objs, *args, **kwargs):
        if not calls:  # another worker inserts k1 between our read and our insert
            calls.append(1)
            exception_raise(**vars(_item(1)))
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(ExceptionRecord.objects, "bulk_create", racing_bulk_create)
    records = exceptions_raise_many(items=[_item(1), _item(2)])
    # The clash is caught and the batch done again one at a time: one row and one "raised" line per key.
    assert calls and ExceptionRecord.objects.count() == 2
    assert _actions("t_ops:k1") == ["raised"] and _actions("t_ops:k2") == ["raised"]
    assert records["t_ops:k2"].pk == ExceptionRecord.objects.get(key="t_ops:k2").pk


def test_an_unregistered_type_raises_nothing():
    from exceptions_queue.registry import ExceptionType, Severity, Team, UnregisteredExceptionType

    rogue = ExceptionType(code="t_rogue", team=Team.OPS, severity=Severity.LOW, title="x", runbook="-")
    with pytest.raises(UnregisteredExceptionType):
        exceptions_raise_many(items=[_item(1), ExceptionToRaise(exc_type=rogue, key="r", fingerprint="r", message="r")])
    assert not ExceptionRecord.objects.exists()


def test_gaps_that_come_back_reopen_in_a_few_queries_writing_only_what_changed(django_assert_max_num_queries):
    records = exceptions_raise_many(items=[_item(n) for n in range(500)])
    exceptions_resolve_many(ids=[r.pk for r in records.values()], note="gone")
    items = [_item(n) for n in range(500)]
    items[7] = _item(7, cause="D9")  # one comes back told differently: its cause and message change
    with django_assert_max_num_queries(20):  # all fields of every row through bulk_update: one CASE per row and field
        exceptions_raise_many(items=items)
    assert ExceptionRecord.objects.filter(status="open", occurrences=2).count() == 500
    assert ExceptionRecord.objects.get(key="t_ops:k7").fingerprint == "t_ops:D9"
    assert ExceptionRecord.objects.get(key="t_ops:k8").fingerprint == "t_ops:D1"
    assert _actions("t_ops:k3") == ["raised", "auto_resolved", "reopened"]
