"""Connecting a Shopify shop: the OAuth authorization-code install (an agency connecting a merchant's
shop) and the client-credentials grant (an app of the shop's own organisation). Either way the token
ends encrypted in the shop's Connection (created when new), with the app's client secret as the
connection's webhook secret: Shopify signs an app's webhooks with it.

The screen calls `shopify_install_begin` (redirect the admin to the URL it returns) and, on the
callback, `shopify_install_complete` with the callback's query parameters; a refusal is an
`InstallRefused` whose message can be shown as it is. The state nonce is kept server side in the
admin's session: single use, tied to the user, expiring after STATE_TTL seconds.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from integrations.connectors.base import ConnectorError
from integrations.connectors.shopify import oauth
from integrations.models import Connection, ConnectionKind

from .requirements import enabled_flows, needed_scopes

STATE_TTL = 600.0  # seconds an install link stays valid
SESSION_KEY = "shopify_oauth_states"
MAX_PENDING = 10  # install links one session keeps at once (the oldest go first)
# The sandbox app's published credentials (integrations/sandbox/shopify.py has its own copy): used only
# for shops the sandbox serves, when SHOPIFY_APP_CLIENT_ID / _SECRET are blank.
SANDBOX_APP_CLIENT_ID = "sandbox-app-client-id"
SANDBOX_APP_CLIENT_SECRET = "sandbox-app-client-secret"


class InstallRefused(Exception):
    """The install (or the grant) was refused; the message says why, in words for the screen."""


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"AppCredentials(client_id={self.client_id!r}, client_secret=hidden)"


@dataclass(frozen=True)
class InstallStart:
    url: str  # where to send the admin's browser
    state: str
    shop: str  # what the admin asked for: a shop domain, or the sandbox shop's URL


@dataclass(frozen=True)
class InstallResult:
    connection: Connection
    created: bool
    shop_domain: str
    scopes: tuple[str, ...]  # what Shopify granted


def _is_sandbox(admin_url: str) -> bool:
    sandbox = urlsplit(settings.SANDBOX_URL)
    target = urlsplit(admin_url)
    return bool(sandbox.netloc) and (target.scheme, target.netloc) == (sandbox.scheme, sandbox.netloc)


def resolve_shop(shop: str) -> tuple[str, str]:
    """(admin URL, shop domain) for what an admin typed: a shop name or `*.myshopify.com` domain
    (reached at https://<domain>), or the URL of a shop the configured sandbox serves (its domain is
    learnt from the callback: ""). Anything else is refused."""
    text = (shop or "").strip()
    if text.startswith(("http://", "https://")) and _is_sandbox(text):
        parts = urlsplit(text)
        if parts.query or parts.fragment or not re.fullmatch(r"(/[A-Za-z0-9_-]+)+/?", parts.path or "/x"):
            raise InstallRefused(f"{text[:100]!r} is not the address of a sandbox shop")
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", ""
    domain = oauth.shop_domain(text)
    if domain is None:
        raise InstallRefused(f"{text[:100]!r} is not a Shopify shop: give its myshopify.com domain "
                             f"(e.g. my-shop.myshopify.com)")
    return f"https://{domain}", domain


def app_credentials(admin_url: str) -> AppCredentials:
    """The app's client id and secret (settings); the sandbox app's only for a shop the sandbox serves."""
    client_id = getattr(settings, "SHOPIFY_APP_CLIENT_ID", "") or ""
    client_secret = getattr(settings, "SHOPIFY_APP_CLIENT_SECRET", "") or ""
    if client_id and client_secret:
        return AppCredentials(client_id, client_secret)
    if _is_sandbox(admin_url):
        return AppCredentials(client_id or SANDBOX_APP_CLIENT_ID, client_secret or SANDBOX_APP_CLIENT_SECRET)
    raise InstallRefused("Ledgerline has no Shopify app configured: set SHOPIFY_APP_CLIENT_ID and "
                         "SHOPIFY_APP_CLIENT_SECRET (the app's client credentials from the Dev Dashboard)")


def _pending(session) -> dict:
    states = session.get(SESSION_KEY)
    return dict(states) if isinstance(states, dict) else {}


def shopify_install_begin(*, session, user, shop: str, redirect_uri: str, flows=None, name: str = "",
                          code: str = "", online: bool = False) -> InstallStart:
    """Start an authorization-code install: remember a fresh state nonce in the admin's session and
    return the shop's authorize URL (scopes: what the flows need, `read_all_orders` included)."""
    admin_url, domain = resolve_shop(shop)
    credentials = app_credentials(admin_url)
    if not redirect_uri.startswith(("https://", "http://")):
        raise InstallRefused("the callback address must be an absolute http(s) URL")
    if code and slugify(code) != code:
        raise InstallRefused(f"{code[:60]!r} is not a valid connection code (letters, digits, - and _)")
    scopes = needed_scopes(enabled_flows(flows=flows))
    state = secrets.token_urlsafe(24)
    pending = _pending(session)
    now = time.time()
    pending = {k: v for k, v in pending.items() if now - v.get("created", 0) < STATE_TTL}
    for stale in sorted(pending, key=lambda k: pending[k]["created"])[:max(0, len(pending) - MAX_PENDING + 1)]:
        del pending[stale]
    pending[state] = {"user": user.pk, "admin_url": admin_url, "shop": domain, "created": now,
                      "flows": list(flows) if flows is not None else None, "name": name[:100], "code": code,
                      "redirect_uri": redirect_uri, "scopes": list(scopes)}
    session[SESSION_KEY] = pending
    session.modified = True
    url = oauth.authorize_url(admin_url, client_id=credentials.client_id, scopes=scopes, redirect_uri=redirect_uri,
                              state=state, online=online)
    return InstallStart(url=url, state=state, shop=domain or admin_url)


