"""Connector factories: which client talks to which configured system."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from django.conf import settings

from .base import SharedPacer

_pacers: dict[tuple, SharedPacer] = {}
_pacers_lock = threading.Lock()


def erp_pacer(endpoint: str | None = None) -> SharedPacer | None:
    """The host's budget against the ERP: ERP_CLIENT_RATE_LIMIT requests/s shared by every worker
    process on this machine (one slot file per ERP endpoint)."""
    rate = settings.ERP.get("client_rate_limit") or 0
    if not rate:
        return None
    if endpoint is None:
        kind = settings.ERP.get("kind", "rest")
        endpoint = f"{kind}:{settings.ERP.get('prima_url' if kind == 'prima' else 'base_url')}"
    path = Path(settings.VAR_DIR) / f"erp-pacer-{hashlib.sha1(endpoint.encode()).hexdigest()[:12]}.slot"
    key = (str(path), rate)
    with _pacers_lock:
        return _pacers.setdefault(key, SharedPacer(rate, path))


def _retry_options(conf: dict) -> dict:
    return {key: conf[key] for key in ("timeout", "max_attempts", "backoff_base", "backoff_max") if key in conf}


def connector_for(connection):
    """The client for one connection, built from that connection: its base URL, its (decrypted)
    credentials and its settings; a blank value is the environment's (which bootstraps the first
    connections). Two shops with different tokens never share one."""
    kind = connection.kind
    own = connection.settings or {}
    if kind == "shopify":
        from integrations.onboarding.shopify_tokens import token_expires_at, token_source_for

        from .shopify import ShopifyClient

        conf = settings.SHOPIFY
        return ShopifyClient(connection.base_url or conf["shop_url"],
                             connection.secret("access_token", conf["access_token"]),
                             own.get("api_version") or conf.get("api_version"),
                             # an expiring token (client-credentials grant) is renewed under the connection's lock
                             token_source=token_source_for(connection), token_expires_at=token_expires_at(connection),
                             **_retry_options(conf))
    if kind == "commercetools":
        from .commercetools import CommercetoolsClient

        conf = settings.COMMERCETOOLS
        return CommercetoolsClient.from_settings(
            api_url=connection.base_url or conf["api_url"], auth_url=own.get("auth_url") or conf["auth_url"],
            project_key=own.get("project_key") or conf["project_key"],
            client_id=connection.secret("client_id", conf["client_id"]),
            client_secret=connection.secret("client_secret", conf["client_secret"]),
            scope=own.get("scope") or conf.get("scope", ""))
    if kind == "rest_erp":
        from .erp import RestErpClient

        base_url = connection.base_url or settings.ERP["base_url"]
        return RestErpClient.from_settings(base_url=base_url, api_key=connection.secret("api_key", settings.ERP["api_key"]),
                                           pacer=erp_pacer(f"rest:{base_url}"))
    if kind == "prima":
        from .prima import PrimaClient

        url = connection.base_url or settings.ERP["prima_url"]
        return PrimaClient.from_settings(url=url, company=own.get("company") or settings.ERP["prima_company"],
                                         pacer=erp_pacer(f"prima:{url}"))
    if kind == "inventory_planner":
        from .inventory_planner import InventoryPlannerClient

        return InventoryPlannerClient(connection.base_url or "https://app.inventory-planner.com/api/v1",
                                      connection.secret("api_key"),
                                      own.get("account_id") or connection.secret("account_id"),
                                      **_retry_options(own))
    raise ValueError(f"no connector for connections of kind {kind!r}")


def erp_connection():
    """The active ERP connection (several storefronts feed one ERP), or None to use the environment."""
    from integrations.models import Connection

    return Connection.objects.erps().filter(active=True).order_by("pk").first()


def get_erp():
    """The ERP client: from the active ERP connection, else from the environment (ERP_KIND)."""
    connection = erp_connection()
    if connection is not None:
        return connector_for(connection)
    kind = settings.ERP.get("kind", "rest")
    if kind == "prima":
        from .prima import PrimaClient

        return PrimaClient.from_settings(pacer=erp_pacer())
    if kind == "rest":
        from .erp import RestErpClient

        return RestErpClient.from_settings(pacer=erp_pacer())
    raise ValueError(f"ERP_KIND {kind!r} is not one of: rest, prima")


def get_storefront(connection):
    """The client for one storefront connection."""
    if connection.kind not in ("shopify", "commercetools"):
        raise ValueError(f"{connection.code} is not a storefront connection ({connection.kind})")
    return connector_for(connection)


def order_from_payload(connection, payload: dict):
    """Translate a storefront's order payload into our StorefrontOrder (raises ValueError if malformed)."""
    if connection.kind == "shopify":
        from .shopify import ShopifyClient

        basis = (connection.settings or {}).get("post_currency") or settings.ORDERS.get("post_currency", "shop")
        if basis == "presentment":
            return ShopifyClient.order_from_payload(payload, currency_basis="presentment")
        return ShopifyClient.order_from_payload(payload)
    from .commercetools import CommercetoolsClient

    return CommercetoolsClient.order_from_payload(payload)
