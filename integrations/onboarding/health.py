"""A connection's health, as lines a person reads: what was checked, ok / warn / error, and what it
means. `connection_test` is "Test connection" (reachable, credentials accepted); `connection_health`
adds, for a Shopify shop, the access scopes and webhook subscriptions the enabled flows need and the
API version's end of support, and for commercetools the scopes its token was granted.

Every check calls the vendor through the connection's own connector; nothing here raises for a
vendor's refusal: it becomes an error line.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from integrations.connectors import connector_for
from integrations.connectors.base import ConnectorError, PermanentError, TransientError

OK, WARN, ERROR = "ok", "warn", "error"
# Shopify supports each stable version (released quarterly, named YYYY-MM) for at least 12 months.
SHOPIFY_SUPPORT_MONTHS = 12
VERSION_WARN_DAYS = 90  # warn this long before a version's end of support


@dataclass(frozen=True)
class HealthLine:
    check: str  # "auth", "reachable", "scopes", "subscriptions", "api_version", …
    status: str  # ok | warn | error
    message: str
    repairable: bool = False  # a repair button can fix it (subscriptions)

    @property
    def ok(self) -> bool:
        return self.status == OK


def worst(lines: list[HealthLine]) -> str:
    """The connection's overall status: its worst line."""
    statuses = {line.status for line in lines}
    return ERROR if ERROR in statuses else WARN if WARN in statuses else OK


def _failure(check: str, exc: Exception, what: str) -> HealthLine:
    if isinstance(exc, TransientError):
        return HealthLine(check, ERROR, f"{what} cannot be reached just now: {exc}")
    return HealthLine(check, ERROR, f"{what} refused: {exc}")


# --- Shopify ------------------------------------------------------------------------------------


