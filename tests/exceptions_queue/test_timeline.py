"""The exception's timeline: it names the person who acted (also when a django-q2 task acted for
them), says "Ledgerline" for what ran by itself, and a recurrence counts instead of adding lines."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions_queue import registry
from exceptions_queue.models import BulkJob, ExceptionActivity, ExceptionRecord
from exceptions_queue.registry import ExceptionType, Severity, Team
from exceptions_queue.services import exception_raise, exception_resolve

from .conftest import FIXED, HTMX, TYPES, client_for

BULK = reverse("exceptions-bulk")
HANDED_TO_HANDLER: list = []


def remember_who_retried(record) -> bool:
    HANDED_TO_HANDLER.append(getattr(record, "retried_by", None))
    return True


@pytest.fixture
def who_type():
    exc_type = registry.register(ExceptionType(
        code="t_who", team=Team.OPS, severity=Severity.LOW, title="Who retried", runbook="-",
        retry_handler="tests.exceptions_queue.test_timeline.remember_who_retried",
    ))
    HANDED_TO_HANDLER.clear()
    yield exc_type
    registry.unregister("t_who")


def timeline(client, record) -> str:
    body = client.get(reverse("exception-detail", args=[record.pk])).content.decode()
    return body[body.index('id="exception-timeline"'):]


def test_a_bulk_retry_run_by_the_queue_names_the_person_who_started_it(ops_user, raise_exc,
                                                                        django_capture_on_commit_callbacks):
    records = raise_exc("t_ops", n=2, cause="D1")
    FIXED.add("t_ops:D1")
    client = client_for(ops_user)
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)
    assert ExceptionActivity.objects.filter(action="retried").count() == 0  # queued, not run yet

    from exceptions_queue.tasks import run_bulk_job

    run_bulk_job(BulkJob.objects.get().pk)  # what the django-q2 worker runs: it gets only the job's id

    for record in records:
        lines = timeline(client, record)
        assert "<strong>olivia-ops</strong> · retried" in lines
        assert "<strong>Ledgerline</strong> · auto resolved" in lines  # the outcome is automatic
    assert len(callbacks) == 1


def test_a_retry_through_django_q_in_process_names_the_person(ops_user, raise_exc, q_sync):
    record = raise_exc("t_ops", cause="D1")
    FIXED.add("t_ops:D1")
    client = client_for(ops_user)
    client.post(reverse("exception-retry", args=[record.pk]), **HTMX)
    assert "<strong>olivia-ops</strong> · retried" in timeline(client, record)


def test_the_retry_handler_is_told_who_retried(ops_user, who_type, q_sync):
    record = exception_raise(exc_type=who_type, key="w1", fingerprint="w", message="m")
    client_for(ops_user).post(reverse("exception-retry", args=[record.pk]), **HTMX)
    assert HANDED_TO_HANDLER == [ops_user]


@pytest.mark.parametrize("action, data, line", [
    ("assign", {"assignee": "me"}, "assigned: to olivia-ops"),
    ("comment", {"note": "Asked the depot"}, "commented: Asked the depot"),
    ("resolve", {"note": "Depot code corrected"}, "resolved: Depot code corrected"),
    ("ignore", {"note": "Test order"}, "ignored: Test order"),
])
def test_each_persons_action_is_named_in_the_timeline(action, data, line, ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1")
    client = client_for(ops_user)
    client.post(reverse(f"exception-{action}", args=[record.pk]), data, **HTMX)
    lines = timeline(client, record)
    assert f"<strong>olivia-ops</strong> · {line}" in lines
    assert "<strong>Ledgerline</strong> · raised" in lines


def test_reopening_names_the_person(ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1")
    exception_resolve(record=record, note="done", actor=ops_user)
    client = client_for(ops_user)
    client.post(reverse("exception-reopen", args=[record.pk]), **HTMX)
    assert "<strong>olivia-ops</strong> · reopened" in timeline(client, record)


# --- recurrences ---------------------------------------------------------------------------------

def _recur(record, times: int):
    for _ in range(times):
        exception_raise(exc_type=TYPES["t_ops"], key=record.key.split(":", 1)[1], fingerprint="D1",
                        message="t_ops failed for D1")


def test_a_recurrence_counts_and_moves_last_seen_without_a_timeline_line(ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1")
    ExceptionRecord.objects.filter(pk=record.pk).update(first_seen=timezone.now() - timedelta(minutes=38),
                                                        last_seen=timezone.now() - timedelta(minutes=38))
    _recur(record, 40)

    record.refresh_from_db()
    assert record.occurrences == 41
    assert timezone.now() - record.last_seen < timedelta(minutes=1)
    assert list(record.activity.values_list("action", flat=True)) == ["raised"]
    body = client_for(ops_user).get(reverse("exception-detail", args=[record.pk])).content.decode()
    assert "Seen 41 times · first " in body
    assert timeline(client_for(ops_user), record).count("<li>") == 1


def test_the_count_reads_with_thousands_separators(ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1")
    ExceptionRecord.objects.filter(pk=record.pk).update(occurrences=4000)
    body = client_for(ops_user).get(reverse("exception-detail", args=[record.pk])).content.decode()
    assert "Seen 4,000 times · first" in body


def test_a_recurrence_after_resolving_reopens_with_one_line(ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1")
    exception_resolve(record=record, note="done", actor=ops_user)
    _recur(record, 3)
    record.refresh_from_db()
    assert (record.status, record.occurrences) == ("open", 4)
    assert list(record.activity.values_list("action", flat=True)) == ["raised", "resolved", "reopened"]


def test_old_runs_of_identical_recurrence_lines_show_as_one(ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1")
    start = timezone.now() - timedelta(minutes=30)
    ExceptionActivity.objects.bulk_create(
        [ExceptionActivity(exception=record, action="recurred", note="same", at=start + timedelta(seconds=i))
         for i in range(25)]
        + [ExceptionActivity(exception=record, action="commented", note="looking", actor=ops_user,
                             at=start + timedelta(minutes=1))]
        + [ExceptionActivity(exception=record, action="recurred", note="same", at=start + timedelta(minutes=2))]
    )
    lines = timeline(client_for(ops_user), record)
    assert lines.count("<li>") == 4  # raised, 25 recurrences as one, the comment, the later recurrence
    assert lines.count("recurred") == 2
    assert "recurred 25 times, until" in lines


def test_the_bulk_task_says_whom_it_acted_for(ops_user, raise_exc, django_capture_on_commit_callbacks):
    raise_exc("t_ops", n=2, cause="D1")
    theirs = raise_exc("t_finance", cause="P1")
    FIXED.add("t_ops:D1")
    ids = list(ExceptionRecord.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks():
        client_for(ops_user).post(BULK, {"action": "retry", "ids": ids}, **HTMX)
    from exceptions_queue.tasks import run_bulk_job

    result = run_bulk_job(BulkJob.objects.get().pk)
    assert result == "for olivia-ops: 2 resolved, 0 still failing; 1 refused: owned by finance"
    assert ExceptionRecord.objects.get(pk=theirs.pk).activity.filter(action="retried").count() == 0
