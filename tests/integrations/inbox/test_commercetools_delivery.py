"""commercetools Subscription deliveries as the sandbox sends them: Platform and CloudEvents formats,
Google Pub/Sub push with its OIDC token (or a secret in the push URL), payloads not included, and
messages arriving twice and out of order, applied in sequenceNumber order per order."""
import logging
from datetime import timedelta

import jwt
import pytest
import requests_mock
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.cache import cache
from django.utils import timezone

from integrations.flows.orders.sweep import orders_sweep
from integrations.inbox.oidc import GOOGLE_CERTS_URL
from integrations.models import CommercetoolsResourceSequence, InboundEvent, OrderLink, SecurityEvent

pytestmark = pytest.mark.django_db

URL = "/webhooks/commercetools/commercetools/"
ENDPOINT = f"http://testserver{URL}"  # the push endpoint's URL, as the test client's requests see it


def deliver(client, capture, deliveries, url=URL) -> list[int]:
    """Post each sandbox delivery as it would come over the wire; run what it queues."""
    statuses = []
    for delivery in deliveries:
        headers = {k: v for k, v in delivery.headers.items() if k != "Content-Type"}
        with capture(execute=True):
            response = client.post(url, data=delivery.body, content_type=delivery.headers["Content-Type"],
                                   headers=headers)
        statuses.append(response.status_code)
    return statuses


def paid_order(ct, **fields):
    return ct.create_order(customer_email="hugo@example.co.uk", currency="GBP", country="GB",
                           payment_state=fields.pop("payment_state", "Paid"),
                           line_items=[{"sku": "MUG-001", "name": "Mug", "quantity": 2, "price": "9.50",
                                        "tax_rate": 0.2}], **fields)


def use_oidc(connection, ct, **settings):
    connection.settings = {**connection.settings, "subscription_auth": "oidc", "oidc_jwks": ct.oidc_jwks(),
                           "oidc_email": ct.subscription["service_account"], **settings}
    connection.save()
    ct.configure_subscription(pubsub=True, push_endpoint=ENDPOINT)


# --- formats ---------------------------------------------------------------------------------

