"""Translation tables between storefront and ERP identifiers; every change is kept in history."""
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
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

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE)
    storefront_sku = models.CharField(max_length=100)
    erp_item_code = models.CharField(max_length=100, blank=True, help_text="Blank for a kit made of components.")
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["connection", "storefront_sku"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "storefront_sku"], name="uniq_sku_mapping"),
        ]

    def __str__(self) -> str:
        return f"{self.storefront_sku} → {self.erp_item_code or 'kit'}"


class KitComponent(models.Model):
    kit = models.ForeignKey(SkuMapping, on_delete=models.CASCADE, related_name="components")
    erp_item_code = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    history = HistoricalRecords()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kit", "erp_item_code"], name="uniq_kit_component")]


class LocationMapping(models.Model):
    """ERP warehouse / Prima Depot <-> Shopify location id / commercetools supply channel key."""

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE)
    storefront_location = models.CharField(max_length=200, help_text="Shopify location id or commercetools channel key")
    erp_warehouse = models.CharField(max_length=50, help_text="ERP warehouse or Prima Depot code")
    sellable_states = models.JSONField(default=default_sellable_states)
    buffer_units = models.PositiveIntegerField(default=0)
    buffer_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    active = models.BooleanField(default=True)
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

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE)
    country = models.CharField(max_length=2, blank=True, help_text="ISO country code; blank matches any")
    storefront_location = models.CharField(max_length=200, blank=True)
    depot_code = models.CharField(max_length=50)
    active = models.BooleanField(default=True)
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

    connection = models.ForeignKey("integrations.Connection", on_delete=models.CASCADE)
    tax_category = models.CharField(max_length=100, blank=True, help_text="Tax line title or category; blank = any")
    rate = models.DecimalField(max_digits=7, decimal_places=5, help_text="0.2 for 20%")
    country = models.CharField(max_length=2, blank=True)
    erp_tax_code = models.CharField(max_length=50)
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
