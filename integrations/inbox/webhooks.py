"""Webhook endpoints: verify, store in the inbox, answer in milliseconds. No processing here."""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import timezone

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError
from django.http import JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.safe_json import UnsafeJSON, loads as safe_json_loads

from .ct_delivery import NotADelivery, delivery_read
from .oidc import KeysUnavailable, TokenRefused, push_token_verify
from .store import InboundEventInvalid, inbound_event_check, inbound_event_store, task_connections_clear
from .routing import SHOPIFY_ORDER_ID_PATHS, flow_for, resource_id_for
from ..models import Platform, SecurityEvent, Connection
from ..ttl_cache import TtlCache

log = logging.getLogger("ledgerline.webhooks")
# Deliveries refused for what they carry (bad headers, bodies), at WARNING: never the body or a secret.
inbox_log = logging.getLogger("ledgerline.inbox")


# Headers worth keeping with the event (never the signature or any credential).
KEPT_HEADERS = ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Api-Version", "X-Shopify-Webhook-Id",
                "X-Shopify-Event-Id", "X-Shopify-Triggered-At", "User-Agent", "Content-Type")


# Connections by (code, platform), kept a few seconds per process: every webhook needs one and they
# almost never change. Saving or deleting one clears this process's copy (apps.py); other processes
# see a change within CONNECTION_CACHE_SECONDS (connections with events cannot be deleted).
CONNECTION_CACHE_SECONDS = 5.0
_connections = TtlCache(ttl=CONNECTION_CACHE_SECONDS)


def connection_cache_clear(**_signal) -> None:
    from integrations.connectors import erp_connection_forget

    _connections.clear()
    task_connections_clear()  # the tasks' copies, by id
    erp_connection_forget()  # the order flow's copy of the ERP connection goes with it


def _connection(code: str, platform: str) -> Connection | None:
    if len(code) > Connection._meta.get_field("code").max_length:
        return None  # no connection has such a code
    connection = _connections.get((code, platform))
    if connection is None:  # an unknown code is asked again next time
        connection = Connection.objects.filter(code=code, kind=platform).first()
        if connection is not None:
            _connections.put((code, platform), connection)
    return connection


# What the inbox's columns hold, in the words of a vendor's payload (for refusals).
PAYLOAD_VALUES = {"topic": "the message type", "external_id": "the message id", "resource_id": "the order id"}


def _store(request, connection: Connection, **event) -> JsonResponse:
    try:
        result = inbound_event_store(connection=connection, **event)
    except InboundEventInvalid as exc:  # a value from the payload that does not fit its column
        what = PAYLOAD_VALUES.get(exc.field, exc.field)
        return _bad_input(request, f"{what} in the payload cannot be stored", f"{what} {exc.message}", 422)
    except IntegrityError:  # the connection went away after it was looked up
        connection_cache_clear()
        return _error(f"unknown connection {connection.code!r}", 404)
    if not result.created:
        status = "duplicate"
    else:
        status = "ignored" if result.event.status == result.event.Status.IGNORED else "accepted"
    return JsonResponse({"status": status, "event": result.event.pk})


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _bad_input(request, error: str, message: str, status: int = 400) -> JsonResponse:
    """A delivery refused for what it carries: {"error": what is wrong, "message": the detail}."""
    inbox_log.warning("webhook refused status=%s path=%s error=%s (%s) addr=%s", status, request.path[:200],
                      error, message, request.META.get("REMOTE_ADDR"))
    return JsonResponse({"error": error, "message": message}, status=status)


def _security_event(request, source: str, reason: str) -> JsonResponse:
    SecurityEvent.objects.create(
        source=source,
        reason=reason,
        remote_addr=request.META.get("REMOTE_ADDR") or None,
        path=request.path[:300],
        headers={h: request.headers.get(h, "") for h in KEPT_HEADERS if h in request.headers},
    )
    log.warning("webhook rejected source=%s reason=%s addr=%s", source, reason, request.META.get("REMOTE_ADDR"))
    return _error(reason, 401)


