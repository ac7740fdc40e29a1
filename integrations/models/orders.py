"""Order links (a storefront order and the ERP Sales Order it became), their timeline, remembered customers."""
from django.db import models
from django.utils import timezone

from .connections import Connection
from .inbox import InboundEvent, _pretty


class OrderLink(models.Model):
    """One storefront order and the ERP Sales Order it became."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        WAITING_PAYMENT = "waiting_payment", "Waiting for payment"
        POSTING = "posting", "Posting to ERP"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Needs attention"
        CANCELLED = "cancelled", "Cancelled"
        TEST = "test_order", "Test order, not posted"
        # After posting, as the ERP reports it: dispatches and refunds move it on, never back.
        PARTLY_DISPATCHED = "partly_dispatched", "Partly dispatched"
        DISPATCHED = "dispatched", "Dispatched"
        REFUNDED = "refunded", "Refunded"

    # States in which the order is in the ERP as a Sales Order (posted, and what follows posting).
    IN_ERP = frozenset({State.POSTED, State.PARTLY_DISPATCHED, State.DISPATCHED, State.REFUNDED})

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="orders")
    storefront_order_id = models.CharField(max_length=200)
    order_number = models.CharField(max_length=100, blank=True, db_index=True)
    customer_email = models.CharField(max_length=254, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    total_minor = models.BigIntegerField(null=True, blank=True)
    payment_state = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED, db_index=True)
    # The storefront's own updatedAt of the newest payload applied: an older one never overwrites it.
    source_updated_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)  # newest storefront order payload
    erp_order_id = models.CharField(max_length=100, blank=True, db_index=True)
    erp_customer_id = models.CharField(max_length=100, blank=True)
    erp_payload = models.JSONField(default=dict, blank=True)  # what we sent to the ERP
    rounding_difference = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    # The gross total of the document we sent, and the gross total the ERP reported back (minor units).
    posted_total_minor = models.BigIntegerField(null=True, blank=True)
    erp_total_minor = models.BigIntegerField(null=True, blank=True)
    # What the posted sale consisted of (lines, quantities, amounts): a later edit is told by it.
    posted_summary = models.JSONField(default=list, blank=True)
    # Automatic re-posts after a transient failure (ERP outage): how many, and when the next is due.
    auto_retries = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    posting_started_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_order_id"], name="uniq_order_link"),
        ]
        # The live-progress panel counts orders posted in the last minutes.
        indexes = [models.Index(fields=["posted_at"], name="order_link_posted_at_idx")]

    def __str__(self) -> str:
        return self.order_number or self.storefront_order_id

    def _money_display(self, minor: int | None) -> str:
        from ..domain import format_amount, from_minor_units

        if minor is None or not self.currency:
            return "—"
        return f"{format_amount(from_minor_units(minor, self.currency), self.currency)} {self.currency}"

    @property
    def total_display(self) -> str:
        return self._money_display(self.total_minor)

    @property
    def posted_total_display(self) -> str:
        return self._money_display(self.posted_total_minor)

    @property
    def erp_total_display(self) -> str:
        return self._money_display(self.erp_total_minor)

    @property
    def totals_agree(self) -> bool | None:
        """The storefront's total, what we sent and what the ERP booked (None before posting)."""
        if self.posted_total_minor is None:
            return None
        return self.total_minor == self.posted_total_minor == self.erp_total_minor

    @property
    def erp_payload_pretty(self) -> str:
        return _pretty(self.erp_payload)

    @property
    def external_reference(self) -> str:
        """The reference the ERP Sales Order carries: unique per storefront connection."""
        return f"{self.connection.code}:{self.storefront_order_id}"


class OrderEvent(models.Model):
    """The order's timeline: received, waiting for payment, posted, failed, retried, dispatched, refunded."""

    class Kind(models.TextChoices):
        RECEIVED = "received", "Received"
        UPDATED = "updated", "Updated"
        STALE_IGNORED = "stale_ignored", "Older update ignored"
        WAITING_PAYMENT = "waiting_payment", "Waiting for payment"
        POSTING = "posting", "Posting"
        POSTED = "posted", "Posted"
        LINKED_EXISTING = "linked_existing", "Linked existing ERP order"
        CUSTOMER_MATCHED = "customer_matched", "Customer matched"
        CUSTOMER_CREATED = "customer_created", "Customer created"
        FAILED = "failed", "Failed"
        RETRIED = "retried", "Retried"
        CANCELLED = "cancelled", "Cancelled"
        CANCELLED_IN_ERP = "cancelled_in_erp", "Cancelled in the ERP"
        EDITED = "edited", "Edited after posting"
        REFUNDED = "refunded", "Refund in the storefront"
        TEST_ORDER = "test_order", "Test order, not posted"
        TOTAL_MISMATCH = "total_mismatch", "Totals do not add up"
        RETRY_SCHEDULED = "retry_scheduled", "Automatic retry scheduled"
        # After posting: what the warehouse and finance did with it.
        DISPATCHED = "dispatched", "Dispatched in the ERP"
        FULFILMENT_SENT = "fulfilment_sent", "Storefront told of the dispatch"
        REFUND_RECEIVED = "refund_received", "Refund received"
        CREDIT_MEMO_POSTED = "credit_memo_posted", "Credit memo posted"
        RETURN_INSPECTED = "return_inspected", "Return inspected"
        RESYNCED = "resynced", "Re-synced from the storefront"

    order = models.ForeignKey(OrderLink, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    message = models.TextField(blank=True)
    event = models.ForeignKey(InboundEvent, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["at", "id"]


class CustomerLink(models.Model):
    """A storefront customer (by id, e-mail or phone) and the ERP account it is posted under, so a
    repeat customer is not searched for again."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="customer_links")
    key = models.CharField(max_length=300)  # "id:<storefront customer id>", "email:<address>", "phone:<number>"
    erp_customer_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "key"], name="uniq_customer_link")]

    def __str__(self) -> str:
        return f"{self.key} → {self.erp_customer_id}"
