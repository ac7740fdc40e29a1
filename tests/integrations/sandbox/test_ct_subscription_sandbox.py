"""The commercetools sandbox's Subscription deliveries, as a destination sees them (checked here with
PyJWT and plain HTTP, never the product): Platform and CloudEvents payloads, payloads not included,
change notifications, Google Pub/Sub push envelopes with OIDC tokens, out-of-order and repeated
deliveries, and delivery over real HTTP."""
import ast
import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests

PROJECT = "ledgerline-demo"
PUSH_ENDPOINT = "https://ledgerline.example/webhooks/commercetools/ct-eu/"


@pytest.fixture
def ct(sandbox):
    return sandbox.commercetools


def order_with_three_messages(ct):
    order = ct.create_order(payment_state="Pending")
    ct.set_payment_state(order["id"], "Failed")
    ct.set_payment_state(order["id"], "Paid")
    return order


def test_a_platform_delivery_is_a_message_delivery_payload(ct):
    order = ct.create_order(payment_state="Paid", order_number="WEB-7")
    [delivery] = ct.subscription_deliveries(order["id"])
    body = json.loads(delivery.body)
    assert delivery.headers["Content-Type"] == "application/json"
    assert (body["notificationType"], body["projectKey"], body["type"]) == ("Message", PROJECT, "OrderCreated")
    assert body["resource"] == {"typeId": "order", "id": order["id"]}
    assert body["resourceUserProvidedIdentifiers"] == {"orderNumber": "WEB-7"}
    assert (body["sequenceNumber"], body["resourceVersion"], body["version"]) == (1, 1, 1)
    assert body["order"]["id"] == order["id"] and "payloadNotIncluded" not in body


def test_a_cloudevents_delivery_carries_the_platform_payload_in_data(ct):
    ct.configure_subscription(format="CloudEvents")
    order = order_with_three_messages(ct)
    deliveries = ct.subscription_deliveries(order["id"])
    event = json.loads(deliveries[1].body)
    assert deliveries[1].headers["Content-Type"] == "application/cloudevents+json"
    assert event["specversion"] == "1.0"
    assert event["type"] == "com.commercetools.order.message.OrderPaymentStateChanged"
    assert (event["source"], event["subject"]) == (f"/{PROJECT}/orders", order["id"])
    assert (event["sequence"], event["sequencetype"]) == ("2", "Integer")  # a string, as CloudEvents asks
    assert event["dataref"] == f"/{PROJECT}/messages/{event['id']}"
    assert event["id"] == event["data"]["id"] and event["time"] == event["data"]["lastModifiedAt"]
    assert event["data"]["paymentState"] == "Failed" and event["data"]["notificationType"] == "Message"


@pytest.mark.parametrize("options", [{"payload_not_included": True}, {"max_payload_bytes": 512}],
                         ids=["forced", "too-large"])
def test_a_message_too_large_keeps_only_the_delivery_fields(ct, options):
    ct.configure_subscription(**options)
    order = ct.create_order(payment_state="Paid")
    [delivery] = ct.subscription_deliveries(order["id"])
    body = json.loads(delivery.body)
    assert set(body) == {"notificationType", "projectKey", "resource", "resourceUserProvidedIdentifiers", "id",
                         "version", "createdAt", "lastModifiedAt", "sequenceNumber", "resourceVersion",
                         "payloadNotIncluded"}
    assert body["payloadNotIncluded"]["payloadType"] == "OrderCreated" and body["payloadNotIncluded"]["reason"]


def test_a_small_message_fits_under_the_size_limit(ct):
    ct.configure_subscription(max_payload_bytes=1_000_000)
    [delivery] = ct.subscription_deliveries(ct.create_order()["id"])
    assert "order" in json.loads(delivery.body)


def test_a_change_subscription_sends_resource_created_then_updated(ct):
    ct.configure_subscription(changes=True)
    order = order_with_three_messages(ct)
    created, failed, paid = (json.loads(d.body) for d in ct.subscription_deliveries(order["id"]))
    assert created == {"notificationType": "ResourceCreated", "projectKey": PROJECT, "version": 1,
                       "resource": {"typeId": "order", "id": order["id"]}, "modifiedAt": created["modifiedAt"]}
    assert (paid["notificationType"], paid["version"], paid["oldVersion"]) == ("ResourceUpdated", 3, 2)


def test_deliveries_can_come_out_of_order_and_twice(ct):
    order = order_with_three_messages(ct)
    numbers = [json.loads(d.body)["sequenceNumber"] for d in ct.subscription_deliveries(order["id"], sequence=[3, 1, 2, 1])]
    assert numbers == [3, 1, 2, 1]
    twice = ct.subscription_deliveries(order["id"], twice=True)
    assert [json.loads(d.body)["sequenceNumber"] for d in twice] == [1, 1, 2, 2, 3, 3]
    assert twice[0].body == twice[1].body
    with pytest.raises(ValueError, match="no messages with sequenceNumber"):
        ct.subscription_deliveries(order["id"], sequence=[4])


# --- Google Pub/Sub push ----------------------------------------------------------------------