def test_a_cloudevents_delivery_posts_its_order_and_is_stored_as_the_platform_message(
        client, order_setup, ct_connection, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    ct.configure_subscription(format="CloudEvents")
    order = paid_order(ct)
    assert deliver(client, django_capture_on_commit_callbacks, ct.subscription_deliveries(order["id"])) == [200]
    [sales_order] = order_setup.erp.sales_orders
    assert sales_order["lines"][0]["line_total"] == "19.00"
    event = InboundEvent.objects.get()
    assert (event.topic, event.external_id, event.resource_id) == (
        "message/OrderCreated", f"message:{ct.messages[0]['id']}", order["id"])
    # One shape for the flows: the Platform message; the CloudEvent's own attributes kept beside it.
    assert event.payload["notificationType"] == "Message" and event.payload["sequenceNumber"] == 1
    delivered = event.payload["ledgerlineDelivery"]
    assert delivered["format"] == "CloudEvents"
    assert delivered["cloudEvent"]["type"] == "com.commercetools.order.message.OrderCreated"
    assert delivered["cloudEvent"]["source"] == "/ledgerline-demo/orders"
    assert "data" not in delivered["cloudEvent"]


def test_the_same_message_in_both_formats_is_one_event(client, order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = paid_order(ct)
    platform = ct.subscription_deliveries(order["id"])
    ct.configure_subscription(format="CloudEvents")
    cloudevents = ct.subscription_deliveries(order["id"])
    assert deliver(client, django_capture_on_commit_callbacks, platform + cloudevents) == [200, 200]
    assert InboundEvent.objects.count() == 1
    assert len(order_setup.erp.sales_orders) == 1


@pytest.mark.parametrize("delivery_format", ["Platform", "CloudEvents"])
def test_a_change_notification_fetches_the_order_and_posts_it(
        client, order_setup, django_capture_on_commit_callbacks, delivery_format):
    ct = order_setup.commercetools
    ct.configure_subscription(format=delivery_format, changes=True)
    order = paid_order(ct)
    [delivery] = ct.subscription_deliveries(order["id"])
    assert delivery.payload["notificationType"] == "ResourceCreated"
    assert deliver(client, django_capture_on_commit_callbacks, [delivery, delivery]) == [200, 200]
    assert InboundEvent.objects.get().topic == "change/ResourceCreated"
    assert ("GET", f"/ledgerline-demo/orders/{order['id']}") in ct.requests_seen
    assert len(order_setup.erp.sales_orders) == 1


def test_a_deleted_order_notification_is_stored_and_ignored(client, order_setup, django_capture_on_commit_callbacks):
    body = {"notificationType": "ResourceDeleted", "projectKey": "ledgerline-demo", "version": 3,
            "resource": {"typeId": "order", "id": "gone"}, "modifiedAt": "2026-11-20T09:00:00.000Z"}
    response = client.post(URL, data=body, content_type="application/json",
                           headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.json()["status"] == "ignored"
    assert order_setup.erp.sales_orders == []


def test_a_cloudevent_of_another_spec_version_is_400(client, ct_connection):
    body = {"specversion": "0.1", "type": "com.commercetools.order.message.OrderCreated", "data": {}}
    response = client.post(URL, data=body, content_type="application/cloudevents+json",
                           headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 400
    assert "specversion" in response.json()["message"]
    assert InboundEvent.objects.count() == 0


# --- payload not included ----------------------------------------------------------------------

@pytest.mark.parametrize("delivery_format", ["Platform", "CloudEvents"])
def test_a_message_too_large_for_its_destination_is_applied_from_the_fetched_order(
        client, order_setup, django_capture_on_commit_callbacks, delivery_format):
    ct = order_setup.commercetools
    ct.configure_subscription(format=delivery_format, max_payload_bytes=1024)
    order = paid_order(ct)
    [delivery] = ct.subscription_deliveries(order["id"])
    assert "order" not in delivery.payload and delivery.payload["payloadNotIncluded"]["payloadType"] == "OrderCreated"
    assert deliver(client, django_capture_on_commit_callbacks, [delivery]) == [200]
    event = InboundEvent.objects.get()
    assert event.topic == "message/OrderCreated" and event.status == InboundEvent.Status.DONE
    assert ("GET", f"/ledgerline-demo/orders/{order['id']}") in ct.requests_seen
    [sales_order] = order_setup.erp.sales_orders
    assert (sales_order["currency"], sales_order["lines"][0]["line_total"]) == ("GBP", "19.00")  # as fetched


# --- Pub/Sub push authentication -------------------------------------------------------------

def test_a_pubsub_push_with_a_valid_oidc_token_is_applied(client, order_setup, ct_connection,
                                                         django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct)
    order = paid_order(ct)
    [delivery] = ct.subscription_deliveries(order["id"])
    assert delivery.headers["Authorization"].startswith("Bearer ey")
    assert deliver(client, django_capture_on_commit_callbacks, [delivery]) == [200]
    assert len(order_setup.erp.sales_orders) == 1
    pubsub = InboundEvent.objects.get().payload["ledgerlineDelivery"]["pubsub"]
    assert pubsub["subscription"] == "projects/ledgerline-sandbox/subscriptions/commercetools-orders"
    assert "data" not in pubsub["message"] and pubsub["message"]["messageId"]


def test_a_cloudevent_in_a_pubsub_push_is_applied(client, order_setup, ct_connection, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct)
    ct.configure_subscription(format="CloudEvents")
    order = paid_order(ct)
    assert deliver(client, django_capture_on_commit_callbacks, ct.subscription_deliveries(order["id"])) == [200]
    assert InboundEvent.objects.get().payload["ledgerlineDelivery"]["format"] == "CloudEvents"
    assert len(order_setup.erp.sales_orders) == 1


@pytest.mark.parametrize("token_kw, reason", [
    ({"forged": True}, "signed with a key this connection does not trust"),
    ({"expired": True}, "has expired"),
    ({"audience": "https://elsewhere.example/push"}, "audience is not this endpoint"),
    ({"issuer": "https://accounts.example.com"}, "not issued by Google"),
    ({"email": "someone-else@other-project.iam.gserviceaccount.com"}, "push service account"),
], ids=["forged", "expired", "wrong-audience", "wrong-issuer", "other-service-account"])
def test_a_push_with_a_bad_oidc_token_is_401_and_logged(client, order_setup, ct_connection, caplog,
                                                        token_kw, reason):
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct)
    order = paid_order(ct)
    [delivery] = ct.subscription_deliveries(order["id"])
    token = ct.oidc_token(**token_kw)
    with caplog.at_level(logging.WARNING, logger="ledgerline.webhooks"):
        response = client.post(URL, data=delivery.body, content_type="application/json",
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert reason in response.json()["error"]
    assert InboundEvent.objects.count() == 0
    assert reason in SecurityEvent.objects.get().reason
    [line] = [r.getMessage() for r in caplog.records if r.name == "ledgerline.webhooks"]
    assert reason in line and token not in line


def test_in_oidc_mode_the_shared_bearer_token_is_refused(client, order_setup, ct_connection):
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct)
    response = client.post(URL, data={"id": "m", "resource": {"typeId": "order", "id": "o"}},
                           content_type="application/json",
                           headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 401
    assert InboundEvent.objects.count() == 0


def test_the_signing_keys_can_come_from_a_jwks_url_read_once(client, order_setup, ct_connection,
                                                             django_capture_on_commit_callbacks):
    cache.clear()
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct, oidc_jwks=None, oidc_jwks_url=f"{order_setup.url}/commercetools/_sandbox/oidc/certs")
    first, second = paid_order(ct), paid_order(ct)
    deliveries = ct.subscription_deliveries(first["id"]) + ct.subscription_deliveries(second["id"])
    assert deliver(client, django_capture_on_commit_callbacks, deliveries) == [200, 200]
    assert len(order_setup.erp.sales_orders) == 2
    assert ct.requests_seen.count(("GET", "/_sandbox/oidc/certs")) == 1  # then from the cache
    cache.clear()


def test_with_no_keys_configured_googles_published_certs_are_used(client, order_setup, ct_connection,
                                                                  django_capture_on_commit_callbacks):
    cache.clear()
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct, oidc_jwks=None)
    [delivery] = ct.subscription_deliveries(paid_order(ct)["id"])
    with requests_mock.Mocker(real_http=True) as google:  # the sandbox ERP is still reached over HTTP
        google.get(GOOGLE_CERTS_URL, json=ct.oidc_jwks(), headers={"Cache-Control": "public, max-age=20000"})
        assert deliver(client, django_capture_on_commit_callbacks, [delivery]) == [200]
    assert len(order_setup.erp.sales_orders) == 1
    cache.clear()


def test_the_signing_keys_can_be_pem_public_keys_by_kid(client, order_setup, ct_connection,
                                                        django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    [jwk] = ct.oidc_jwks()["keys"]
    pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    use_oidc(ct_connection, ct, oidc_jwks=None, oidc_public_keys={jwk["kid"]: pem})
    assert deliver(client, django_capture_on_commit_callbacks, ct.subscription_deliveries(paid_order(ct)["id"])) == [200]
    assert len(order_setup.erp.sales_orders) == 1


def test_an_unreachable_jwks_url_is_503_so_pubsub_delivers_again(client, order_setup, ct_connection):
    cache.clear()
    ct = order_setup.commercetools
    use_oidc(ct_connection, ct, oidc_jwks=None, oidc_jwks_url="http://127.0.0.1:9/certs")
    [delivery] = ct.subscription_deliveries(paid_order(ct)["id"])
    response = client.post(URL, data=delivery.body, content_type="application/json",
                           headers={"Authorization": delivery.headers["Authorization"]})
    assert response.status_code == 503
    assert InboundEvent.objects.count() == 0
    cache.clear()


def test_url_secret_mode_takes_the_secret_in_the_push_url(client, order_setup, ct_connection,
                                                          django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    ct_connection.settings = {**ct_connection.settings, "subscription_auth": "url_secret"}
    ct_connection.credentials = {"subscription_token": "s3cr3t-in-the-url"}
    ct_connection.save()
    ct.configure_subscription(pubsub=True, oidc=False)
    [delivery] = ct.subscription_deliveries(paid_order(ct)["id"])
    assert "Authorization" not in delivery.headers
    assert deliver(client, django_capture_on_commit_callbacks, [delivery], url=f"{URL}?token=guess") == [401]
    assert SecurityEvent.objects.get().path == URL  # the secret in the query is never recorded
    assert deliver(client, django_capture_on_commit_callbacks, [delivery], url=URL) == [401]
    assert deliver(client, django_capture_on_commit_callbacks, [delivery], url=f"{URL}?token=s3cr3t-in-the-url") == [200]
    assert len(order_setup.erp.sales_orders) == 1


# --- ordering ---------------------------------------------------------------------------------

def _three_messages(ct):
    """An order created pending (1), its payment failing (2), then paid (3)."""
    order = paid_order(ct, payment_state="Pending")
    ct.set_payment_state(order["id"], "Failed")
    ct.set_payment_state(order["id"], "Paid")
    assert [m["sequenceNumber"] for m in ct.messages] == [1, 2, 3]
    return order


def test_messages_arriving_3_1_2_and_twice_are_applied_in_sequence_order(
        client, order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = _three_messages(ct)
    capture = django_capture_on_commit_callbacks
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[3, 3])) == [200, 200]
    # 3 waits for 1 and 2: nothing is applied yet, the message is kept.
    assert not OrderLink.objects.exists() and order_setup.erp.sales_orders == []
    held = InboundEvent.objects.get()
    assert held.status == InboundEvent.Status.PENDING and "waits for 1" in held.last_error
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[1, 1])) == [200, 200]
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.WAITING_PAYMENT and order_setup.erp.sales_orders == []
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[2, 2, 1, 3])) == [200] * 4
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED and len(order_setup.erp.sales_orders) == 1
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.DONE}
    assert InboundEvent.objects.count() == 3
    # Applied once each, 1 then 2 (which read the order as paid); 3 was covered by what 2 read.
    applied = [m.split(" ")[0].rstrip(":") for m in link.timeline.order_by("pk").values_list("message", flat=True)
               if m.startswith("message/")]
    assert applied == ["message/OrderCreated", "message/OrderPaymentStateChanged"]
    assert CommercetoolsResourceSequence.objects.get().applied_sequence == 3


