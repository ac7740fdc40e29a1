"""The registry of drift checks: every check has its schedule in the one schedule registry and a task
entry point; runs are recorded with their counts; a failing check is an owned exception, resolved when
it runs again; `manage.py drift_check` runs one or all by hand."""
import pytest
from django.core.management import CommandError, call_command

from config.schedules import registry as schedules
from exceptions_queue.models import ExceptionRecord
from integrations.drift import registry, tasks
from integrations.drift.registry import Finding, check_run, drift_check
from integrations.models import DriftFinding, DriftRun

pytestmark = pytest.mark.django_db

CODES = {"orphaned_orders", "inventory_drift", "catalogue", "prices", "tax_rounding", "integration_health"}


def test_every_check_is_scheduled_as_often_as_it_says_and_has_its_task():
    checks = {c.code: c for c in registry.all_checks()}
    assert CODES <= set(checks)
    scheduled = {s.func: s.minutes for s in schedules()}
    for check in checks.values():
        assert scheduled.get(check.task_name) == check.schedule_minutes, check.code
        assert callable(getattr(tasks, check.code))
    assert scheduled["integrations.drift.tasks.orphaned_orders"] == 5  # an order is caught within 15 minutes


@pytest.fixture
def planted(monkeypatch):
    """A throwaway check whose gaps the test decides."""
    gaps = {"found": ["a", "b"], "fail": False}

    @drift_check("test_planted", "Planted", "ops", "orders", 5, "gaps the test plants")
    def planted_check(run):
        if gaps["fail"]:
            raise RuntimeError("vendor down")
        return [Finding(key=k, message=f"gap {k}", exception_type="drift_orphaned_order",
                        context={"order_number": k}) for k in gaps["found"]]

    yield gaps
    registry._CHECKS.pop("test_planted", None)


def test_a_run_records_its_counts_and_keeps_one_exception_per_gap(planted):
    first = check_run("test_planted")
    assert (first.status, first.found, first.raised, first.updated, first.resolved) == ("findings", 2, 2, 0, 0)
    assert first.finished_at and first.duration_ms is not None
    planted["found"] = ["b", "c"]
    second = check_run("test_planted")
    assert (second.found, second.raised, second.updated, second.resolved) == (2, 1, 1, 1)
    assert ExceptionRecord.objects.filter(key__startswith="drift_orphaned_order:test_planted:").count() == 3
    assert set(DriftFinding.objects.filter(resolved_at__isnull=True).values_list("key", flat=True)) == {"b", "c"}
    assert ExceptionRecord.objects.get(key="drift_orphaned_order:test_planted:a").status == "resolved"
    planted["found"] = ["a"]  # a gap that had closed comes back: the same exception, reopened
    third = check_run("test_planted")
    assert third.raised == 1
    assert ExceptionRecord.objects.get(key="drift_orphaned_order:test_planted:a").status == "open"


def test_an_ignored_exception_stays_ignored_while_its_gap_stays(planted, ops_user):
    from exceptions_queue.services import exception_ignore

    check_run("test_planted")
    record = ExceptionRecord.objects.get(key="drift_orphaned_order:test_planted:a")
    exception_ignore(record=record, reason="known, accepted", actor=ops_user)
    check_run("test_planted")
    record.refresh_from_db()
    assert record.status == "ignored"


def test_a_failing_check_is_an_owned_exception_resolved_by_its_next_run(planted):
    planted["fail"] = True
    run = check_run("test_planted")
    assert (run.status, run.error) == ("failed", "RuntimeError: vendor down")
    record = ExceptionRecord.objects.get(type_code="drift_check_failed")
    assert record.team == "ops" and "vendor down" in record.message
    assert DriftFinding.objects.count() == 0
    planted["fail"] = False
    from exceptions_queue.services import exception_retry

    assert exception_retry(record=record) is True  # retry = run the check again
    record.refresh_from_db()
    assert record.status == "resolved"


def test_a_run_whose_worker_died_does_not_block_the_check_for_ever(planted):
    from datetime import timedelta

    from django.utils import timezone

    dead = DriftRun.objects.create(check_code="test_planted", started_at=timezone.now() - timedelta(hours=2))
    run = check_run("test_planted")
    assert run != dead and run.status == "findings"
    dead.refresh_from_db()
    assert dead.status == "failed" and "worker lost" in dead.error


def test_the_command_runs_one_check_or_refuses_an_unknown_one(planted, capsys):
    call_command("drift_check", "test_planted")
    assert "test_planted: gaps found — 2 found, 2 new" in capsys.readouterr().out
    assert DriftRun.objects.get().trigger == "manual"
    with pytest.raises(CommandError, match="no drift check 'nope'"):
        call_command("drift_check", "nope")
    with pytest.raises(CommandError):
        call_command("drift_check")
    call_command("drift_check", "--list")
    assert "orphaned_orders" in capsys.readouterr().out


def test_hundreds_of_gaps_are_raised_and_closed_in_tens_of_queries(planted, django_assert_max_num_queries):
    planted["found"] = [f"g{n}" for n in range(400)]
    with django_assert_max_num_queries(80):  # one at a time this was over 1,600
        first = check_run("test_planted")
    assert (first.found, first.raised) == (400, 400)
    assert ExceptionRecord.objects.filter(status="open", type_code="drift_orphaned_order").count() == 400
    planted["found"] = [f"g{n}" for n in range(200, 600)]  # half fixed, 200 new
    with django_assert_max_num_queries(80):
        second = check_run("test_planted")
    assert (second.raised, second.updated, second.resolved) == (200, 200, 200)
    assert ExceptionRecord.objects.filter(status="open").count() == 400
    closed = ExceptionRecord.objects.get(key="drift_orphaned_order:test_planted:g0")
    assert closed.status == "resolved"
    assert list(closed.activity.values_list("action", flat=True)) == ["raised", "auto_resolved"]
    assert ExceptionRecord.objects.get(key="drift_orphaned_order:test_planted:g599").activity.get().action == "raised"
