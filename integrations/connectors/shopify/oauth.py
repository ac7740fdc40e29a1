"""Shopify's OAuth endpoints as Shopify defines them: the authorize URL of the authorization-code grant,
the `hmac` of a request Shopify redirects to the app, and `POST /admin/oauth/access_token` for the
authorization-code and the client-credentials grants.

Sources: shopify.dev "Implement authorization code grant manually" (the hmac is the hex HMAC-SHA256,
keyed with the app's client secret, of the other query parameters sorted and joined as a query
string; the shop must be a `*.myshopify.com` host), "Using the client credentials grant" (apps of the
merchant's own organisation; the token expires after `expires_in` seconds, about 24 hours).
Knows nothing of our models.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlencode, urlsplit

import requests

from ..base import PermanentError, TransientError

# Shopify's own rule for the `shop` parameter (its libraries' sanitizeShop).
SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")


class ShopifyOAuthError(PermanentError):
    """Shopify refused a token request (unknown or used code, wrong client credentials, app not installed)."""


@dataclass(frozen=True)
class TokenGrant:
    """What `POST /admin/oauth/access_token` answers."""

    access_token: str
    scopes: tuple[str, ...]
    expires_in: int | None = None  # seconds; None: the token does not expire (offline, non-expiring)
    refresh_token: str = ""
    associated_user: dict | None = None  # online (per-user) tokens only

    def __repr__(self) -> str:  # the token never reaches a log line through a repr
        return f"TokenGrant(scopes={self.scopes!r}, expires_in={self.expires_in!r}, access_token=hidden)"


def shop_domain(value: str) -> str | None:
    """`name`, `name.myshopify.com` or `https://name.myshopify.com/...` -> `name.myshopify.com`; None
    when it is not a well-formed Shopify shop domain."""
    text = (value or "").strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.rstrip("/")
    if text and "." not in text:
        text = f"{text}.myshopify.com"
    return text if SHOP_DOMAIN.match(text) else None


def authorize_url(admin_url: str, *, client_id: str, scopes, redirect_uri: str, state: str,
                  online: bool = False) -> str:
    """Where the merchant approves the install: `{admin_url}/admin/oauth/authorize?...`. Offline access
    (the default, a token for background work); online=True asks for a per-user token."""
    params = [("client_id", client_id), ("scope", ",".join(scopes)), ("redirect_uri", redirect_uri),
              ("state", state)]
    if online:
        params.append(("grant_options[]", "per-user"))
    return f"{admin_url.rstrip('/')}/admin/oauth/authorize?{urlencode(params)}"


def query_hmac(params: Mapping[str, str], client_secret: str) -> str:
    """The hex HMAC-SHA256 Shopify signs a redirect's query with: every parameter but `hmac` (and the
    legacy `signature`), sorted by name, as `name=value` joined by `&`."""
    message = "&".join(f"{name}={value}" for name, value in sorted(params.items())
                       if name not in ("hmac", "signature"))
    return hmac.new(client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def query_hmac_valid(params: Mapping[str, str], client_secret: str) -> bool:
    supplied = params.get("hmac") or ""
    if not supplied or not client_secret:
        return False
    return hmac.compare_digest(query_hmac(params, client_secret), supplied.lower())


def _token_request(admin_url: str, form: dict, *, session: requests.Session | None, timeout: float) -> TokenGrant:
    url = f"{admin_url.rstrip('/')}/admin/oauth/access_token"
    try:
        # Form-encoded, as Shopify documents both grants (its endpoint takes JSON too).
        response = (session or requests).post(url, data=form, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise TransientError(f"cannot reach Shopify at {url}: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"Shopify's token endpoint answered {response.status_code}", status=response.status_code)
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        if isinstance(body, dict):
            # {"error": "invalid_request", "error_description": "The authorization code was not found or was already used"}
            text = body.get("error_description") or body.get("errors") or body.get("error") or ""
            code = str(body.get("error") or "")
        else:
            text, code = "", ""
        raise ShopifyOAuthError(f"Shopify refused the token request ({response.status_code}): {text or 'no reason given'}",
                                status=response.status_code, code=code)
    expires = body.get("expires_in")
    return TokenGrant(
        access_token=str(body["access_token"]),
        scopes=tuple(s for s in str(body.get("scope") or "").split(",") if s),
        expires_in=int(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None,
        refresh_token=str(body.get("refresh_token") or ""),
        associated_user=body.get("associated_user") if isinstance(body.get("associated_user"), dict) else None,
    )


def exchange_code(admin_url: str, *, client_id: str, client_secret: str, code: str,
                  session: requests.Session | None = None, timeout: float = 10.0) -> TokenGrant:
    """The authorization-code grant's second leg: the code from the callback for an access token."""
    return _token_request(admin_url, {"client_id": client_id, "client_secret": client_secret, "code": code},
                          session=session, timeout=timeout)


def client_credentials_token(admin_url: str, *, client_id: str, client_secret: str,
                             session: requests.Session | None = None, timeout: float = 10.0) -> TokenGrant:
    """The client-credentials grant (an app of the shop's own organisation): an expiring token."""
    return _token_request(admin_url, {"grant_type": "client_credentials", "client_id": client_id,
                                      "client_secret": client_secret}, session=session, timeout=timeout)