def test_a_message_older_than_the_last_applied_changes_nothing(client, order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = _three_messages(ct)
    capture = django_capture_on_commit_callbacks
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[1, 2, 3])) == [200] * 3
    link = OrderLink.objects.get()
    entries = link.timeline.count()
    # The same OrderCreated, once more under a new delivery id (as a replayed subscription would).
    created = dict(ct.messages[0], id="replayed-created")
    with capture(execute=True):
        response = client.post(URL, data=created, content_type="application/json",
                               headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 200
    assert InboundEvent.objects.get(external_id="message:replayed-created").status == InboundEvent.Status.DONE
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED and link.timeline.count() == entries
    assert len(order_setup.erp.sales_orders) == 1


def test_a_gap_that_never_fills_is_resolved_by_fetching_the_order_after_the_timeout(
        client, order_setup, django_capture_on_commit_callbacks, settings):
    settings.CT_MESSAGE_GAP_SECONDS = 60
    ct = order_setup.commercetools
    order = _three_messages(ct)
    capture = django_capture_on_commit_callbacks
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[1, 3])) == [200, 200]  # 2 is lost
    assert OrderLink.objects.get().state == OrderLink.State.WAITING_PAYMENT
    held = InboundEvent.objects.get(payload__sequenceNumber=3)
    assert held.status == InboundEvent.Status.PENDING
    with capture(execute=True):
        assert orders_sweep()["events_retried"] == 0  # still waiting (and not yet the sweep's)
    # Later: past the gap timeout and past the sweep's wait for a task.
    past = timezone.now() - timedelta(minutes=5)
    InboundEvent.objects.filter(pk=held.pk).update(received_at=past)
    CommercetoolsResourceSequence.objects.update(waiting_since=past)
    with capture(execute=True):
        orders_sweep()
    held.refresh_from_db()
    assert held.status == InboundEvent.Status.DONE
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1
    # Message 2, arriving after all, is covered by the order as fetched: it changes nothing.
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[2])) == [200]
    assert InboundEvent.objects.get(payload__sequenceNumber=2).status == InboundEvent.Status.DONE
    assert len(order_setup.erp.sales_orders) == 1


