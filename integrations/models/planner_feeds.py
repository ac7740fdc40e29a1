"""Inventory Planner demand feeds: what the planner's files hold (sales lines, catalogue, stock per
warehouse, each with the time it last changed, so an incremental file sends exactly what changed)
and each feed run (a snapshot served or an incremental upload) with its files, rows and errors."""
from django.db import models
from django.utils import timezone

from .connections import Connection
from .orders import OrderLink


class PlannerSalesLine(models.Model):
    """One sales (or return) row of the demand feed: a posted storefront order line, or a kit's
    component of it, in the warehouse that fulfils it. Returns are rows of their own with a negative
    quantity. A row that is no longer part of the sale (cancelled, edited away) is kept with
    `removed` set, so the incremental file can say REMOVED."""

    storefront = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(OrderLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    line_key = models.CharField(max_length=200)  # unique per storefront: order, line (or refund), component
    order_key = models.CharField(max_length=200)  # "<storefront>:<storefront order id>"
    order_number = models.CharField(max_length=100, blank=True)
    item_code = models.CharField(max_length=100, db_index=True)  # the ERP item (the planner's variant)
    kit_sku = models.CharField(max_length=100, blank=True)  # the storefront kit this component was sold in
    warehouse = models.CharField(max_length=50)
    storefront_location = models.CharField(max_length=200, blank=True)
    currency = models.CharField(max_length=3)
    quantity = models.IntegerField()  # negative for a return
    # The storefront's unit price and the row's discount (a kit component's share to 4 places).
    unit_price = models.DecimalField(max_digits=20, decimal_places=4)
    discount = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    ordered_at = models.DateTimeField()  # the order's date (a return: the refund's date)
    ship_country = models.CharField(max_length=2, blank=True)
    ship_region = models.CharField(max_length=50, blank=True)
    discount_codes = models.CharField(max_length=300, blank=True)  # space separated
    tags = models.CharField(max_length=300, blank=True)  # promotion tags, comma separated
    # A line for an item the planner does not know is held back (an exception says so) until it does.
    held = models.BooleanField(default=False)
    removed = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["storefront", "line_key"], name="uniq_planner_sales_line")]
        indexes = [
            # the snapshot's order within one warehouse's file
            models.Index(fields=["warehouse", "ordered_at", "order_key", "line_key"], name="planner_sales_snapshot_idx"),
        ]


class PlannerItem(models.Model):
    """One ERP item as the planner's catalogue (variant) has it: figures from the ERP item master."""

    item_code = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=300, blank=True)
    barcode = models.CharField(max_length=100, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    cost = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    lead_time_days = models.PositiveIntegerField(null=True, blank=True)
    supplier = models.CharField(max_length=200, blank=True)
    removed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["item_code"]


class PlannerStock(models.Model):
    """An item's stock pool in one ERP warehouse, however many storefront channels sell from it:
    available to sell, and the units held in each non-sellable state."""

    item_code = models.CharField(max_length=100)
    warehouse = models.CharField(max_length=50)
    ats = models.IntegerField(default=0)
    in_transit = models.IntegerField(default=0)
    quality_inspection = models.IntegerField(default=0)
    damaged = models.IntegerField(default=0)
    returned_awaiting_inspection = models.IntegerField(default=0)
    removed = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["warehouse", "item_code"]
        constraints = [models.UniqueConstraint(fields=["item_code", "warehouse"], name="uniq_planner_stock")]

    @property
    def non_sellable(self) -> int:
        return self.in_transit + self.quality_inspection + self.damaged + self.returned_awaiting_inspection


class PlannerPurchaseOrderLine(models.Model):
    """One line of a purchase order the ERP holds, for the CSV connector's optional purchase orders file
    (the planner's stock on order). Orders raised from the planner's own drafts are not kept: the planner
    has them already (marked ordered), and listing them again would count their stock twice. A line whose
    order is received in full or cancelled stays with `removed` set, so the file no longer lists it."""

    erp_po_id = models.CharField(max_length=100)
    erp_reference = models.CharField(max_length=200, blank=True)  # its external reference (how it is read again)
    line_number = models.PositiveIntegerField()  # the line's place in the ERP's order, from 1
    status = models.CharField(max_length=30)  # the ERP's: open, partially_received, received, cancelled
    supplier = models.CharField(max_length=200, blank=True)
    warehouse = models.CharField(max_length=50)  # the ERP depot receiving it
    item_code = models.CharField(max_length=100)
    quantity = models.IntegerField()
    received = models.IntegerField(default=0)
    unit_cost = models.CharField(max_length=40, blank=True)  # the ERP's decimal text, as it sent it
    expected_date = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)  # when Ledgerline first read it
    removed = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["warehouse", "erp_po_id", "line_number"]
        constraints = [models.UniqueConstraint(fields=["erp_po_id", "line_number"], name="uniq_planner_po_line")]


class FeedRun(models.Model):
    """One feed run for one Inventory Planner connection: a CSV-connector snapshot served, or an
    Advanced CSV incremental upload over SFTP covering the changes in (cursor_from, cursor_to]."""

    class Kind(models.TextChoices):
        SNAPSHOT = "snapshot", "Snapshot (CSV connector)"
        INCREMENTAL = "incremental", "Incremental (Advanced CSV over SFTP)"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (quiet hours)"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="feed_runs")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    trigger = models.CharField(max_length=20, default="schedule")  # schedule | fetch | manual | retry
    warehouse = models.CharField(max_length=50, blank=True)  # a snapshot's warehouse
    files = models.JSONField(default=list, blank=True)  # [{"name", "kind", "rows", "removed", "sent"}]
    rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # messages, newest last
    attempts = models.PositiveIntegerField(default=0)
    cursor_from = models.DateTimeField(null=True, blank=True)
    cursor_to = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.connection.code}"
