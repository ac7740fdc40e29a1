"""What an app asks Shopify about its own installation: the shop it reached, the access scopes it was
granted (`currentAppInstallation { accessScopes }`) and its webhook subscriptions
(`webhookSubscriptions`, `webhookSubscriptionCreate/Update/Delete`, endpoint given as `uri` since
2025-04). Topics are spelled the webhook way here ("orders/create"); the GraphQL enum
(ORDERS_CREATE) stays inside this module.

Every document is a module constant, valid on the published Admin schemas of API_VERSIONS
(tests/integrations/onboarding/test_shopify_app_documents.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import PermanentError

_SHOP = """
query ShopCheck {
  shop { name myshopifyDomain }
}"""

_ACCESS_SCOPES = """
query GrantedAccessScopes {
  currentAppInstallation { accessScopes { handle } }
}"""

_WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic uri format apiVersion { handle } }
    pageInfo { hasNextPage endCursor }
  }
}"""

_WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri format apiVersion { handle } }
    userErrors { field message }
  }
}"""

_WEBHOOK_SUBSCRIPTION_UPDATE = """
mutation WebhookSubscriptionUpdate($id: ID!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri format apiVersion { handle } }
    userErrors { field message }
  }
}"""

_WEBHOOK_SUBSCRIPTION_DELETE = """
mutation WebhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}"""

PAGE_SIZE = 100


class ShopifyWebhookError(PermanentError):
    """Shopify refused a subscription change (userErrors: a bad address, a taken topic, a missing scope)."""


@dataclass(frozen=True)
class WebhookSubscription:
    id: str
    topic: str  # "orders/create"
    uri: str
    format: str  # "JSON" | "XML"
    api_version: str = ""


def topic_enum(topic: str) -> str:
    """"orders/create" -> "ORDERS_CREATE" (WebhookSubscriptionTopic)."""
    return topic.replace("/", "_").upper()


def topic_name(enum_value: str) -> str:
    """"ORDERS_CREATE" -> "orders/create"; the first underscore is the resource's end."""
    resource, _, event = enum_value.lower().partition("_")
    # Resources with an underscore of their own (fulfillment_orders/..., inventory_levels/..., app_subscriptions/...).
    for known in ("fulfillment_orders", "fulfillment_events", "fulfillment_holds", "inventory_levels",
                  "inventory_items", "inventory_transfers", "inventory_shipments", "app_subscriptions",
                  "app_purchases_one_time"):
        if enum_value.lower().startswith(known + "_"):
            return f"{known}/{enum_value.lower()[len(known) + 1:]}"
    return f"{resource}/{event}"


def _subscription(node: dict) -> WebhookSubscription:
    return WebhookSubscription(id=node["id"], topic=topic_name(node["topic"]), uri=node.get("uri") or "",
                               format=node.get("format") or "", api_version=(node.get("apiVersion") or {}).get("handle", ""))


def _refused(result: dict, what: str) -> None:
    errors = result.get("userErrors") or []
    if errors:
        raise ShopifyWebhookError(f"Shopify refused to {what}: " + "; ".join(
            f"{'.'.join(e.get('field') or []) or 'input'}: {e.get('message', '')}" for e in errors), status=200,
            body=errors)


def shop(client) -> dict:
    """{"name", "myshopifyDomain"}: the shop the token reaches (raises ShopifyAuthError for a bad token)."""
    return client.graphql(_SHOP)["shop"]


def granted_scopes(client) -> frozenset[str]:
    """The access scopes the app's installation holds, as Shopify lists them."""
    data = client.graphql(_ACCESS_SCOPES)
    return frozenset(s["handle"] for s in data["currentAppInstallation"]["accessScopes"])


def webhook_subscriptions(client) -> list[WebhookSubscription]:
    return [_subscription(node) for node in client._paginate(_WEBHOOK_SUBSCRIPTIONS, "webhookSubscriptions",
                                                             page_size=PAGE_SIZE)]


def create_webhook_subscription(client, topic: str, uri: str, *, format: str = "JSON") -> WebhookSubscription:
    result = client.graphql(_WEBHOOK_SUBSCRIPTION_CREATE, {
        "topic": topic_enum(topic), "webhookSubscription": {"uri": uri, "format": format}})["webhookSubscriptionCreate"]
    _refused(result, f"subscribe to {topic}")
    return _subscription(result["webhookSubscription"])


def update_webhook_subscription(client, subscription_id: str, uri: str, *, format: str = "JSON") -> WebhookSubscription:
    result = client.graphql(_WEBHOOK_SUBSCRIPTION_UPDATE, {
        "id": subscription_id, "webhookSubscription": {"uri": uri, "format": format}})["webhookSubscriptionUpdate"]
    _refused(result, f"update subscription {subscription_id}")
    return _subscription(result["webhookSubscription"])


def delete_webhook_subscription(client, subscription_id: str) -> None:
    result = client.graphql(_WEBHOOK_SUBSCRIPTION_DELETE, {"id": subscription_id})["webhookSubscriptionDelete"]
    _refused(result, f"delete subscription {subscription_id}")
