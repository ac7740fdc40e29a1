"""Connecting a Shopify shop by OAuth (authorization-code grant) against the sandbox over HTTP: the
install lands an encrypted token in a new connection; a forged hmac, an unknown, reused, expired or
another user's state, and a malformed shop are refused with words the screen can show."""
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection as db

from integrations.connectors import connector_for
from integrations.connectors.shopify.app import shop as shop_info
from integrations.models import Connection
from integrations.onboarding import shopify_oauth
from integrations.onboarding.shopify_oauth import InstallRefused, shopify_install_begin, shopify_install_complete
from tests.factories import UserFactory

CALLBACK = "http://localhost:8000/connections/shopify/callback/"


def _click_through(url: str) -> dict[str, str]:
    """What the admin's browser does: open the authorize URL, follow Shopify's redirect to the callback."""
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_an_install_stores_the_token_encrypted_in_a_new_connection(session, admin_user, sandbox_shop, sandbox):
    start = shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop, redirect_uri=CALLBACK)
    query = parse_qs(urlsplit(start.url).query)
    assert urlsplit(start.url).path.endswith("/admin/oauth/authorize")
    assert query["client_id"] == ["sandbox-app-client-id"] and query["redirect_uri"] == [CALLBACK]
    assert "read_orders" in query["scope"][0].split(",") and "write_inventory" in query["scope"][0].split(",")
    assert "grant_options[]" not in query  # offline access: a token for background work

    params = _click_through(start.url)
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    result = shopify_install_complete(session=session, user=admin_user, params=params)

    assert result.created and result.shop_domain == "ledgerline-demo.myshopify.com"
    connection = Connection.objects.get(pk=result.connection.pk)
    assert connection.kind == "shopify" and connection.settings["shop_domain"] == "ledgerline-demo.myshopify.com"
    token = connection.credentials["access_token"]
    assert token.startswith("shpat_") and token in sandbox.shopify.tokens
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [connection.pk])
        (stored,) = cursor.fetchone()
    assert token not in stored and "sandbox-app-client-secret" not in stored
    # The connector built from the connection reaches the shop with it.
    assert shop_info(connector_for(connection))["myshopifyDomain"] == "ledgerline-demo.myshopify.com"


def test_installing_the_same_shop_again_updates_its_connection(session, admin_user, sandbox_shop):
    first = shopify_install_complete(session=session, user=admin_user, params=_click_through(
        shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop, redirect_uri=CALLBACK).url))
    again = shopify_install_complete(session=session, user=admin_user, params=_click_through(
        shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop, redirect_uri=CALLBACK).url))
    assert not again.created and again.connection.pk == first.connection.pk
    assert Connection.objects.filter(kind="shopify").count() == 1


def test_a_forged_hmac_is_refused_and_nothing_is_installed(session, admin_user, sandbox_shop):
    start = shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop, redirect_uri=CALLBACK)
    params = _click_through(start.url)
    params["shop"] = "someone-else.myshopify.com"  # changed after Shopify signed it
    with pytest.raises(InstallRefused, match="hmac signature does not match"):
        shopify_install_complete(session=session, user=admin_user, params=params)
    assert not Connection.objects.exists()


def test_a_used_or_unknown_state_is_refused(session, admin_user, sandbox_shop):
    params = _click_through(shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop,
                                                  redirect_uri=CALLBACK).url)
    shopify_install_complete(session=session, user=admin_user, params=params)
    with pytest.raises(InstallRefused, match="unknown or was already used"):
        shopify_install_complete(session=session, user=admin_user, params=params)  # a replayed callback
    other_session = type(session)()
    with pytest.raises(InstallRefused, match="unknown or was already used"):
        shopify_install_complete(session=other_session, user=admin_user, params=params)


def test_an_expired_state_or_another_users_is_refused(session, admin_user, sandbox_shop, monkeypatch):
    start = shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop, redirect_uri=CALLBACK)
    params = _click_through(start.url)
    with pytest.raises(InstallRefused, match="started by another user"):
        shopify_install_complete(session=session, user=UserFactory(username="mallory", roles=["admin"]), params=params)

    start = shopify_install_begin(session=session, user=admin_user, shop=sandbox_shop, redirect_uri=CALLBACK)
    params = _click_through(start.url)
    monkeypatch.setattr(shopify_oauth, "STATE_TTL", 0.0)
    with pytest.raises(InstallRefused, match="expired"):
        shopify_install_complete(session=session, user=admin_user, params=params)
    assert not Connection.objects.exists()


@pytest.mark.parametrize("shop", ["evil.example.com", "https://my-shop.myshopify.com.evil.io", "-x.myshopify.com",
                                  "", "http://169.254.169.254/latest"])
def test_a_malformed_shop_is_refused_before_anything_is_sent(session, admin_user, shop):
    with pytest.raises(InstallRefused, match="not a Shopify shop"):
        shopify_install_begin(session=session, user=admin_user, shop=shop, redirect_uri=CALLBACK)
    assert not session.get(shopify_oauth.SESSION_KEY)


def test_a_real_shop_is_asked_at_its_myshopify_domain_with_the_configured_app(session, admin_user, settings):
    settings.SHOPIFY_APP_CLIENT_ID, settings.SHOPIFY_APP_CLIENT_SECRET = "real-client-id", "real-secret"
    start = shopify_install_begin(session=session, user=admin_user, shop="My-Shop", redirect_uri=CALLBACK)
    assert start.url.startswith("https://my-shop.myshopify.com/admin/oauth/authorize?client_id=real-client-id&")


def test_a_real_shop_without_a_configured_app_is_refused(session, admin_user, settings):
    settings.SHOPIFY_APP_CLIENT_ID = settings.SHOPIFY_APP_CLIENT_SECRET = ""
    with pytest.raises(InstallRefused, match="SHOPIFY_APP_CLIENT_ID"):
        shopify_install_begin(session=session, user=admin_user, shop="my-shop.myshopify.com", redirect_uri=CALLBACK)


def test_a_callback_for_another_shop_than_asked_is_refused(session, admin_user, sandbox_shop, settings):
    settings.SHOPIFY_APP_CLIENT_ID, settings.SHOPIFY_APP_CLIENT_SECRET = "sandbox-app-client-id", "sandbox-app-client-secret"
    start = shopify_install_begin(session=session, user=admin_user, shop="ledgerline-eu.myshopify.com",
                                  redirect_uri=CALLBACK)
    # Shopify answers for the demo shop, signed properly with the app's secret.
    params = _click_through(start.url.replace("https://ledgerline-eu.myshopify.com", sandbox_shop))
    with pytest.raises(InstallRefused, match="started for ledgerline-eu.myshopify.com but Shopify answered for "
                                             "ledgerline-demo.myshopify.com"):
        shopify_install_complete(session=session, user=admin_user, params=params)
