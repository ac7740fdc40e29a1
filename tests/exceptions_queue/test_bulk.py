"""Retry through django-q2, group retry with progress, bulk actions on a selection or a group."""
import pytest
from django.urls import reverse

from exceptions_queue.models import BulkJob, ExceptionRecord
from tests.factories import OrderLinkFactory

from .conftest import FIXED, HTMX, client_for

BULK = reverse("exceptions-bulk")


@pytest.fixture
def group(raise_exc, q_sync):
    return raise_exc("t_ops", n=4, cause="D1", order=None)


def test_retry_group_resolves_every_exception_once_the_cause_is_fixed(ops_user, group, raise_exc):
    other = raise_exc("t_ops", cause="D2")
    FIXED.add("t_ops:D1")

    response = client_for(ops_user).post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)

    assert response["HX-Trigger"] == "exceptionsChanged"
    assert "Retry finished:</strong> 4 resolved" in response.content.decode()
    assert set(ExceptionRecord.objects.filter(fingerprint="t_ops:D1").values_list("status", flat=True)) == {"resolved"}
    assert ExceptionRecord.objects.get(pk=other.pk).status == "open"
    job = BulkJob.objects.get()
    assert (job.total, job.done, job.succeeded, job.failed, job.status) == (4, 4, 4, 0, "done")


def test_retry_that_still_fails_keeps_the_exceptions_open_and_says_so(ops_user, group):
    response = client_for(ops_user).post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)
    assert "4 still failing" in response.content.decode()
    record = ExceptionRecord.objects.get(pk=group[0].pk)
    assert record.status == "open"
    assert list(record.activity.values_list("action", flat=True)) == ["raised", "retried", "retry_failed"]


def test_queued_retry_shows_a_progress_bar_that_polls(ops_user, raise_exc, django_capture_on_commit_callbacks):
    raise_exc("t_ops", n=3, cause="D1")
    FIXED.add("t_ops:D1")
    client = client_for(ops_user)
    with django_capture_on_commit_callbacks() as callbacks:  # the queue has not run yet
        response = client.post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)
    body = response.content.decode()
    job = BulkJob.objects.get()
    assert 'hx-trigger="every 1s"' in body and 'role="progressbar"' in body and "0 of 3" in body
    assert len(callbacks) == 1

    from exceptions_queue.tasks import run_bulk_job

    run_bulk_job(job.pk)
    poll = client.get(reverse("exceptions-job", args=[job.pk]), **HTMX)
    assert "3 resolved" in poll.content.decode() and "every 1s" not in poll.content.decode()
    assert poll["HX-Trigger"] == "exceptionsChanged, exceptionsJobDone"


def test_job_runs_twice_without_double_counting(ops_user, raise_exc, django_capture_on_commit_callbacks):
    raise_exc("t_ops", n=2, cause="D1")
    FIXED.add("t_ops:D1")
    with django_capture_on_commit_callbacks():
        client_for(ops_user).post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)
    from exceptions_queue.tasks import run_bulk_job

    job = BulkJob.objects.get()
    run_bulk_job(job.pk)
    run_bulk_job(job.pk)
    job.refresh_from_db()
    assert (job.done, job.succeeded) == (2, 2)


def test_job_page_works_on_its_own(ops_user, group):
    client_for(ops_user).post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"})
    job = BulkJob.objects.get()
    body = client_for(ops_user).get(reverse("exceptions-job", args=[job.pk])).content.decode()
    assert "<html" in body and f"Retry job {job.pk}" in body


def test_bulk_resolve_a_selection(ops_user, group):
    chosen = group[:2]
    response = client_for(ops_user).post(
        BULK, {"action": "resolve", "ids": [r.pk for r in chosen], "note": "Depot fixed", "next": "/exceptions/"}
    )
    assert response.status_code == 302 and response["Location"] == "/exceptions/"
    statuses = dict(ExceptionRecord.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in group] == ["resolved", "resolved", "open", "open"]
    assert ExceptionRecord.objects.get(pk=chosen[0].pk).activity.filter(action="resolved", actor=ops_user).exists()


def test_bulk_assign_a_whole_group_to_me(ops_user, group):
    response = client_for(ops_user).post(BULK, {"action": "assign", "fingerprint": "t_ops:D1", "assignee": "me"}, **HTMX)
    assert "4 exceptions: assign done." in response.content.decode()
    assert set(ExceptionRecord.objects.values_list("assignee", "status")) == {(ops_user.pk, "in_progress")}


def test_bulk_ignore_needs_a_reason(ops_user, group):
    response = client_for(ops_user).post(BULK, {"action": "ignore", "fingerprint": "t_ops:D1"}, **HTMX)
    assert "a resolution note or an ignore reason is required" in response.content.decode()
    assert not ExceptionRecord.objects.exclude(status="open").exists()


def test_bulk_with_nothing_selected_says_so(ops_user, group):
    response = client_for(ops_user).post(BULK, {"action": "resolve", "note": "x"}, **HTMX)
    assert "Select some exceptions first." in response.content.decode()


def test_bulk_selection_with_another_teams_exception_is_forbidden(ops_user, group, raise_exc):
    theirs = raise_exc("t_finance", cause="P1")
    response = client_for(ops_user).post(BULK, {"action": "resolve", "ids": [group[0].pk, theirs.pk], "note": "x"})
    assert response.status_code == 403
    assert not ExceptionRecord.objects.exclude(status="open").exists()


def test_bulk_rejects_get(ops_user):
    assert client_for(ops_user).get(BULK).status_code == 405


@pytest.mark.django_db
def test_bulk_redirects_signed_out_visitors(client):
    assert "/accounts/login/" in client.post(BULK, {"action": "retry", "fingerprint": "x"})["Location"]


def test_group_page_lists_affected_orders_and_offers_retry_group(ops_user, raise_exc):
    orders = [OrderLinkFactory(order_number=f"#20{i}") for i in range(3)]
    for order in orders:
        raise_exc("t_ops", cause="D1", order=order)
    body = client_for(ops_user).get(reverse("exception-group"), {"fingerprint": "t_ops:D1"}).content.decode()
    assert "<strong>3</strong> open exceptions with this cause, affecting <strong>3</strong> orders" in body
    assert all(o.order_number in body for o in orders)
    assert "Retry group" in body


def test_group_page_for_another_team_hides_the_group_actions(finance_user, raise_exc):
    raise_exc("t_ops", n=2, cause="D1")
    body = client_for(finance_user).get(reverse("exception-group"), {"fingerprint": "t_ops:D1"}).content.decode()
    assert "Retry group" not in body and "Only the ops team" in body


def test_resolved_group_says_all_clear(ops_user, group):
    FIXED.add("t_ops:D1")
    client = client_for(ops_user)
    client.post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)
    body = client.get(reverse("exception-group"), {"fingerprint": "t_ops:D1"}, **HTMX).content.decode()
    assert "Group resolved." in body and body.lstrip().startswith('<div id="group-body"')


def test_unknown_group_is_404(ops_user, db):
    assert client_for(ops_user).get(reverse("exception-group"), {"fingerprint": "nope"}).status_code == 404
