"""Connections: one row per outside system instance, with its kind, URL, encrypted credentials and settings."""
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from ..secrets import EncryptedCredentialsField


class ConnectionKind(models.TextChoices):
    SHOPIFY = "shopify", "Shopify shop"
    COMMERCETOOLS = "commercetools", "commercetools project"
    REST_ERP = "rest_erp", "REST ERP"
    PRIMA = "prima", "Prima"
    INVENTORY_PLANNER = "inventory_planner", "Inventory Planner account"


Platform = ConnectionKind  # storefront kinds were called platforms; the name stays for readers


STOREFRONT_KINDS = (ConnectionKind.SHOPIFY, ConnectionKind.COMMERCETOOLS)


ERP_KINDS = (ConnectionKind.REST_ERP, ConnectionKind.PRIMA)


class ConnectionQuerySet(models.QuerySet):
    def storefronts(self):
        return self.filter(kind__in=STOREFRONT_KINDS)

    def erps(self):
        return self.filter(kind__in=ERP_KINDS)


class Connection(models.Model):
    """One outside system instance: a Shopify shop, a commercetools project, a REST ERP, Prima, an
    Inventory Planner account. Connectors are built from it (integrations.connectors.connector_for);
    blank values fall back to the environment, which bootstraps the first connections."""

    code = models.SlugField(unique=True)
    kind = models.CharField(max_length=20, choices=ConnectionKind.choices)
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    base_url = models.URLField(blank=True, help_text="API base URL (blank: the environment's)")
    # Secrets (access tokens, client secrets, webhook secrets, API keys), encrypted at rest.
    credentials = EncryptedCredentialsField(blank=True, default="")
    # Per-connection settings (see integrations.flows.orders.connection_settings for the order keys; also
    # api_version, shop_domain, project_key, scope, company…).
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectionQuerySet.as_manager()
    # Who changed what and when; the credentials are never copied into history (the change reason
    # names which secrets were replaced, never their values).
    history = HistoricalRecords(excluded_fields=["credentials"])

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def platform(self) -> str:
        return self.kind

    @property
    def is_storefront(self) -> bool:
        return self.kind in STOREFRONT_KINDS

    def secret(self, name: str, default: str = "") -> str:
        return (self.credentials or {}).get(name) or default
