"""The health dashboard (the home page) and the tables the operating model is generated from: per flow
the last success, backlog, throughput and error rate; the red/amber/green rules in one table; open
exceptions by team and age; failing patterns; drift over time. A few set-based queries, cached ~30 s."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

log = logging.getLogger("ledgerline.dashboard")
CACHE_KEY = "ledgerline:dashboard:v2"
CACHE_SECONDS = 30
DAY, WEEK = timedelta(hours=24), timedelta(days=7)
RED, AMBER, GREEN, IDLE = "red", "amber", "green", "idle"
IDLE_TEXT = "no data: nothing arrived in 7 days, nothing waits and nothing ever succeeded"


def screen_url(name: str, query: str = "") -> str:
    """The screen's path, or "" while that screen does not exist in this installation."""
    try:
        path = reverse(name)
    except NoReverseMatch:
        return ""
    return f"{path}?{query}" if query else path



# --- Who owns what (ARCHITECTURE.md, "Who owns what"): the operating model prints this table -----------
@dataclass(frozen=True)
class ObjectOwner:
    obj: str
    owner: str  # the system of record
    flows_to: str
    team: str  # the team that answers for its exceptions
    screen: str  # URL name of the screen where it is watched ("" when there is none yet)


OWNERSHIP = [
    ObjectOwner("Orders, customers at checkout", "Storefront (Shopify, commercetools)",
                "ERP Sales Order, once paid or authorised", "ops", "orders"),
    ObjectOwner("Stock, available-to-sell", "ERP (Prima: per Depot)",
                "Storefront locations / supply channels", "ops", "inventory"),
    ObjectOwner("Prices", "ERP master prices", "Storefront prices (compared by the prices drift check)",
                "ecommerce", "mappings"),
    ObjectOwner("Dispatch (parcels, tracking)", "ERP (the warehouse confirms)",
                "Storefront fulfilments / deliveries, customer notified", "ops", "orders"),
    ObjectOwner("Refunds", "Storefront", "ERP credit memo", "finance", "exceptions"),
    ObjectOwner("Payouts", "Payment provider (Shopify Payments, PSP settlement files)",
                "ERP journal, reconciled by finance", "finance", "payouts"),
    ObjectOwner("Demand, replenishment", "Inventory Planner", "ERP purchase orders (drafts reviewed)",
                "ops", "replenishment"),
    ObjectOwner("SKU, location, depot, tax-code mappings", "Admins in Ledgerline", "Read by every flow",
                "admin", "mappings"),
]


# --- The checks people do, by team and cadence (drift checks and exception types are added from their
# registries when the page is generated) ------------------------------------------------------------
@dataclass(frozen=True)
class TeamCheck:
    team: str
    cadence: str  # daily | weekly | month_end
    what: str
    screen: str  # URL name
    query: str = ""  # added to the URL


CADENCES = [("daily", "Daily"), ("weekly", "Weekly"), ("month_end", "Month-end")]

TEAM_CHECKS = [
    TeamCheck("ops", "daily", "Read the health dashboard: every flow green, no failing pattern left unowned", "home"),
    TeamCheck("ops", "daily", "Clear the ops exception queue, oldest first; nothing past its SLA", "exceptions",
              "team=ops&status=active"),
    TeamCheck("ops", "daily", "Orders that need attention are retried or owned", "orders", "state=failed"),
    TeamCheck("ops", "weekly", "Stock: drift between ERP and storefronts is within tolerance", "inventory"),
    TeamCheck("ops", "weekly", "Replenishment drafts reviewed and approved or rejected", "replenishment"),
    TeamCheck("finance", "daily", "Clear the finance queue (totals that do not add up, tax mappings, refunds)",
              "exceptions", "team=finance&status=active"),
    TeamCheck("finance", "weekly", "Payouts matched; variances explained", "payouts"),
    TeamCheck("finance", "month_end", "No finance exception open for the closing month; every payout approved",
              "exceptions", "team=finance&status=active"),
    TeamCheck("finance", "month_end", "Tax codes mapped for every rate sold this month", "mappings"),
    TeamCheck("ecommerce", "daily", "Clear the e-commerce queue (payloads, duplicate SKUs, unmapped carriers)",
              "exceptions", "team=ecommerce&status=active"),
    TeamCheck("ecommerce", "weekly", "Connections healthy: scopes, webhook subscriptions, API versions",
              "connections"),
    TeamCheck("ecommerce", "month_end", "Run the integration audit and fix what it lists", "ops-audit"),
    TeamCheck("admin", "weekly", "Mappings: SKUs, locations, depots and tax codes complete", "mappings"),
]


