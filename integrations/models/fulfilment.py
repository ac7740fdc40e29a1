"""Dispatches the ERP confirmed, stored once each before the storefront is told, and where the
dispatch poller stopped."""
from django.db import models
from django.utils import timezone

from .inbox import InboundEvent
from .orders import OrderEvent, OrderLink


class Dispatch(models.Model):
    """One confirmed ERP dispatch (a parcel that left the warehouse) and what the storefront was told
    of it. Unique per ERP by the ERP's dispatch id: a re-polled or re-sent dispatch finds this row."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Sending to the storefront"
        SENT = "sent", "Storefront updated"
        RETRYING = "retrying", "Retry scheduled"
        FAILED = "failed", "Needs attention"
        NO_ORDER = "no_order", "No matching order"

    # Where a dispatch may go next; `dispatch_move` in flows/fulfilment is the only place that checks it.
    TRANSITIONS = {
        Status.PENDING: {Status.SENDING, Status.NO_ORDER},
        Status.SENDING: {Status.SENT, Status.RETRYING, Status.FAILED, Status.PENDING},
        Status.RETRYING: {Status.SENDING},
        Status.FAILED: {Status.SENDING},
        Status.NO_ORDER: {Status.PENDING},
        Status.SENT: set(),
    }

    class Source(models.TextChoices):
        POLL = "poll", "ERP poll"
        WEBHOOK = "webhook", "ERP webhook"

    erp = models.CharField(max_length=100)  # the ERP it came from: its connection code, or "env:<kind>"
    erp_dispatch_id = models.CharField(max_length=100)
    sales_order_id = models.CharField(max_length=100, blank=True)
    external_reference = models.CharField(max_length=200, blank=True, db_index=True)
    order = models.ForeignKey(OrderLink, null=True, blank=True, on_delete=models.PROTECT, related_name="dispatches")
    # [{"item_code", "quantity", "line_reference"}]: what left, as the ERP says.
    lines = models.JSONField(default=list, blank=True)
    carrier = models.CharField(max_length=100, blank=True)  # the ERP's own name for it
    tracking_number = models.CharField(max_length=200, blank=True)
    tracking_url = models.CharField(max_length=1000, blank=True)
    depot = models.CharField(max_length=50, blank=True)
    dispatched_at = models.CharField(max_length=40, blank=True)  # the ERP's ISO 8601 text, exact
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.POLL)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    inbound_event = models.ForeignKey(InboundEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    storefront_status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    tracking_company = models.CharField(max_length=100, blank=True)  # what the storefront was sent
    storefront_references = models.JSONField(default=list, blank=True)  # fulfilment / delivery ids it made
    customer_notified = models.BooleanField(default=False)
    notified_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The timeline entry that shows it on the order page.
    timeline_event = models.OneToOneField(OrderEvent, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="dispatch")

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["erp", "erp_dispatch_id"], name="uniq_erp_dispatch")]

    def __str__(self) -> str:
        return self.erp_dispatch_id

    @property
    def units(self) -> int:
        return sum(int(line.get("quantity") or 0) for line in self.lines)

    @property
    def lines_display(self) -> str:
        return ", ".join(f"{line.get('quantity')} × {line.get('item_code') or line.get('line_reference')}"
                         for line in self.lines)

    @property
    def tracking_link(self) -> str:
        """The ERP's tracking URL when it is a web address (nothing else is made a link)."""
        url = (self.tracking_url or "").strip()
        return url if url.lower().startswith(("https://", "http://")) else ""

    @property
    def idempotency_key(self) -> str:
        """What every storefront write made of this dispatch is keyed by."""
        return f"dispatch:{self.erp}:{self.erp_dispatch_id}"


class DispatchCursor(models.Model):
    """Where the dispatch poller stopped in one ERP: the connector's opaque cursor, saved only after
    the page it ends was stored."""

    erp = models.CharField(max_length=100, unique=True)
    cursor = models.TextField(blank=True)
    last_run_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
