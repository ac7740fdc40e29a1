"""Storefront refunds, stored before they are processed, and the ERP credit memo each became."""
from django.db import models
from django.utils import timezone

from .connections import Connection
from .inbox import InboundEvent, _pretty
from .orders import OrderLink


class Refund(models.Model):
    """One storefront refund (a Shopify refund, a commercetools Refund transaction) and its credit memo."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        WAITING_ORDER = "waiting_order", "Waiting for its order to post"
        POSTING = "posting", "Posting the credit memo"
        POSTED = "posted", "Credit memo posted"
        HELD = "held", "Needs attention"

    # Where a refund may go from each state; `refund_set_state` in the flow is the only place that moves it.
    TRANSITIONS = {
        State.RECEIVED: {State.WAITING_ORDER, State.POSTING, State.HELD},
        State.WAITING_ORDER: {State.POSTING, State.HELD},
        State.POSTING: {State.POSTED, State.HELD, State.WAITING_ORDER},
        State.HELD: {State.POSTING, State.WAITING_ORDER},
        State.POSTED: set(),
    }

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="refunds")
    storefront_refund_id = models.CharField(max_length=200)
    storefront_order_id = models.CharField(max_length=200, db_index=True)
    order = models.ForeignKey(OrderLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="refunds")
    event = models.ForeignKey(InboundEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED, db_index=True)
    currency = models.CharField(max_length=3, blank=True)
    # The storefront's own refund total (the money returned), and what the ERP booked for the memo.
    amount_minor = models.BigIntegerField(null=True, blank=True)
    credit_memo_id = models.CharField(max_length=100, blank=True)
    credit_memo_total_minor = models.BigIntegerField(null=True, blank=True)
    restock = models.BooleanField(default=False)
    payload = models.JSONField(default=dict, blank=True)  # the vendor's refund, as it arrived
    erp_payload = models.JSONField(default=dict, blank=True)  # the credit memo we sent
    last_error = models.TextField(blank=True)
    posting_started_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_refund_id"], name="uniq_storefront_refund"),
        ]

    def __str__(self) -> str:
        return f"refund {self.storefront_refund_id}"

    @property
    def external_reference(self) -> str:
        """The credit memo's reference in the ERP: one memo per storefront refund."""
        return f"{self.connection.code}:refund:{self.storefront_refund_id}"

    def _money(self, minor) -> str:
        from ..domain import format_amount, from_minor_units

        if minor is None or not self.currency:
            return "—"
        return f"{format_amount(from_minor_units(minor, self.currency), self.currency)} {self.currency}"

    @property
    def amount_display(self) -> str:
        return self._money(self.amount_minor)

    @property
    def credit_memo_total_display(self) -> str:
        return self._money(self.credit_memo_total_minor)

    @property
    def payload_pretty(self) -> str:
        return _pretty(self.payload)
