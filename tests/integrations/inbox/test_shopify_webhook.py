"""The Shopify webhook endpoint: verified, stored once, answered without processing."""
import json

import pytest

from integrations.models import InboundEvent, OrderLink, SecurityEvent
from tests.payloads import post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


def test_it_accepts_a_signed_order_webhook_and_stores_it(client, shopify_connection):
    from django_q.models import OrmQ

    payload = shopify_order(financial_status="pending")
    response = post_shopify_webhook(client, payload, topic="orders/create", webhook_id="wh-1")
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    event = InboundEvent.objects.get()
    assert (event.topic, event.external_id, event.resource_id) == ("orders/create", "wh-1", str(payload["id"]))
    assert event.payload == payload
    assert "X-Shopify-Hmac-Sha256" not in event.headers and event.headers["X-Shopify-Webhook-Id"] == "wh-1"
    # Processing is queued (in the same transaction as the event), not done in the request.
    [queued] = OrmQ.objects.all()
    assert queued.task["func"] == "integrations.tasks.process_stored_event"
    assert queued.task["args"] == (shopify_connection.pk, "wh-1")
    # ...and that task, run as a worker runs it, applies this event: the order waits for payment.
    from django.utils.module_loading import import_string

    assert import_string(queued.task["func"])(*queued.task["args"]) == "waiting_payment"
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.DONE


def test_a_redelivery_is_found_by_webhook_id_and_stored_once(client, shopify_connection):
    payload = shopify_order()
    for _ in range(3):
        response = post_shopify_webhook(client, payload, webhook_id="wh-same")
        assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert InboundEvent.objects.count() == 1


@pytest.mark.parametrize(
    "header_kw, reason",
    [
        ({"signature": "bm90IGEgcmVhbCBzaWduYXR1cmU="}, "HMAC signature does not match the body"),
        ({"signature": ""}, "missing X-Shopify-Hmac-Sha256 header"),
        ({"secret": "an-old-rotated-secret"}, "HMAC signature does not match the body"),
    ],
    ids=["forged", "missing", "stale-secret"],
)
def test_it_rejects_a_bad_signature_and_logs_a_security_event(client, shopify_connection, header_kw, reason):
    response = post_shopify_webhook(client, shopify_order(), **header_kw)
    assert response.status_code == 401
    assert response.json() == {"error": reason}
    assert InboundEvent.objects.count() == 0
    assert SecurityEvent.objects.get().reason == reason


def test_a_body_changed_after_signing_is_rejected(client, shopify_connection):
    from tests.payloads import shopify_headers

    signed = json.dumps(shopify_order(financial_status="pending")).encode()
    tampered = signed.replace(b'"pending"', b'"paid"')
    response = client.post("/webhooks/shopify/shopify/", data=tampered, content_type="application/json",
                           headers=shopify_headers(signed))
    assert response.status_code == 401
    assert InboundEvent.objects.count() == 0


def test_malformed_json_gets_a_400_with_a_message_and_nothing_is_written(client, shopify_connection):
    response = post_shopify_webhook(client, b'{"id": 12, "line_items": [', webhook_id="wh-bad")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert InboundEvent.objects.count() == 0


def test_a_json_array_is_rejected(client, shopify_connection):
    response = post_shopify_webhook(client, b"[1, 2]")
    assert response.status_code == 400
    assert response.json()["error"] == "body must be a JSON object"


def test_an_oversized_body_is_rejected_with_413(client, shopify_connection, settings):
    settings.WEBHOOK_MAX_BYTES = 1000
    payload = shopify_order()
    payload["note"] = "x" * 2000
    response = post_shopify_webhook(client, payload)
    assert response.status_code == 413
    assert "limit" in response.json()["error"] or "larger" in response.json()["error"]
    assert InboundEvent.objects.count() == 0


def test_a_topic_with_no_flow_is_stored_and_counted_as_ignored_not_refused(client, shopify_connection, ops_user):
    product = {"id": 632910392, "title": "IPod Nano - 8GB", "admin_graphql_api_id": "gid://shopify/Product/632910392"}
    response = post_shopify_webhook(client, product, topic="products/update")
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    event = InboundEvent.objects.get()
    assert (event.topic, event.status) == ("products/update", InboundEvent.Status.IGNORED)
    assert not OrderLink.objects.exists()  # never mistaken for an order
    client.force_login(ops_user)
    assert "1 event stored with no flow yet" in client.get("/").content.decode()


def test_an_unknown_connection_is_404(client, shopify_connection):
    response = post_shopify_webhook(client, shopify_order(), connection_code="nope")
    assert response.status_code == 404


def test_it_rejects_get(client, shopify_connection):
    assert client.get("/webhooks/shopify/shopify/").status_code == 405


def test_the_webhook_needs_no_login_but_pages_do(client, shopify_connection):
    assert post_shopify_webhook(client, shopify_order()).status_code == 200
    response = client.get("/orders/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_health_endpoint_is_public(client, db):
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)  # the foreign key is checked when the event commits
def test_a_webhook_for_a_connection_removed_since_the_last_one_gets_a_404(client, shopify_connection):
    # The endpoint keeps connections a few seconds per process; a removed one must not be a 500.
    assert post_shopify_webhook(client, shopify_order(), webhook_id="wh-a").status_code == 200
    InboundEvent.objects.all().delete()
    from integrations.models import Connection

    # Removed by another process: this one's copy is not cleared (no signal here).
    Connection.objects.filter(pk=shopify_connection.pk)._raw_delete("default")
    response = post_shopify_webhook(client, shopify_order(), webhook_id="wh-b")
    assert response.status_code == 404 and "connection 'shopify'" in response.json()["error"]
    assert InboundEvent.objects.count() == 0


def test_a_connection_without_a_webhook_secret_accepts_nothing_even_signed_with_the_empty_key(
        client, shopify_connection, settings):
    # No secret on the connection and none in the environment: an HMAC under "" is anybody's.
    settings.SHOPIFY = {**settings.SHOPIFY, "webhook_secret": ""}
    shopify_connection.credentials = {**(shopify_connection.credentials or {}), "webhook_secret": ""}
    shopify_connection.save()
    response = post_shopify_webhook(client, shopify_order(), secret="")
    assert response.status_code == 401
    assert not InboundEvent.objects.exists() and not OrderLink.objects.exists()
    assert "no webhook secret" in SecurityEvent.objects.get().reason
