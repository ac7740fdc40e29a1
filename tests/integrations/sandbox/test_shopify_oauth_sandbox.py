"""The sandbox Shopify's OAuth and app endpoints behave as Shopify documents them (checked over HTTP
with the test's own hmac, not the product's): the authorize redirect signed with the app's client
secret, single-use codes, expiring client-credentials tokens answered 401 once lapsed, webhook
subscriptions with userErrors for a bad address, the installation's granted scopes, app/uninstalled."""
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.integrations.sandbox.test_shopify_sandbox import Receiver, _wait_until

CLIENT_ID, CLIENT_SECRET = "sandbox-app-client-id", "sandbox-app-client-secret"
CALLBACK = "https://ledgerline.example/connections/shopify/callback/"
CREATE = """mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic uri format apiVersion { handle } } userErrors { field message } } }"""


@pytest.fixture
def shop(sandbox):
    return f"{sandbox.url}/shopify"


def _authorize(shop, scope="read_orders,write_inventory", state="nonce-1", **extra):
    return requests.get(f"{shop}/admin/oauth/authorize", params={
        "client_id": CLIENT_ID, "scope": scope, "redirect_uri": CALLBACK, "state": state, **extra},
        allow_redirects=False, timeout=5)


def _callback(answer) -> dict[str, str]:
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def _token(shop, **form):
    return requests.post(f"{shop}/admin/oauth/access_token", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}, timeout=5)


def _graphql(shop, token, query, variables=None, version="2026-04"):
    return requests.post(f"{shop}/admin/api/{version}/graphql.json", json={"query": query, "variables": variables or {}},
                         headers={"X-Shopify-Access-Token": token}, timeout=10)


