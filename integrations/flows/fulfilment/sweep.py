"""The fulfilment flow's safety net (every minute): dispatches whose automatic retry is due, whose
worker died while sending (claim past its lease), or whose queued task was lost, are sent again."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from integrations.models import Dispatch

from .send import conf, dispatch_send

log = logging.getLogger("ledgerline.fulfilment")

S = Dispatch.Status
BATCH = 200
LOST_AFTER = timedelta(minutes=2)  # a PENDING dispatch this old lost its task


def fulfilment_sweep(*, batch: int = BATCH) -> dict:
    now = timezone.now()
    lease = now - timedelta(seconds=conf()["claim_lease_seconds"])
    due = (Q(storefront_status=S.RETRYING, next_retry_at__lte=now)
           | Q(storefront_status=S.SENDING, claimed_at__lt=lease)
           | Q(storefront_status=S.PENDING, received_at__lt=now - LOST_AFTER))
    counts = {"sent": 0, "retrying": 0, "failed": 0, "other": 0}
    for dispatch_id in Dispatch.objects.filter(due, order__isnull=False).order_by("pk").values_list("pk", flat=True)[:batch]:
        outcome = dispatch_send(dispatch_id=dispatch_id)
        counts[outcome if outcome in counts else "other"] += 1
    return counts