def shopify_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _content_length(request) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:  # not a number: the body's own length is checked when it is read
        return 0


def _read_json_body(request):
    """(payload, None) or (None, error response): size, then JSON (config.safe_json), then shape."""
    length = _content_length(request)
    if length > settings.WEBHOOK_MAX_BYTES:
        return None, _bad_input(request, f"body is {length} bytes; the limit is {settings.WEBHOOK_MAX_BYTES}",
                                "send a smaller body", 413)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BYTES:
        return None, _bad_input(request, f"body is larger than {settings.WEBHOOK_MAX_BYTES} bytes",
                                "send a smaller body", 413)
    try:
        payload = safe_json_loads(body)
    except UnsafeJSON as exc:
        return None, _bad_input(request, f"body {exc.problem}", exc.message)
    if not isinstance(payload, dict):
        return None, _bad_input(request, "body must be a JSON object", "send one JSON object ({...})")
    return payload, None


def _triggered_at(value: str):
    """(datetime or None, None) or (None, error message) for an X-Shopify-Triggered-At value."""
    if not value:
        return None, None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)  # Shopify sends UTC
        return parsed.astimezone(timezone.utc), None  # out of range in UTC: OverflowError
    except (ValueError, OverflowError):
        return None, "expected an ISO 8601 date and time such as 2026-11-20T09:00:00.000Z"


@csrf_exempt
@login_not_required
@require_POST
def shopify_webhook(request, connection_code: str):
    connection = _connection(connection_code, Platform.SHOPIFY)
    if connection is None:
        return _error(f"unknown Shopify connection {connection_code!r}", 404)
    if _content_length(request) > settings.WEBHOOK_MAX_BYTES:
        return _bad_input(request, f"body is larger than {settings.WEBHOOK_MAX_BYTES} bytes", "send a smaller body", 413)
    signature = request.headers.get("X-Shopify-Hmac-Sha256", "")
    if not signature:
        return _security_event(request, "shopify", "missing X-Shopify-Hmac-Sha256 header")
    # Verified with THIS connection's secret: a webhook signed for another shop is refused.
    secret = connection.secret("webhook_secret", settings.SHOPIFY["webhook_secret"])
    if not secret:  # an HMAC under an empty key is one anybody can compute: accept nothing
        return _security_event(request, "shopify", f"connection {connection.code!r} has no webhook secret")
    if not hmac.compare_digest(shopify_hmac(secret, request.body), signature):
        return _security_event(request, "shopify", "HMAC signature does not match the body")
    shop_domain = (connection.settings or {}).get("shop_domain") or settings.SHOPIFY.get("shop_domain", "")
    sent_domain = request.headers.get("X-Shopify-Shop-Domain", "")
    if shop_domain and sent_domain.lower() != shop_domain.lower():
        return _security_event(request, "shopify", f"X-Shopify-Shop-Domain {sent_domain[:100]!r} is not this "
                                                   f"connection's shop")
    if not connection.active:
        return _error(f"connection {connection.code!r} is inactive: nothing is accepted for it", 409)
    topic = request.headers.get("X-Shopify-Topic", "")
    webhook_id = request.headers.get("X-Shopify-Webhook-Id", "")
    if not webhook_id:
        return _error("missing X-Shopify-Webhook-Id header", 400)
    if not topic:
        return _error("missing X-Shopify-Topic header", 400)
    event_id = request.headers.get("X-Shopify-Event-Id", "")
    for header, field, value in (("X-Shopify-Topic", "topic", topic), ("X-Shopify-Webhook-Id", "external_id", webhook_id),
                                 ("X-Shopify-Event-Id", "event_id", event_id)):
        try:
            inbound_event_check(**{field: value})
        except InboundEventInvalid as exc:
            return _bad_input(request, f"invalid {header} header", f"{header} {exc.message}")
    triggered, problem = _triggered_at(request.headers.get("X-Shopify-Triggered-At", ""))
    if problem:
        return _bad_input(request, "invalid X-Shopify-Triggered-At header", problem)
    payload, error = _read_json_body(request)
    if error:
        return error
    resource_id = resource_id_for("shopify", topic, payload)
    if flow_for("shopify", topic) == "orders" and not resource_id:
        path = ".".join(SHOPIFY_ORDER_ID_PATHS.get(topic, ("id",)))
        return _bad_input(request, f"{topic} payload has no '{path}'", f"{topic} payloads name their order in '{path}'")
    return _store(
        request,
        connection,
        topic=topic,
        external_id=webhook_id,
        event_id=event_id,
        triggered_at=triggered,
        resource_id=resource_id,
        payload=payload,
        headers={h: request.headers[h] for h in KEPT_HEADERS if h in request.headers},
    )


