"""Connector factories: which client talks to which configured system."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from django.conf import settings

from .base import SharedPacer

_pacers: dict[tuple, SharedPacer] = {}
_pacers_lock = threading.Lock()


def erp_pacer() -> SharedPacer | None:
    """The host's budget against the ERP: ERP_CLIENT_RATE_LIMIT requests/s shared by every worker
    process on this machine (one slot file per ERP endpoint)."""
    rate = settings.ERP.get("client_rate_limit") or 0
    if not rate:
        return None
    kind = settings.ERP.get("kind", "rest")
    endpoint = f"{kind}:{settings.ERP.get('prima_url' if kind == 'prima' else 'base_url')}"
    path = Path(settings.VAR_DIR) / f"erp-pacer-{hashlib.sha1(endpoint.encode()).hexdigest()[:12]}.slot"
    key = (str(path), rate)
    with _pacers_lock:
        return _pacers.setdefault(key, SharedPacer(rate, path))


def get_erp():
    """The configured ERP client (settings.ERP["kind"]: "rest" or "prima")."""
    kind = settings.ERP.get("kind", "rest")
    if kind == "prima":
        from .prima import PrimaClient

        return PrimaClient.from_settings(pacer=erp_pacer())
    if kind == "rest":
        from .erp import RestErpClient

        return RestErpClient.from_settings(pacer=erp_pacer())
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

        basis = (connection.settings or {}).get("post_currency") or settings.ORDERS.get("post_currency", "shop")
        if basis == "presentment":
            return ShopifyClient.order_from_payload(payload, currency_basis="presentment")
        return ShopifyClient.order_from_payload(payload)
    from .commercetools import CommercetoolsClient

    return CommercetoolsClient.order_from_payload(payload)
