"""Hostile or malformed webhook deliveries get a clear 4xx with a message and write nothing (issue 13).

Every value is checked by the product itself, so these hold on SQLite (which enforces no column
length) and on PostgreSQL (which refuses NUL and over-long text with a DataError) alike."""
import base64
import json
import logging

import pytest

from integrations.models import InboundEvent, SecurityEvent
from tests.payloads import post_shopify_webhook, shopify_headers, shopify_order

pytestmark = pytest.mark.django_db

CT_URL = "/webhooks/commercetools/commercetools/"
CT_HEADERS = {"Authorization": "Bearer sandbox-subscription-token"}


def deep(levels: int) -> bytes:
    return b'{"id": 1, "note": ' + b"[" * levels + b"]" * levels + b"}"


def ct_message(**extra) -> dict:
    return {"id": "0f5c7ea4-5d5f-4f3e-9c55-5a0c7b5f3c11", "type": "OrderCreated", "version": 1,
            "resource": {"typeId": "order", "id": "b7a1c7de-0d38-4a55-8a5d-6b4b1f1c2d3e"}, **extra}


def post_ct(client, body: bytes | dict):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(CT_URL, data=data, content_type="application/json", headers=CT_HEADERS)


def assert_refused(response, status: int, error_part: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert error_part in body["error"] and body["message"]
    assert InboundEvent.objects.count() == 0


# --- X-Shopify-Triggered-At ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["2026-13-45T99:00:00Z", "yesterday", "9999-12-31T23:59:59-05:00"],
                         ids=["impossible-date", "not-a-date", "beyond-year-9999-in-utc"])
def test_an_invalid_triggered_at_header_is_400(client, shopify_connection, value):
    body = json.dumps(shopify_order()).encode()
    headers = {**shopify_headers(body), "X-Shopify-Triggered-At": value}
    response = client.post("/webhooks/shopify/shopify/", data=body, content_type="application/json", headers=headers)
    assert_refused(response, 400, "X-Shopify-Triggered-At")
    assert "ISO 8601" in response.json()["message"]


