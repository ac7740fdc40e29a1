"""The commercetools sandbox's Subscription: each recorded message delivered as a destination gets it.

Formats as the Subscriptions API defines them: Platform (a MessageDeliveryPayload, or a
ResourceCreated/ResourceUpdated change notification) or CloudEvents 1.0 structured JSON (`type`
com.commercetools.order.message.OrderCreated, `source` /<projectKey>/orders, `sequence` as a string,
`dataref`, the Platform payload in `data`). A message larger than the destination accepts comes with
`payloadNotIncluded` {reason, payloadType} instead of its fields. A Google Cloud Pub/Sub destination
pushes it in a push envelope (base64 `message.data`, messageId, publishTime, subscription) with an
OIDC token (RS256 JWT: iss https://accounts.google.com, aud the push endpoint, email the push
service account) signed by the sandbox's own key, published as a JWKS at /_sandbox/oidc/certs.

Test knobs: deliveries out of order (`sequence=[3, 1, 2]`), twice (`twice=True`, at-least-once),
payload not included, forged or expired tokens. Imports nothing of the product.
"""
from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from dataclasses import dataclass, field

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .server import Request, Response

GOOGLE_ISSUER = "https://accounts.google.com"
PUSH_USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
FORMATS = ("Platform", "CloudEvents")
# The fields a MessageDeliveryPayload keeps when its message's own fields are left out.
DELIVERY_FIELDS = ("notificationType", "projectKey", "resource", "resourceUserProvidedIdentifiers", "id", "version",
                   "createdAt", "lastModifiedAt", "sequenceNumber", "resourceVersion")
CREATED_TYPES = ("OrderCreated", "OrderImported")
DEFAULTS = {
    "format": "Platform",
    "changes": False,  # a ChangeSubscription: ResourceCreated / ResourceUpdated instead of messages
    "max_payload_bytes": None,  # larger messages come with payloadNotIncluded (SQS, EventBridge: 256 KB)
    "payload_not_included": False,  # every message without its payload
    "pubsub": False,  # a Google Cloud Pub/Sub push
    "oidc": True,  # …authenticated with an OIDC token (Pub/Sub push authentication)
    "push_endpoint": "",  # where the push goes; the token's audience unless `audience`
    "audience": "",
    "service_account": "commercetools-push@ledgerline-sandbox.iam.gserviceaccount.com",
    "gcp_subscription": "projects/ledgerline-sandbox/subscriptions/commercetools-orders",
    "token": "sandbox-subscription-token",  # bearer token of a plain (non-Pub/Sub) delivery; "" for none
}


@dataclass
class SubscriptionDelivery:
    """One delivery as it goes over the wire: its headers and body (and the commercetools payload inside)."""

    headers: dict
    body: bytes
    payload: dict = field(repr=False)

    def post(self, url: str, *, timeout: float = 5) -> requests.Response:
        return requests.post(url, data=self.body, headers=self.headers, timeout=timeout)


