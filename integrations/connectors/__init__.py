"""Connector factories: which client talks to which configured system."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from pathlib import Path

from django.conf import settings

from .base import PostgresPacer, RedisPacer, SharedPacer

_pacers: dict[tuple, SharedPacer | RedisPacer | PostgresPacer] = {}
_pacers_lock = threading.Lock()


def erp_pacer(endpoint: str | None = None) -> SharedPacer | RedisPacer | PostgresPacer | None:
    """The budget against the ERP: ERP_CLIENT_RATE_LIMIT requests/s shared by every worker, kept
    where ERP_BUDGET says: "file" (the default: one slot file per ERP endpoint, every process of this
    host), "redis" (REDIS_URL) or "postgres" (the database's integrations_erpbudget row), which hold
    across hosts."""
    rate = settings.ERP.get("client_rate_limit") or 0
    if not rate:
        return None
    if endpoint is None:
        kind = settings.ERP.get("kind", "rest")
        endpoint = f"{kind}:{settings.ERP.get('prima_url' if kind == 'prima' else 'base_url')}"
    digest = hashlib.sha1(endpoint.encode()).hexdigest()[:12]
    store = settings.ERP.get("budget", "file")
    key = (store, endpoint, rate, os.getpid())
    with _pacers_lock:
        if key not in _pacers:
            if store == "redis":
                _pacers[key] = RedisPacer(rate, settings.REDIS_URL, f"ledgerline:erp-budget:{digest}")
            elif store == "postgres":
                _pacers[key] = PostgresPacer(rate, postgres_conninfo(), endpoint)
            else:
                _pacers[key] = SharedPacer(rate, Path(settings.VAR_DIR) / f"erp-pacer-{digest}.slot")
        return _pacers[key]


def postgres_conninfo() -> str:
    """The default database's connection, for the budget's own connection (autocommit)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError("ERP_BUDGET=postgres needs DATABASE_URL to name a PostgreSQL database")
    from psycopg.conninfo import make_conninfo

    parts = {"dbname": db.get("NAME"), "user": db.get("USER"), "password": db.get("PASSWORD"),
             "host": db.get("HOST"), "port": str(db.get("PORT") or "")}
    return make_conninfo(**{k: v for k, v in parts.items() if v})


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
                             price_lists=own.get("price_lists"), **_retry_options(conf))
    if kind == "commercetools":
        from .commercetools import CommercetoolsClient

        conf = settings.COMMERCETOOLS
        return CommercetoolsClient.from_settings(
            api_url=connection.base_url or conf["api_url"], auth_url=own.get("auth_url") or conf["auth_url"],
            project_key=own.get("project_key") or conf["project_key"],
            client_id=connection.secret("client_id", conf["client_id"]),
            client_secret=connection.secret("client_secret", conf["client_secret"]),
            scope=own.get("scope") or conf.get("scope", ""), connection_settings=own)
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


# The active ERP connection, kept a few seconds per process as the webhooks keep theirs (every order
# asks for it): saving or deleting a connection forgets it here (inbox.webhooks.connection_cache_clear,
# connected in apps.py); other processes see a change within ERP_CONNECTION_SECONDS.
ERP_CONNECTION_SECONDS = 5.0
_erp_connection = {"at": None, "row": None, "pid": None}


def erp_connection_forget() -> None:
    _erp_connection["at"] = None


def erp_connection():
    """The active ERP connection (several storefronts feed one ERP), or None to use the environment."""
    import time

    from integrations.models import Connection

    now = time.monotonic()
    at = _erp_connection["at"]
    if at is not None and now - at < ERP_CONNECTION_SECONDS and _erp_connection["pid"] == os.getpid():
        return _erp_connection["row"]
    row = Connection.objects.erps().filter(active=True).order_by("pk").first()
    _erp_connection.update(at=now, row=row, pid=os.getpid())
    return row


# One ERP client (one requests.Session, so one kept-alive TCP connection) per process, thread and
# configuration: a task reuses it instead of building a client per order. Per thread because the
# client's retry counters and session cookies are not meant to be shared; per process because a
# session must never cross a fork.
_erp_clients = threading.local()


def _erp_client_key(connection) -> tuple:
    conf = settings.ERP
    env = tuple(str(conf.get(name, "")) for name in (
        "kind", "base_url", "api_key", "prima_url", "prima_company", "timeout", "max_attempts", "backoff_base",
        "backoff_max", "client_rate_limit"))
    if connection is None:
        return (os.getpid(), "env", env)
    # The credentials enter the key only as a digest: edited keys build a new client, nothing readable is kept.
    secrets = hashlib.sha256(json.dumps(connection.credentials or {}, sort_keys=True).encode()).hexdigest()
    return (os.getpid(), connection.pk, connection.kind, connection.base_url, str(connection.updated_at), secrets,
            json.dumps(connection.settings or {}, sort_keys=True, default=str), env)


def erp_clients_clear() -> None:
    """Forget this thread's ERP client (a test that swaps the sandbox, or a changed connection)."""
    _erp_clients.__dict__.clear()


def get_erp():
    """The ERP client: from the active ERP connection, else from the environment (ERP_KIND); the
    same client (and connection pool) for every task of this thread while the configuration holds."""
    connection = erp_connection()
    key = _erp_client_key(connection)
    cached = getattr(_erp_clients, "client", None)
    if cached is None or getattr(_erp_clients, "key", None) != key:
        if cached is not None and getattr(cached, "session", None) is not None:
            cached.session.close()
        cached = _build_erp(connection)
        _erp_clients.key, _erp_clients.client = key, cached
    # A shallow copy shares the session (and Prima's parsed WSDL) but not the settings a caller
    # tunes for itself (the sweep's max_attempts = 1 must not reach the next order's posting).
    return copy.copy(cached)


def _build_erp(connection):
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