# --- Red / amber / green: one table of rules, the rule shown beside each colour ----------------------
@dataclass(frozen=True)
class ColourRule:
    red_backlog: int
    red_error_percent: Decimal
    amber_backlog: int
    amber_error_percent: Decimal
    stale_hours: int  # amber when work waits and nothing succeeded for this long

    @property
    def red_text(self) -> str:
        return f"red: backlog > {self.red_backlog} or error rate > {self.red_error_percent} % over 24 h"

    @property
    def amber_text(self) -> str:
        return (f"amber: backlog > {self.amber_backlog} or error rate > {self.amber_error_percent} % over 24 h "
                f"or work waiting with no success for {self.stale_hours} h")

    @property
    def green_text(self) -> str:
        return (f"green: backlog ≤ {self.amber_backlog}, error rate ≤ {self.amber_error_percent} % over 24 h "
                f"and work moving")


COLOUR_RULES: dict[str, ColourRule] = {
    "orders": ColourRule(red_backlog=100, red_error_percent=Decimal("5"), amber_backlog=20,
                         amber_error_percent=Decimal("1"), stale_hours=1),
    "inventory": ColourRule(red_backlog=10, red_error_percent=Decimal("20"), amber_backlog=3,
                            amber_error_percent=Decimal("5"), stale_hours=2),
    "fulfilment": ColourRule(red_backlog=100, red_error_percent=Decimal("5"), amber_backlog=20,
                             amber_error_percent=Decimal("1"), stale_hours=2),
    "refunds": ColourRule(red_backlog=50, red_error_percent=Decimal("5"), amber_backlog=10,
                          amber_error_percent=Decimal("1"), stale_hours=4),
    "payouts": ColourRule(red_backlog=10, red_error_percent=Decimal("10"), amber_backlog=3,
                          amber_error_percent=Decimal("2"), stale_hours=48),
}


@dataclass(frozen=True)
class Colour:
    colour: str
    rule: str  # the rule that set it, as written in COLOUR_RULES
    because: str  # the figures that met it

    @property
    def label(self) -> str:
        return {RED: "Red", AMBER: "Amber", GREEN: "Green", IDLE: "No data"}[self.colour]


# --- Per-flow figures ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowSpec:
    """How one flow's own table answers the dashboard's questions (field names on its model)."""

    code: str
    label: str
    model: str  # "app_label.Model", looked up defensively: a flow not installed yet shows as such
    created: str  # when work arrived
    done: str  # when it last succeeded
    success: Q  # rows counted as done
    backlog: Q  # rows waiting
    failed: Q  # rows that failed (over those that arrived in the window)
    noun: str
    screen: str = ""


