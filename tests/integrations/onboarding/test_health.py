"""A connection's health lines against the sandboxes over HTTP: what works says ok, a wrong key, a
missing scope or subscription, an old API version says what is wrong (and whether a repair can fix it)."""
from datetime import date

import pytest

from integrations.onboarding.health import (ERROR, OK, WARN, connection_health, connection_test,
                                            shopify_version_support, worst)
from integrations.onboarding.shopify_oauth import shopify_connect_client_credentials
from integrations.onboarding.subscriptions import shopify_subscriptions_repair
from tests.factories import ConnectionFactory


def _by_check(lines) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        found.setdefault(line.check, []).append((line.status, line.message))
    return found


@pytest.fixture
def shop(db, sandbox, sandbox_shop):
    return shopify_connect_client_credentials(shop=sandbox_shop, code="demo-shop").connection


def test_a_new_shop_needs_its_subscriptions_and_then_goes_green_but_for_read_all_orders(shop):
    lines = connection_health(shop, today=date(2026, 12, 2))
    checks = _by_check(lines)
    assert checks["reachable"] == [(OK, "Shop reachable: Ledgerline Demo Store (ledgerline-demo.myshopify.com)")]
    assert checks["auth"] == [(OK, "Access token valid")]
    assert (ERROR, "Webhook subscription orders/create is missing: its events do not reach Ledgerline") in checks["subscriptions"]
    assert all(line.repairable for line in lines if line.check == "subscriptions")
    assert checks["api_version"] == [(OK, "API version 2026-04, supported until 2027-04-01")]

    shopify_subscriptions_repair(shop)
    lines = connection_health(shop, today=date(2026, 12, 2))
    assert _by_check(lines)["subscriptions"] == [(OK, "7 webhook subscriptions in order")]
    assert _by_check(lines)["scopes"] == [(WARN, "read_all_orders is missing: orders older than 60 days cannot be imported")]
    assert worst(lines) == WARN


def test_a_custom_app_shop_with_webhooks_set_in_its_admin_is_not_asked_for_subscriptions(shop):
    shop.settings = {**(shop.settings or {}), "webhooks": "shop_admin"}
    shop.save()
    lines = connection_health(shop, today=date(2026, 12, 2))
    assert _by_check(lines)["subscriptions"] == [
        (OK, "Webhooks are set up in the shop's admin (a custom app): the inbox shows what arrives")]
    assert not any(line.repairable for line in lines)


def test_a_revoked_token_says_so(shop, sandbox):
    sandbox.shopify.uninstall_app()  # the merchant removed the app: its tokens stop working
    sandbox.shopify.configure(client_credentials_allowed=False)  # and no new one can be had
    lines = connection_test(shop)
    assert worst(lines) == ERROR
    assert [(line.check, line.status) for line in lines] == [("reachable", OK), ("auth", ERROR)]
    assert "client credentials grant is only available" in lines[1].message


def test_an_oauth_shop_with_a_wrong_token_says_the_token_is_refused(db, sandbox):
    connection = ConnectionFactory(code="shopify", kind="shopify", base_url=f"{sandbox.url}/shopify",
                                   credentials={"access_token": "shpat_wrong"})
    lines = connection_test(connection)
    assert [(line.check, line.status) for line in lines] == [("reachable", OK), ("auth", ERROR)]
    assert "Invalid API key or access token" in lines[1].message


@pytest.mark.parametrize("version, today, status, words", [
    ("2026-04", date(2026, 12, 2), OK, "supported until 2027-04-01"),
    ("2026-01", date(2026, 12, 2), WARN, "supported until 2027-01-01 (30 days left)"),
    ("2025-10", date(2026, 12, 2), ERROR, "no longer supported (since 2026-10-01)"),
    ("2026-13", date(2026, 12, 2), ERROR, "not a stable Shopify version"),
])
def test_the_api_version_end_of_support_is_computed_from_its_name(version, today, status, words):
    _, line = shopify_version_support(version, today)
    assert line.status == status and words in line.message


def test_commercetools_with_every_scope_and_the_project_reachable(db, sandbox):
    connection = ConnectionFactory(code="commercetools", kind="commercetools")
    lines = connection_health(connection)
    assert [(line.check, line.status) for line in lines] == [("auth", OK), ("scopes", OK), ("reachable", OK)]


def test_commercetools_names_the_scopes_its_client_was_not_granted(db, sandbox):
    sandbox.commercetools.add_api_client("reader", "reader-secret", ["view_orders:ledgerline-demo"])
    connection = ConnectionFactory(code="commercetools", kind="commercetools",
                                   credentials={"client_id": "reader", "client_secret": "reader-secret"},
                                   settings={"scope": "view_orders:ledgerline-demo"})
    checks = _by_check(connection_health(connection))
    assert checks["auth"] == [(OK, "Token obtained")]
    # Reading orders is not enough: deliveries and shipment states are order writes.
    assert checks["scopes"] == [(ERROR, "manage_orders:ledgerline-demo is not granted to the API client"),
                                (ERROR, "manage_customers:ledgerline-demo is not granted to the API client"),
                                (ERROR, "manage_products:ledgerline-demo is not granted to the API client")]
    assert checks["reachable"][0][0] == OK


def test_commercetools_with_a_wrong_secret_says_the_token_was_refused(db, sandbox):
    connection = ConnectionFactory(code="commercetools", kind="commercetools", credentials={"client_secret": "wrong"})
    (line,) = connection_test(connection)
    assert (line.check, line.status) == ("auth", ERROR) and "refused" in line.message


def test_the_rest_erp_with_its_key_and_with_a_wrong_one(db, sandbox):
    sandbox.erp.add_depot("MAIN")
    good = ConnectionFactory(code="erp", kind="rest_erp")
    assert [(l.status, l.message) for l in connection_test(good)] == [(OK, "Authenticated call works: 1 depots")]
    wrong = ConnectionFactory(code="erp-wrong", kind="rest_erp", credentials={"api_key": "wrong-key"})
    (line,) = connection_test(wrong)
    assert line.status == ERROR and "ERP refused" in line.message


def test_prima_wsdl_reachable_and_a_harmless_request_answers(db, sandbox):
    sandbox.prima.add_depot("MAIN")
    lines = connection_test(ConnectionFactory(code="prima", kind="prima"))
    assert [(l.check, l.status) for l in lines] == [("reachable", OK), ("auth", OK)]
    assert lines[1].message == "A harmless request (the depot list) answers: 1 depots"