def test_authorize_redirects_back_signed_with_the_client_secret(shop):
    params = _callback(_authorize(shop))
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["shop"] == "ledgerline-demo.myshopify.com" and params["state"] == "nonce-1"
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
    assert params["hmac"] == hmac.new(CLIENT_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_an_unknown_client_id_is_refused_at_authorize(shop):
    answer = requests.get(f"{shop}/admin/oauth/authorize", params={"client_id": "nope", "redirect_uri": CALLBACK},
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 400 and "client_id" in answer.text


def test_a_code_is_exchanged_once_for_a_token_with_the_scopes_asked(shop):
    code = _callback(_authorize(shop))["code"]
    first = _token(shop, code=code)
    assert first.status_code == 200
    assert first.json()["scope"].split(",") == ["read_orders", "write_inventory"]
    assert "expires_in" not in first.json()  # offline, non-expiring
    again = _token(shop, code=code)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_request",
                            "error_description": "The authorization code was not found or was already used"}
    assert _token(shop, code="made-up").status_code == 400
    installation = _graphql(shop, first.json()["access_token"], "{ currentAppInstallation { accessScopes { handle } } }")
    assert installation.json()["data"]["currentAppInstallation"]["accessScopes"] == [
        {"handle": "read_orders"}, {"handle": "write_inventory"}]


def test_a_wrong_client_secret_gets_no_token(shop):
    answer = requests.post(f"{shop}/admin/oauth/access_token", data={
        "client_id": CLIENT_ID, "client_secret": "wrong", "grant_type": "client_credentials"}, timeout=5)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_a_client_credentials_token_expires_and_is_then_refused_with_401(shop, sandbox):
    answer = _token(shop, grant_type="client_credentials")
    assert answer.status_code == 200 and answer.json()["expires_in"] == 86399
    token = answer.json()["access_token"]
    assert _graphql(shop, token, "{ shop { name } }").status_code == 200
    sandbox.shopify.expire_tokens()  # a day later
    refused = _graphql(shop, token, "{ shop { name } }")
    assert refused.status_code == 401
    assert refused.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    assert _graphql(shop, _token(shop, grant_type="client_credentials").json()["access_token"],
                    "{ shop { name } }").status_code == 200


def test_the_token_lapses_by_itself_after_expires_in(shop, sandbox):
    _graphql(shop, "shpat_sandbox_token", "{ shop { name } }")  # the schema is built: the clock is the token's
    sandbox.shopify.configure(client_credentials_ttl=1)
    token = _token(shop, grant_type="client_credentials").json()["access_token"]
    assert _graphql(shop, token, "{ shop { name } }").status_code == 200
    assert _wait_until(lambda: _graphql(shop, token, "{ shop { name } }").status_code == 401, timeout=4)


def test_subscriptions_are_created_listed_and_a_bad_address_gets_user_errors(shop):
    token = _token(shop, grant_type="client_credentials").json()["access_token"]
    created = _graphql(shop, token, CREATE, {"topic": "ORDERS_CREATE",
                                             "sub": {"uri": "https://ledgerline.example/webhooks/shopify/x/", "format": "JSON"}})
    body = created.json()["data"]["webhookSubscriptionCreate"]
    assert body["userErrors"] == [] and body["webhookSubscription"]["apiVersion"] == {"handle": "2026-04"}
    taken = _graphql(shop, token, CREATE, {"topic": "ORDERS_CREATE",
                                           "sub": {"uri": "https://ledgerline.example/webhooks/shopify/x/"}})
    assert taken.json()["data"]["webhookSubscriptionCreate"]["userErrors"] == [
        {"field": ["webhookSubscription", "uri"], "message": "Address for this topic has already been taken"}]
    for bad in ("not a url", "http://ledgerline.example/hooks", "ftp://x.example/"):
        refused = _graphql(shop, token, CREATE, {"topic": "ORDERS_PAID", "sub": {"uri": bad}})
        assert refused.json()["data"]["webhookSubscriptionCreate"] == {
            "webhookSubscription": None, "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}]}
    listed = _graphql(shop, token, "{ webhookSubscriptions(first: 10) { nodes { topic uri } } }")
    assert listed.json()["data"]["webhookSubscriptions"]["nodes"] == [
        {"topic": "ORDERS_CREATE", "uri": "https://ledgerline.example/webhooks/shopify/x/"}]


def test_a_topic_needs_its_scope_and_the_retired_callback_url_input_is_refused(shop, sandbox):
    token = sandbox.shopify.add_access_token(["read_products"])
    refused = _graphql(shop, token, CREATE, {"topic": "ORDERS_CREATE", "sub": {"uri": "https://l.example/h"}})
    (error,) = refused.json()["data"]["webhookSubscriptionCreate"]["userErrors"]
    assert "read_orders" in error["message"]
    old = _graphql(shop, token, 'mutation { webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: '
                                '{callbackUrl: "https://l.example/h"}) { userErrors { message } } }')
    assert "callbackUrl" in old.json()["errors"][0]["message"]


def test_events_reach_subscriptions_signed_with_the_client_secret_and_uninstall_ends_the_app(shop, sandbox):
    receiver = Receiver()
    try:
        token = _token(shop, code=_callback(_authorize(shop, scope="read_orders"))["code"]).json()["access_token"]
        for topic in ("ORDERS_CREATE", "APP_UNINSTALLED"):
            _graphql(shop, token, CREATE, {"topic": topic, "sub": {"uri": receiver.url}})
        sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
        assert _wait_until(lambda: receiver.topic("orders/create"))
        (delivery,) = receiver.topic("orders/create")
        digest = hmac.new(CLIENT_SECRET.encode(), delivery["body"], hashlib.sha256).digest()
        assert delivery["headers"]["X-Shopify-Hmac-Sha256"] == base64.b64encode(digest).decode()

        sandbox.shopify.uninstall_app()
        assert _wait_until(lambda: receiver.topic("app/uninstalled"))
        assert json.loads(receiver.topic("app/uninstalled")[0]["body"])["myshopify_domain"] == "ledgerline-demo.myshopify.com"
        assert _graphql(shop, token, "{ shop { name } }").status_code == 401
        assert sandbox.shopify.subscriptions == {}
    finally:
        receiver.server.shutdown()
