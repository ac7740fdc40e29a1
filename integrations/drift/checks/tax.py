"""Tax and rounding: the tax the ERP booked on each posted Sales Order against the storefront's own total
tax, beyond the rounding Ledgerline recorded when it posted (OrderLink.rounding_difference). The ERP is
asked once per order: each run reads the orders posted since its cursor (a few hundred at most) and
re-reads the ones with an open gap, so a gap is closed as soon as the ERP is corrected."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from exceptions_queue.registry import Team
from integrations.connectors.base import ConnectorError, NotFound
from integrations.domain import format_amount, quantum
from integrations.models import DriftFinding, DriftRun, OrderLink

from .. import exception_types as types
from ..conf import drift_setting
from ..registry import Finding, drift_check, last_run

log = logging.getLogger("ledgerline.drift")
CODE = "tax_rounding"
PER_RUN = 500


def _storefront_tax(link: OrderLink) -> Decimal | None:
    from integrations.connectors import order_from_payload

    try:
        return order_from_payload(link.connection, link.payload).total_tax
    except (ValueError, KeyError, TypeError):
        return None


def _links(run: DriftRun):
    """Orders posted since the cursor (oldest first, at most PER_RUN), and those with an open gap."""
    previous = last_run(CODE)
    cursor = (previous.summary or {}).get("cursor") if previous else None
    since = datetime.fromisoformat(cursor) if cursor else timezone.now() - timedelta(days=drift_setting("tax_window_days"))
    fresh = list(OrderLink.objects.filter(state__in=OrderLink.IN_ERP, posted_at__gt=since).exclude(erp_order_id="")
                 .select_related("connection").order_by("posted_at", "pk")[:PER_RUN])
    open_ids = [int(k.rsplit(":", 1)[1]) for k in DriftFinding.objects.filter(check_code=CODE, resolved_at__isnull=True)
                .values_list("key", flat=True) if k.rsplit(":", 1)[1].isdigit()]
    again = list(OrderLink.objects.filter(Q(pk__in=open_ids)).exclude(pk__in=[link.pk for link in fresh])
                 .select_related("connection"))
    run.summary["cursor"] = (fresh[-1].posted_at if fresh else since).isoformat()
    return fresh + again


@drift_check(CODE, "Tax and rounding", Team.FINANCE, "orders", 60,
             "The tax the ERP booked on each posted order against the storefront's total tax, beyond the "
             "rounding recorded when it was posted.")
def tax_rounding(run: DriftRun) -> list[Finding]:
    from integrations.connectors import get_erp

    if drift_setting("skip_vendor_reads"):
        run.summary["note"] = "vendor reads skipped: the ERP's booked tax is read from the ERP"
        run.keep_open.add("")  # nothing was looked at: nothing is closed
        return []
    tolerance = int(drift_setting("tax_tolerance_minor"))
    links = _links(run)
    findings: list[Finding] = []
    if not links:
        return findings
    erp = get_erp()
    checked = 0
    for link in links:
        key = f"{link.connection.code}:{link.pk}"
        storefront_tax = _storefront_tax(link)
        if storefront_tax is None or not link.currency:
            continue
        try:
            booked = erp.get_sales_order(link.erp_order_id).tax_total
        except NotFound:
            continue  # a Sales Order gone from the ERP is the orphaned-orders check's business
        except ConnectorError as exc:
            run.keep_open.add(key)
            run.summary.setdefault("erp_errors", []).append(f"{link.erp_order_id}: {exc}"[:200])
            continue
        if booked in (None, ""):
            continue
        checked += 1
        erp_tax = Decimal(str(booked))
        allowed = abs(link.rounding_difference or Decimal(0)) + quantum(link.currency) * tolerance
        difference = erp_tax - storefront_tax
        if abs(difference) <= allowed:
            continue
        number = link.order_number or link.storefront_order_id
        money = lambda amount: f"{format_amount(amount, link.currency)} {link.currency}"  # noqa: E731
        findings.append(Finding(
            key=key, exception_type=types.TAX_MISMATCH.code, connection=link.connection, order=link,
            subject_type="order", subject_id=str(link.pk), group=f"tax:{link.connection.code}",
            message=(f"Order {number}: the ERP booked tax {money(erp_tax)} on Sales Order {link.erp_order_id}, the "
                     f"storefront charged {money(storefront_tax)} (difference {money(difference)}; rounding "
                     f"recorded when posting: {money(link.rounding_difference or Decimal(0))})."),
            context={"order_number": number},
            detail={"storefront": {"tax": str(storefront_tax)}, "erp": {"tax": str(erp_tax), "sales_order": link.erp_order_id},
                    "recorded_rounding": str(link.rounding_difference), "currency": link.currency}))
    run.summary["orders_checked"] = checked
    return findings
