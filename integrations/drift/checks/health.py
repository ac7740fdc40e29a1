"""Integration health: webhook subscriptions missing or failing and API versions or credentials close
to their end (from each connection's stored health check: no vendor is called here), events waiting
longer than a threshold, poll cursors that stopped moving, tasks failing repeatedly. All in SQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Count, Max, Min
from django.utils import timezone

from exceptions_queue.registry import Team
from integrations.models import Connection, ConnectionHealthCheck, DriftRun, InboundEvent, PollCursor

from .. import exception_types as types
from ..conf import drift_setting
from ..registry import Finding, drift_check, last_run


def _stored_health(findings: list[Finding]) -> None:
    for check in ConnectionHealthCheck.objects.filter(connection__active=True).select_related("connection"):
        connection = check.connection
        for line in check.lines or ():
            status, name, message = line.get("status"), line.get("check"), line.get("message", "")
            if status == "ok":
                continue
            if name == "subscriptions" and status == "error":
                findings.append(Finding(
                    key=f"webhooks:{connection.code}:{message[:120]}", exception_type=types.WEBHOOKS_UNHEALTHY.code,
                    connection=connection, subject_type="connection", subject_id=connection.code,
                    group=f"webhooks:{connection.code}", message=f"{connection}: {message}.",
                    context={"problem": message}, detail={"health_check": line, "checked_at": check.checked_at.isoformat()}))
            elif name == "api_version":
                findings.append(Finding(
                    key=f"expiry:{connection.code}:api_version", exception_type=types.CREDENTIAL_EXPIRING.code,
                    connection=connection, subject_type="connection", subject_id=connection.code,
                    group=f"expiry:{connection.code}", message=f"{connection}: {message}.", context={"what": message},
                    detail={"health_check": line, "checked_at": check.checked_at.isoformat()}))


def _credentials_expiring(findings: list[Finding]) -> None:
    """A date a person recorded on the connection (settings `credentials_expire_at`, YYYY-MM-DD)."""
    warn = timedelta(days=int(drift_setting("expiry_warning_days")))
    today = timezone.now().date()
    for connection in Connection.objects.filter(active=True):
        value = (connection.settings or {}).get("credentials_expire_at")
        try:
            expires = date.fromisoformat(str(value)[:10]) if value else None
        except ValueError:
            expires = None
        if expires is None or expires - today > warn:
            continue
        what = (f"its credentials expired on {expires:%Y-%m-%d}" if expires < today
                else f"its credentials expire on {expires:%Y-%m-%d}")
        findings.append(Finding(
            key=f"expiry:{connection.code}:credentials", exception_type=types.CREDENTIAL_EXPIRING.code,
            connection=connection, subject_type="connection", subject_id=connection.code,
            group=f"expiry:{connection.code}", message=f"{connection}: {what}.", context={"what": what},
            detail={"expires": expires.isoformat()}))


def _events_waiting(findings: list[Finding]) -> None:
    before = timezone.now() - timedelta(minutes=int(drift_setting("event_waiting_minutes")))
    rows = (InboundEvent.objects.filter(status=InboundEvent.Status.PENDING, received_at__lt=before)
            .values("connection").annotate(count=Count("pk"), oldest=Min("received_at")))
    connections = Connection.objects.in_bulk([row["connection"] for row in rows])
    for row in rows:
        connection = connections[row["connection"]]
        minutes = int((timezone.now() - row["oldest"]).total_seconds() // 60)
        findings.append(Finding(
            key=f"waiting:{connection.code}", exception_type=types.EVENTS_WAITING.code, connection=connection,
            subject_type="connection", subject_id=connection.code, group=f"waiting:{connection.code}",
            message=(f"{row['count']} events from {connection} have waited more than "
                     f"{drift_setting('event_waiting_minutes')} minutes to be processed (the oldest {minutes} minutes)."),
            context={"count": row["count"]}, detail={"count": row["count"], "oldest": row["oldest"].isoformat()}))


def _cursors_stale(findings: list[Finding]) -> None:
    stale = timedelta(minutes=int(drift_setting("cursor_stale_minutes")))
    before = timezone.now() - stale
    for cursor in PollCursor.objects.filter(connection__active=True, updated_at__lt=before).select_related("connection"):
        connection = cursor.connection
        findings.append(Finding(
            key=f"cursor:{connection.code}:{cursor.resource}", exception_type=types.CURSOR_STALE.code,
            connection=connection, subject_type="connection", subject_id=connection.code,
            group=f"cursor:{connection.code}",
            message=(f"The {cursor.resource} poll of {connection} last ran at {cursor.updated_at:%Y-%m-%d %H:%M} UTC "
                     f"(cursor {cursor.last_modified_at or 'empty'})."),
            context={"resource": cursor.resource, "since": f"{cursor.updated_at:%Y-%m-%d %H:%M}"},
            detail={"cursor": cursor.last_modified_at, "last_id": cursor.last_id,
                    "updated_at": cursor.updated_at.isoformat()}))
    # The drift checks' own reconciliation poll (orphaned orders) is a cursor too.
    previous = last_run("orphaned_orders")
    if previous is not None and previous.started_at < before:
        findings.append(Finding(
            key="cursor:reconciliation", exception_type=types.CURSOR_STALE.code, subject_type="drift_check",
            subject_id="orphaned_orders", group="cursor:reconciliation",
            message=f"The reconciliation poll of the storefronts last ran at {previous.started_at:%Y-%m-%d %H:%M} UTC.",
            context={"resource": "reconciliation", "storefront": "every storefront",
                     "since": f"{previous.started_at:%Y-%m-%d %H:%M}"},
            detail={"last_run": previous.pk}))


def _tasks_failing(findings: list[Finding]) -> None:
    from django_q.models import Failure

    since = timezone.now() - timedelta(hours=int(drift_setting("task_failures_window_hours")))
    threshold = int(drift_setting("task_failures"))
    rows = (Failure.objects.filter(stopped__gte=since).values("func")
            .annotate(count=Count("pk"), last=Max("stopped")).filter(count__gte=threshold))
    for row in rows:
        last = Failure.objects.filter(func=row["func"], stopped=row["last"]).values_list("result", flat=True).first()
        error = str(last or "")[:300]
        findings.append(Finding(
            key=f"task:{row['func']}", exception_type=types.TASK_FAILING.code, subject_type="task",
            subject_id=row["func"], group=f"task:{row['func']}",
            message=f"Task {row['func']} failed {row['count']} times since {since:%Y-%m-%d %H:%M} UTC; last error: {error}",
            context={"task": row["func"], "count": row["count"]},
            detail={"count": row["count"], "last_failure": row["last"].isoformat() if isinstance(row["last"], datetime) else ""}))


@drift_check("integration_health", "Integration health", Team.OPS, "connections", 15,
             "Webhook subscriptions missing or failing, events waiting longer than a threshold, poll cursors that "
             "stopped moving, tasks failing repeatedly, credentials or API versions close to expiry.")
def integration_health(run: DriftRun) -> list[Finding]:
    findings: list[Finding] = []
    _stored_health(findings)
    _credentials_expiring(findings)
    _events_waiting(findings)
    _cursors_stale(findings)
    _tasks_failing(findings)
    run.summary["by_kind"] = {}
    for finding in findings:
        kind = finding.key.split(":", 1)[0]
        run.summary["by_kind"][kind] = run.summary["by_kind"].get(kind, 0) + 1
    return findings