def flow_specs() -> list[FlowSpec]:
    return [
        FlowSpec("orders", "Orders", "integrations.OrderLink", "created_at", "posted_at",
                 Q(posted_at__isnull=False), Q(state__in=["received", "posting"]), Q(state="failed"),
                 "orders posted", "orders"),
        FlowSpec("inventory", "Inventory", "integrations.InventorySyncRun", "created_at", "finished_at",
                 Q(status__in=["succeeded", "partial"]), Q(status__in=["pending", "running"]), Q(status="failed"),
                 "syncs finished", "inventory"),
        FlowSpec("fulfilment", "Fulfilment", "integrations.Dispatch", "received_at", "sent_at",
                 Q(storefront_status="sent"), Q(storefront_status__in=["pending", "sending", "retrying"]),
                 Q(storefront_status__in=["failed", "no_order"]), "dispatches sent", "orders"),
        FlowSpec("refunds", "Refunds", "integrations.Refund", "created_at", "posted_at",
                 Q(state="posted"), Q(state__in=["received", "waiting_order", "posting"]), Q(state="held"),
                 "credit memos posted", "exceptions"),
        FlowSpec("payouts", "Payouts", "integrations.Payout", "imported_at", "matched_at",
                 Q(status__in=["matched", "approved", "posted"]), Q(status="imported"),
                 Q(status__in=["variance", "rejected", "sent_back"]), "payouts matched", "payouts"),
    ]


def _model(label: str):
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class FlowHealth:
    code: str
    label: str
    available: bool
    noun: str = ""
    url: str = ""
    last_success: datetime | None = None
    backlog: int = 0
    arrived_24h: int = 0
    arrived_7d: int = 0
    done_24h: int = 0
    done_7d: int = 0
    failed_24h: int = 0
    failed_7d: int = 0
    daily_done: list[int] = field(default_factory=list)
    colour: Colour | None = None

    @property
    def error_rate_24h(self) -> Decimal | None:
        return _percent(self.failed_24h, self.arrived_24h)

    @property
    def error_rate_7d(self) -> Decimal | None:
        return _percent(self.failed_7d, self.arrived_7d)


def flow_colour(flow: FlowHealth, rule: ColourRule, *, now: datetime) -> Colour:
    """The flow's colour by its rule in COLOUR_RULES, with the figures that set it."""
    rate = flow.error_rate_24h or Decimal(0)
    reasons = []
    if flow.backlog > rule.red_backlog:
        reasons.append(f"backlog {flow.backlog} > {rule.red_backlog}")
    if rate > rule.red_error_percent:
        reasons.append(f"error rate {rate} % > {rule.red_error_percent} % over 24 h "
                       f"({flow.failed_24h} of {flow.arrived_24h})")
    if reasons:
        return Colour(RED, rule.red_text, "; ".join(reasons))
    if flow.backlog > rule.amber_backlog:
        reasons.append(f"backlog {flow.backlog} > {rule.amber_backlog}")
    if rate > rule.amber_error_percent:
        reasons.append(f"error rate {rate} % > {rule.amber_error_percent} % over 24 h "
                       f"({flow.failed_24h} of {flow.arrived_24h})")
    stale_since = now - timedelta(hours=rule.stale_hours)
    if flow.backlog and (flow.last_success is None or flow.last_success < stale_since):
        reasons.append(f"{flow.backlog} waiting and no success for {rule.stale_hours} h")
    if reasons:
        return Colour(AMBER, rule.amber_text, "; ".join(reasons))
    if not flow.arrived_7d and not flow.backlog and flow.last_success is None:
        return Colour(IDLE, IDLE_TEXT, "nothing arrived, waits or succeeded yet")
    return Colour(GREEN, rule.green_text,
                  f"backlog {flow.backlog}, error rate {rate} % over 24 h")


# Rows that arrived longer ago than this are not read for the 24-hour and 7-day figures (a row that
# waited over a week before succeeding is rare, and bounding by the indexed arrival column keeps
# each flow's figures to an index range instead of a scan of its whole table).
LOOKBACK = timedelta(days=14)


