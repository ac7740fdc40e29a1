"""Connector factories: which client talks to which configured system."""
from __future__ import annotations

from django.conf import settings


def get_erp():
    """The configured ERP client (settings.ERP["kind"]: "rest" or "prima")."""
    kind = settings.ERP.get("kind", "rest")
    if kind == "prima":
        from .prima import PrimaClient

        return PrimaClient.from_settings()
    if kind == "rest":
        from .erp import RestErpClient

        return RestErpClient.from_settings()
    raise ValueError(f"ERP_KIND {kind!r} is not one of: rest, prima")


def get_storefront(connection):
    """The client for one storefront connection (a StorefrontConnection row)."""
    if connection.platform == "shopify":
        from .shopify import ShopifyClient

        return ShopifyClient.from_settings()
    if connection.platform == "commercetools":
        from .commercetools import CommercetoolsClient

        return CommercetoolsClient.from_settings()
    raise ValueError(f"unknown storefront platform {connection.platform!r}")


def order_from_payload(connection, payload: dict):
    """Translate a storefront's order payload into our StorefrontOrder (raises ValueError if malformed)."""
    if connection.platform == "shopify":
        from .shopify import ShopifyClient

        return ShopifyClient.order_from_payload(payload)
    from .commercetools import CommercetoolsClient

    return CommercetoolsClient.order_from_payload(payload)