def _take_state(session, user, state: str) -> dict:
    """The pending install this state names, removed from the session (single use)."""
    pending = _pending(session)
    entry = pending.pop(state, None) if state else None
    if entry is not None:
        session[SESSION_KEY] = pending
        session.modified = True
    if entry is None:
        raise InstallRefused("This install link is unknown or was already used: start connecting the shop again.")
    if time.time() - entry.get("created", 0) >= STATE_TTL:
        raise InstallRefused(f"This install link expired (links last {int(STATE_TTL // 60)} minutes): start "
                             f"connecting the shop again.")
    if entry.get("user") != getattr(user, "pk", None):
        raise InstallRefused("This install was started by another user: start connecting the shop again.")
    return entry


def shopify_install_complete(*, session, user, params: Mapping[str, str]) -> InstallResult:
    """Finish an install from the callback's query parameters: hmac (the app's client secret), state
    (this session's, unused, fresh, this user's), shop (well-formed, the one asked for); then the code
    for a token, stored encrypted in the shop's connection."""
    params = {str(k): str(v) for k, v in params.items()}
    state = params.get("state", "")
    entry = _pending(session).get(state) if state else None
    if entry is None:
        _take_state(session, user, state)  # raises: unknown or already used
    # The hmac is checked with the client secret of the app the install was started with.
    credentials = app_credentials(entry["admin_url"])
    if not oauth.query_hmac_valid(params, credentials.client_secret):
        raise InstallRefused("The answer did not come from Shopify: its hmac signature does not match. "
                             "Nothing was installed.")
    entry = _take_state(session, user, state)
    raw_shop = params.get("shop", "")
    domain = raw_shop.lower() if oauth.SHOP_DOMAIN.match(raw_shop) else None
    if domain is None:
        raise InstallRefused(f"Shopify named the shop {params.get('shop', '')[:100]!r}, which is not a "
                             f"myshopify.com shop domain. Nothing was installed.")
    if entry["shop"] and domain != entry["shop"]:
        raise InstallRefused(f"The install was started for {entry['shop']} but Shopify answered for {domain}. "
                             f"Nothing was installed.")
    if not params.get("code"):
        raise InstallRefused("Shopify's answer carries no authorization code. Nothing was installed.")
    try:
        grant = oauth.exchange_code(entry["admin_url"], client_id=credentials.client_id,
                                    client_secret=credentials.client_secret, code=params["code"])
    except ConnectorError as exc:
        raise InstallRefused(f"Shopify did not give an access token: {exc}") from None
    return _store(admin_url=entry["admin_url"], domain=domain, grant=grant, credentials=credentials,
                  grant_type="authorization_code", flows=entry.get("flows"), name=entry.get("name", ""),
                  code=entry.get("code", ""))


