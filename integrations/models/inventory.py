"""Inventory: levels last pushed to the storefronts, sync runs, drift samples."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from .connections import Connection


class InventoryLevel(models.Model):
    """One storefront SKU at one storefront location: the ERP ATS and what we last confirmed pushing.

    `storefront_basis` is the number our next compare-and-set compares against (Shopify `available`,
    commercetools `quantityOnStock` at `storefront_version`); `storefront_value` is what shoppers saw.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="inventory_levels")
    storefront_sku = models.CharField(max_length=100)
    storefront_location = models.CharField(max_length=200)
    erp_item_code = models.CharField(max_length=100, blank=True)  # blank for a kit
    erp_warehouse = models.CharField(max_length=50)
    erp_ats = models.IntegerField(default=0)  # latest computed available-to-sell
    pushed_ats = models.IntegerField(null=True, blank=True)  # ATS of the last confirmed push
    storefront_value = models.IntegerField(null=True, blank=True)
    storefront_basis = models.IntegerField(null=True, blank=True)
    storefront_ref = models.CharField(max_length=200, blank=True)  # Shopify inventory item gid / ct entry id
    storefront_version = models.IntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)
    pushed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["storefront_sku", "storefront_location"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_sku", "storefront_location"],
                                    name="uniq_inventory_level"),
        ]
        indexes = [models.Index(fields=["connection", "erp_item_code"], name="inv_level_item_idx")]

    def __str__(self) -> str:
        return f"{self.storefront_sku} @ {self.storefront_location}"

    @property
    def difference(self) -> int | None:
        """ERP ATS minus what the storefront shows (None when the storefront value is unknown)."""
        return None if self.storefront_value is None else self.erp_ats - self.storefront_value


class InventorySyncRun(models.Model):
    """One push of ERP ATS to one storefront: a full sync or an order-driven push of a few items."""

    class Kind(models.TextChoices):
        FULL = "full", "Full sync"
        ORDER = "order", "Order-driven"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with exceptions"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (quiet hours)"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="inventory_runs")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    trigger = models.CharField(max_length=20, default="schedule")  # schedule | manual | order
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item_codes = models.JSONField(default=list, blank=True)  # the ERP items of an order-driven push
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    levels_total = models.PositiveIntegerField(default=0)
    levels_changed = models.PositiveIntegerField(default=0)
    levels_pushed = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)  # write calls (mutations / update actions)
    read_calls = models.PositiveIntegerField(default=0)  # lookups and re-reads
    conflicts = models.PositiveIntegerField(default=0)  # stale compare-and-set / 409 recovered
    exceptions_raised = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.connection.code}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if not self.is_active else 0
        return min(100, round(100 * self.progress_done / self.progress_total))


class InventoryDriftSample(models.Model):
    """How far the storefront had drifted from the ERP when a full sync looked (for the chart)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(InventorySyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    levels_total = models.PositiveIntegerField(default=0)
    levels_drifted = models.PositiveIntegerField(default=0)
    units_drifted = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at"]


class StorefrontLocationQuerySet(models.QuerySet):
    def names(self, connection_ids) -> dict[tuple[int, str], str]:
        """{(connection id, location as mappings hold it): name} for these connections."""
        rows = self.filter(connection_id__in=set(connection_ids)).values_list("connection_id", "location", "name")
        return {(connection_id, location): name for connection_id, location, name in rows if name}


class StorefrontLocation(models.Model):
    """A storefront location (Shopify) or supply channel (commercetools) as the storefront itself last
    named it. Each stock push's location check records the names, so screens show "Main warehouse"
    instead of gid://shopify/Location/1 without calling the storefront from a page view."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="storefront_locations")
    # As location mappings and inventory levels hold it: "1" or gid://shopify/Location/1, a channel key.
    location = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    seen_at = models.DateTimeField(default=timezone.now)

    objects = StorefrontLocationQuerySet.as_manager()

    class Meta:
        ordering = ["connection", "name", "location"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "location"], name="uniq_storefront_location"),
        ]

    def __str__(self) -> str:
        return self.name or self.location


def storefront_locations_remember(*, connection: Connection, names: dict[str, tuple[str, bool]]) -> None:
    """Record {location: (name, active)} as the storefront just listed them (one upsert; safe to repeat)."""
    if not names:
        return
    now = timezone.now()
    rows = [StorefrontLocation(connection=connection, location=location[:200], name=(name or "")[:200],
                               active=active, seen_at=now)
            for location, (name, active) in names.items()]
    StorefrontLocation.objects.bulk_create(rows, update_conflicts=True, unique_fields=["connection", "location"],
                                           update_fields=["name", "active", "seen_at"])
