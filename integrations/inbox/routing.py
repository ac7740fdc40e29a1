"""Which flow handles which topic. The inbox stores every topic a connection sends; a topic with a
flow gets a task, a topic with none yet is stored as ignored (counted on the home page), never
rejected and never mistaken for an order."""
from __future__ import annotations

ORDERS = "orders"
FULFILMENT = "fulfilment"
REFUNDS = "refunds"

# Shopify webhook topics (X-Shopify-Topic) -> flow.
SHOPIFY_TOPICS = {
    "orders/create": ORDERS, "orders/paid": ORDERS, "orders/updated": ORDERS, "orders/cancelled": ORDERS,
    "orders/edited": ORDERS, "refunds/create": REFUNDS,
}
# Where the order's id is in a topic's payload (orders/* carry the order itself).
SHOPIFY_ORDER_ID_PATHS = {"orders/edited": ("order_edit", "order_id"), "refunds/create": ("order_id",)}

# commercetools change notifications about an order that the orders flow applies (by fetching the order).
COMMERCETOOLS_ORDER_CHANGES = ("change/ResourceCreated", "change/ResourceUpdated")

# Flow name -> the dotted path of its event handler: handler(event_id=...) -> str.
HANDLERS = {ORDERS: "integrations.flows.orders.inbound_event_process",
            REFUNDS: "integrations.flows.refunds.refund_event_process",
            FULFILMENT: "integrations.flows.fulfilment.dispatch_event_process"}

# commercetools messages the refunds flow reads: a return recorded on an order, and a payment's
# transactions (a Refund transaction that succeeded is the money going back).
COMMERCETOOLS_REFUND_TOPICS = {
    "message/ReturnInfoAdded", "message/payment/PaymentTransactionAdded",
    "message/payment/PaymentTransactionStateChanged",
}


def flow_for(kind: str, topic: str) -> str | None:
    """The flow for a stored event's topic, or None when no flow handles it yet."""
    if kind == "shopify":
        return SHOPIFY_TOPICS.get(topic)
    if kind == "commercetools":
        if topic in COMMERCETOOLS_REFUND_TOPICS:
            return REFUNDS
        # Order messages ("message/OrderCreated", "message/DeliveryAdded"), order change notifications
        # ("change/ResourceUpdated": the order is fetched) and poll results ("order/poll"); messages
        # about other resources are stored as "message/<typeId>/<type>", a deleted order as ignored.
        if topic == "order/poll" or (topic.startswith("message/") and topic.count("/") == 1):
            return ORDERS
        if topic in COMMERCETOOLS_ORDER_CHANGES:
            return ORDERS
        return None
    if kind == "rest_erp" and topic == "dispatch/confirmed":  # the REST ERP's signed dispatch webhook
        return FULFILMENT
    return None


def resource_id_for(kind: str, topic: str, payload: dict) -> str:
    """The id of the object an event is about (an order for the order topics), or ""."""
    if kind == "shopify":
        value = payload
        for key in SHOPIFY_ORDER_ID_PATHS.get(topic, ("id",)):
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None or isinstance(value, (dict, list, bool)) else str(value)
    return ""


def handle(event_id: int, kind: str, topic: str, *, event=None) -> str:
    """Run the flow's handler; the order flow also takes the event row already read (`event`)."""
    from django.utils.module_loading import import_string

    flow = flow_for(kind, topic)
    if flow is None:
        return "ignored"
    if flow == ORDERS and event is not None:
        return import_string(HANDLERS[flow])(event_id=event_id, event=event)
    return import_string(HANDLERS[flow])(event_id=event_id)
