"""Inventory Planner replenishment: the purchase orders the planner recommends, as ops review and
approve them, with what the ERP raised and received; and the planner's figures per SKU."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from .connections import Connection


class Urgency(models.TextChoices):
    """From the planner's figures: out of stock now, sells out before a new order could arrive (oos
    below the lead time), before the next review (below lead time + review period), or later."""

    CRITICAL = "critical", "Out of stock"
    HIGH = "high", "Sells out before delivery"
    MEDIUM = "medium", "Sells out before the next review"
    LOW = "low", "Covered"


URGENCY_RANK = {Urgency.CRITICAL: 0, Urgency.HIGH: 1, Urgency.MEDIUM: 2, Urgency.LOW: 3}


class Recommendation(models.Model):
    """One draft purchase order of an Inventory Planner account, as ops see it."""

    class Status(models.TextChoices):
        PENDING = "pending", "To review"
        APPROVED = "approved", "Approved (raising in the ERP)"
        ORDERED = "ordered", "Raised in the ERP"
        SENT = "sent", "Ordered and marked in the planner"
        PARTLY_RECEIVED = "partly_received", "Partly received"
        RECEIVED = "received", "Received"
        REJECTED = "rejected", "Rejected"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="recommendations")
    planner_id = models.CharField(max_length=64)  # the planner's purchase-order id
    planner_reference = models.CharField(max_length=100, blank=True)  # its PO number
    planner_status = models.CharField(max_length=20, blank=True)
    planner_modified = models.CharField(max_length=40, blank=True)
    vendor = models.CharField(max_length=200, blank=True)
    warehouse = models.CharField(max_length=200)  # the planner's warehouse
    depot = models.CharField(max_length=50, blank=True)  # the ERP depot it maps to
    currency = models.CharField(max_length=3, default="GBP")
    expected_date = models.CharField(max_length=40, blank=True)
    urgency = models.CharField(max_length=10, choices=Urgency.choices, default=Urgency.LOW, db_index=True)
    urgency_rank = models.PositiveSmallIntegerField(default=3)
    days_of_stock = models.IntegerField(null=True, blank=True)  # the soonest sell-out among its lines
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    erp_po_id = models.CharField("ERP purchase order", max_length=100, blank=True)
    erp_po_status = models.CharField(max_length=30, blank=True)
    erp_modified = models.CharField(max_length=40, blank=True)
    # What the planner was last told of the receipts ("" = nothing to tell; else the figures sent).
    planner_receipts_told = models.JSONField(default=dict, blank=True)
    planner_receipts_due = models.BooleanField(default=False)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["urgency_rank", "expected_date", "pk"]
        constraints = [models.UniqueConstraint(fields=["connection", "planner_id"], name="uniq_recommendation")]
        indexes = [models.Index(fields=["status", "urgency_rank"], name="recommendation_queue_idx")]

    def __str__(self) -> str:
        return f"{self.vendor} → {self.warehouse} ({self.planner_reference or self.planner_id})"

    @property
    def external_reference(self) -> str:
        """What the ERP purchase order is unique by: one per planner purchase order, however often approved."""
        return f"planner:{self.connection.code}:{self.planner_id}"

    @property
    def is_open_for_review(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def quantity_ordered(self) -> int:
        return sum(line.quantity_approved for line in self.lines.all())

    @property
    def quantity_received(self) -> int:
        return sum(line.quantity_received for line in self.lines.all())

    @property
    def receipt_percent(self) -> int:
        ordered = self.quantity_ordered
        return min(100, round(100 * self.quantity_received / ordered)) if ordered else 0


# The state machine: nothing else assigns Recommendation.status (flows/replenishment/state.py moves it).
TRANSITIONS = {
    Recommendation.Status.PENDING: {Recommendation.Status.APPROVED, Recommendation.Status.REJECTED},
    Recommendation.Status.APPROVED: {Recommendation.Status.ORDERED},
    Recommendation.Status.ORDERED: {Recommendation.Status.SENT, Recommendation.Status.PARTLY_RECEIVED,
                                    Recommendation.Status.RECEIVED},
    Recommendation.Status.SENT: {Recommendation.Status.PARTLY_RECEIVED, Recommendation.Status.RECEIVED},
    Recommendation.Status.PARTLY_RECEIVED: {Recommendation.Status.RECEIVED},
    Recommendation.Status.RECEIVED: set(),
    Recommendation.Status.REJECTED: set(),
}


class RecommendationLine(models.Model):
    recommendation = models.ForeignKey(Recommendation, on_delete=models.CASCADE, related_name="lines")
    planner_item_id = models.CharField(max_length=64)
    variant_id = models.CharField(max_length=100, blank=True)
    sku = models.CharField("planner SKU", max_length=100)
    title = models.CharField(max_length=200, blank=True)
    erp_item_code = models.CharField(max_length=100, blank=True)  # blank: the ERP knows no item for the SKU
    quantity_recommended = models.PositiveIntegerField(default=0)
    quantity_approved = models.PositiveIntegerField(default=0)  # what ops approve (edited inline)
    quantity_received = models.PositiveIntegerField(default=0)  # what the ERP received
    unit_cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    lead_time = models.IntegerField(null=True, blank=True)
    review_period = models.IntegerField(null=True, blank=True)
    oos = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["recommendation", "planner_item_id"],
                                               name="uniq_recommendation_line")]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity_approved}"

    @property
    def edited(self) -> bool:
        return self.quantity_approved != self.quantity_recommended


class PlannerVariant(models.Model):
    """The planner's view of one SKU in one of its warehouses, stored by the pull so no page view
    ever calls the vendor."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="planner_variants")
    variant_id = models.CharField(max_length=100)
    sku = models.CharField(max_length=100, db_index=True)
    warehouse = models.CharField(max_length=200, blank=True)
    lead_time = models.IntegerField(null=True, blank=True)
    review_period = models.IntegerField(null=True, blank=True)
    replenishment = models.IntegerField(null=True, blank=True)
    oos = models.IntegerField(null=True, blank=True)
    vendor = models.CharField(max_length=200, blank=True)
    cost_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    erp_known = models.BooleanField(default=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sku", "warehouse"]
        constraints = [models.UniqueConstraint(fields=["connection", "variant_id"], name="uniq_planner_variant")]


class ReceiptCursor(models.Model):
    """Where the read of the ERP's purchase orders (receipts) is, per ERP."""

    erp = models.CharField(max_length=200, unique=True)
    cursor = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
