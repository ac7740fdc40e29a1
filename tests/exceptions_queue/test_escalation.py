from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from exceptions_queue.escalation import exceptions_escalate_overdue, exceptions_send_digest
from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve

from .conftest import TYPES


@pytest.fixture(autouse=True)
def contacts(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ESCALATION_CONTACTS = {"ops": "ops-lead@example.com", "finance": "fin-lead@example.com", "ecommerce": ""}


def make_overdue(record):
    ExceptionRecord.objects.filter(pk=record.pk).update(due_at=timezone.now() - timedelta(minutes=1))


def test_overdue_exceptions_are_mailed_to_the_owning_teams_contact_once(raise_exc):
    late_ops = raise_exc("t_ops", n=2, cause="D1")
    late_fin = raise_exc("t_finance", cause="P1")
    on_time = raise_exc("t_ops", cause="D9")
    for record in [*late_ops, late_fin]:
        make_overdue(record)

    assert exceptions_escalate_overdue() == 3

    by_to = {m.to[0]: m for m in mail.outbox}
    assert set(by_to) == {"ops-lead@example.com", "fin-lead@example.com"}
    assert "2 ops exceptions past SLA" in by_to["ops-lead@example.com"].subject
    assert late_ops[0].title in by_to["ops-lead@example.com"].body
    assert on_time.title not in by_to["ops-lead@example.com"].body
    assert late_fin.activity.filter(action="escalated").exists()

    mail.outbox.clear()
    assert exceptions_escalate_overdue() == 0
    assert mail.outbox == []


def test_a_reopened_exception_can_escalate_again(raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    make_overdue(rec)
    exceptions_escalate_overdue()
    exception_resolve(record=rec, note="done")
    exception_raise(exc_type=TYPES["t_ops"], key="k1:D1", fingerprint="D1", message="again")
    make_overdue(rec)
    mail.outbox.clear()
    assert exceptions_escalate_overdue() == 1 and len(mail.outbox) == 1


def test_resolved_exceptions_are_not_escalated(raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    make_overdue(rec)
    exception_resolve(record=rec, note="done")
    assert exceptions_escalate_overdue() == 0 and mail.outbox == []


def test_daily_digest_per_team(raise_exc, ops_user):
    raise_exc("t_ops", n=3, cause="D1")
    sent = exceptions_send_digest()
    by_subject = {m.subject: m for m in mail.outbox}
    ops = by_subject["[Ledgerline] Ops exceptions: daily digest"]
    assert set(ops.to) == {"ops-lead@example.com", ops_user.email}
    assert "Open: 3" in ops.body and "t ops: 3" in ops.body
    fin = by_subject["[Ledgerline] Finance exceptions: daily digest"]
    assert "All clear" in fin.body
    assert sent == len(mail.outbox) == 2  # ecommerce has neither a contact nor members here


def test_schedules_command_is_idempotent(db):
    call_command("exceptions_schedules")
    call_command("exceptions_schedules")
    rows = Schedule.objects.filter(name__startswith="exceptions:")
    assert sorted(rows.values_list("func", flat=True)) == [
        "exceptions_queue.tasks.escalate_overdue",
        "exceptions_queue.tasks.send_daily_digest",
    ]
