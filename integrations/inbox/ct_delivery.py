"""commercetools Subscription deliveries read into one message shape for the inbox: the Platform format
(a Message, or a ResourceCreated/Updated/Deleted change notification) or CloudEvents 1.0 (the same
payload in `data`), either one optionally inside a Google Pub/Sub push envelope (base64 `message.data`).

What is stored is the Platform payload, so the flows read one shape; the delivery's own wrapping
(CloudEvents attributes, the Pub/Sub envelope without its data) is kept beside it under
DELIVERY_KEY, so the raw delivery can be told from the stored event.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from config.safe_json import UnsafeJSON, loads as safe_json_loads

# Where the stored message keeps how it was delivered (format, CloudEvents attributes, Pub/Sub envelope).
DELIVERY_KEY = "ledgerlineDelivery"

MESSAGE = "Message"
CHANGE_NOTIFICATIONS = ("ResourceCreated", "ResourceUpdated", "ResourceDeleted")
CLOUDEVENTS_VERSION = "1.0"
CLOUDEVENTS_TYPE_PREFIX = "com.commercetools."
MAX_WHOLE = 2**63 - 1  # sequence numbers and versions are stored as 64-bit integers


class NotADelivery(ValueError):
    """The body is not a commercetools Subscription delivery; `problem` says why (for a 400)."""

    def __init__(self, problem: str, *, error: str = "not a commercetools Subscription message"):
        super().__init__(problem)
        self.problem = problem
        self.error = error


@dataclass(frozen=True)
class Delivery:
    """One delivery, read: the Platform payload to store and the inbox columns it fills."""

    message: dict
    topic: str
    external_id: str
    resource_id: str
    resource_type: str
    notification_type: str


def _unwrap_pubsub(payload: dict) -> tuple[dict, dict | None]:
    """(the delivery inside, the envelope without its data) for a Pub/Sub push; (payload, None) otherwise."""
    inner = payload.get("message")
    if not (isinstance(inner, dict) and "data" in inner):
        return payload, None
    data = inner["data"]
    if not isinstance(data, str):
        raise NotADelivery("Pub/Sub message.data must be a base64 string")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise NotADelivery("Pub/Sub message.data is not base64") from None
    try:
        delivery = safe_json_loads(decoded)
    except UnsafeJSON as exc:
        raise NotADelivery(f"Pub/Sub message.data {exc.problem}: {exc.message}") from None
    if not isinstance(delivery, dict):
        raise NotADelivery("Pub/Sub message.data must hold one JSON object")
    envelope = {key: value for key, value in payload.items() if key != "message"}
    envelope["message"] = {key: value for key, value in inner.items() if key != "data"}
    return delivery, envelope


def _from_cloudevent(event: dict) -> tuple[dict, dict]:
    """(the Platform payload in `data`, the CloudEvents attributes) of a structured CloudEvent."""
    if event.get("specversion") != CLOUDEVENTS_VERSION:
        raise NotADelivery(f"CloudEvents specversion {str(event.get('specversion'))[:20]!r} is not supported; "
                           f"commercetools sends {CLOUDEVENTS_VERSION}")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type.startswith(CLOUDEVENTS_TYPE_PREFIX):
        raise NotADelivery(f"a CloudEvent from commercetools has a 'type' starting with {CLOUDEVENTS_TYPE_PREFIX}")
    data = event.get("data")
    if not isinstance(data, dict):
        raise NotADelivery("a commercetools CloudEvent carries its payload as a JSON object in 'data'")
    attributes = {key: value for key, value in event.items() if key != "data"}
    message = dict(data)
    if not isinstance(message.get("resource"), dict) and isinstance(event.get("subject"), str):
        # `type` is com.commercetools.<typeId>.<message|change>.<name>, `subject` the resource id.
        message["resource"] = {"typeId": event_type.split(".")[2], "id": event["subject"]}
    return message, attributes


def _whole(message: dict, name: str) -> int | None:
    value = message.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_WHOLE:
        raise NotADelivery(f"'{name}' must be a whole number (at most {MAX_WHOLE})")
    return value


def delivery_read(payload: dict) -> Delivery:
    """The delivery in a request body (already size- and JSON-checked), or NotADelivery."""
    body, envelope = _unwrap_pubsub(payload)
    attributes = None
    if "specversion" in body:
        message, attributes = _from_cloudevent(body)
    else:
        message = dict(body)
    notification = message.get("notificationType", MESSAGE)
    resource = message.get("resource")
    if notification in CHANGE_NOTIFICATIONS:
        if not isinstance(resource, dict) or not isinstance(resource.get("id"), str) or not resource["id"]:
            raise NotADelivery(f"a {notification} notification needs 'resource' with its 'id'")
    elif notification != MESSAGE:
        raise NotADelivery(f"notificationType {str(notification)[:40]!r} is not one commercetools sends "
                           f"(Message, {', '.join(CHANGE_NOTIFICATIONS)})")
    elif not message.get("id") or not isinstance(resource, dict):
        raise NotADelivery("needs 'id' and 'resource'", error="not a commercetools Subscription message: needs "
                                                                 "'id' and 'resource'")
    elif not isinstance(message["id"], str):
        raise NotADelivery("'id' must be a string")
    for name in ("sequenceNumber", "resourceVersion", "version", "oldVersion"):
        _whole(message, name)
    type_id = str(resource.get("typeId") or "")
    resource_id = resource.get("id", "")
    if not isinstance(resource_id, str):
        raise NotADelivery("'resource.id' must be a string")
    if notification == MESSAGE:
        not_included = message.get("payloadNotIncluded")
        if not_included is not None and not isinstance(not_included, dict):
            raise NotADelivery("'payloadNotIncluded' must be an object with 'reason' and 'payloadType'")
        # A message too large for its destination comes without its fields: its type is payloadType.
        name = str(message.get("type") or (not_included or {}).get("payloadType") or MESSAGE)
        # Order messages go to the orders flow; messages about other resources are stored (ignored for now).
        topic = f"message/{name}" if type_id == "order" else f"message/{type_id}/{name}"
        external_id = f"message:{message['id']}"
    else:
        version = _whole(message, "version")
        if version is None:
            raise NotADelivery(f"a {notification} notification needs the resource's 'version'")
        topic = f"change/{notification}" if type_id == "order" else f"change/{type_id}/{notification}"
        # Change notifications carry no id of their own: the resource at its version names one.
        external_id = f"change:{type_id}:{resource_id}@{version}:{notification}"
    delivered = {"format": "CloudEvents" if attributes is not None else "Platform"}
    if attributes is not None:
        delivered["cloudEvent"] = attributes
    if envelope is not None:
        delivered["pubsub"] = envelope
    message[DELIVERY_KEY] = delivered
    return Delivery(message=message, topic=topic, external_id=external_id, resource_id=resource_id,
                    resource_type=type_id, notification_type=notification)


def payload_included(message: dict) -> bool:
    """Does a stored order message carry the order (OrderCreated, OrderImported) rather than only name it?"""
    return isinstance(message.get("order"), dict) and "payloadNotIncluded" not in message