def _flow_health(spec: FlowSpec, *, now: datetime, days: list) -> FlowHealth:
    model = _model(spec.model)
    if model is None:
        return FlowHealth(spec.code, spec.label, available=False)
    day, week = now - DAY, now - WEEK
    created, done = spec.created, spec.done
    recent = Q(**{f"{created}__gte": now - LOOKBACK})
    arrived_day, arrived_week = Q(**{f"{created}__gte": day}), Q(**{f"{created}__gte": week})
    done_day = spec.success & Q(**{f"{done}__gte": day})
    done_week = spec.success & Q(**{f"{done}__gte": week})
    # One aggregate over the rows that matter (arrived lately, or still waiting): index ranges only.
    figures = model.objects.filter(recent | spec.backlog).aggregate(
        backlog=Count("pk", filter=spec.backlog),
        arrived_24h=Count("pk", filter=arrived_day), arrived_7d=Count("pk", filter=arrived_week),
        done_24h=Count("pk", filter=done_day & recent), done_7d=Count("pk", filter=done_week & recent),
        failed_24h=Count("pk", filter=arrived_day & spec.failed),
        failed_7d=Count("pk", filter=arrived_week & spec.failed),
        last=Max(done, filter=spec.success & recent),
    )
    last = figures.pop("last")
    if last is None:  # nothing succeeded lately: when did it last? (a quiet flow's table is small)
        last = model.objects.filter(spec.success).aggregate(last=Max(done))["last"]
    per_day = {row["day"]: row["n"] for row in model.objects.filter(done_week & recent).annotate(day=TruncDate(done))
               .values("day").annotate(n=Count("pk")).order_by()}
    health = FlowHealth(spec.code, spec.label, available=True, noun=spec.noun,
                        url=screen_url(spec.screen) if spec.screen else "",
                        last_success=last, daily_done=[per_day.get(d, 0) for d in days], **figures)
    health.colour = flow_colour(health, COLOUR_RULES[spec.code], now=now)
    return health


# --- Exceptions: by team and age, and failing patterns ----------------------------------------------
AGE_BUCKETS = [("1h", "Under 1 h"), ("24h", "1–24 h"), ("7d", "1–7 days"), ("older", "Over 7 days")]

SUBJECT_NOUNS = {"order": "orders", "sku": "SKUs", "refund": "refunds", "payout": "payouts",
                 "dispatch": "dispatches", "location": "locations", "connection": "connections",
                 "drift_check": "checks"}


def exceptions_by_team_and_age(*, now: datetime) -> list[dict]:
    from exceptions_queue.models import ExceptionRecord
    from exceptions_queue.registry import Team

    hour, day, week = now - timedelta(hours=1), now - DAY, now - WEEK
    rows = {row["team"]: row for row in ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
            .values("team").annotate(
                b1h=Count("pk", filter=Q(first_seen__gte=hour)),
                b24h=Count("pk", filter=Q(first_seen__lt=hour, first_seen__gte=day)),
                b7d=Count("pk", filter=Q(first_seen__lt=day, first_seen__gte=week)),
                bolder=Count("pk", filter=Q(first_seen__lt=week)),
                overdue=Count("pk", filter=Q(due_at__lt=now)),
                total=Count("pk")).order_by()}
    out = []
    for team, label in Team.CHOICES:
        row = rows.get(team, {})
        buckets = [row.get(f"b{code}", 0) for code, _ in AGE_BUCKETS]
        out.append({"team": team, "label": label, "buckets": buckets, "overdue": row.get("overdue", 0),
                    "total": row.get("total", 0)})
    return out


@dataclass(frozen=True)
class FailingPattern:
    type_code: str
    fingerprint: str
    team: str
    count: int
    since: datetime
    last_seen: datetime
    text: str


def _since(moment: datetime, now: datetime) -> str:
    local = timezone.localtime(moment)
    if local.date() == timezone.localtime(now).date():
        return f"since {local:%H:%M}"
    return f"since {local.day} {local:%b %H:%M}"


def pattern_text(*, count: int, subject_type: str, has_order: bool, sku: str, fingerprint: str, type_code: str,
                 title: str, since: datetime, now: datetime) -> str:
    """ "37 orders failed on SKU TEE-RED-M since 09:00"."""
    noun = SUBJECT_NOUNS.get(subject_type) or ("orders" if has_order else "exceptions")
    if count == 1:
        noun = noun[:-2] if noun.endswith("ches") else noun[:-1]
    if sku:
        what = f"SKU {sku}"
    else:
        cause = fingerprint.split(":", 1)[1] if ":" in fingerprint else ""
        what = f"{type_code.replace('_', ' ')}" + (f" ({cause})" if cause and cause != type_code else "")
        if title and count == 1:
            what = title
    return f"{count} {noun} failed on {what} {_since(since, now)}"


