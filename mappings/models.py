"""Translation tables between storefront and ERP identifiers; every change is kept in history."""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

# Stock states an ERP may report per warehouse; which ones count as sellable is per location.
STOCK_STATES = [
    ("available", "Available"),
    ("in_transit", "In transit"),
    ("quality_inspection", "Quality inspection"),
    ("damaged", "Damaged"),
    ("returned_awaiting_inspection", "Returned, awaiting inspection"),
]
DEFAULT_SELLABLE_STATES = ["available"]


def default_sellable_states() -> list[str]:
    return list(DEFAULT_SELLABLE_STATES)


class SkuMapping(models.Model):
    """Storefront SKU -> ERP item code (identity when no row exists), optionally a kit."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, verbose_name="Storefront")
    storefront_sku = models.CharField("Storefront SKU", max_length=100)
    erp_item_code = models.CharField(
        "ERP item", max_length=100, blank=True, help_text="Blank for a kit made of components."
    )
    active = models.BooleanField("Active", default=True)
    note = models.CharField("Note", max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "storefront_sku"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_sku"], name="uniq_sku_mapping"),
        ]

    def __str__(self) -> str:
        return f"{self.storefront_sku} → {self.erp_item_code or 'kit'}"


class KitComponent(models.Model):
    kit = models.ForeignKey(SkuMapping, on_delete=models.CASCADE, related_name="components", verbose_name="Kit")
    erp_item_code = models.CharField("ERP item", max_length=100)
    quantity = models.PositiveIntegerField("Quantity", default=1, validators=[MinValueValidator(1)])
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kit", "erp_item_code"], name="uniq_kit_component")]


class LocationMapping(models.Model):
    """ERP warehouse / Prima Depot <-> Shopify location id / commercetools supply channel key."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, verbose_name="Storefront")
    storefront_location = models.CharField(
        "Storefront location", max_length=200, help_text="Shopify location id or commercetools channel key"
    )
    erp_warehouse = models.CharField("ERP warehouse", max_length=50, help_text="ERP warehouse or Prima Depot code")
    sellable_states = models.JSONField("Sellable stock states", default=default_sellable_states)
    buffer_units = models.PositiveIntegerField("Safety buffer (units)", default=0)
    buffer_percent = models.DecimalField(
        "Safety buffer (%)", max_digits=5, decimal_places=2, default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    active = models.BooleanField("Active", default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "storefront_location"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_location"], name="uniq_location_mapping"),
        ]

    def __str__(self) -> str:
        return f"{self.storefront_location} ← {self.erp_warehouse}"


class DepotMapping(models.Model):
    """Which ERP depot fulfils a storefront's orders for a country (blank country = any)."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, verbose_name="Storefront")
    country = models.CharField("Country", max_length=2, blank=True, help_text="ISO country code; blank matches any")
    storefront_location = models.CharField("Storefront location", max_length=200, blank=True)
    depot_code = models.CharField("ERP depot", max_length=50)
    active = models.BooleanField("Active", default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "country"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "country", "storefront_location"], name="uniq_depot_mapping"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country or '*'} → {self.depot_code}"


class TaxCodeMapping(models.Model):
    """Storefront tax category / rate / country -> ERP tax code."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, verbose_name="Storefront")
    tax_category = models.CharField(
        "Tax category", max_length=100, blank=True, help_text="Tax line title or category; blank = any"
    )
    rate = models.DecimalField("Tax rate", max_digits=7, decimal_places=5, help_text="0.2 for 20%")
    country = models.CharField("Country", max_length=2, blank=True)
    erp_tax_code = models.CharField("ERP tax code", max_length=50)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "country", "rate"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "tax_category", "rate", "country"], name="uniq_tax_mapping"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country or '*'} {self.rate} → {self.erp_tax_code}"


class MappingProposal(models.Model):
    """A mapping row someone who may not change mappings asks for, from the exception it would fix;
    an admin approves it (the row is created through the same service as an admin's add) or
    rejects it with a reason. Only `mappings.proposals` changes its status."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for an admin"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    # The only moves a proposal makes: decided once, never undecided.
    TRANSITIONS = {
        Status.PENDING: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: set(),
        Status.REJECTED: set(),
    }

    class Table(models.TextChoices):
        SKUS = "skus", "SKU mapping"
        LOCATIONS = "locations", "Location mapping"
        DEPOTS = "depots", "Depot mapping"
        TAXCODES = "taxcodes", "Tax code mapping"

    table = models.CharField("Mapping table", max_length=20, choices=Table.choices)
    key = models.CharField("Mapping", max_length=300, help_text="The row it would add, e.g. shopify · TEE-RED-M")
    values = models.JSONField("Proposed values", default=dict)
    exception = models.ForeignKey(
        "exceptions_queue.ExceptionRecord", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="mapping_proposals", verbose_name="From exception",
    )
    comment = models.CharField("Why", max_length=500, blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name="Proposed by"
    )
    proposed_at = models.DateTimeField("Proposed at", default=timezone.now)
    status = models.CharField("Status", max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name="Decided by",
    )
    decided_at = models.DateTimeField("Decided at", null=True, blank=True)
    note = models.TextField("Decision note", blank=True, help_text="Why it was rejected")
    mapping_id = models.PositiveBigIntegerField("Mapping row", null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-proposed_at", "-id"]
        verbose_name = "mapping proposal"
        constraints = [
            # one open proposal per row to add: a second ops user sees the first one instead
            models.UniqueConstraint(
                fields=["table", "key"], condition=Q(status="pending"), name="uniq_pending_mapping_proposal"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_table_display()} {self.key} ({self.get_status_display().lower()})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @classmethod
    def can_move(cls, old: str, new: str) -> bool:
        return new in cls.TRANSITIONS.get(old, set())


class CarrierMapping(models.Model):
    """The ERP's name for a carrier -> the tracking company the storefront knows (Shopify's list of
    supported carriers), so the storefront builds working tracking links and names the carrier right."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE, verbose_name="Storefront")
    erp_carrier = models.CharField("ERP carrier", max_length=100, help_text="The carrier as the ERP names it")
    tracking_company = models.CharField(
        "Tracking company", max_length=100, help_text="As the storefront knows it, e.g. Royal Mail, DHL Express, UPS"
    )
    active = models.BooleanField("Active", default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "erp_carrier"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "erp_carrier"], name="uniq_carrier_mapping"),
        ]

    def __str__(self) -> str:
        return f"{self.erp_carrier} → {self.tracking_company}"
