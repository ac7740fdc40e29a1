"""The GraphQL documents the onboarding sends (integrations/connectors/shopify/app.py) are valid on
Shopify's published Admin schemas of the configured API version and the one before it, with the
variables they are really sent with."""
import pytest
from graphql import GraphQLError, OperationDefinitionNode, parse

from integrations.connectors.shopify import ShopifyClient
from integrations.connectors.shopify import app as documents
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems


def app_documents() -> dict[str, str]:
    found = {}
    for name, value in vars(documents).items():
        if isinstance(value, str):
            try:
                parsed = parse(value)
            except GraphQLError:
                continue
            if any(isinstance(d, OperationDefinitionNode) for d in parsed.definitions):
                found[name] = value
    return found


class Recording(ShopifyClient):
    def __init__(self):
        super().__init__("http://recording.invalid", "shpat_recording", VERSIONS[0])
        self.sent = []

    def graphql(self, query, variables=None, *, expected_cost=None):
        self.sent.append((query, variables or {}))
        node = {"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "uri": "https://x.example/",
                "format": "JSON", "apiVersion": {"handle": VERSIONS[0]}}
        return {"shop": {}, "currentAppInstallation": {"accessScopes": []},
                "webhookSubscriptions": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}},
                "webhookSubscriptionCreate": {"webhookSubscription": node, "userErrors": []},
                "webhookSubscriptionUpdate": {"webhookSubscription": node, "userErrors": []},
                "webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": node["id"], "userErrors": []}}


@pytest.fixture(scope="module")
def sent():
    client = Recording()
    documents.shop(client)
    documents.granted_scopes(client)
    documents.webhook_subscriptions(client)
    for topic in ("orders/create", "refunds/create", "app/uninstalled", "fulfillments/update"):
        documents.create_webhook_subscription(client, topic, "https://ledgerline.example/webhooks/shopify/x/")
    documents.update_webhook_subscription(client, "gid://shopify/WebhookSubscription/1", "https://l.example/")
    documents.delete_webhook_subscription(client, "gid://shopify/WebhookSubscription/1")
    return client.sent


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(app_documents()))
def test_every_onboarding_document_is_valid_on_the_published_schema(version, name):
    assert problems(version, app_documents()[name]) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_sent_is_valid_with_its_variables(sent, version):
    assert {query for query, _ in sent} == set(app_documents().values())
    for query, variables in sent:
        assert problems(version, query, variables) == [], query


def test_the_validator_refuses_the_retired_callback_url_input():
    old = """mutation($t: WebhookSubscriptionTopic!) { webhookSubscriptionCreate(topic: $t,
      webhookSubscription: {callbackUrl: "https://x.example/"}) { userErrors { message } } }"""
    assert any("callbackUrl" in p for p in problems(VERSIONS[0], old))


def test_topics_round_trip_between_the_webhook_and_the_enum_spelling():
    for topic in ("orders/create", "refunds/create", "app/uninstalled", "fulfillment_orders/moved",
                  "inventory_levels/update", "orders/risk_assessment_changed"):
        assert documents.topic_name(documents.topic_enum(topic)) == topic
