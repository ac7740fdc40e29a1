"""Connections are data: each shop verifies its own webhooks and posts with its own credentials; an
inactive connection accepts and posts nothing; credentials are encrypted at rest and never shown."""
import json

import pytest
from django.db import connection as db

from integrations.connectors import connector_for
from integrations.models import Connection, InboundEvent, OrderLink, SecurityEvent
from tests.factories import ConnectionFactory, DepotMappingFactory, TaxCodeMappingFactory
from tests.payloads import deliver_shopify_webhook, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def eu_shop(order_setup):
    shop = ConnectionFactory(code="shopify-eu", kind="shopify", name="EU shop",
                             credentials={"webhook_secret": "eu-secret-1", "access_token": "shpat_eu"},
                             settings={"shop_domain": "ledgerline-eu.myshopify.com"})
    DepotMappingFactory(connection=shop, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shop, rate="0.2", country="GB", erp_tax_code="T1")
    return shop


def test_a_webhook_signed_for_one_shop_is_refused_by_the_other(client, shopify_connection, eu_shop):
    payload = shopify_order()
    # Signed with the UK shop's secret, sent to the EU shop's endpoint.
    response = post_shopify_webhook(client, payload, connection_code="shopify-eu")
    assert response.status_code == 401
    assert SecurityEvent.objects.get().reason == "HMAC signature does not match the body"
    assert not InboundEvent.objects.exists()


def test_a_webhook_from_another_shop_domain_is_refused_even_with_the_right_secret(client, eu_shop):
    response = post_shopify_webhook(client, shopify_order(), connection_code="shopify-eu", secret="eu-secret-1")
    assert response.status_code == 401  # the header says ledgerline-demo, this is ledgerline-eu
    assert "Shop-Domain" in SecurityEvent.objects.get().reason


def test_each_shop_posts_its_orders_with_its_own_secret(client, order_setup, shopify_connection, eu_shop,
                                                        django_capture_on_commit_callbacks):
    deliver_shopify_webhook(client, shopify_order(number=1701), django_capture_on_commit_callbacks)
    deliver_shopify_webhook(client, shopify_order(number=1702), django_capture_on_commit_callbacks,
                            connection_code="shopify-eu", secret="eu-secret-1", shop_domain="ledgerline-eu.myshopify.com")
    refs = sorted(o["external_reference"].split(":")[0] for o in order_setup.erp.sales_orders)
    assert refs == ["shopify", "shopify-eu"]
    assert {l.connection.code for l in OrderLink.objects.all()} == {"shopify", "shopify-eu"}


def test_connectors_are_built_from_their_connection(shopify_connection, eu_shop):
    eu = connector_for(eu_shop)
    uk = connector_for(shopify_connection)
    assert eu.session.headers["X-Shopify-Access-Token"] == "shpat_eu"
    assert uk.session.headers["X-Shopify-Access-Token"] == "shpat_sandbox_token"


def test_an_inactive_connection_accepts_nothing_and_posts_nothing(client, order_setup, shopify_connection,
                                                                  django_capture_on_commit_callbacks):
    shopify_connection.active = False
    shopify_connection.save()
    response = post_shopify_webhook(client, shopify_order())
    assert response.status_code == 409 and "inactive" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_an_order_of_a_connection_deactivated_meanwhile_is_not_posted(client, order_setup, shopify_connection,
                                                                      django_capture_on_commit_callbacks):
    from integrations.flows.orders import order_post_to_erp

    response = post_shopify_webhook(client, shopify_order())  # stored; its task not run yet
    assert response.status_code == 200, response.content
    Connection.objects.filter(pk=shopify_connection.pk).update(active=False)
    from integrations.flows.orders import inbound_event_process

    inbound_event_process(event_id=response.json()["event"])
    link = OrderLink.objects.get()
    assert order_post_to_erp(order_id=link.pk) == "inactive"
    assert order_setup.erp.sales_orders == []


def test_the_same_event_under_a_new_webhook_id_is_a_duplicate(client, shopify_connection):
    payload = shopify_order()
    first = post_shopify_webhook(client, payload, webhook_id="wh-a", event_id="evt-1")
    again = post_shopify_webhook(client, payload, webhook_id="wh-b", event_id="evt-1")
    assert first.json()["status"] == "accepted" and again.json()["status"] == "duplicate"
    assert InboundEvent.objects.count() == 1


def test_credentials_are_encrypted_at_rest_and_never_shown(client, admin_user, eu_shop):
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE code = %s", ["shopify-eu"])
        [stored] = cursor.fetchone()
    assert "eu-secret-1" not in stored and "shpat_eu" not in stored
    assert Connection.objects.get(code="shopify-eu").credentials["webhook_secret"] == "eu-secret-1"
    assert "eu-secret-1" not in repr(Connection.objects.get(code="shopify-eu").credentials)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    response = client.get(f"/admin/integrations/connection/{eu_shop.pk}/change/")
    assert response.status_code == 200 and "webhook secret" in response.content.decode()
    assert "eu-secret-1" not in response.content.decode() and "shpat_eu" not in response.content.decode()