def failing_patterns(*, now: datetime, limit: int = 8) -> list[FailingPattern]:
    """Active exceptions grouped by type and cause (two or more alike), biggest first."""
    from exceptions_queue.models import ExceptionRecord

    groups = list(ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
                  .values("type_code", "fingerprint").annotate(
                      n=Count("pk"), since=Min("first_seen"), last=Max("last_seen"), sku=Max("sku"),
                      team=Max("team"), subject_type=Max("subject_type"), orders=Count("order_id"),
                      title=Max("title"))
                  .filter(n__gte=2).order_by("-n", "-last")[:limit])
    patterns = [FailingPattern(
        type_code=g["type_code"], fingerprint=g["fingerprint"], team=g["team"], count=g["n"], since=g["since"],
        last_seen=g["last"],
        text=pattern_text(count=g["n"], subject_type=g["subject_type"] or "", has_order=bool(g["orders"]),
                          sku=g["sku"] or "", fingerprint=g["fingerprint"], type_code=g["type_code"],
                          title=g["title"], since=g["since"], now=now)) for g in groups]
    return patterns


# --- Drift over time --------------------------------------------------------------------------------
DRIFT_DAYS = 14


def drift_over_time(*, now: datetime) -> dict:
    DriftRun, DriftFinding = _model("integrations.DriftRun"), _model("integrations.DriftFinding")
    start = timezone.localtime(now).date() - timedelta(days=DRIFT_DAYS - 1)
    days = [start + timedelta(days=i) for i in range(DRIFT_DAYS)]
    if DriftRun is None or DriftFinding is None:
        return {"available": False, "days": days, "raised": [0] * DRIFT_DAYS, "resolved": [0] * DRIFT_DAYS,
                "failed": [0] * DRIFT_DAYS, "open_by_check": []}
    rows = {row["day"]: row for row in DriftRun.objects.filter(started_at__date__gte=start)
            .annotate(day=TruncDate("started_at")).values("day").annotate(
                raised=Sum("raised"), resolved=Sum("resolved"),
                failed=Count("pk", filter=Q(status="failed"))).order_by()}
    open_rows = {row["check_code"]: row["n"] for row in DriftFinding.objects.filter(resolved_at__isnull=True)
                 .values("check_code").annotate(n=Count("pk")).order_by()}
    labels = {}
    try:
        from integrations.drift.registry import all_checks

        labels = {check.code: check.label for check in all_checks()}
    except Exception:  # the dashboard shows what it can; the drift registry is another flow's
        labels = {}
    codes = sorted(set(labels) | set(open_rows))
    return {
        "available": True, "days": days,
        "raised": [rows.get(d, {}).get("raised") or 0 for d in days],
        "resolved": [rows.get(d, {}).get("resolved") or 0 for d in days],
        "failed": [rows.get(d, {}).get("failed") or 0 for d in days],
        "open_by_check": [{"code": c, "label": labels.get(c, c), "open": open_rows.get(c, 0)} for c in codes],
    }


# --- The whole dashboard ----------------------------------------------------------------------------
def _chart(key: str, kind: str, title: str, labels: list[str], datasets: list[dict], *, stacked: bool = False,
           x_label: str = "day", y_label: str = "") -> dict:
    """A chart as Chart.js reads it, and the same figures as table rows (the table behind the chart)."""
    rows = [(label, [ds["data"][i] for ds in datasets]) for i, label in enumerate(labels)]
    return {"key": key, "data_id": f"chart-{key}-data", "type": kind, "title": title, "labels": labels,
            "datasets": datasets, "stacked": stacked, "x_label": x_label, "y_label": y_label, "rows": rows}


SERIES_COLOURS = ["#2556d8", "#12b76a", "#f79009", "#7a5af8", "#d92d20", "#667085"]


