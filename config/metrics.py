"""Prometheus metrics computed from the database on each scrape (a custom prometheus-client collector):
per-flow work done and failed, backlogs, open exceptions, the outbound-write log's requests per system
(ERP and storefronts) with their failures, rate limits and durations, the inbox and drift findings.
Any process answers the same figures: nothing is counted in memory."""
from __future__ import annotations

from django.db.models import Count, F, Max, Q, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from .dashboard import _model, flow_specs

RATE_LIMITED = Q(error__icontains="rate limit") | Q(error__contains="429")


def _side(system: str) -> str:
    from integrations.models import ERP_KINDS, STOREFRONT_KINDS

    return "erp" if system in ERP_KINDS else "storefront" if system in STOREFRONT_KINDS else "other"


class LedgerlineCollector(Collector):
    def collect(self):
        yield from self._flows()
        yield from self._exceptions()
        yield from self._writes()
        yield from self._inbox()
        yield from self._drift()

    def _flows(self):
        done = CounterMetricFamily("ledgerline_flow_done", "Work a flow finished (orders posted, dispatches "
                                   "sent, credit memos posted, syncs finished, payouts matched)", labels=["flow"])
        failed = GaugeMetricFamily("ledgerline_flow_failed", "Rows of a flow that failed and wait for a person",
                                   labels=["flow"])
        backlog = GaugeMetricFamily("ledgerline_flow_backlog", "Rows of a flow waiting to be processed",
                                    labels=["flow"])
        last = GaugeMetricFamily("ledgerline_flow_last_success_timestamp_seconds",
                                 "When a flow last succeeded (Unix time)", labels=["flow"])
        for spec in flow_specs():
            model = _model(spec.model)
            if model is None:
                continue
            row = model.objects.aggregate(done=Count("pk", filter=spec.success), failed=Count("pk", filter=spec.failed),
                                          backlog=Count("pk", filter=spec.backlog),
                                          last=Max(spec.done, filter=spec.success))
            done.add_metric([spec.code], row["done"])
            failed.add_metric([spec.code], row["failed"])
            backlog.add_metric([spec.code], row["backlog"])
            if row["last"] is not None:
                last.add_metric([spec.code], row["last"].timestamp())
        yield from (done, failed, backlog, last)

    def _exceptions(self):
        from exceptions_queue.models import ExceptionRecord
        from django.utils import timezone

        opened = GaugeMetricFamily("ledgerline_exceptions_open", "Open or in-progress exceptions",
                                   labels=["team", "type"])
        overdue = GaugeMetricFamily("ledgerline_exceptions_overdue", "Active exceptions past their SLA",
                                    labels=["team"])
        rows = (ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
                .values("team", "type_code").annotate(n=Count("pk"), late=Count("pk", filter=Q(due_at__lt=timezone.now())))
                .order_by())
        late: dict[str, int] = {}
        for row in rows:
            opened.add_metric([row["team"], row["type_code"]], row["n"])
            late[row["team"]] = late.get(row["team"], 0) + row["late"]
        for team, n in sorted(late.items()):
            overdue.add_metric([team], n)
        yield from (opened, overdue)

    def _writes(self):
        from integrations.models import OutboundWrite

        requests = CounterMetricFamily("ledgerline_outbound_requests", "Writes to outside systems (the "
                                       "outbound-write log), by target system, side (erp, storefront) and outcome",
                                       labels=["system", "side", "status"])
        limited = CounterMetricFamily("ledgerline_outbound_rate_limited", "Writes that failed on the target's "
                                      "rate limit (HTTP 429)", labels=["system"])
        duration = SummaryMetricFamily("ledgerline_outbound_request_duration_seconds",
                                       "How long finished writes took", labels=["system"])
        for row in OutboundWrite.objects.values("system", "status").annotate(n=Count("pk")).order_by():
            requests.add_metric([row["system"] or "unknown", _side(row["system"]), row["status"]], row["n"])
        for row in (OutboundWrite.objects.filter(RATE_LIMITED).values("system").annotate(n=Count("pk")).order_by()):
            limited.add_metric([row["system"] or "unknown"], row["n"])
        for row in (OutboundWrite.objects.filter(finished_at__isnull=False).values("system")
                    .annotate(n=Count("pk"), took=Sum(F("finished_at") - F("started_at"))).order_by()):
            seconds = row["took"].total_seconds() if row["took"] is not None else 0.0
            duration.add_metric([row["system"] or "unknown"], count_value=row["n"], sum_value=seconds)
        yield from (requests, limited, duration)

    def _inbox(self):
        from integrations.models import InboundEvent

        events = GaugeMetricFamily("ledgerline_inbound_events", "Inbound events stored, by status",
                                   labels=["status"])
        counts = {row["status"]: row["n"] for row in InboundEvent.objects.values("status").annotate(n=Count("pk")).order_by()}
        for status, _ in InboundEvent.Status.choices:
            events.add_metric([status], counts.get(status, 0))
        yield events

    def _drift(self):
        DriftFinding, DriftRun = _model("integrations.DriftFinding"), _model("integrations.DriftRun")
        if DriftFinding is None or DriftRun is None:
            return
        findings = GaugeMetricFamily("ledgerline_drift_findings_open", "Gaps a drift check found and that are "
                                     "still open", labels=["check"])
        for row in DriftFinding.objects.filter(resolved_at__isnull=True).values("check_code").annotate(n=Count("pk")).order_by():
            findings.add_metric([row["check_code"]], row["n"])
        runs = CounterMetricFamily("ledgerline_drift_runs", "Drift check runs, by outcome", labels=["check", "status"])
        for row in DriftRun.objects.values("check_code", "status").annotate(n=Count("pk")).order_by():
            runs.add_metric([row["check_code"], row["status"]], row["n"])
        yield from (findings, runs)


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerlineCollector())
    return registry
