"""Expiring Shopify tokens (the client-credentials grant) kept in their connection: renewed under a
row lock on the Connection (select_for_update; on SQLite the IMMEDIATE transaction takes the write
lock), so that workers finding the token due at the same moment renew it once and the others read
the new one."""
from __future__ import annotations

import logging
import time

from django.db import transaction

from integrations.connectors.shopify import oauth
from integrations.models import Connection

log = logging.getLogger("ledgerline.onboarding")

# Renewed this long before it expires (the connector asks earlier, with its own margin).
RENEW_MARGIN = 300.0


def _due(token: str, expires_at) -> bool:
    return not token or (expires_at is not None and time.time() >= float(expires_at) - RENEW_MARGIN)


class ConnectionTokenSource:
    """The connector's TokenSource for one connection: renew(stale) -> (token, expires_at)."""

    def __init__(self, connection_id: int):
        self.connection_id = connection_id
        self.renewals = 0  # tokens this source fetched from Shopify (tests, logs)

    def renew(self, stale: str) -> tuple[str, float | None]:
        with transaction.atomic():
            connection = Connection.objects.select_for_update().get(pk=self.connection_id)
            stored = dict(connection.credentials or {})
            token, expires_at = stored.get("access_token", ""), stored.get("expires_at")
            if token and token != stale and not _due(token, expires_at):
                return token, expires_at  # another worker renewed it while this one waited for the lock
            grant = oauth.client_credentials_token(connection.base_url, client_id=stored.get("client_id", ""),
                                                   client_secret=stored.get("client_secret", ""))
            expires_at = time.time() + grant.expires_in if grant.expires_in is not None else None
            stored.update({"access_token": grant.access_token, "expires_at": expires_at})
            connection.credentials = stored
            own = dict(connection.settings or {})
            own["granted_scopes"] = sorted(grant.scopes)
            connection.settings = own
            connection.save(update_fields=["credentials", "settings", "updated_at"])
            self.renewals += 1
        log.info("shopify: renewed the access token of connection %s (expires in %ss)", connection.code,
                 grant.expires_in)
        return grant.access_token, expires_at


def token_source_for(connection) -> ConnectionTokenSource | None:
    """A TokenSource for a connection holding an expiring token of the client-credentials grant; None
    for a token that does not expire (an OAuth install, a token from the environment)."""
    if connection.pk is None or (connection.credentials or {}).get("grant") != "client_credentials":
        return None
    return ConnectionTokenSource(connection.pk)


def token_expires_at(connection) -> float | None:
    value = (connection.credentials or {}).get("expires_at")
    return float(value) if value is not None else None