def test_keys_rotate_without_losing_credentials(settings, eu_shop):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old = Fernet.generate_key().decode()
    settings.CONNECTION_KEYS = [old]
    eu_shop.credentials = {"webhook_secret": "eu-secret-2"}
    eu_shop.save()
    settings.CONNECTION_KEYS = [Fernet.generate_key().decode(), old]
    call_command("connections_rotate_keys", verbosity=0)
    settings.CONNECTION_KEYS = settings.CONNECTION_KEYS[:1]  # the old key is retired
    assert Connection.objects.get(code="shopify-eu").credentials["webhook_secret"] == "eu-secret-2"


@pytest.mark.parametrize("erp_kind", ["rest", "prima"])
def test_every_erp_write_is_logged_before_the_call_with_its_system_subject_and_key(
    client, order_setup, settings, erp_kind, django_capture_on_commit_callbacks
):
    from integrations.models import OutboundWrite

    settings.ERP = {**settings.ERP, "kind": erp_kind}
    deliver_shopify_webhook(client, shopify_order(number=1703), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    writes = {w.action: w for w in OutboundWrite.objects.all()}
    assert set(writes) == {"create_customer", "create_sales_order"}
    order_write = writes["create_sales_order"]
    assert (order_write.system, order_write.subject_type, order_write.subject_id) == (
        "rest_erp" if erp_kind == "rest" else "prima", "order", str(link.pk))
    assert order_write.idempotency_key == link.external_reference
    assert order_write.status == OutboundWrite.Status.SUCCEEDED and order_write.response_id == link.erp_order_id


def test_an_exception_names_its_subject(client, order_setup, django_capture_on_commit_callbacks):
    from exceptions_queue.models import ExceptionRecord

    deliver_shopify_webhook(client, shopify_order(number=1704, total_price="1.00"), django_capture_on_commit_callbacks)
    record = ExceptionRecord.objects.get(type_code="total_mismatch")
    assert (record.subject_type, record.subject_id) == ("order", str(OrderLink.objects.get().pk))


def test_a_secret_never_appears_in_a_page_a_log_line_or_an_api_response(
    client, admin_user, order_setup, eu_shop, caplog, django_capture_on_commit_callbacks
):
    secrets = ["eu-secret-1", "shpat_eu"]
    with caplog.at_level("DEBUG"):
        deliver_shopify_webhook(client, shopify_order(number=1705), django_capture_on_commit_callbacks,
                                connection_code="shopify-eu", secret="eu-secret-1",
                                shop_domain="ledgerline-eu.myshopify.com")
        post_shopify_webhook(client, shopify_order(number=1706), connection_code="shopify-eu", secret="wrong",
                             shop_domain="ledgerline-eu.myshopify.com")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    link = OrderLink.objects.get(connection=eu_shop)
    pages = ["/", "/orders/", f"/orders/{link.pk}/", "/exceptions/", "/exceptions/api/exceptions/",
             "/admin/integrations/connection/", f"/admin/integrations/connection/{eu_shop.pk}/change/",
             "/mappings/"]
    responses = {url: client.get(url) for url in pages}
    assert {url: r.status_code for url, r in responses.items() if r.status_code != 200} == {}
    seen = "\n".join(r.content.decode() for r in responses.values())
    seen += "\n".join(r.getMessage() for r in caplog.records)
    seen += json.dumps([e.headers for e in InboundEvent.objects.all()]) + json.dumps(
        list(SecurityEvent.objects.values("reason", "headers")))
    for secret in secrets:
        assert secret not in seen


def test_an_admin_sets_a_secret_that_is_never_shown_again_and_blank_keeps_it(client, admin_user, eu_shop):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    url = f"/admin/integrations/connection/{eu_shop.pk}/change/"
    form = {"code": "shopify-eu", "kind": "shopify", "name": "EU shop", "active": "on", "base_url": "",
            "settings": json.dumps(eu_shop.settings), "secret_webhook_secret": "rotated-secret-9"}
    assert client.post(url, form).status_code == 302
    assert Connection.objects.get(pk=eu_shop.pk).credentials["webhook_secret"] == "rotated-secret-9"
    assert "rotated-secret-9" not in client.get(url).content.decode()
    form.pop("secret_webhook_secret")
    client.post(url, form)
    stored = Connection.objects.get(pk=eu_shop.pk).credentials
    assert stored["webhook_secret"] == "rotated-secret-9" and stored["access_token"] == "shpat_eu"
