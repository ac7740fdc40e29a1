"""Webhook endpoints: verify, store in the inbox, answer in milliseconds. No processing here."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError
from django.http import JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .store import inbound_event_store
from .routing import SHOPIFY_ORDER_ID_PATHS, flow_for, resource_id_for
from ..models import Platform, SecurityEvent, Connection
from ..ttl_cache import TtlCache

log = logging.getLogger("ledgerline.webhooks")


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
    connection = _connections.get((code, platform))
    if connection is None:  # an unknown code is asked again next time
        connection = Connection.objects.filter(code=code, kind=platform).first()
        if connection is not None:
            _connections.put((code, platform), connection)
    return connection


def _store(connection: Connection, **event) -> JsonResponse:
    try:
        result = inbound_event_store(connection=connection, **event)
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


def _read_json_body(request):
    """(payload, None) or (None, error response): size, then JSON, then shape."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.WEBHOOK_MAX_BYTES:
        return None, _error(f"body is {length} bytes; the limit is {settings.WEBHOOK_MAX_BYTES}", 413)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BYTES:
        return None, _error(f"body is larger than {settings.WEBHOOK_MAX_BYTES} bytes", 413)
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, _error(f"body is not valid JSON: {exc}", 400)
    if not isinstance(payload, dict):
        return None, _error("body must be a JSON object", 400)
    return payload, None


@csrf_exempt
@login_not_required
@require_POST
def shopify_webhook(request, connection_code: str):
    connection = _connection(connection_code, Platform.SHOPIFY)
    if connection is None:
        return _error(f"unknown Shopify connection {connection_code!r}", 404)
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BYTES:
        return _error(f"body is larger than {settings.WEBHOOK_MAX_BYTES} bytes", 413)
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
    payload, error = _read_json_body(request)
    if error:
        return error
    resource_id = resource_id_for("shopify", topic, payload)
    if flow_for("shopify", topic) == "orders" and not resource_id:
        path = ".".join(SHOPIFY_ORDER_ID_PATHS.get(topic, ("id",)))
        return _error(f"{topic} payload has no '{path}'", 400)
    triggered = parse_datetime(request.headers.get("X-Shopify-Triggered-At", "") or "") or None
    return _store(
        connection,
        topic=topic[:80],
        external_id=webhook_id[:200],
        event_id=request.headers.get("X-Shopify-Event-Id", "")[:200],
        triggered_at=triggered,
        resource_id=resource_id[:200],
        payload=payload,
        headers={h: request.headers[h] for h in KEPT_HEADERS if h in request.headers},
    )


def _unwrap_commercetools_message(payload: dict) -> dict | None:
    """Subscription messages come as the message itself, or wrapped by a Pub/Sub push."""
    if "message" in payload and isinstance(payload["message"], dict) and "data" in payload["message"]:
        try:
            return json.loads(base64.b64decode(payload["message"]["data"]))
        except (ValueError, json.JSONDecodeError):
            return None
    return payload


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
    message = _unwrap_commercetools_message(payload)
    if not isinstance(message, dict) or not message.get("id") or not isinstance(message.get("resource"), dict):
        return _error("not a commercetools Subscription message: needs 'id' and 'resource'", 400)
    type_id = str(message["resource"].get("typeId") or "")
    message_type = str(message.get("type", message.get("notificationType", "Message")))
    # Order messages go to the orders flow; messages about other resources are stored (ignored for now).
    topic = f"message/{message_type}" if type_id == "order" else f"message/{type_id}/{message_type}"
    return _store(
        connection,
        topic=topic[:80],
        external_id=f"message:{message['id']}",
        resource_id=str(message["resource"].get("id", "")),
        payload=message,
    )