def dashboard_compute(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    days = [today - timedelta(days=i) for i in range(6, -1, -1)]
    flows = [_flow_health(spec, now=now, days=days) for spec in flow_specs()]
    teams = exceptions_by_team_and_age(now=now)
    patterns = failing_patterns(now=now)
    drift = drift_over_time(now=now)
    live = [f for f in flows if f.available]
    throughput = _chart(
        "throughput", "bar", "Work done per day, last 7 days", [f"{d:%d %b}" for d in days],
        [{"label": f"{f.label}: {f.noun}", "data": f.daily_done, "backgroundColor": SERIES_COLOURS[i % 6]}
         for i, f in enumerate(live)], y_label="count")
    ages = _chart(
        "ages", "bar", "Open exceptions by team and age", [label for _, label in AGE_BUCKETS],
        [{"label": t["label"], "data": t["buckets"], "backgroundColor": SERIES_COLOURS[i % 6]}
         for i, t in enumerate(teams)], stacked=True, x_label="age", y_label="open exceptions")
    drift_chart = _chart(
        "drift", "line", f"Drift gaps per day, last {DRIFT_DAYS} days", [f"{d:%d %b}" for d in drift["days"]],
        [{"label": "New gaps", "data": drift["raised"], "borderColor": "#d92d20", "backgroundColor": "#d92d20"},
         {"label": "Gaps closed", "data": drift["resolved"], "borderColor": "#12b76a", "backgroundColor": "#12b76a"},
         {"label": "Failed runs", "data": drift["failed"], "borderColor": "#667085", "backgroundColor": "#667085"}],
        y_label="gaps")
    worst = next((c for c in (RED, AMBER) if any(f.colour and f.colour.colour == c for f in live)), GREEN)
    return {
        "now": now, "flows": flows, "teams": teams, "age_buckets": AGE_BUCKETS, "patterns": patterns,
        "drift": drift, "worst": worst, "rules": COLOUR_RULES,
        "charts": {"throughput": throughput, "ages": ages, "drift": drift_chart},
    }


def cache_seconds() -> int:
    """How long the figures are shared: CACHE_SECONDS, or DASHBOARD_CACHE_SECONDS; in the tests 0 unless a
    test sets it (each test sees its own rows)."""
    default = 0 if getattr(settings, "MODE", "") == "test" else CACHE_SECONDS
    return getattr(settings, "DASHBOARD_CACHE_SECONDS", default)


STALE_FOR = 20  # a refresher that keeps failing leaves figures at most 20 × cache_seconds() old


def cached(key: str, compute):
    """`compute()`'s result, shared for cache_seconds(). Past that the figures are still answered at
    once while one background thread computes the next (stale-while-revalidate), so no viewer waits for
    the aggregate queries except the very first one."""
    seconds = cache_seconds()
    if not seconds:
        return compute()
    entry = cache.get(key)
    if entry is None:
        data = compute()
        cache.set(key, (time.time(), data), seconds * STALE_FOR)
        return data
    stamp, data = entry
    if time.time() - stamp > seconds and cache.add(f"{key}:refreshing", 1, seconds):
        threading.Thread(target=refresh, args=(key, compute), daemon=True, name=f"refresh {key}").start()
    return data


def refresh(key: str, compute) -> None:
    """Compute and store the next figures (in its own thread, with its own database connection)."""
    try:
        cache.set(key, (time.time(), compute()), cache_seconds() * STALE_FOR)
    except Exception:  # the figures in the cache stay; the next request past the window tries again
        log.exception("refreshing %s failed", key)
    finally:
        cache.delete(f"{key}:refreshing")
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()


def dashboard(*, now: datetime | None = None) -> dict:
    """The dashboard's figures, computed at most every cache_seconds() (a team lead's polling and a
    wall screen share one computation)."""
    if now is not None:
        return dashboard_compute(now=now)
    return cached(CACHE_KEY, dashboard_compute)
