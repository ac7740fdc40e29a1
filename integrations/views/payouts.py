"""Payout reconciliation screens (finance; admins may read): the payout list with filters and a chart,
a payout's reconciliation with its actions and activity, settlement-file upload, the month-end page and
its CSV / XLSX exports, and the home page's "what awaits finance" fragment. Pages read stored rows only."""
from __future__ import annotations

import json
from collections import defaultdict

import django_filters
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Min, Q, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import FINANCE, role_required

from ..domain import format_amount, from_minor_units
from ..flows.payouts import approval as flow
from ..flows.payouts import month_end
from ..flows.payouts.matching import payout_totals
from ..models import Connection, OutboundWrite, Payout, ReconciliationLine

S = Payout.Status
ROLE_MESSAGE = "Only finance (or an admin, to read) may see payouts."
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CLASS_LABELS = dict(ReconciliationLine.DifferenceClass.choices)


def _money(minor, currency: str) -> str:
    return "—" if minor is None else format_amount(from_minor_units(minor, currency), currency)


class PayoutFilter(django_filters.FilterSet):
    period = django_filters.CharFilter(method="filter_period", label="Month")
    status = django_filters.ChoiceFilter(choices=S.choices, empty_label="Any status")
    currency = django_filters.ChoiceFilter(choices=(), empty_label="Any currency")
    connection = django_filters.ModelChoiceFilter(queryset=Connection.objects.none(), empty_label="Any connection")

    class Meta:
        model = Payout
        fields = ["period", "status", "currency", "connection"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        currencies = sorted(set(Payout.objects.order_by().values_list("currency", flat=True)))
        self.filters["currency"].extra["choices"] = [(c, c) for c in currencies]
        self.filters["connection"].queryset = Connection.objects.filter(payouts__isnull=False).distinct().order_by("name")

    def filter_period(self, queryset, name, value):
        try:
            return queryset.filter(period=month_end.parse_period(value))
        except ValueError:
            return queryset.none()


def _get_payout(request, pk: int) -> tuple[Payout, bool]:
    """The payout and whether this user may act on it (finance only; admins read)."""
    payout = get_object_or_404(Payout.objects.select_related("connection", "prepared_by", "approved_by"), pk=pk)
    return payout, flow.is_finance(request.user)


def _get_actionable_payout(request, pk: int) -> Payout:
    payout, can_act = _get_payout(request, pk)
    if not can_act:
        raise PermissionDenied("Only finance may decide payouts.")
    return payout


def _chart(payouts) -> dict:
    """Per day and currency: paid out and variance (from the unmatched lines), for the chart and its table."""
    rows = (payouts.order_by().values("payout_date", "currency")
            .annotate(paid=Sum("amount_minor"), count=Count("pk")).order_by("payout_date"))
    variance = defaultdict(int)
    for row in (ReconciliationLine.objects.filter(payout__in=payouts, kind=ReconciliationLine.Kind.UNMATCHED).order_by()
                .values("payout__payout_date", "payout__currency").annotate(total=Sum("variance_minor"))):
        variance[(row["payout__payout_date"], row["payout__currency"])] = row["total"] or 0
    table = [{"date": r["payout_date"], "currency": r["currency"], "count": r["count"],
              "paid": _money(r["paid"], r["currency"]),
              "variance": _money(variance[(r["payout_date"], r["currency"])], r["currency"])} for r in rows][-90:]
    currencies = sorted({r["currency"] for r in table})
    labels = sorted({r["date"].isoformat() for r in table})
    datasets = []
    for currency in currencies:
        paid = {r["date"].isoformat(): float(r["paid"]) for r in table if r["currency"] == currency}
        var = {r["date"].isoformat(): float(r["variance"]) for r in table if r["currency"] == currency}
        datasets.append({"type": "bar", "label": f"Paid out ({currency})", "data": [paid.get(d) for d in labels]})
        datasets.append({"type": "line", "label": f"Variance ({currency})", "data": [var.get(d) for d in labels]})
    # Chart.js draws numbers; the figures finance reads are the exact decimal strings in the table.
    return {"table": table, "spec": json.dumps({"labels": labels, "datasets": datasets})}


@require_GET
@role_required(FINANCE, message=ROLE_MESSAGE)
def payout_list(request: HtmxHttpRequest):
    payouts = Payout.objects.select_related("connection").annotate(
        unmatched_count=Count("lines", filter=Q(lines__kind=ReconciliationLine.Kind.UNMATCHED))).order_by("-payout_date", "-pk")
    filters = PayoutFilter(request.GET, queryset=payouts)
    page = Paginator(filters.qs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filters": filters, "page": page, "query": query.urlencode(), "nav": "payouts",
               "chart": _chart(filters.qs), "can_act": flow.is_finance(request.user),
               "settlement_connections": Connection.objects.filter(kind="commercetools", active=True).order_by("name"),
               "statuses": S}
    return render_page(request, "integrations/payouts/list.html", context, fragment="payout-table")


def _activity(payout: Payout) -> list[dict]:
    """Every change of the payout (who, when, what) and every journal attempt, newest first."""
    entries = [{"at": h.history_date, "who": h.history_user, "status": h.get_status_display(),
                "what": h.history_change_reason or ("imported" if h.history_type == "+" else "updated")}
               for h in payout.history.select_related("history_user").order_by("-history_date", "-history_id")[:200]]
    for write in OutboundWrite.objects.filter(subject_type="payout", subject_id=str(payout.pk)).order_by("-started_at")[:50]:
        entries.append({"at": write.started_at, "who": None, "status": write.get_status_display(),
                        "what": f"journal {write.external_reference} to the ERP"
                                + (f": {write.response_id}" if write.response_id else "")
                                + (f" ({write.error[:200]})" if write.error else "")})
    return sorted(entries, key=lambda e: e["at"], reverse=True)


def _detail_context(request, payout: Payout, can_act: bool, *, error: str = "", notice: str = "") -> dict:
    totals = payout_totals(payout)
    c = payout.currency
    lines = list(payout.lines.select_related("balance_transaction", "order", "refund").order_by("kind", "pk")[:1000])
    shown = {
        "expected": _money(totals["expected"], c), "received": _money(totals["received"], c),
        "matched": _money(totals["matched"], c), "unmatched": _money(totals["unmatched"], c),
        "variance": _money(totals["variance"], c),
        "by_class": [(CLASS_LABELS.get(k, k), _money(v, c)) for k, v in totals["variance_by_class"].items() if v],
    }
    for line in lines:
        line.shown = {"expected": _money(line.expected_minor, c), "actual": _money(line.actual_minor, c),
                      "variance": _money(line.variance_minor, c)}
    blocker = flow.approval_blocker(payout, request.user)
    return {
        "payout": payout, "totals": totals, "shown": shown, "nav": "payouts", "can_act": can_act,
        "matched_lines": [l for l in lines if l.kind == ReconciliationLine.Kind.MATCHED],
        "unmatched_lines": [l for l in lines if l.kind == ReconciliationLine.Kind.UNMATCHED],
        "line_count": payout.lines.count(), "activity": _activity(payout), "error": error, "notice": notice,
        "approve_blocker": blocker, "needs_note": flow.needs_note(payout, totals), "four_eyes": flow.four_eyes(payout),
        "can_decide": can_act and not payout.locked,
        "can_upload": can_act and payout.connection.kind == "commercetools",
    }


@require_GET
@role_required(FINANCE, message=ROLE_MESSAGE)
def payout_detail(request: HtmxHttpRequest, pk: int):
    payout, can_act = _get_payout(request, pk)
    return render_page(request, "integrations/payouts/detail.html", _detail_context(request, payout, can_act),
                       fragment="payout-panel")


def _answer(request, pk: int, *, error: str = "", notice: str = "", status: int = 409):
    """HTMX: the updated panel (200, the message in it) and an event for counters; otherwise back to the
    page with the message, a refusal answered with its 4xx."""
    if request.htmx:
        payout, can_act = _get_payout(request, pk)
        response = render_page(request, "integrations/payouts/detail.html",
                               _detail_context(request, payout, can_act, error=error, notice=notice),
                               fragment="payout-panel")
        response["HX-Trigger"] = "payoutsChanged"
        return response
    if error:
        return HttpResponse(error, status=status, content_type="text/plain; charset=utf-8")
    messages.success(request, notice)
    return redirect("payout-detail", pk=pk)


def _refusal_status(message: str) -> int:
    return 400 if ("note" in message or "why" in message) else (403 if "Four-eyes" in message else 409)


@require_POST
@role_required(FINANCE, message=ROLE_MESSAGE)
def payout_approve(request: HtmxHttpRequest, pk: int):
    payout = _get_actionable_payout(request, pk)
    try:
        flow.payout_approve(payout_id=payout.pk, user=request.user, note=request.POST.get("note", ""))
    except flow.PayoutRefused as refused:
        return _answer(request, pk, error=str(refused), status=_refusal_status(str(refused)))
    return _answer(request, pk, notice="Approved: its journal is posted to the ERP with the next batch.")


@require_POST
@role_required(FINANCE, message=ROLE_MESSAGE)
def payout_reject(request: HtmxHttpRequest, pk: int):
    payout = _get_actionable_payout(request, pk)
    try:
        flow.payout_reject(payout_id=payout.pk, user=request.user, reason=request.POST.get("reason", ""))
    except flow.PayoutRefused as refused:
        return _answer(request, pk, error=str(refused), status=_refusal_status(str(refused)))
    return _answer(request, pk, notice="Rejected.")


@require_POST
@role_required(FINANCE, message=ROLE_MESSAGE)
def payout_send_back(request: HtmxHttpRequest, pk: int):
    payout = _get_actionable_payout(request, pk)
    try:
        flow.payout_send_back(payout_id=payout.pk, user=request.user, reason=request.POST.get("reason", ""))
    except flow.PayoutRefused as refused:
        return _answer(request, pk, error=str(refused), status=_refusal_status(str(refused)))
    return _answer(request, pk, notice="Sent back: re-match it once it is put right.")


@require_POST
@role_required(FINANCE, message=ROLE_MESSAGE)
def payout_rematch(request: HtmxHttpRequest, pk: int):
    payout = _get_actionable_payout(request, pk)
    try:
        payout = flow.payout_rematch_by(payout_id=payout.pk, user=request.user)
    except flow.PayoutRefused as refused:
        return _answer(request, pk, error=str(refused))
    return _answer(request, pk, notice=f"Matched again: {payout.get_status_display().lower()}.")


@require_POST
@role_required(FINANCE, message=ROLE_MESSAGE)
def settlement_upload(request: HtmxHttpRequest):
    """A PSP settlement report for a commercetools connection; all or nothing, a bad row named."""
    from ..flows.payouts import settlement_file_import

    if not flow.is_finance(request.user):
        raise PermissionDenied("Only finance may upload settlement files.")
    connection = Connection.objects.filter(pk=request.POST.get("connection") if str(request.POST.get("connection", "")).isdigit()
                                           else None, kind="commercetools").first()
    upload = request.FILES.get("file")
    if connection is None or upload is None:
        return HttpResponse("Choose a commercetools connection and a settlement file.", status=400,
                            content_type="text/plain; charset=utf-8")
    if upload.size > MAX_UPLOAD_BYTES:
        return HttpResponse(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.", status=400,
                            content_type="text/plain; charset=utf-8")
    from django.utils import timezone

    started = timezone.now()
    record = settlement_file_import(connection, upload.name, upload.read(), request.user)
    if record.status != record.Status.IMPORTED:
        return HttpResponse(f"{upload.name} was not imported: {record.error}", status=400,
                            content_type="text/plain; charset=utf-8")
    # The uploader prepared the reconciliations the file created or changed (four-eyes reads it).
    touched = set(Payout.history.filter(connection_id=connection.pk, history_date__gte=started)
                  .values_list("id", flat=True))
    Payout.objects.filter(pk__in=touched, prepared_by__isnull=True).exclude(status__in=Payout.LOCKED).update(
        prepared_by=request.user)
    messages.success(request, f"{upload.name}: {record.rows} row{'s' if record.rows != 1 else ''} imported.")
    return redirect(f"{reverse('payouts')}?connection={connection.pk}")


def _month_end_context(request) -> dict:
    try:
        period = month_end.parse_period(request.GET.get("period"))
    except ValueError as bad:
        raise _BadPeriod(str(bad)) from None
    connection = request.GET.get("connection", "")
    report = month_end.month_end_report(period=period, connection_id=int(connection) if connection.isdigit() else None)
    for payout in report.payouts:
        payout.shown = {"amount": _money(payout.amount_minor, payout.currency),
                        "variance": _money(payout.variance_total or 0, payout.currency)}
    totals = [(CLASS_LABELS.get(k, k), [(c, _money(v, c)) for c, v in sorted(per.items())])
              for k, per in report.totals_by_class.items()]
    return {"report": report, "totals": totals, "nav": "payouts", "period_value": f"{period:%Y-%m}",
            "previous": f"{month_end.previous_period(period):%Y-%m}", "next": f"{month_end.next_period(period):%Y-%m}",
            "unapproved": [(c, _money(v, c)) for c, v in sorted(report.unapproved_by_currency.items())],
            "connections": Connection.objects.filter(payouts__isnull=False).distinct().order_by("name"),
            "connection": connection, "query": request.GET.urlencode()}


class _BadPeriod(ValueError):
    pass


@require_GET
@role_required(FINANCE, message=ROLE_MESSAGE)
def payouts_month_end(request: HtmxHttpRequest):
    try:
        context = _month_end_context(request)
    except _BadPeriod as bad:
        return HttpResponse(str(bad), status=400, content_type="text/plain; charset=utf-8")
    return render_page(request, "integrations/payouts/month_end.html", context, fragment="month-end")


@require_GET
@role_required(FINANCE, message=ROLE_MESSAGE)
def payouts_month_end_export(request: HtmxHttpRequest, fmt: str):
    if fmt not in ("csv", "xlsx"):
        raise Http404("The month-end exports are .csv and .xlsx.")
    try:
        period = month_end.parse_period(request.GET.get("period"))
    except ValueError as bad:
        return HttpResponse(str(bad), status=400, content_type="text/plain; charset=utf-8")
    connection = request.GET.get("connection", "")
    report = month_end.month_end_report(period=period, connection_id=int(connection) if connection.isdigit() else None)
    name = f"month-end-{period:%Y-%m}"
    if fmt == "xlsx":
        response = HttpResponse(month_end.month_end_xlsx(report),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    else:
        response = HttpResponse(month_end.month_end_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@require_GET
@role_required(FINANCE, message=ROLE_MESSAGE)
def payouts_awaiting(request: HtmxHttpRequest):
    """The home page's finance panel: payouts to approve, variances, the oldest unreconciled payout."""
    open_payouts = Payout.objects.filter(status__in=(S.IMPORTED, S.MATCHED, S.VARIANCE, S.SENT_BACK))
    context = {
        "to_approve": open_payouts.filter(status__in=(S.MATCHED, S.VARIANCE)).count(),
        "variances": open_payouts.filter(status=S.VARIANCE).count(),
        "approved_unposted": Payout.objects.filter(status=S.APPROVED).count(),
        "oldest": open_payouts.aggregate(oldest=Min("payout_date"))["oldest"],
        "oldest_payout": open_payouts.order_by("payout_date", "pk").first(),
    }
    return render_page(request, "integrations/payouts/_awaiting.html", context)
