"""Google Pub/Sub push authentication: the OIDC token (a JWT signed RS256 by Google) Pub/Sub puts in
`Authorization: Bearer …`, checked as Google documents it: signature against the signing keys (by
`kid`), issuer, audience, expiry and, when configured, the push service account's verified email.

The keys come from a connection's settings: a JWKS document (`oidc_jwks`), PEM public keys or X.509
certificates by kid (`oidc_public_keys`), or a JWKS URL (`oidc_jwks_url`) fetched and kept in the
Django cache; with none of them, Google's published certs (GOOGLE_CERTS_URL), as in production.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.cache import cache

log = logging.getLogger("ledgerline.inbox.oidc")

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
ALGORITHMS = ["RS256"]  # what Google signs with; anything else (HS256, none) is refused
LEEWAY_SECONDS = 30  # clock skew between Google and us
JWKS_CACHE_SECONDS = 3600  # when the answer names no max-age
JWKS_REFETCH_SECONDS = 60  # an unknown kid refetches the URL at most this often (Google rotates keys)
FETCH_TIMEOUT = 5


class TokenRefused(Exception):
    """The token does not authenticate this push; `reason` is safe to log (it never quotes the token)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The signing keys could not be read (the JWKS URL is down, the configured keys are broken):
    not the sender's fault, so the push is answered 503 and Pub/Sub delivers it again."""


def _key_from_pem(pem: str):
    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


def _keys_from_jwks(document) -> dict:
    if isinstance(document, str):
        document = json.loads(document)
    keys = {}
    for entry in (document or {}).get("keys", []):
        if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        keys[entry.get("kid", "")] = jwt.PyJWK(entry, algorithm="RS256").key
    return keys


def _fetch_jwks(url: str, *, fresh: bool = False) -> dict:
    """The JWKS at `url`, from the cache unless `fresh` (then refetched, at most every JWKS_REFETCH_SECONDS)."""
    key = f"ledgerline:oidc-jwks:{hashlib.sha256(url.encode()).hexdigest()[:32]}"
    cached = cache.get(key)
    if cached is not None and not (fresh and cache.add(f"{key}:refetch", 1, JWKS_REFETCH_SECONDS)):
        return cached
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        if cached is not None:
            return cached
        raise KeysUnavailable(f"the signing keys at {url} could not be read: {type(exc).__name__}") from None
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    cache.set(key, document, int(match[1]) if match else JWKS_CACHE_SECONDS)
    return document


def jwks_url(config: dict) -> str:
    """The JWKS URL keys are fetched from: the configured one, Google's when no keys are configured."""
    if config.get("oidc_jwks_url"):
        return config["oidc_jwks_url"]
    return "" if config.get("oidc_jwks") or config.get("oidc_public_keys") else GOOGLE_CERTS_URL


def signing_keys(config: dict, *, fresh: bool = False) -> dict:
    """{kid: public key} from a connection's settings (see the module docstring)."""
    try:
        keys = {}
        if config.get("oidc_jwks"):
            keys.update(_keys_from_jwks(config["oidc_jwks"]))
        for kid, pem in (config.get("oidc_public_keys") or {}).items():
            keys[kid] = _key_from_pem(pem)
        if jwks_url(config):
            keys.update(_keys_from_jwks(_fetch_jwks(jwks_url(config), fresh=fresh)))
    except (ValueError, TypeError, AttributeError, jwt.PyJWKError) as exc:
        raise KeysUnavailable(f"the configured signing keys cannot be read: {type(exc).__name__}") from None
    return keys


def push_token_verify(token: str, *, config: dict, audiences: list[str]) -> dict:
    """The claims of a valid push token, or TokenRefused. `config` holds the keys (signing_keys) and
    `oidc_email`, the push service account; `audiences` are the accepted `aud` values."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise TokenRefused("the bearer token is not a JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise TokenRefused(f"the OIDC token is signed with {str(header.get('alg'))[:20]!r}, not RS256")
    kid = header.get("kid", "")
    keys = signing_keys(config)
    if kid not in keys and jwks_url(config):
        keys = signing_keys(config, fresh=True)  # Google rotated its keys since we cached them
    if kid in keys:
        key = keys[kid]
    elif not kid and len(keys) == 1:
        [key] = keys.values()
    else:
        raise TokenRefused("the OIDC token is signed with a key this connection does not trust")
    try:
        claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=audiences, leeway=LEEWAY_SECONDS,
                            options={"require": ["exp", "iat", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise TokenRefused("the OIDC token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused("the OIDC token's audience is not this endpoint") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("the OIDC token's signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused(f"the OIDC token has no '{exc.claim}' claim") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"the OIDC token is invalid ({type(exc).__name__})") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise TokenRefused("the OIDC token was not issued by Google (iss)")
    expected_email = config.get("oidc_email", "")
    if expected_email:
        if claims.get("email") != expected_email:
            raise TokenRefused("the OIDC token is not the configured push service account's")
        if claims.get("email_verified") is not True:
            raise TokenRefused("the OIDC token's email is not verified")
    return claims
