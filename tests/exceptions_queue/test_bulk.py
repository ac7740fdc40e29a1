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
    assert "4 assigned" in response.content.decode()
    assert set(ExceptionRecord.objects.values_list("assignee", "status")) == {(ops_user.pk, "in_progress")}


def test_bulk_ignore_needs_a_reason(ops_user, group):
    response = client_for(ops_user).post(BULK, {"action": "ignore", "fingerprint": "t_ops:D1"}, **HTMX)
    assert "a resolution note or an ignore reason is required" in response.content.decode()
    assert not ExceptionRecord.objects.exclude(status="open").exists()


def test_bulk_with_nothing_selected_says_so(ops_user, group):
    response = client_for(ops_user).post(BULK, {"action": "resolve", "note": "x"}, **HTMX)
    assert "Select some exceptions first." in response.content.decode()


def test_bulk_over_two_teams_does_its_own_rows_and_reports_the_others_refused(ops_user, group, raise_exc):
    theirs = raise_exc("t_finance", cause="P1")
    ids = [group[0].pk, group[1].pk, theirs.pk]
    response = client_for(ops_user).post(BULK, {"action": "resolve", "ids": ids, "note": "Depot fixed"}, **HTMX)

    assert response.status_code == 200
    assert "2 resolved · 1 refused: owned by finance" in response.content.decode()
    statuses = dict(ExceptionRecord.objects.values_list("pk", "status"))
    assert (statuses[group[0].pk], statuses[group[1].pk], statuses[theirs.pk]) == ("resolved", "resolved", "open")


def test_bulk_retry_over_two_teams_reports_refused_rows_in_its_progress(ops_user, group, raise_exc):
    theirs = raise_exc("t_finance", n=2, cause="P1")
    FIXED.update({"t_ops:D1", "t_finance:P1"})
    ids = [r.pk for r in group[:3]] + [r.pk for r in theirs]
    client = client_for(ops_user)
    response = client.post(BULK, {"action": "retry", "ids": ids}, **HTMX)

    assert "Retry finished:</strong> 3 resolved" in response.content.decode()
    assert "2 refused: owned by finance" in response.content.decode()
    assert set(ExceptionRecord.objects.filter(team="finance").values_list("status", flat=True)) == {"open"}
    job = BulkJob.objects.get()
    page = client.get(reverse("exceptions-job", args=[job.pk])).content.decode()
    assert "3 resolved" in page and "2 refused: owned by finance" in page


def test_bulk_reports_a_chosen_row_that_was_closed_meanwhile(ops_user, group):
    ExceptionRecord.objects.filter(pk=group[0].pk).update(status="resolved")
    response = client_for(ops_user).post(BULK, {"action": "ignore", "ids": [group[0].pk, group[1].pk], "note": "test"}, **HTMX)
    assert "1 ignored · 1 refused: already closed" in response.content.decode()


def test_bulk_retry_of_a_type_without_retry_says_so(ecommerce_user, raise_exc, q_sync):
    records = raise_exc("t_ecommerce", n=2, cause="S1")
    response = client_for(ecommerce_user).post(BULK, {"action": "retry", "ids": [r.pk for r in records]}, **HTMX)
    assert "0 resolved · <span class=\"refused\">2 refused: cannot be retried</span>" in response.content.decode()


def test_bulk_of_only_another_teams_rows_changes_nothing_and_says_why(finance_user, group):
    client = client_for(finance_user)
    response = client.post(BULK, {"action": "resolve", "fingerprint": "t_ops:D1", "note": "x", "next": "/exceptions/"},
                           follow=True)
    assert "0 resolved · 4 refused: owned by ops" in response.content.decode()
    assert not ExceptionRecord.objects.exclude(status="open").exists()


def test_bulk_assign_to_someone_outside_the_team_is_refused_per_row(ops_user, finance_user, group):
    response = client_for(ops_user).post(
        BULK, {"action": "assign", "fingerprint": "t_ops:D1", "assignee": finance_user.username}, **HTMX
    )
    assert "0 assigned · 4 refused: fred-finance is not in ops" in response.content.decode()
    assert not ExceptionRecord.objects.exclude(assignee=None).exists()


def test_inbox_offers_checkboxes_only_on_rows_the_user_can_act_on(ops_user, raise_exc):
    mine, theirs = raise_exc("t_ops", cause="D1"), raise_exc("t_finance", cause="P1")
    body = client_for(ops_user).get(reverse("exceptions"), {"team": ""}).content.decode()
    assert f'name="ids" value="{mine.pk}"' in body
    assert f'name="ids" value="{theirs.pk}"' not in body
    assert "Payout P1 does not balance: owned by finance, you cannot act on it" in body
    assert 'value="retry"' in body


def test_inbox_offers_no_bulk_actions_to_a_reader_without_a_team(outsider, raise_exc):
    raise_exc("t_ops", cause="D1")
    body = client_for(outsider).get(reverse("exceptions")).content.decode()
    assert "Depot D1 rejected the order" in body
    assert 'class="bulkbar"' not in body and 'name="ids"' not in body


def test_inbox_offers_no_retry_when_no_selectable_row_can_be_retried(ecommerce_user, raise_exc):
    raise_exc("t_ecommerce", cause="S1")
    raise_exc("t_ops", cause="D1")  # retryable, but not ecommerce's
    body = client_for(ecommerce_user).get(reverse("exceptions"), {"team": ""}).content.decode()
    assert 'value="resolve"' in body and 'value="retry"' not in body


def test_bulk_buttons_are_disabled_while_their_request_runs(ops_user, raise_exc):
    raise_exc("t_ops", cause="D1")
    body = client_for(ops_user).get(reverse("exceptions")).content.decode()
    assert 'id="bulk-form"' in body and 'hx-disabled-elt="find .bulkbar button"' in body
    assert 'class="working" role="status">Working…<' in body


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
    assert "Retry group" not in body and "Only the Ops team" in body


def test_resolved_group_says_all_clear(ops_user, group):
    FIXED.add("t_ops:D1")
    client = client_for(ops_user)
    client.post(BULK, {"action": "retry", "fingerprint": "t_ops:D1"}, **HTMX)
    body = client.get(reverse("exception-group"), {"fingerprint": "t_ops:D1"}, **HTMX).content.decode()
    assert "Group resolved." in body and body.lstrip().startswith('<div id="group-body"')


def test_unknown_group_is_404(ops_user, db):
    assert client_for(ops_user).get(reverse("exception-group"), {"fingerprint": "nope"}).status_code == 404


def test_group_actions_are_disabled_while_their_request_runs(ops_user, raise_exc):
    raise_exc("t_ops", n=2, cause="D1")
    body = client_for(ops_user).get(reverse("exception-group"), {"fingerprint": "t_ops:D1"}).content.decode()
    form = body[body.index('<form id="group-actions"'):body.index("</form>", body.index('<form id="group-actions"'))]
    assert 'hx-disabled-elt="find button"' in form and "Working…" in form