def shopify_connect_client_credentials(*, shop: str, client_id: str = "", client_secret: str = "",
                                       flows=None, name: str = "", code: str = "") -> InstallResult:
    """Connect a shop of the app's own organisation by the client-credentials grant: the first token
    is fetched now (proving the credentials); the connector renews it before it expires. Blank client
    id / secret: the configured app's."""
    admin_url, domain = resolve_shop(shop)
    credentials = AppCredentials(client_id, client_secret) if client_id and client_secret else app_credentials(admin_url)
    try:
        grant = oauth.client_credentials_token(admin_url, client_id=credentials.client_id,
                                               client_secret=credentials.client_secret)
    except ConnectorError as exc:
        raise InstallRefused(f"Shopify did not give an access token: {exc}") from None
    if not domain:  # a sandbox shop: ask it which shop it is
        from integrations.connectors.shopify import ShopifyClient
        from integrations.connectors.shopify.app import shop as shop_info

        try:
            domain = shop_info(ShopifyClient(admin_url, grant.access_token,
                                             settings.SHOPIFY.get("api_version", "2026-04"),
                                             max_attempts=2))["myshopifyDomain"]
        except ConnectorError as exc:
            raise InstallRefused(f"The shop did not answer with its token: {exc}") from None
    return _store(admin_url=admin_url, domain=domain, grant=grant, credentials=credentials,
                  grant_type="client_credentials", flows=flows, name=name, code=code)


def _unique_code(base: str) -> str:
    base = slugify(base)[:40] or "shopify"
    candidate, n = base, 1
    while Connection.objects.filter(code=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def _store(*, admin_url: str, domain: str, grant: oauth.TokenGrant, credentials: AppCredentials, grant_type: str,
           flows, name: str, code: str) -> InstallResult:
    existing = None
    for candidate in Connection.objects.select_for_update().filter(kind=ConnectionKind.SHOPIFY):
        if (candidate.settings or {}).get("shop_domain", "").lower() == domain:
            existing = candidate
            break
    if existing is None and code:
        existing = Connection.objects.select_for_update().filter(code=code, kind=ConnectionKind.SHOPIFY).first()
    connection = existing or Connection(kind=ConnectionKind.SHOPIFY, code=code or _unique_code(domain.split(".")[0]),
                                        name=name or domain)
    secrets_ = dict(connection.credentials or {})
    secrets_.update({"access_token": grant.access_token, "grant": grant_type,
                     # Shopify signs the webhooks of an app's subscriptions with the app's client secret.
                     "webhook_secret": credentials.client_secret})
    if grant_type == "client_credentials":
        secrets_.update({"client_id": credentials.client_id, "client_secret": credentials.client_secret})
    if grant.expires_in is not None:
        secrets_["expires_at"] = time.time() + grant.expires_in
    else:
        secrets_.pop("expires_at", None)
    if grant.refresh_token:
        secrets_["refresh_token"] = grant.refresh_token
    own = dict(connection.settings or {})
    own.update({"shop_domain": domain, "granted_scopes": sorted(grant.scopes), "grant": grant_type,
                "installed_at": timezone.now().isoformat()})
    own.setdefault("api_version", settings.SHOPIFY.get("api_version", "2026-04"))
    if flows is not None:
        own["flows"] = list(flows)
    connection.base_url = admin_url
    connection.credentials = secrets_
    connection.settings = own
    if name:
        connection.name = name
    connection.active = True
    connection.full_clean(validate_unique=False)
    connection.save()
    return InstallResult(connection=connection, created=existing is None, shop_domain=domain, scopes=grant.scopes)
