"""A shop of the app's own organisation connected by the client-credentials grant: its token expires,
and workers that find it expired at the same moment renew it once (under the connection's row lock),
each then carrying on with the new token."""
import threading
import time

import pytest
from django.db import connection as database

from integrations.connectors import connector_for
from integrations.connectors.shopify.app import shop as shop_info
from integrations.models import Connection
from integrations.onboarding.shopify_oauth import InstallRefused, shopify_connect_client_credentials


def _grants(sandbox) -> list[dict]:
    return [r for r in sandbox.shopify.token_requests if r["grant"] == "client_credentials" and r["outcome"] == "issued"]


def test_the_grant_stores_an_expiring_token_encrypted(db, sandbox, sandbox_shop):
    result = shopify_connect_client_credentials(shop=sandbox_shop, name="Demo shop")
    connection = Connection.objects.get(pk=result.connection.pk)
    assert connection.settings["shop_domain"] == "ledgerline-demo.myshopify.com"
    assert connection.credentials["grant"] == "client_credentials"
    assert connection.credentials["expires_at"] == pytest.approx(time.time() + 86399, abs=30)
    with database.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [connection.pk])
        (stored,) = cursor.fetchone()
    assert connection.credentials["access_token"] not in stored
    assert shop_info(connector_for(connection))["name"] == "Ledgerline Demo Store"


def test_wrong_client_credentials_are_refused_in_words(db, sandbox, sandbox_shop):
    with pytest.raises(InstallRefused, match="Client authentication failed"):
        shopify_connect_client_credentials(shop=sandbox_shop, client_id="sandbox-app-client-id", client_secret="wrong")
    assert not Connection.objects.exists()


def _two_workers_call_the_shop(connection_id: int) -> list:
    barrier = threading.Barrier(2)
    results: list = []

    def worker():
        try:
            client = connector_for(Connection.objects.get(pk=connection_id))
            barrier.wait(timeout=5)
            results.append(shop_info(client)["myshopifyDomain"])
        except Exception as exc:  # noqa: BLE001 - the assertion shows it
            results.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["shopify_says_401", "known_to_be_expired"])
def test_an_expired_token_is_renewed_once_by_concurrent_workers(sandbox, sandbox_shop, how):
    connection = shopify_connect_client_credentials(shop=sandbox_shop).connection
    old_token = connection.credentials["access_token"]
    sandbox.shopify.expire_tokens()  # Shopify: the token lapsed (the sandbox answers 401 for it now)
    if how == "known_to_be_expired":
        credentials = dict(connection.credentials, expires_at=time.time() - 1)
        Connection.objects.filter(pk=connection.pk).update(credentials=credentials)

    results = _two_workers_call_the_shop(connection.pk)

    assert results == ["ledgerline-demo.myshopify.com"] * 2
    assert len(_grants(sandbox)) == 2  # the first token, and ONE renewal
    renewed = Connection.objects.get(pk=connection.pk).credentials
    assert renewed["access_token"] != old_token and renewed["expires_at"] > time.time() + 3600


def test_a_token_is_renewed_before_it_expires_without_a_401(db, sandbox, sandbox_shop):
    connection = shopify_connect_client_credentials(shop=sandbox_shop).connection
    credentials = dict(connection.credentials, expires_at=time.time() + 60)  # inside the renewal margin
    Connection.objects.filter(pk=connection.pk).update(credentials=credentials)
    client = connector_for(Connection.objects.get(pk=connection.pk))
    shop_info(client)
    shop_info(client)
    assert len(_grants(sandbox)) == 2
    assert all(r["outcome"] == "issued" for r in sandbox.shopify.token_requests)
