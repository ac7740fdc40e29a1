"""Escalation: overdue exceptions are mailed to the owning team's escalation contact, and each team
gets a daily digest. Run by the django-q2 schedules created by `manage.py exceptions_schedules`."""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from .models import ExceptionActivity, ExceptionRecord
from .registry import Team

log = logging.getLogger("ledgerline.exceptions")


def _link(path: str) -> str:
    return getattr(settings, "SITE_URL", "http://localhost:8000").rstrip("/") + path


def team_contact(team: str) -> str:
    return getattr(settings, "ESCALATION_CONTACTS", {}).get(team, "")


def exceptions_escalate_overdue(*, now=None) -> int:
    """Mail each team's contact the exceptions that passed their SLA since the last run. Returns how many."""
    now = now or timezone.now()
    overdue = ExceptionRecord.objects.filter(
        status__in=ExceptionRecord.ACTIVE_STATUSES, due_at__lt=now, escalated_at__isnull=True
    )
    ids = list(overdue.values_list("pk", flat=True)[:2000])
    if not ids:
        return 0
    # Claim with a conditional update stamped with this run's time: a second worker claims none of them.
    ExceptionRecord.objects.filter(pk__in=ids, escalated_at__isnull=True).update(escalated_at=now)
    claimed = list(ExceptionRecord.objects.filter(pk__in=ids, escalated_at=now).order_by("due_at"))
    by_team: dict[str, list[ExceptionRecord]] = defaultdict(list)
    for record in claimed:
        by_team[record.team].append(record)
    for team, records in by_team.items():
        contact = team_contact(team)
        lines = [
            f"- {r.title} ({r.type_code}, {r.severity}) overdue since {r.due_at:%Y-%m-%d %H:%M} UTC, "
            f"seen {r.occurrences}x: {_link(reverse('exception-detail', args=[r.pk]))}"
            for r in records
        ]
        if contact:
            send_mail(
                subject=f"[Ledgerline] {len(records)} {team} exception{'s' if len(records) != 1 else ''} past SLA",
                message="These exceptions passed their SLA and are still open:\n\n" + "\n".join(lines)
                + f"\n\nInbox: {_link(reverse('exceptions'))}?team={team}&overdue=true\n",
                from_email=None,
                recipient_list=[contact],
            )
        else:
            log.warning("no escalation contact for team %s: %d overdue exceptions", team, len(records))
        ExceptionActivity.objects.bulk_create(
            [ExceptionActivity(exception=r, action="escalated", note=f"Past SLA; mailed {contact or 'nobody'}") for r in records]
        )
    return len(claimed)


def team_digest(team: str, *, now=None) -> str:
    now = now or timezone.now()
    since = now - timedelta(days=1)
    rows = ExceptionRecord.objects.filter(team=team)
    active = rows.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    by_type = Counter({row["type_code"]: row["n"] for row in _count_by(active, "type_code")})
    lines = [
        f"Open: {active.count()} (overdue: {active.filter(due_at__lt=now).count()})",
        f"New in the last 24 hours: {rows.filter(first_seen__gte=since).count()}",
        f"Resolved in the last 24 hours: {rows.filter(status=ExceptionRecord.Status.RESOLVED, resolved_at__gte=since).count()}",
        "",
    ]
    if by_type:
        lines.append("Open by type:")
        lines += [f"- {code.replace('_', ' ')}: {n}" for code, n in by_type.most_common(10)]
    else:
        lines.append("All clear: nothing open for this team.")
    lines.append(f"\nInbox: {_link(reverse('exceptions'))}?team={team}")
    return "\n".join(lines)


def _count_by(qs, field):
    from django.db.models import Count

    return qs.order_by().values(field).annotate(n=Count("id"))


def exceptions_send_digest(*, now=None) -> int:
    """One mail per team to its escalation contact and its members. Returns the number of mails sent."""
    sent = 0
    members = get_user_model().objects.filter(is_active=True).exclude(email="")
    for team, label in Team.CHOICES:
        recipients = {team_contact(team)} | set(members.filter(groups__name=team).values_list("email", flat=True))
        recipients.discard("")
        if not recipients:
            continue
        send_mail(
            subject=f"[Ledgerline] {label} exceptions: daily digest",
            message=team_digest(team, now=now),
            from_email=None,
            recipient_list=sorted(recipients),
        )
        sent += 1
    return sent
