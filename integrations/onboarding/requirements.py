"""What each flow needs from a Shopify shop: the webhook topics it is fed by and the access scopes it
calls with, each scope with what stops working without it (said to people in those words).

A connection's enabled flows are `settings["flows"]` (default DEFAULT_FLOWS); "connection" is always on.
"""
from __future__ import annotations

from dataclasses import dataclass

from integrations.inbox.routing import ORDERS, REFUNDS, SHOPIFY_TOPICS


@dataclass(frozen=True)
class ScopeNeed:
    scope: str
    without: str  # what a person loses without it, completing "<scope> is missing: ..."
    required: bool = True  # False: a feature is lost (a warning), the flow itself still runs


@dataclass(frozen=True)
class FlowNeeds:
    flow: str
    label: str
    topics: tuple[str, ...] = ()
    scopes: tuple[ScopeNeed, ...] = ()


SHOPIFY_FLOWS: dict[str, FlowNeeds] = {
    "connection": FlowNeeds(
        "connection", "Connection", topics=("app/uninstalled",)),
    ORDERS: FlowNeeds(
        ORDERS, "Orders to the ERP",
        # The topics the inbox routes to the orders flow today (integrations/inbox/routing.py).
        topics=tuple(topic for topic, flow in SHOPIFY_TOPICS.items() if flow == ORDERS),
        scopes=(
            ScopeNeed("read_orders", "orders cannot be read, so no order reaches the ERP"),
            ScopeNeed("read_all_orders", "orders older than 60 days cannot be imported", required=False),
        )),
    REFUNDS: FlowNeeds(
        REFUNDS, "Refunds to credit memos",
        topics=tuple(topic for topic, flow in SHOPIFY_TOPICS.items() if flow == REFUNDS),
        scopes=(ScopeNeed("read_orders", "refunds cannot be read, so no credit memo reaches the ERP"),)),
    "inventory": FlowNeeds(
        "inventory", "Stock to the storefront",
        scopes=(
            ScopeNeed("read_products", "SKUs cannot be matched to Shopify variants"),
            ScopeNeed("read_locations", "Shopify locations cannot be mapped to depots"),
            ScopeNeed("read_inventory", "stock levels cannot be read"),
            ScopeNeed("write_inventory", "stock cannot be pushed to Shopify"),
        )),
    # Dispatches confirmed in the ERP become Shopify fulfilments (integrations/flows/fulfilment/):
    # the flow reads the order's fulfillment orders and fulfils them; no webhook feeds it.
    "dispatches": FlowNeeds(
        "dispatches", "Dispatches to the storefront",
        scopes=(
            ScopeNeed("write_merchant_managed_fulfillment_orders",
                      "dispatches cannot be reported to Shopify, so customers get no tracking"),
        )),
    # Shopify Payments payouts and balance transactions for reconciliation (integrations/flows/payouts/):
    # read on a schedule; no webhook feeds it. On when a connection's settings["flows"] names it.
    "payouts": FlowNeeds(
        "payouts", "Payout reconciliation",
        scopes=(
            ScopeNeed("read_shopify_payments_payouts",
                      "Shopify Payments payouts cannot be read, so finance cannot reconcile them"),
        )),
}
DEFAULT_FLOWS = (ORDERS, REFUNDS, "inventory", "dispatches")


def enabled_flows(connection=None, flows=None) -> tuple[FlowNeeds, ...]:
    """The connection's flows (or `flows` given), "connection" first; unknown names are an error."""
    names = flows if flows is not None else ((connection.settings or {}).get("flows") if connection else None)
    names = list(names) if names else list(DEFAULT_FLOWS)
    unknown = sorted(set(names) - set(SHOPIFY_FLOWS))
    if unknown:
        raise ValueError(f"unknown flows {unknown}; known: {sorted(SHOPIFY_FLOWS)}")
    return tuple(SHOPIFY_FLOWS[name] for name in dict.fromkeys(["connection", *names]))


def needed_topics(flows: tuple[FlowNeeds, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(topic for flow in flows for topic in flow.topics))


def needed_scopes(flows: tuple[FlowNeeds, ...], *, optional: bool = True) -> tuple[str, ...]:
    return tuple(dict.fromkeys(need.scope for flow in flows for need in flow.scopes if optional or need.required))
