"""Live progress on the home page while a flash sale runs: orders received and posted per minute,
the queue (inbound events waiting, orders waiting to post) and the writes to the ERP, from our own
tables only (never a call to an outside system). htmx polls it every few seconds while anything moves."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Avg, Count, F, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.htmx import HtmxHttpRequest, render_page

from ..models import ERP_KINDS, STOREFRONT_KINDS, InboundEvent, InventorySyncRun, OrderLink, OutboundWrite

WINDOW_MINUTES = 10
# Activity this recent (or a queue not yet empty) counts as "moving": the panel polls quickly.
MOVING_WITHIN = timedelta(minutes=2)
FAST_POLL_SECONDS = 3
# While nothing moves the panel still looks now and then, so a sale that starts is noticed.
IDLE_POLL_SECONDS = 30
WAITING_TO_POST = (OrderLink.State.RECEIVED, OrderLink.State.POSTING)


@dataclass
class Progress:
    start: datetime
    minutes: list[datetime]
    received: list[int]
    posted: list[int]
    erp_writes: list[int]
    pending_events: int
    waiting_to_post: int
    erp_failed: int
    erp_seconds: float | None  # mean duration of the ERP writes finished in the window
    stock_writes: int
    active_runs: int
    moving: bool
    chart: dict = field(default_factory=dict)

    @property
    def received_total(self) -> int:
        return sum(self.received)

    @property
    def posted_total(self) -> int:
        return sum(self.posted)

    @property
    def erp_total(self) -> int:
        return sum(self.erp_writes)

    @property
    def erp_per_minute_now(self) -> int:
        return self.erp_writes[-1] if self.erp_writes else 0

    @property
    def poll_seconds(self) -> int:
        return FAST_POLL_SECONDS if self.moving else IDLE_POLL_SECONDS


def _per_minute(queryset: QuerySet, field_name: str, start: datetime, minutes: int) -> list[int]:
    """Counts of `queryset` rows per minute of `field_name`, oldest first, from `start` on."""
    counts = [0] * minutes
    rows = (queryset.filter(**{f"{field_name}__gte": start})
            .annotate(minute=TruncMinute(field_name)).values("minute").annotate(n=Count("id")).order_by())
    for row in rows:
        index = int((row["minute"] - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[index] += row["n"]
    return counts


def _chart(received: list[int], posted: list[int]) -> dict:
    """Bars for an inline SVG, one pair per minute (received, then posted), drawn server-side."""
    width, height, gap = 300, 80, 4
    peak = max(received + posted + [1])
    slot = width / max(len(received), 1)
    bar = max((slot - gap) / 2, 1)
    bars = []
    for i, (got, done) in enumerate(zip(received, posted)):
        for j, (n, kind) in enumerate(((got, "received"), (done, "posted"))):
            h = round(n / peak * (height - 2), 1)
            bars.append({"x": round(i * slot + j * bar, 1), "y": round(height - h, 1), "w": round(bar, 1), "h": h,
                         "kind": kind, "n": n})
    return {"width": width, "height": height, "peak": peak, "bars": bars}


def flash_sale_progress(*, now: datetime | None = None, minutes: int = WINDOW_MINUTES) -> Progress:
    """What moved in the last `minutes` minutes (the current one included) and what is still queued."""
    now = now or timezone.now()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    received = _per_minute(OrderLink.objects.all(), "created_at", start, minutes)
    posted = _per_minute(OrderLink.objects.all(), "posted_at", start, minutes)
    erp = OutboundWrite.objects.filter(system__in=ERP_KINDS)
    erp_writes = _per_minute(erp, "started_at", start, minutes)
    in_window = erp.filter(started_at__gte=start)
    duration = in_window.filter(finished_at__isnull=False).aggregate(d=Avg(F("finished_at") - F("started_at")))["d"]
    pending_events = InboundEvent.objects.filter(
        status__in=(InboundEvent.Status.PENDING, InboundEvent.Status.PROCESSING)).count()
    active_runs = InventorySyncRun.objects.filter(
        status__in=(InventorySyncRun.Status.PENDING, InventorySyncRun.Status.RUNNING)).count()
    recent = now - MOVING_WITHIN
    moving = bool(pending_events or active_runs
                  or OrderLink.objects.filter(created_at__gte=recent).exists()
                  or OrderLink.objects.filter(posted_at__gte=recent).exists()
                  or OutboundWrite.objects.filter(started_at__gte=recent).exists())
    return Progress(
        start=start,
        minutes=[start + timedelta(minutes=i) for i in range(minutes)],
        received=received,
        posted=posted,
        erp_writes=erp_writes,
        pending_events=pending_events,
        waiting_to_post=OrderLink.objects.filter(state__in=WAITING_TO_POST).count(),
        erp_failed=in_window.filter(status=OutboundWrite.Status.FAILED).count(),
        erp_seconds=duration.total_seconds() if duration is not None else None,
        stock_writes=OutboundWrite.objects.filter(system__in=STOREFRONT_KINDS, started_at__gte=start).count(),
        active_runs=active_runs,
        moving=moving,
        chart=_chart(received, posted),
    )


@require_GET
def home_progress(request: HtmxHttpRequest):
    """The live-progress panel: the home page includes it and htmx replaces it as it polls; a plain
    visit gets it inside a whole page."""
    response = render_page(request, "integrations/progress.html", {"progress": flash_sale_progress()}, fragment="panel")
    response["Cache-Control"] = "no-store"  # live figures: never replayed from a cache
    return response
