"""The webhook subscriptions a connection's flows need are registered through the Admin GraphQL API
(sandbox over HTTP), a missing or wrong one is repaired, an extra one removed, and a second repair
changes nothing; the scopes check says in words what a missing scope costs."""
import pytest

from integrations.connectors import connector_for
from integrations.connectors.shopify import app as shopify_app
from integrations.onboarding.requirements import SHOPIFY_FLOWS
from integrations.onboarding.scopes import shopify_scopes_check
from integrations.onboarding.shopify_oauth import shopify_connect_client_credentials
from integrations.onboarding.subscriptions import shopify_subscriptions_check, shopify_subscriptions_repair

# The default flows' topics: orders and refunds (the inventory flow is fed by the ERP, not by webhooks).
ORDER_TOPICS = set(SHOPIFY_FLOWS["orders"].topics) | set(SHOPIFY_FLOWS["refunds"].topics)


@pytest.fixture
def connection(db, sandbox, sandbox_shop):
    return shopify_connect_client_credentials(shop=sandbox_shop, code="demo-shop").connection


def _held(sandbox) -> dict[str, str]:
    return {sub["topic"]: sub["uri"] for sub in sandbox.shopify.subscriptions.values()}


def test_a_new_connection_gets_every_subscription_its_flows_need(connection, sandbox):
    report = shopify_subscriptions_check(connection)
    assert set(report.missing) == ORDER_TOPICS | {"app/uninstalled"}

    result = shopify_subscriptions_repair(connection)

    assert set(result.created) == ORDER_TOPICS | {"app/uninstalled"} and not result.errors
    assert result.report.in_order
    url = "http://localhost:8000/webhooks/shopify/demo-shop/"
    assert _held(sandbox) == {topic.replace("/", "_").upper(): url for topic in ORDER_TOPICS | {"app/uninstalled"}}
    assert {sub["format"] for sub in sandbox.shopify.subscriptions.values()} == {"JSON"}


def test_a_missing_or_wrong_subscription_is_repaired_and_an_extra_one_removed(connection, sandbox):
    shopify_subscriptions_repair(connection)
    client = connector_for(connection)
    held = {s.topic: s for s in shopify_app.webhook_subscriptions(client)}
    shopify_app.delete_webhook_subscription(client, held["refunds/create"].id)  # someone removed it
    shopify_app.update_webhook_subscription(client, held["orders/paid"].id, "https://old-host.example/hooks")
    shopify_app.create_webhook_subscription(client, "products/update", "https://old-host.example/hooks")

    report = shopify_subscriptions_check(connection)
    assert report.missing == ["refunds/create"]
    assert [(w.subscription.topic, w.problem) for w in report.wrong] == [
        ("orders/paid", "sends to https://old-host.example/hooks, not http://localhost:8000/webhooks/shopify/demo-shop/")]
    assert [s.topic for s in report.extra] == ["products/update"]

    result = shopify_subscriptions_repair(connection)
    assert (result.created, result.updated, result.deleted) == (["refunds/create"], ["orders/paid"], ["products/update"])
    assert result.report.in_order

    again = shopify_subscriptions_repair(connection)
    assert (again.created, again.updated, again.deleted, again.errors) == ([], [], [], [])


def test_what_shopify_refuses_is_reported_not_raised(connection, sandbox, settings):
    settings.SITE_URL = "http://ledgerline.example.com"  # plain http to a public host: Shopify refuses it
    result = shopify_subscriptions_repair(connection)
    assert not result.created and result.errors
    assert "webhookSubscription.uri: Address is invalid" in result.errors[0]


def test_a_missing_scope_is_reported_in_plain_words(connection, sandbox):
    granted, missing = shopify_scopes_check(connection)
    assert "read_all_orders" not in granted
    assert [(m.scope, m.required, m.message) for m in missing] == [
        ("read_all_orders", False, "read_all_orders is missing: orders older than 60 days cannot be imported")]


def test_a_write_scope_counts_as_its_read_scope_and_a_missing_required_one_is_an_error(db, sandbox, sandbox_shop):
    sandbox.shopify.configure(app_scopes=["write_orders", "read_all_orders", "read_products", "read_locations",
                                          "write_inventory", "write_merchant_managed_fulfillment_orders"])
    connection = shopify_connect_client_credentials(shop=sandbox_shop).connection
    _, missing = shopify_scopes_check(connection)
    assert missing == []
    sandbox.shopify.configure(app_scopes=["read_products"])
    connection = shopify_connect_client_credentials(shop=sandbox_shop).connection
    _, missing = shopify_scopes_check(connection)
    assert [(m.scope, m.required) for m in missing][:2] == [("read_orders", True), ("read_all_orders", False)]
    assert "write_inventory is missing: stock cannot be pushed to Shopify" in [m.message for m in missing]
    assert ("write_merchant_managed_fulfillment_orders is missing: dispatches cannot be reported to Shopify, "
            "so customers get no tracking") in [m.message for m in missing]