def shopify_version_support(version: str, today: date | None = None) -> tuple[date | None, HealthLine]:
    """(end of support, the line saying it) for an API version string such as "2026-04"."""
    today = today or date.today()
    try:
        year, month = (int(part) for part in version.split("-"))
        released = date(year, month, 1)
    except (ValueError, AttributeError):
        return None, HealthLine("api_version", ERROR, f"API version {version!r} is not a stable Shopify version "
                                                      f"(YYYY-MM); Shopify answers it with its oldest supported one")
    months = released.month - 1 + SHOPIFY_SUPPORT_MONTHS
    end = date(released.year + months // 12, months % 12 + 1, 1)
    left = (end - today).days
    if today < released:
        return end, HealthLine("api_version", ERROR, f"API version {version} is not released yet")
    if left <= 0:
        return end, HealthLine("api_version", ERROR, f"API version {version} is no longer supported (since "
                                                      f"{end.isoformat()}): Shopify answers with its oldest "
                                                      f"supported version; move to a newer one")
    if left <= VERSION_WARN_DAYS:
        return end, HealthLine("api_version", WARN, f"API version {version} is supported until {end.isoformat()} "
                                                     f"({left} days left): move to a newer one")
    return end, HealthLine("api_version", OK, f"API version {version}, supported until {end.isoformat()}")


def _shopify_test(connection, client) -> list[HealthLine]:
    from integrations.connectors.shopify import ShopifyAuthError
    from integrations.connectors.shopify.app import shop
    from integrations.connectors.shopify.oauth import ShopifyOAuthError

    try:
        info = shop(client)
    except ShopifyAuthError as exc:
        return [HealthLine("reachable", OK, "Shop reachable"),
                HealthLine("auth", ERROR, f"Shopify refused the access token: {exc}")]
    except ShopifyOAuthError as exc:  # renewing an expiring token was refused
        return [HealthLine("reachable", OK, "Shop reachable"),
                HealthLine("auth", ERROR, f"No new access token: {exc}")]
    except ConnectorError as exc:
        return [_failure("reachable", exc, "The shop")]
    return [HealthLine("reachable", OK, f"Shop reachable: {info.get('name', '')} ({info.get('myshopifyDomain', '')})"),
            HealthLine("auth", OK, "Access token valid")]


def _subscriptions_or_failure(connection, client, lines: list[HealthLine], check):
    try:
        return check(connection, client)
    except ConnectorError as exc:
        lines.append(_failure("subscriptions", exc, "Reading the webhook subscriptions"))
        return None


def _shopify_health(connection, client, today: date | None) -> list[HealthLine]:
    from .scopes import shopify_scopes_check
    from .subscriptions import shopify_subscriptions_check

    lines = _shopify_test(connection, client)
    if any(line.status == ERROR for line in lines):
        return lines
    try:
        _, missing = shopify_scopes_check(connection, client)
    except ConnectorError as exc:
        lines.append(_failure("scopes", exc, "Reading the granted scopes"))
    else:
        lines.extend(HealthLine("scopes", ERROR if m.required else WARN, m.message) for m in missing)
        if not missing:
            lines.append(HealthLine("scopes", OK, "Every scope the enabled flows need is granted"))
    if (connection.settings or {}).get("webhooks") == "shop_admin":
        # A custom app made in the shop's admin: its webhooks are set up there (Settings → Notifications)
        # and the Admin API does not list them, so there is nothing to compare or repair.
        lines.append(HealthLine("subscriptions", OK, "Webhooks are set up in the shop's admin (a custom app): "
                                                     "the inbox shows what arrives"))
        report = None
    else:
        report = _subscriptions_or_failure(connection, client, lines, shopify_subscriptions_check)
    if report is not None:
        lines.extend(HealthLine("subscriptions", ERROR, f"Webhook subscription {topic} is missing: its events do "
                                                        f"not reach Ledgerline", repairable=True)
                     for topic in report.missing)
        lines.extend(HealthLine("subscriptions", ERROR, f"Webhook subscription {w.subscription.topic} {w.problem}",
                                repairable=True) for w in report.wrong)
        lines.extend(HealthLine("subscriptions", WARN, f"Webhook subscription {s.topic} to {s.uri} is not needed "
                                                       f"by any enabled flow", repairable=True) for s in report.extra)
        if report.in_order:
            lines.append(HealthLine("subscriptions", OK, f"{len(report.ok)} webhook subscriptions in order"))
    _, line = shopify_version_support(client.api_version, today)
    lines.append(line)
    served = client.served_api_version
    if served and served != client.api_version:
        lines.append(HealthLine("api_version", ERROR, f"Asked for API version {client.api_version}, Shopify "
                                                      f"served {served}: the configured version is retired or "
                                                      f"unknown"))
    return lines


# --- commercetools ------------------------------------------------------------------------------


def _commercetools_granted(client) -> set[str]:
    """The scopes a fresh token is granted: the token response's `scope` (space separated)."""
    data = {"grant_type": "client_credentials"}
    if client.scope:
        data["scope"] = client.scope
    response = client.request("POST", f"{client.auth_url}/oauth/token", data=data,
                              auth=(client.client_id, client.client_secret))
    return set(str(response.json().get("scope") or "").split())


def _commercetools_health(connection, client, *, full: bool) -> list[HealthLine]:
    from integrations.connectors.commercetools import LEDGERLINE_SCOPES

    try:
        granted = _commercetools_granted(client)
    except ConnectorError as exc:
        return [_failure("auth", exc, "Getting a token")]
    lines = [HealthLine("auth", OK, "Token obtained")]
    if full:
        project = client.project_key
        have = {s.split(":")[0] for s in granted if s.endswith(f":{project}") or ":" not in s}
        missing = [need for need in LEDGERLINE_SCOPES if need not in have and "manage_project" not in have
                   and not (need.startswith("view_") and "manage_" + need.removeprefix("view_") in have)]
        lines.extend(HealthLine("scopes", ERROR, f"{need}:{project} is not granted to the API client") for need in missing)
        if not missing:
            lines.append(HealthLine("scopes", OK, "Every scope Ledgerline needs is granted"))
    try:
        client.query_orders(limit=1, with_total=False, expand=())
    except ConnectorError as exc:
        lines.append(_failure("reachable", exc, f"Project {client.project_key}"))
    else:
        lines.append(HealthLine("reachable", OK, f"Project {client.project_key} reachable"))
    return lines


# --- ERPs ---------------------------------------------------------------------------------------


def _erp_health(connection, client) -> list[HealthLine]:
    if connection.kind == "prima":
        try:
            client.soap  # the WSDL, read once per process
        except ConnectorError as exc:
            return [_failure("reachable", exc, "Prima's WSDL")]
        lines = [HealthLine("reachable", OK, "Prima's WSDL reachable")]
    else:
        lines = []
    try:
        depots = client.list_depots()
    except PermanentError as exc:
        lines.append(HealthLine("auth", ERROR, f"The ERP refused the request: {exc}"))
    except ConnectorError as exc:
        lines.append(_failure("reachable", exc, "The ERP"))
    else:
        what = "A harmless request (the depot list) answers" if connection.kind == "prima" else "Authenticated call works"
        lines.append(HealthLine("auth", OK, f"{what}: {len(depots)} depots"))
    return lines


# --- entry points -------------------------------------------------------------------------------


def connection_test(connection) -> list[HealthLine]:
    """"Test connection": is the system reachable and are the credentials accepted."""
    return _lines(connection, full=False, today=None)


def connection_health(connection, *, today: date | None = None) -> list[HealthLine]:
    """Every health line of the connection (the test, then scopes, subscriptions, API version)."""
    return _lines(connection, full=True, today=today)


def _lines(connection, *, full: bool, today: date | None) -> list[HealthLine]:
    try:
        client = connector_for(connection)
    except ValueError as exc:
        return [HealthLine("configuration", ERROR, str(exc))]
    if hasattr(client, "max_attempts"):
        client.max_attempts = min(client.max_attempts, 2)  # a screen waits for this: fail fast
    try:
        if connection.kind == "shopify":
            return _shopify_health(connection, client, today) if full else _shopify_test(connection, client)
        if connection.kind == "commercetools":
            return _commercetools_health(connection, client, full=full)
        if connection.kind in ("rest_erp", "prima"):
            return _erp_health(connection, client)
    except ConnectorError as exc:  # a renewal of an expiring token refused, …
        return [_failure("auth", exc, "The connection")]
    return [HealthLine("configuration", WARN, f"No health checks for {connection.get_kind_display()} yet")]
