"""The one schedule registry: every flow's django-q2 schedules, created idempotently by
`manage.py ledgerline_schedules` (run it after each deploy). Schedule.name is not unique in
django-q2, so rows are kept one per name here."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int | None = None  # every N minutes
    daily_at: time | None = None  # or once a day at this time (UTC)
    owner: str = ""  # the app or flow it belongs to


def registry() -> list[ScheduleSpec]:
    return [
        ScheduleSpec("commercetools-order-poll", "integrations.tasks.poll_commercetools_orders", minutes=1, owner="inbox"),
        # The order flow's safety net: lost/failed events, dead posts, due automatic re-posts.
        ScheduleSpec("orders-sweep", "integrations.tasks.sweep_orders", minutes=1, owner="orders"),
        # Confirmed ERP dispatches to the storefronts (the webhook is the fast path; this one misses nothing).
        ScheduleSpec("fulfilment-dispatch-poll", "integrations.flows.fulfilment.tasks.poll_dispatches", minutes=1,
                     owner="fulfilment"),
        ScheduleSpec("fulfilment-sweep", "integrations.flows.fulfilment.tasks.sweep_fulfilment", minutes=1,
                     owner="fulfilment"),
        ScheduleSpec("inventory-full-sync", "integrations.tasks.inventory_full_sync_all",
                     minutes=settings.INVENTORY_FULL_SYNC_MINUTES, owner="inventory"),
        # Inventory Planner feeds: tables refreshed hourly, increments uploaded at night outside peak hours.
        ScheduleSpec("planner-feeds", "integrations.flows.planner_feeds.tasks.planner_feeds_hourly", minutes=60,
                     owner="planner_feeds"),
        # Each connection's health line, stored so the connections list never calls a vendor.
        ScheduleSpec("connections: health check", "integrations.flows.backfill.tasks.connections_health_refresh",
                     minutes=15, owner="connections"),
        # Backfill runs whose worker died resume from their cursor.
        ScheduleSpec("backfill: resume", "integrations.flows.backfill.tasks.backfill_runs_resume", minutes=5,
                     owner="backfill"),
        # Drift checks (integrations/drift/): gaps between the systems, each raised once as an owned exception.
        # The orphaned-order poll every 5 minutes catches an order whose webhooks were lost within 15 minutes.
        # The item master: ERP changes pulled by cursor, gated per storefront and published (runs resume).
        ScheduleSpec("catalogue: item master sync", "integrations.flows.catalogue.tasks.catalogue_sync_all",
                     minutes=15, owner="catalogue"),
        ScheduleSpec("drift: orphaned orders", "integrations.drift.tasks.orphaned_orders", minutes=5, owner="drift"),
        ScheduleSpec("drift: inventory", "integrations.drift.tasks.inventory_drift", minutes=60, owner="drift"),
        ScheduleSpec("drift: catalogue", "integrations.drift.tasks.catalogue", minutes=60, owner="drift"),
        ScheduleSpec("drift: prices", "integrations.drift.tasks.prices", minutes=240, owner="drift"),
        ScheduleSpec("drift: tax and rounding", "integrations.drift.tasks.tax_rounding", minutes=60, owner="drift"),
        ScheduleSpec("drift: integration health", "integrations.drift.tasks.integration_health", minutes=15,
                     owner="drift"),
        # Inventory Planner: drafts to review, the planner's catalogue against the ERP, receipts back.
        ScheduleSpec("replenishment: pull recommendations",
                     "integrations.flows.replenishment.tasks.pull_recommendations", minutes=15, owner="replenishment"),
        ScheduleSpec("replenishment: planner catalogue check",
                     "integrations.flows.replenishment.tasks.check_planner_catalogue", minutes=360,
                     owner="replenishment"),
        ScheduleSpec("replenishment: receipts", "integrations.flows.replenishment.tasks.sync_receipts", minutes=5,
                     owner="replenishment"),
        # Payouts: Shopify Payments read hourly; PSP settlement files from each connection's watched folder;
        # payouts not yet approved matched again so late postings clear their differences.
        ScheduleSpec("payouts: import Shopify Payments", "integrations.flows.payouts.tasks.import_shopify_payouts",
                     minutes=60, owner="payouts"),
        ScheduleSpec("payouts: settlement folders", "integrations.flows.payouts.tasks.scan_settlement_folders",
                     minutes=15, owner="payouts"),
        ScheduleSpec("payouts: re-match", "integrations.flows.payouts.tasks.rematch_open_payouts", minutes=10,
                     owner="payouts"),
        # Approved payouts' journals to the ERP in one batch (approval also queues a run at once).
        ScheduleSpec("payouts: post approved", "integrations.flows.payouts.approval.payouts_post_approved", minutes=15,
                     owner="payouts"),
        ScheduleSpec("exceptions: escalate overdue", "exceptions_queue.tasks.escalate_overdue", minutes=15,
                     owner="exceptions"),
        ScheduleSpec("exceptions: daily digest", "exceptions_queue.tasks.send_daily_digest", daily_at=time(7, 0),
                     owner="exceptions"),
    ]


# Schedules an earlier release created and a newer one replaced ("orders-sweep" does their work; the
# catalogue drift check, "drift: catalogue", does the hourly mapping health check's).
OBSOLETE = ["orders-stuck-repost", "mappings health check"]


def schedules_ensure(*, owner: str | None = None, minutes: dict[str, int] | None = None) -> list:
    """Create or update the registry's schedules (all, or one owner's); safe to run on every deploy."""
    from django_q.models import Schedule

    Schedule.objects.filter(name__in=OBSOLETE).delete()  # whichever owner a deploy syncs: they are nobody's now
    now = timezone.now()
    rows = []
    for spec in registry():
        if owner is not None and spec.owner != owner:
            continue
        extra = Schedule.objects.filter(name=spec.name).order_by("pk").values_list("pk", flat=True)[1:]
        Schedule.objects.filter(pk__in=list(extra)).delete()
        if spec.daily_at is not None:
            defaults = {"func": spec.func, "schedule_type": Schedule.DAILY, "repeats": -1}
            first = timezone.make_aware(datetime.combine(now.date(), spec.daily_at), timezone.get_current_timezone())
            next_run = first if first > now else first + timedelta(days=1)
        else:
            every = (minutes or {}).get(spec.name, spec.minutes)
            defaults = {"func": spec.func, "schedule_type": Schedule.MINUTES, "minutes": every, "repeats": -1}
            next_run = now + timedelta(minutes=1)
        schedule, created = Schedule.objects.update_or_create(name=spec.name, defaults=defaults)
        if created or schedule.next_run is None:
            schedule.next_run = next_run
            schedule.save(update_fields=["next_run"])
        rows.append(schedule)
    return rows
