"""The integration audit of a connected estate, the way an integration consultant starts an engagement:
mapping gaps seen in exceptions and storefront locations, scopes, webhook subscriptions and API versions
from the stored health checks (never a live vendor call), error and retry rates per flow, stale cursors
and exceptions past their SLA; each with a severity and the fix. Exported as HTML or Markdown."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from .dashboard import AMBER, IDLE, RED, WEEK, _flow_health, flow_specs, screen_url

CRITICAL, HIGH, MEDIUM, LOW, INFO = "critical", "high", "medium", "low", "info"
SEVERITY_ORDER = {CRITICAL: 0, HIGH: 1, MEDIUM: 2, LOW: 3, INFO: 4}
STALE_CURSOR = timedelta(hours=1)  # a poller runs every minute: an hour without a move is a stopped poller

# Exception types that are a mapping gap, the area the audit reports them under, and the fix.
MAPPING_GAPS = {
    "unknown_sku": ("SKUs without mappings", "Add the SKU under Mappings → SKUs (or create the ERP item), then "
                    "retry its exceptions."),
    "inventory_unknown_sku": ("SKUs without mappings", "Map the storefront SKU under Mappings → SKUs; the next "
                              "stock sync picks it up."),
    "planner_unknown_sku": ("SKUs without mappings", "Map the planner's SKU under Mappings → SKUs."),
    "planner_sku_unknown": ("SKUs without mappings", "Map the planner's SKU under Mappings → SKUs."),
    "purchase_line_unknown_item": ("SKUs without mappings", "Map the SKU to an ERP item, then retry the purchase "
                                   "order."),
    "missing_tax_mapping": ("Tax rates without codes", "Add the rate and country under Mappings → Tax codes, then "
                            "retry the orders."),
    "inventory_unmapped_location": ("Locations without depots", "Map the storefront location to an ERP warehouse "
                                    "(Prima: a Depot) under Mappings → Locations."),
    "invalid_depot": ("Locations without depots", "Map the order's location or country to an ERP depot under "
                      "Mappings → Depots, then retry."),
}


@dataclass(frozen=True)
class AuditFinding:
    area: str
    severity: str
    subject: str
    finding: str
    fix: str
    url: str = ""


def _mapping_gaps() -> list[AuditFinding]:
    from exceptions_queue.models import ExceptionRecord

    rows = (ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES, type_code__in=list(MAPPING_GAPS))
            .values("type_code", "fingerprint").annotate(n=Count("pk"), since=Min("first_seen"), sku=Max("sku"),
                                                          title=Max("title"))
            .order_by("type_code", "-n"))
    out = []
    for row in rows:
        area, fix = MAPPING_GAPS[row["type_code"]]
        subject = f"SKU {row['sku']}" if row["sku"] else row["title"]
        out.append(AuditFinding(
            area, HIGH if row["n"] > 1 else MEDIUM, subject,
            f"{row['title']}: {row['n']} open exception{'s' if row['n'] != 1 else ''} since "
            f"{timezone.localtime(row['since']):%Y-%m-%d %H:%M}", fix,
            screen_url("exception-group", f"fingerprint={row['fingerprint']}")))
    return out


def _unmapped_locations() -> list[AuditFinding]:
    from integrations.models.inventory import StorefrontLocation
    from mappings.models import LocationMapping

    mapped: dict[int, set[str]] = {}
    for connection_id, location in LocationMapping.objects.filter(active=True).values_list(
            "connection_id", "storefront_location"):
        mapped.setdefault(connection_id, set()).update({location, location.rsplit("/", 1)[-1]})
    out = []
    for loc in StorefrontLocation.objects.filter(active=True, connection__active=True).select_related("connection"):
        known = mapped.get(loc.connection_id, set())
        if loc.location not in known and loc.location.rsplit("/", 1)[-1] not in known:
            out.append(AuditFinding(
                "Locations without depots", HIGH, f"{loc.connection.code}: {loc.name or loc.location}",
                f"Storefront location {loc.location} has no ERP warehouse or depot: no stock is pushed to it.",
                "Map it under Mappings → Locations (an ERP warehouse, or a Prima Depot).", screen_url("mappings")))
    return out


def _connections(today: date) -> list[AuditFinding]:
    from integrations.models import Connection, ConnectionHealthCheck
    from integrations.onboarding.health import shopify_version_support

    checks = {c.connection_id: c for c in ConnectionHealthCheck.objects.all()}
    out = []
    default_version = (getattr(settings, "SHOPIFY", {}) or {}).get("api_version", "")
    for connection in Connection.objects.filter(active=True).order_by("code"):
        url = screen_url("connections")
        check = checks.get(connection.pk)
        if check is None:
            out.append(AuditFinding("Connection health", MEDIUM, connection.code,
                                    "No health check stored yet: scopes, subscriptions and versions are unknown.",
                                    "Open Connections and press Check now (the schedule refreshes it every 15 min).",
                                    url))
        else:
            for line in check.lines:
                if line.get("status") == "ok" or line.get("check") == "api_version":
                    continue
                area = {"scopes": "Scopes missing", "subscriptions": "Webhook subscriptions"}.get(
                    line.get("check"), "Connection health")
                fix = ("Repair the subscriptions on the connection's page." if line.get("repairable") else
                       "Grant the scope to the app (re-authorise it), then check again." if area == "Scopes missing"
                       else "Open the connection, correct it, then check again.")
                out.append(AuditFinding(area, HIGH if line.get("status") == "error" else MEDIUM, connection.code,
                                        f"{line.get('message')} (checked {timezone.localtime(check.checked_at):%Y-%m-%d %H:%M})",
                                        fix, url))
        if connection.kind == "shopify":
            version = (connection.settings or {}).get("api_version") or default_version
            end, line = shopify_version_support(version, today)
            severity = {"error": HIGH, "warn": MEDIUM}.get(line.status, INFO)
            out.append(AuditFinding(
                "API versions", severity, connection.code,
                f"Shopify Admin API {version}: end of support {end.isoformat() if end else 'unknown'}. {line.message}",
                "Nothing to do." if severity == INFO else "Move the connection to a newer stable version and "
                "re-validate the GraphQL documents against its schema.", url))
    return out


def _flow_rates(now: datetime) -> list[AuditFinding]:
    from integrations.models import Dispatch, OrderLink, OutboundWrite

    today = timezone.localtime(now).date()
    days = [today - timedelta(days=i) for i in range(6, -1, -1)]
    out = []
    for spec in flow_specs():
        health = _flow_health(spec, now=now, days=days)
        if not health.available or health.colour.colour == IDLE:
            continue
        rate = health.error_rate_7d
        colour = health.colour.colour
        severity = HIGH if colour == RED else MEDIUM if colour == AMBER else INFO
        out.append(AuditFinding(
            "Error and retry rates", severity, spec.label,
            f"Error rate {rate if rate is not None else 0} % over 7 days ({health.failed_7d} of {health.arrived_7d}); "
            f"backlog {health.backlog}; {health.colour.label.lower()} by the rule “{health.colour.rule}”.",
            "Work the flow's failing patterns on the dashboard, oldest first." if severity != INFO else "Nothing to do.",
            screen_url(spec.screen) if spec.screen else ""))
    week = now - WEEK
    orders = OrderLink.objects.filter(created_at__gte=week).aggregate(n=Count("pk"), retried=Count("pk", filter=Q(auto_retries__gt=0)))
    dispatches = Dispatch.objects.filter(received_at__gte=week).aggregate(n=Count("pk"), retried=Count("pk", filter=Q(attempts__gt=1)))
    for label, row in (("Orders", orders), ("Fulfilment", dispatches)):
        if row["n"]:
            pct = round(100 * row["retried"] / row["n"], 1)
            out.append(AuditFinding("Error and retry rates", MEDIUM if pct > 5 else INFO, label,
                                    f"Retry rate {pct} % over 7 days ({row['retried']} of {row['n']} needed more than one attempt).",
                                    "Look at the target's availability and rate limits." if pct > 5 else "Nothing to do."))
    for row in (OutboundWrite.objects.filter(started_at__gte=week).values("system")
                .annotate(n=Count("pk"), failed=Count("pk", filter=Q(status="failed"))).order_by("system")):
        pct = round(100 * row["failed"] / row["n"], 1) if row["n"] else 0
        out.append(AuditFinding("Error and retry rates", HIGH if pct > 5 else MEDIUM if pct > 1 else INFO,
                                f"Writes to {row['system'] or 'unknown'}",
                                f"{row['failed']} of {row['n']} writes failed over 7 days ({pct} %).",
                                "Read the failed writes' errors; transient ones are retried by the sweep."
                                if pct > 1 else "Nothing to do."))
    return out


def _stale_cursors(now: datetime) -> list[AuditFinding]:
    from integrations.models import DispatchCursor, PollCursor

    out = []
    cutoff = now - STALE_CURSOR
    for cursor in PollCursor.objects.filter(updated_at__lt=cutoff, connection__active=True).select_related("connection"):
        out.append(AuditFinding("Stale cursors", HIGH, f"{cursor.connection.code}: {cursor.resource}",
                                f"The poll cursor has not moved since {timezone.localtime(cursor.updated_at):%Y-%m-%d %H:%M} "
                                f"(last at {cursor.last_modified_at or '—'}).",
                                "Check the task cluster is running and the connection's health; the poller resumes "
                                "from the cursor.", screen_url("connections")))
    for cursor in DispatchCursor.objects.filter(updated_at__lt=cutoff):
        out.append(AuditFinding("Stale cursors", MEDIUM, f"dispatches from {cursor.erp}",
                                f"The dispatch poller has not moved since {timezone.localtime(cursor.updated_at):%Y-%m-%d %H:%M}.",
                                "Check the task cluster and the ERP connection; the poller resumes from the cursor."))
    return out


def _past_sla(now: datetime) -> list[AuditFinding]:
    from exceptions_queue.models import ExceptionRecord

    out = []
    for row in (ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES, due_at__lt=now)
                .values("team", "type_code").annotate(n=Count("pk"), oldest=Min("due_at")).order_by("team", "-n")):
        out.append(AuditFinding(
            "Exceptions past their SLA", HIGH, f"{row['team']}: {row['type_code']}",
            f"{row['n']} open past their SLA, the oldest due {timezone.localtime(row['oldest']):%Y-%m-%d %H:%M}.",
            "Work them from the queue (overdue only) or escalate to the team's contact.",
            screen_url("exceptions", f"team={row['team']}&type={row['type_code']}&overdue=true")))
    return out


def integration_audit(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    findings = (_mapping_gaps() + _unmapped_locations() + _connections(timezone.localtime(now).date())
                + _flow_rates(now) + _stale_cursors(now) + _past_sla(now))
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.area, f.subject))
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY_ORDER}
    return {"now": now, "findings": findings, "counts": counts}


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def audit_markdown(audit: dict, *, base: str = "") -> str:
    counts = ", ".join(f"{n} {s}" for s, n in audit["counts"].items() if n) or "nothing found"
    out = ["# Integration audit", "", f"Generated {timezone.localtime(audit['now']):%Y-%m-%d %H:%M %Z}: {counts}.", "",
           "| Severity | Area | Subject | Finding | Fix |", "| --- | --- | --- | --- | --- |"]
    for f in audit["findings"]:
        subject = f"[{_md(f.subject)}]({base}{f.url})" if f.url else _md(f.subject)
        out.append(f"| {f.severity} | {_md(f.area)} | {subject} | {_md(f.finding)} | {_md(f.fix)} |")
    return "\n".join(out) + "\n"