def published_keys(sandbox) -> jwt.PyJWKSet:
    response = requests.get(f"{sandbox.url}/commercetools/_sandbox/oidc/certs", timeout=5)
    assert response.status_code == 200 and "max-age" in response.headers["Cache-Control"]
    return jwt.PyJWKSet.from_dict(response.json())


def verify(sandbox, token: str) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    keys = {key.key_id: key for key in published_keys(sandbox).keys}
    if kid not in keys:
        raise jwt.InvalidSignatureError("unknown kid")
    return jwt.decode(token, keys[kid].key, algorithms=["RS256"], audience=PUSH_ENDPOINT)


def test_a_pubsub_push_wraps_the_delivery_and_signs_an_oidc_token(sandbox, ct):
    ct.configure_subscription(pubsub=True, push_endpoint=PUSH_ENDPOINT, format="CloudEvents")
    order = ct.create_order()
    [delivery] = ct.subscription_deliveries(order["id"])
    envelope = json.loads(delivery.body)
    assert envelope["subscription"] == "projects/ledgerline-sandbox/subscriptions/commercetools-orders"
    message = envelope["message"]
    assert message["messageId"] == message["message_id"] and message["publishTime"] == message["publish_time"]
    inner = json.loads(base64.b64decode(message["data"]))
    assert inner["specversion"] == "1.0" and inner["data"]["resource"]["id"] == order["id"]
    scheme, token = delivery.headers["Authorization"].split(" ")
    claims = verify(sandbox, token)
    assert scheme == "Bearer"
    assert claims["iss"] == "https://accounts.google.com" and claims["aud"] == PUSH_ENDPOINT
    assert claims["email"] == "commercetools-push@ledgerline-sandbox.iam.gserviceaccount.com"
    assert claims["email_verified"] is True and claims["exp"] > claims["iat"]
    # A redelivery is the same Pub/Sub message.
    [again] = ct.subscription_deliveries(order["id"])
    assert json.loads(again.body)["message"]["messageId"] == message["messageId"]


def test_forged_and_expired_tokens_do_not_verify_with_the_published_keys(sandbox, ct):
    ct.configure_subscription(pubsub=True, push_endpoint=PUSH_ENDPOINT)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(sandbox, ct.oidc_token(forged=True))
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(sandbox, ct.oidc_token(expired=True))
    with pytest.raises(jwt.InvalidAudienceError):
        verify(sandbox, ct.oidc_token(audience="https://elsewhere.example/"))


def test_a_plain_delivery_carries_the_shared_bearer_token(ct):
    [delivery] = ct.subscription_deliveries(ct.create_order()["id"])
    assert delivery.headers["Authorization"] == "Bearer sandbox-subscription-token"
    ct.configure_subscription(token="")
    [delivery] = ct.subscription_deliveries(ct.create_order()["id"])
    assert "Authorization" not in delivery.headers


def test_unknown_options_are_refused(ct):
    with pytest.raises(ValueError, match="unknown subscription options"):
        ct.configure_subscription(colour="blue")
    with pytest.raises(ValueError, match="format must be one of"):
        ct.configure_subscription(format="XML")


# --- over HTTP --------------------------------------------------------------------------------

@pytest.fixture
def receiver():
    """A destination on loopback that records each POST and answers 204."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/push?token=s3cr3t", seen
    server.shutdown()


def test_the_sandbox_pushes_deliveries_over_http(ct, receiver):
    url, seen = receiver
    ct.configure_subscription(pubsub=True, push_endpoint=url)
    order = order_with_three_messages(ct)
    assert ct.deliver_subscription(order_id=order["id"], sequence=[2, 1]) == [204, 204]
    assert [json.loads(base64.b64decode(json.loads(r["body"])["message"]["data"]))["sequenceNumber"]
            for r in seen] == [2, 1]
    assert seen[0]["path"] == "/push?token=s3cr3t"
    assert seen[0]["headers"]["Authorization"].startswith("Bearer ")
    assert "Authorization" not in ct.pushes_sent[0]["headers"]


def test_another_process_configures_and_triggers_deliveries_through_admin_endpoints(sandbox, ct, receiver):
    url, seen = receiver
    admin = f"{sandbox.url}/commercetools/_sandbox/subscription"
    response = requests.post(admin, json={"format": "CloudEvents", "push_endpoint": url}, timeout=5)
    assert response.status_code == 200 and response.json()["format"] == "CloudEvents"
    assert "token" not in response.json()
    order = ct.create_order()
    response = requests.post(f"{admin}/deliver", json={"order_id": order["id"], "twice": True}, timeout=5)
    assert response.json() == {"statuses": [204, 204]}
    assert [json.loads(r["body"])["type"] for r in seen] == ["com.commercetools.order.message.OrderCreated"] * 2
    response = requests.post(admin, json={"format": "XML"}, timeout=5)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "InvalidInput"


def test_the_subscription_module_imports_nothing_from_the_product():
    source = (Path(__file__).resolve().parents[3] / "integrations" / "sandbox" / "ct_subscription.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)
    assert not {name for name in imported if name.split(".")[0] in {"integrations", "mappings", "exceptions_queue",
                                                                    "config"}}