# How a commercetools connection's Subscription deliveries prove they are its own (connection setting
# `subscription_auth`): the shared bearer token, Google Pub/Sub push's signed OIDC token, or the
# shared secret in the push URL (`?token=…`) where a project prefers it.
SUBSCRIPTION_AUTH_MODES = ("token", "oidc", "url_secret")


def _commercetools_refused(request, connection: Connection) -> JsonResponse | None:
    """None when the delivery is authenticated as this connection's mode asks, else the answer (401
    and a security event; 503 when the keys to check it with cannot be read)."""
    own = connection.settings or {}
    mode = own.get("subscription_auth") or "token"
    if mode == "oidc":
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return _security_event(request, "commercetools", "missing OIDC bearer token")
        # Pub/Sub's default audience is the push endpoint's URL.
        audiences = [own["oidc_audience"]] if own.get("oidc_audience") else [
            request.build_absolute_uri(), request.build_absolute_uri(request.path)]
        try:
            push_token_verify(header[7:].strip(), config=own, audiences=audiences)
        except TokenRefused as exc:
            return _security_event(request, "commercetools", exc.reason)
        except KeysUnavailable as exc:
            log.error("commercetools push for %s not checked: %s", connection.code, exc)
            return _error("the keys to check this push with cannot be read now; deliver it again later", 503)
        return None
    token = connection.secret("subscription_token", settings.COMMERCETOOLS["subscription_token"])
    if mode == "url_secret":
        supplied = request.GET.get("token", "")
        if not supplied or not hmac.compare_digest(supplied.encode(), token.encode()):
            return _security_event(request, "commercetools", "missing or wrong token in the push URL")
        return None
    if mode != "token":
        log.error("commercetools connection %s has subscription_auth %r; expected one of %s", connection.code,
                  mode, ", ".join(SUBSCRIPTION_AUTH_MODES))
        return _error(f"connection {connection.code!r} is misconfigured: nothing is accepted for it", 503)
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not supplied or not hmac.compare_digest(supplied.encode(), token.encode()):
        return _security_event(request, "commercetools", "missing or wrong subscription token")
    return None


@csrf_exempt
@login_not_required
@require_POST
def commercetools_subscription(request, connection_code: str):
    """A Subscription delivery (Platform or CloudEvents format, or inside a Pub/Sub push), stored as one
    message shape (integrations.inbox.ct_delivery); the orders flow applies it in resource order."""
    connection = _connection(connection_code, Platform.COMMERCETOOLS)
    if connection is None:
        return _error(f"unknown commercetools connection {connection_code!r}", 404)
    refused = _commercetools_refused(request, connection)
    if refused is not None:
        return refused
    if not connection.active:
        return _error(f"connection {connection.code!r} is inactive: nothing is accepted for it", 409)
    payload, error = _read_json_body(request)
    if error:
        return error
    try:
        delivery = delivery_read(payload)
    except NotADelivery as exc:
        return _bad_input(request, exc.error, exc.problem)
    return _store(
        request,
        connection,
        topic=delivery.topic,
        external_id=delivery.external_id,
        resource_id=delivery.resource_id,
        payload=delivery.message,
        headers={h: request.headers[h] for h in ("User-Agent", "Content-Type") if h in request.headers},
    )
