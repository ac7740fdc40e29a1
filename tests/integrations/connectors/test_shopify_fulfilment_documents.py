"""The fulfilment documents (integrations/connectors/shopify/fulfilment.py) are valid on Shopify's published
Admin schemas of the configured API version and the one before it, with the variables the flow really
sends; fulfillmentCreate carries @idempotent with a key derived from the dispatch."""
import pytest
from graphql import OperationDefinitionNode, parse

from integrations.connectors.shopify import ShopifyClient
from integrations.connectors.shopify import fulfilment as documents
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems


class Recording(ShopifyClient):
    def __init__(self):
        super().__init__("http://recording.invalid", "shpat_recording", VERSIONS[0])
        self.sent = []

    def graphql(self, query, variables=None, *, expected_cost=None):
        self.sent.append((query, variables or {}))
        if "fulfillmentCreate" in query:
            return {"fulfillmentCreate": {"fulfillment": {"id": "gid://shopify/Fulfillment/1", "status": "SUCCESS",
                                                          "displayStatus": "CONFIRMED"}, "userErrors": []}}
        return {"order": {"id": "gid://shopify/Order/1", "fulfillments": [], "fulfillmentOrders": {"nodes": [{
            "id": "gid://shopify/FulfillmentOrder/7", "status": "OPEN",
            "assignedLocation": {"name": "Main warehouse", "location": {"id": "gid://shopify/Location/1"}},
            "lineItems": {"nodes": [{"id": "gid://shopify/FulfillmentOrderLineItem/3", "remainingQuantity": 2,
                                     "totalQuantity": 2, "lineItem": {"id": "gid://shopify/LineItem/11"}}]}}]}}}


def _sent() -> list[tuple[str, dict]]:
    client = Recording()
    state = documents.fulfilment_state(client, "1")
    plan = documents.fulfilment_plan(state, {"gid://shopify/LineItem/11": 2}, "RM1")
    documents.fulfilment_create(client, plan.to_create[0], tracking=documents.Tracking("Royal Mail", "RM1",
                                "https://track.example/RM1"), notify_customer=True, key_basis="dispatch:erp:DSP-1")
    return client.sent


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["FULFILLMENT_ORDERS", "FULFILLMENT_CREATE"])
def test_each_document_is_valid_on_the_published_schema(name, version):
    assert problems(version, getattr(documents, name)) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_documents_are_valid_with_the_variables_they_are_sent_with(version):
    for query, variables in _sent():
        assert problems(version, query, variables) == [], query


def test_fulfillment_create_carries_an_idempotency_key_derived_from_the_dispatch_and_notifies_deliberately():
    (_, _), (query, variables) = _sent()
    (operation,) = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
    [field] = operation.selection_set.selections
    assert [d.name.value for d in field.directives] == ["idempotent"]
    assert variables["idempotencyKey"] == documents.idempotency_key("dispatch:erp:DSP-1", "gid://shopify/FulfillmentOrder/7")
    assert variables["idempotencyKey"] == _sent()[1][1]["idempotencyKey"]  # the same on every resend
    assert variables["fulfillment"]["notifyCustomer"] is True  # Shopify's default is false: always sent
    assert variables["fulfillment"]["lineItemsByFulfillmentOrder"] == [{
        "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/7",
        "fulfillmentOrderLineItems": [{"id": "gid://shopify/FulfillmentOrderLineItem/3", "quantity": 2}]}]
