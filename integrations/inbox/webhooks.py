"""Webhook endpoints: verify, store in the inbox, answer in milliseconds. No processing here."""
from __future__ import annotations

import base64
import binascii
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

from .store import InboundEventInvalid, inbound_event_check, inbound_event_store
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
    _connections.clear()


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


def _unwrap_commercetools_message(payload: dict):
    """(message, None) or (None, problem): Subscription messages come as the message itself, or
    wrapped by a Pub/Sub push whose message.data is the message's JSON in base64."""
    if not ("message" in payload and isinstance(payload["message"], dict) and "data" in payload["message"]):
        return payload, None
    data = payload["message"]["data"]
    if not isinstance(data, str):
        return None, "Pub/Sub message.data must be a base64 string"
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None, "Pub/Sub message.data is not base64"
    try:
        return safe_json_loads(decoded), None
    except UnsafeJSON as exc:
        return None, f"Pub/Sub message.data {exc.problem}: {exc.message}"


@csrf_exempt
@login_not_required
@require_POST
def commercetools_subscription(request, connection_code: str):
    connection = _connection(connection_code, Platform.COMMERCETOOLS)
    if connection is None:
        return _error(f"unknown commercetools connection {connection_code!r}", 404)
    token = connection.secret("subscription_token", settings.COMMERCETOOLS["subscription_token"])
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not supplied or not hmac.compare_digest(supplied, token):
        return _security_event(request, "commercetools", "missing or wrong subscription token")
    if not connection.active:
        return _error(f"connection {connection.code!r} is inactive: nothing is accepted for it", 409)
    payload, error = _read_json_body(request)
    if error:
        return error
    message, problem = _unwrap_commercetools_message(payload)
    if problem:
        return _bad_input(request, "not a commercetools Subscription message", problem)
    if not isinstance(message, dict) or not message.get("id") or not isinstance(message.get("resource"), dict):
        return _error("not a commercetools Subscription message: needs 'id' and 'resource'", 400)
    if not isinstance(message["id"], str):
        return _bad_input(request, "not a commercetools Subscription message", "'id' must be a string")
    type_id = str(message["resource"].get("typeId") or "")
    message_type = str(message.get("type", message.get("notificationType", "Message")))
    # Order messages go to the orders flow; messages about other resources are stored (ignored for now).
    topic = f"message/{message_type}" if type_id == "order" else f"message/{type_id}/{message_type}"
    return _store(
        request,
        connection,
        topic=topic,
        external_id=f"message:{message['id']}",
        resource_id=str(message["resource"].get("id", "")),
        payload=message,
    )