class SubscriptionDeliveries:
    """Mixed into CommercetoolsSandbox: needs `self.lock`, `self.messages`, `self.project_key`."""

    # --- configuration -----------------------------------------------------------------------

    def subscription_reset(self) -> None:
        with self.lock:
            self.subscription = dict(DEFAULTS)
            self.pubsub_ids: dict[str, str] = {}  # commercetools message id -> Pub/Sub messageId
            self.pushes_sent: list[dict] = []

    def configure_subscription(self, **options) -> dict:
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown subscription options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        if "format" in options and options["format"] not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        with self.lock:
            self.subscription.update(options)
            return {k: v for k, v in self.subscription.items() if k != "token"}

    # --- the signing key (the sandbox's stand-in for Google's) -------------------------------

    def _keys(self) -> dict:
        """Generated once per sandbox: the key Google would sign with, and one it never publishes."""
        with self.lock:
            if not hasattr(self, "_oidc_keys"):
                self._oidc_keys = {
                    name: (uuid.uuid4().hex, rsa.generate_private_key(public_exponent=65537, key_size=2048))
                    for name in ("published", "rogue")}
            return self._oidc_keys

    def oidc_jwks(self) -> dict:
        """The published signing keys as a JWKS (the shape of Google's oauth2/v3/certs)."""
        kid, key = self._keys()["published"]
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}

    def oidc_token(self, *, audience: str | None = None, email: str | None = None, expired: bool = False,
                   forged: bool = False, issuer: str = GOOGLE_ISSUER, lifetime: int = 3600) -> str:
        """An OIDC token as Pub/Sub signs it for a push; `forged` signs with a key never published,
        `expired` one that ran out an hour ago."""
        kid, key = self._keys()["rogue" if forged else "published"]
        conf = self.subscription
        now = int(time.time()) - (2 * lifetime if expired else 0)
        email = conf["service_account"] if email is None else email
        claims = {
            "aud": audience if audience is not None else (conf["audience"] or conf["push_endpoint"]),
            "azp": "113774264463038321964", "email": email, "email_verified": True,
            "iat": now, "exp": now + lifetime, "iss": issuer, "sub": "113774264463038321964",
        }
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})

    # --- payloads ----------------------------------------------------------------------------

    def _message_payload(self, message: dict) -> dict:
        """The MessageDeliveryPayload of a message, without its fields when they do not fit."""
        conf = self.subscription
        size = len(json.dumps(message).encode())
        limit = conf["max_payload_bytes"]
        if not (conf["payload_not_included"] or (limit is not None and size > limit)):
            return copy.deepcopy(message)
        payload = {k: copy.deepcopy(message[k]) for k in DELIVERY_FIELDS if k in message}
        payload["payloadNotIncluded"] = {
            "reason": f"The payload of {size} bytes exceeds the size the destination accepts.",
            "payloadType": message["type"]}
        return payload

    @staticmethod
    def _change_payload(message: dict) -> dict:
        """The change notification the update behind a message makes (ResourceCreated / ResourceUpdated)."""
        version = message["resourceVersion"]
        payload = {"notificationType": "ResourceCreated" if message["type"] in CREATED_TYPES else "ResourceUpdated",
                   "projectKey": message["projectKey"], "resource": copy.deepcopy(message["resource"]),
                   "version": version, "modifiedAt": message["lastModifiedAt"]}
        if payload["notificationType"] == "ResourceUpdated":
            payload["oldVersion"] = version - 1
        return payload

    def _cloudevent(self, payload: dict) -> dict:
        resource = payload["resource"]
        if payload["notificationType"] == "Message":
            name = payload.get("type") or payload["payloadNotIncluded"]["payloadType"]
            event = {"specversion": "1.0", "id": payload["id"],
                     "type": f"com.commercetools.{resource['typeId']}.message.{name}",
                     "source": f"/{self.project_key}/{resource['typeId']}s", "subject": resource["id"],
                     "time": payload["lastModifiedAt"], "sequence": str(payload["sequenceNumber"]),
                     "sequencetype": "Integer", "dataref": f"/{self.project_key}/messages/{payload['id']}"}
        else:
            event = {"specversion": "1.0", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(payload, sort_keys=True))),
                     "type": f"com.commercetools.{resource['typeId']}.change.{payload['notificationType']}",
                     "source": f"/{self.project_key}/{resource['typeId']}s", "subject": resource["id"],
                     "time": payload["modifiedAt"]}
        return {**event, "data": payload}

    def _delivery(self, message: dict) -> SubscriptionDelivery:
        conf = self.subscription
        payload = self._change_payload(message) if conf["changes"] else self._message_payload(message)
        body = self._cloudevent(payload) if conf["format"] == "CloudEvents" else payload
        content_type = "application/cloudevents+json" if conf["format"] == "CloudEvents" else "application/json"
        headers = {"Content-Type": content_type, "User-Agent": "commercetools-subscriptions"}
        if conf["pubsub"]:
            key = body.get("id") or json.dumps(payload, sort_keys=True)
            with self.lock:  # a redelivery keeps its Pub/Sub messageId
                pubsub_id = self.pubsub_ids.setdefault(key, str(10_000_000_000_000 + len(self.pubsub_ids)))
            published = message["lastModifiedAt"]
            body = {"message": {"attributes": {"contentType": content_type},
                                "data": base64.b64encode(json.dumps(body).encode()).decode(),
                                "messageId": pubsub_id, "message_id": pubsub_id,
                                "publishTime": published, "publish_time": published},
                    "subscription": conf["gcp_subscription"]}
            headers = {"Content-Type": "application/json", "User-Agent": PUSH_USER_AGENT}
            if conf["oidc"]:
                headers["Authorization"] = f"Bearer {self.oidc_token()}"
        elif conf["token"]:
            headers["Authorization"] = f"Bearer {conf['token']}"
        return SubscriptionDelivery(headers=headers, body=json.dumps(body).encode(), payload=payload)

    def subscription_deliveries(self, order_id: str | None = None, *, sequence: list[int] | None = None,
                                twice: bool = False) -> list[SubscriptionDelivery]:
        """The deliveries of the messages recorded (for one order), oldest first; `sequence` lists the
        sequenceNumbers to deliver, in that order (repeat one to deliver it again), `twice` sends each twice."""
        with self.lock:
            messages = [m for m in self.messages if order_id is None or m["resource"]["id"] == order_id]
        if sequence is not None:
            by_number = {m["sequenceNumber"]: m for m in messages}
            missing = [n for n in sequence if n not in by_number]
            if missing:
                raise ValueError(f"no messages with sequenceNumber {missing} for order {order_id}")
            messages = [by_number[n] for n in sequence]
        deliveries = [self._delivery(m) for m in messages]
        return [d for d in deliveries for _ in range(2)] if twice else deliveries

    def deliver_subscription(self, url: str | None = None, order_id: str | None = None, **options) -> list[int]:
        """POST the deliveries (subscription_deliveries' options) to `url` (default: the push endpoint)
        over HTTP; returns the status of each (0 when the endpoint did not answer)."""
        url = url or self.subscription["push_endpoint"]
        if not url:
            raise ValueError("no push endpoint: configure_subscription(push_endpoint=…) or pass url")
        statuses = []
        for delivery in self.subscription_deliveries(order_id, **options):
            try:
                status = delivery.post(url).status_code
            except requests.RequestException:
                status = 0
            statuses.append(status)
            with self.lock:
                self.pushes_sent.append({"url": url, "status": status, "headers": {
                    k: v for k, v in delivery.headers.items() if k != "Authorization"}})
        return statuses

    # --- admin endpoints ---------------------------------------------------------------------

    def register_subscription_routes(self) -> None:
        self.route("POST", "/_sandbox/subscription", self.admin_configure_subscription)
        self.route("POST", "/_sandbox/subscription/deliver", self.admin_deliver_subscription)
        self.route("GET", "/_sandbox/oidc/certs", self.admin_oidc_certs)

    def admin_configure_subscription(self, request: Request) -> Response:
        try:
            options = json.loads(request.body.decode("utf-8") or "{}")
            return Response.json(self.configure_subscription(**options))
        except (ValueError, TypeError) as exc:
            return Response.json({"statusCode": 400, "message": str(exc),
                                  "errors": [{"code": "InvalidInput", "message": str(exc)}]}, 400)

    def admin_deliver_subscription(self, request: Request) -> Response:
        """{"url"?, "order_id"?, "sequence"?: [3, 1, 2], "twice"?: true} -> {"statuses": [...]}."""
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
            statuses = self.deliver_subscription(body.get("url"), body.get("order_id"),
                                                 sequence=body.get("sequence"), twice=bool(body.get("twice")))
        except (ValueError, TypeError) as exc:
            return Response.json({"statusCode": 400, "message": str(exc),
                                  "errors": [{"code": "InvalidInput", "message": str(exc)}]}, 400)
        return Response.json({"statuses": statuses})

    def admin_oidc_certs(self, request: Request) -> Response:
        return Response.json(self.oidc_jwks(), headers={"Cache-Control": "public, max-age=3600"})