def test_a_message_another_flow_reads_leaves_no_gap(client, order_setup, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = _three_messages(ct)
    capture = django_capture_on_commit_callbacks
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[1])) == [200]
    # Message 2 stored under a topic the orders flow does not apply (another resource type's, ignored).
    other = dict(ct.messages[1], type="OrderCustomTypeSet", resource={"typeId": "order", "id": order["id"]})
    InboundEvent.objects.create(connection=OrderLink.objects.get().connection, topic="message/x/OrderCustomTypeSet",
                                external_id="message:other", resource_id=order["id"], payload=other,
                                status=InboundEvent.Status.IGNORED)
    assert deliver(client, capture, ct.subscription_deliveries(order["id"], sequence=[3])) == [200]
    assert OrderLink.objects.get().state == OrderLink.State.POSTED


@pytest.mark.parametrize("field, value", [("sequenceNumber", "3"), ("sequenceNumber", 2**64), ("resourceVersion", -1),
                                          ("sequenceNumber", True)], ids=["text", "too-large", "negative", "bool"])
def test_a_sequence_number_or_version_that_is_not_a_whole_number_is_400(client, ct_connection, field, value):
    body = {"notificationType": "Message", "id": "m-1", "type": "OrderCreated", "sequenceNumber": 1,
            "resourceVersion": 1, "resource": {"typeId": "order", "id": "o-1"}, field: value}
    response = client.post(URL, data=body, content_type="application/json",
                           headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 400
    assert f"'{field}' must be a whole number" in response.json()["message"]
    assert InboundEvent.objects.count() == 0
