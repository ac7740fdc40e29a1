"""The REST ERP's dispatch webhook: verify, store in the inbox, answer. No processing here.

The ERP signs the raw body: `X-Erp-Signature: sha256=<hex HMAC-SHA256 of the body>` with the ERP
connection's webhook secret (credentials `webhook_secret`). The event is stored under the dispatch's
own id, so a redelivery (or the same dispatch confirmed again) finds it and stops.
"""
from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..models import Connection, ConnectionKind
from .store import InboundEventInvalid, inbound_event_check
from .webhooks import _bad_input, _content_length, _error, _read_json_body, _security_event, _store

DISPATCH_CONFIRMED = "dispatch/confirmed"
EVENTS = {"dispatch.confirmed": DISPATCH_CONFIRMED}


def erp_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@csrf_exempt
@login_not_required
@require_POST
def erp_dispatch_webhook(request, connection_code: str):
    connection = Connection.objects.filter(code=connection_code[:50], kind=ConnectionKind.REST_ERP).first()
    if connection is None:
        return _error(f"unknown REST ERP connection {connection_code!r}", 404)
    if _content_length(request) > settings.WEBHOOK_MAX_BYTES:
        return _bad_input(request, f"body is larger than {settings.WEBHOOK_MAX_BYTES} bytes", "send a smaller body", 413)
    signature = request.headers.get("X-Erp-Signature", "")
    if not signature:
        return _security_event(request, "erp", "missing X-Erp-Signature header")
    # No secret configured: nothing can be verified, so nothing is accepted.
    secret = connection.secret("webhook_secret", settings.ERP.get("webhook_secret", ""))
    if not secret or not hmac.compare_digest(erp_signature(secret, request.body), signature.strip()):
        return _security_event(request, "erp", "X-Erp-Signature does not match the body")
    if not connection.active:
        return _error(f"connection {connection.code!r} is inactive: nothing is accepted for it", 409)
    payload, error = _read_json_body(request)
    if error:
        return error
    topic = EVENTS.get(str(payload.get("event") or request.headers.get("X-Erp-Event", "")))
    if topic is None:
        return _bad_input(request, "not a dispatch webhook", "expected event 'dispatch.confirmed'")
    data = payload.get("data")
    dispatch_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(dispatch_id, str) or not dispatch_id:
        return _bad_input(request, "dispatch.confirmed payload has no 'data.id'", "name the dispatch in data.id")
    try:
        inbound_event_check(external_id=f"dispatch:{dispatch_id}", resource_id=dispatch_id)
    except InboundEventInvalid as exc:
        return _bad_input(request, "the dispatch id cannot be stored", f"data.id {exc.message}", 422)
    return _store(request, connection, topic=topic, external_id=f"dispatch:{dispatch_id}", resource_id=dispatch_id,
                  payload=payload, headers={h: request.headers[h] for h in ("X-Erp-Event", "X-Erp-Delivery", "User-Agent")
                                            if h in request.headers})
