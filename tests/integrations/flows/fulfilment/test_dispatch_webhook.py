"""The REST ERP pushes each confirmed dispatch as a signed webhook: it is verified with the ERP
connection's secret, stored through the inbox under the dispatch's id, and a redelivery (or the poller
reading the same dispatch) changes nothing and notifies nobody again."""
import pytest

from integrations.models import Dispatch, InboundEvent, SecurityEvent
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

SECRET = "erp-webhook-secret-for-tests"


@pytest.fixture
def erp_connection(db):
    connection = ConnectionFactory(code="erp", kind="rest_erp", name="REST ERP")
    connection.credentials = {"webhook_secret": SECRET}
    connection.save()
    return connection


@pytest.fixture
def erp_webhooks(order_setup, erp_connection):
    """The sandbox ERP records each dispatch webhook (signed with the secret) for the test to deliver."""
    order_setup.erp.configure_webhook(secret=SECRET, mode="none")
    return order_setup.erp


def _deliver(client, delivery, capture, **headers):
    with capture(execute=True):
        return client.post("/webhooks/erp/erp/", data=delivery["body"], content_type="application/json",
                           headers={**{k: v for k, v in delivery["headers"].items() if k.startswith("X-Erp")}, **headers})


def test_a_signed_dispatch_webhook_fulfils_the_order_and_a_redelivery_notifies_nobody_again(
    client, shop_order, erp_webhooks, order_setup, poll, django_capture_on_commit_callbacks
):
    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 2}])
    erp_webhooks.dispatch_order(link.erp_order_id, carrier="Royal Mail", tracking_number="RM-W1")
    [delivery] = erp_webhooks.webhook_deliveries

    first = _deliver(client, delivery, django_capture_on_commit_callbacks)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1
    dispatch = Dispatch.objects.get()
    assert dispatch.source == Dispatch.Source.WEBHOOK and dispatch.storefront_status == Dispatch.Status.SENT

    again = _deliver(client, delivery, django_capture_on_commit_callbacks)
    assert again.json()["status"] == "duplicate"
    poll()  # the poller reads the same dispatch: stored already
    assert Dispatch.objects.count() == 1 and InboundEvent.objects.filter(topic="dispatch/confirmed").count() == 1
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1
    assert len(order_setup.shopify.notifications) == 1


def test_a_draft_dispatch_reaches_the_storefront_only_once_confirmed(
    client, shop_order, erp_webhooks, order_setup, poll, django_capture_on_commit_callbacks
):
    payload, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    booked = erp_webhooks.dispatch_order(link.erp_order_id, draft=True, tracking_number="D-1")
    poll()
    assert erp_webhooks.webhook_deliveries == [] and not Dispatch.objects.exists()
    assert order_setup.shopify.fulfillments_of(payload["id"]) == []

    erp_webhooks.confirm_dispatch(booked["dispatches"][0]["id"])
    [delivery] = erp_webhooks.webhook_deliveries
    _deliver(client, delivery, django_capture_on_commit_callbacks)
    assert len(order_setup.shopify.fulfillments_of(payload["id"])) == 1


@pytest.mark.parametrize("headers", [{"X-Erp-Signature": "sha256=" + "0" * 64}, {"X-Erp-Signature": ""}])
def test_a_webhook_without_the_right_signature_is_refused_and_recorded(
    client, shop_order, erp_webhooks, headers, django_capture_on_commit_callbacks
):
    _, link = shop_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    erp_webhooks.dispatch_order(link.erp_order_id)
    [delivery] = erp_webhooks.webhook_deliveries
    response = _deliver(client, delivery, django_capture_on_commit_callbacks, **headers)
    assert response.status_code == 401
    assert SecurityEvent.objects.filter(source="erp").count() == 1
    assert not InboundEvent.objects.filter(topic="dispatch/confirmed").exists() and not Dispatch.objects.exists()


def test_a_webhook_that_is_not_json_is_a_400_not_a_500(client, erp_connection):
    from integrations.inbox.erp_webhooks import erp_signature

    body = b"{not json"
    response = client.post("/webhooks/erp/erp/", data=body, content_type="application/json",
                           headers={"X-Erp-Signature": erp_signature(SECRET, body)})
    assert response.status_code == 400


def test_an_unknown_erp_connection_is_a_404_and_get_is_a_405(client, erp_connection):
    assert client.post("/webhooks/erp/nope/", data=b"{}", content_type="application/json").status_code == 404
    assert client.get("/webhooks/erp/erp/").status_code == 405