def test_a_valid_triggered_at_header_is_stored(client, shopify_connection):
    body = json.dumps(shopify_order()).encode()
    headers = {**shopify_headers(body), "X-Shopify-Triggered-At": "2026-11-20T09:00:27.877041743Z"}
    response = client.post("/webhooks/shopify/shopify/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert InboundEvent.objects.get().triggered_at.isoformat() == "2026-11-20T09:00:27.877041+00:00"


# --- deep nesting ----------------------------------------------------------------------------

def test_json_nested_thousands_deep_in_a_shopify_body_is_400(client, shopify_connection):
    assert_refused(post_shopify_webhook(client, deep(5000)), 400, "nested too deeply")


def test_json_nested_a_few_levels_is_accepted(client, shopify_connection):
    payload = shopify_order(note_attributes=[{"name": "gift", "value": [[[["wrapped"]]]]}])
    assert post_shopify_webhook(client, payload).status_code == 200


def test_json_nested_thousands_deep_in_a_commercetools_body_is_400(client, ct_connection):
    assert_refused(post_ct(client, deep(5000)), 400, "nested too deeply")


def test_json_nested_thousands_deep_inside_pubsub_data_is_400(client, ct_connection):
    envelope = {"message": {"data": base64.b64encode(deep(5000)).decode(), "messageId": "1"}}
    assert_refused(post_ct(client, envelope), 400, "not a commercetools Subscription message")
    assert "nested too deeply" in post_ct(client, envelope).json()["message"]


# --- the Pub/Sub envelope --------------------------------------------------------------------

@pytest.mark.parametrize("data, says", [
    (123, "must be a base64 string"),
    ({"id": "x"}, "must be a base64 string"),
    (None, "must be a base64 string"),
    ("%%% not base64 %%%", "is not base64"),
    (base64.b64encode(b"this is not JSON").decode(), "is not valid JSON"),
    (base64.b64encode(b'{"id": "m1", "resource": {"typeId": "order", "id": NaN}}').decode(), "is not valid JSON"),
], ids=["number", "object", "null", "not-base64", "base64-of-text", "base64-of-nan"])
def test_a_pubsub_envelope_with_unusable_data_is_400(client, ct_connection, data, says):
    response = post_ct(client, {"message": {"data": data, "messageId": "1"}})
    assert_refused(response, 400, "not a commercetools Subscription message")
    assert says in response.json()["message"]


def test_a_message_id_that_is_not_a_string_is_400(client, ct_connection):
    response = post_ct(client, ct_message(id={"$gt": ""}))
    assert_refused(response, 400, "not a commercetools Subscription message")


# --- NaN / Infinity --------------------------------------------------------------------------

@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_shopify_body_are_400_not_unknown_connection(client, shopify_connection, constant):
    body = json.dumps(shopify_order()).replace('"total_price": "', f'"total_weight": {constant}, "total_price": "', 1)
    response = post_shopify_webhook(client, body.encode())
    assert_refused(response, 400, "not valid JSON")
    assert constant in response.json()["message"]


def test_a_number_too_large_for_a_float_is_400(client, ct_connection):
    body = json.dumps(ct_message()).replace('"version": 1', '"version": 1e999').encode()
    assert_refused(post_ct(client, body), 400, "not valid JSON")


@pytest.mark.parametrize("constant", ["NaN", "Infinity"])
def test_nan_in_a_commercetools_body_is_400(client, ct_connection, constant):
    body = json.dumps(ct_message()).replace('"version": 1', f'"version": {constant}').encode()
    assert_refused(post_ct(client, body), 400, "not valid JSON")


# --- NUL characters and unstorable text ------------------------------------------------------

def test_a_nul_character_in_a_shopify_body_is_400(client, shopify_connection):
    response = post_shopify_webhook(client, shopify_order(note="gift\u0000wrap"))
    assert_refused(response, 400, "cannot be stored")
    assert "NUL" in response.json()["message"]


def test_a_nul_character_in_a_json_key_is_400(client, ct_connection):
    assert_refused(post_ct(client, ct_message(**{"custom\u0000": 1})), 400, "cannot be stored")


def test_an_unpaired_surrogate_in_a_body_is_400(client, ct_connection):
    body = json.dumps(ct_message()).replace('"OrderCreated"', '"Order\\ud800Created"').encode()
    assert_refused(post_ct(client, body), 400, "cannot be stored")


def test_a_nul_character_in_a_webhook_header_is_400_and_no_security_event_is_written(client, shopify_connection):
    body = json.dumps(shopify_order()).encode()
    headers = {**shopify_headers(body, signature="forged"), "User-Agent": "Shopify\x00Hook"}
    response = client.post("/webhooks/shopify/shopify/", data=body, content_type="application/json", headers=headers)
    assert_refused(response, 400, "User-Agent")
    assert SecurityEvent.objects.count() == 0


# --- values longer than their column ---------------------------------------------------------

@pytest.mark.parametrize("header_kw, header", [
    ({"webhook_id": "w" * 201}, "X-Shopify-Webhook-Id"),
    ({"event_id": "e" * 201}, "X-Shopify-Event-Id"),
    ({"topic": "orders/" + "x" * 80}, "X-Shopify-Topic"),
], ids=["webhook-id", "event-id", "topic"])
def test_a_header_longer_than_its_column_is_400_not_truncated(client, shopify_connection, header_kw, header):
    response = post_shopify_webhook(client, shopify_order(), **header_kw)
    assert_refused(response, 400, header)
    assert "at most" in response.json()["message"]


def test_ids_of_exactly_the_column_length_are_stored_whole(client, shopify_connection):
    response = post_shopify_webhook(client, shopify_order(), webhook_id="w" * 200, event_id="e" * 200)
    assert response.status_code == 200
    assert InboundEvent.objects.get().external_id == "w" * 200


def test_an_order_id_longer_than_its_column_is_422(client, shopify_connection):
    response = post_shopify_webhook(client, shopify_order(order_id=int("9" * 201)))
    assert_refused(response, 422, "the order id")


@pytest.mark.parametrize("message, what", [
    (ct_message(id="m" * 300), "the message id"),
    (ct_message(type="T" * 100), "the message type"),
    (ct_message(resource={"typeId": "order", "id": "r" * 201}), "the order id"),
], ids=["message-id", "type", "resource-id"])
def test_a_commercetools_value_longer_than_its_column_is_422(client, ct_connection, message, what):
    assert_refused(post_ct(client, message), 422, what)


def test_a_connection_code_longer_than_any_connection_is_404(client, shopify_connection):
    response = post_shopify_webhook(client, shopify_order(), connection_code="s" * 300)
    assert response.status_code == 404
    assert InboundEvent.objects.count() == 0


# --- logging ---------------------------------------------------------------------------------

def test_a_refusal_is_logged_as_a_warning_without_the_body_or_the_secret(client, shopify_connection, caplog):
    with caplog.at_level(logging.WARNING, logger="ledgerline"):
        response = post_shopify_webhook(client, shopify_order(note="secret-note\u0000"))
    assert response.status_code == 400
    [record] = [r for r in caplog.records if r.name == "ledgerline.inbox"]
    assert record.levelno == logging.WARNING
    assert "secret-note" not in record.getMessage()
    assert "sandbox-shopify-webhook-secret" not in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
