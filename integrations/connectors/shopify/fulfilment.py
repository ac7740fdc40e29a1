"""Shopify fulfilments: what an order's fulfillment orders still hold, and a fulfilment per fulfillment
order for the lines a dispatch took (`fulfillmentCreate` with `lineItemsByFulfillmentOrder`).

Shopify assigns an order's lines to locations as fulfillment orders; a fulfilment is made against
them, never against the order. One dispatch whose lines sit on fulfillment orders of two locations
becomes two fulfilments (one per fulfillment order). Shopify's `notifyCustomer` defaults to false:
the caller decides, and a dispatch's first fulfilment is the one that tells the customer.

The documents are valid on the published Admin schemas of `API_VERSIONS` (tests validate them); the
mutation carries `@idempotent(key:)` derived from the dispatch, so a resend after a lost answer is
answered with the first result. The 2026-04 schema does not document idempotency for
`fulfillmentCreate`, so that is not the only guard: `fulfilment_plan` recognises fulfilments already
made for the dispatch (by its tracking number) before anything is sent again.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..base import PermanentError
from . import gid

FULFILLMENT_ORDERS = """
query FulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 5) {
      nodes {
        id
        status
        assignedLocation { name location { id } }
        lineItems(first: 25) { nodes { id remainingQuantity totalQuantity lineItem { id } } }
      }
    }
    fulfillments(first: 10) {
      id
      status
      displayStatus
      createdAt
      trackingInfo { company number url }
      fulfillmentLineItems(first: 10) { nodes { quantity lineItem { id } } }
    }
  }
}"""

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $idempotencyKey: String!) {
  fulfillmentCreate(fulfillment: $fulfillment) @idempotent(key: $idempotencyKey) {
    fulfillment { id status displayStatus trackingInfo { company number url } }
    userErrors { field message }
  }
}"""

# The query asks for what a typical order has (5 locations, 25 lines, 10 earlier fulfilments): its
# requested cost (about 540 points) must fit Shopify's bucket; only what is returned is charged.

# Fulfillment orders a fulfilment can still be made against.
FULFILLABLE = ("OPEN", "IN_PROGRESS")

_KEY_NAMESPACE = uuid.UUID("5d0c1f0e-7f57-4c8e-9a55-2f4b1f7a9e31")


@dataclass(frozen=True)
class Tracking:
    company: str = ""
    number: str = ""
    url: str = ""

    def as_input(self) -> dict:
        return {k: v for k, v in (("company", self.company), ("number", self.number), ("url", self.url)) if v}


@dataclass
class FulfillmentOrderLine:
    id: str  # the FulfillmentOrderLineItem gid
    line_item_id: str  # the order's LineItem gid
    remaining: int
    total: int


@dataclass
class FulfillmentOrder:
    id: str
    status: str
    location_id: str
    location_name: str
    lines: list[FulfillmentOrderLine] = field(default_factory=list)


@dataclass
class ExistingFulfilment:
    id: str
    status: str
    display_status: str
    tracking_numbers: tuple[str, ...]
    quantities: dict[str, int]  # LineItem gid -> quantity


@dataclass
class FulfilmentState:
    order_id: str
    fulfillment_orders: list[FulfillmentOrder]
    fulfilments: list[ExistingFulfilment]


@dataclass
class PlannedFulfilment:
    fulfillment_order_id: str
    location_name: str
    lines: list[tuple[str, int]]  # (FulfillmentOrderLineItem gid, quantity)

    def as_input(self) -> dict:
        return {"fulfillmentOrderId": self.fulfillment_order_id,
                "fulfillmentOrderLineItems": [{"id": line, "quantity": qty} for line, qty in self.lines]}


@dataclass
class FulfilmentPlan:
    to_create: list[PlannedFulfilment]
    already: list[ExistingFulfilment]  # fulfilments made earlier for this dispatch (a resend after a crash)


class FulfilmentRefused(PermanentError):
    """Shopify (or the plan) refuses the fulfilment: more than remains, a closed fulfillment order, an
    unknown line. Retrying the same request will not help until the order changes."""


def line_item_gid(line_reference: str) -> str:
    return gid("LineItem", line_reference)


def fulfilment_state(client, order_id: str) -> FulfilmentState:
    data = client.graphql(FULFILLMENT_ORDERS, {"id": gid("Order", order_id)})
    order = data.get("order")
    if order is None:
        raise FulfilmentRefused(f"Shopify has no order {order_id}", code="unknown_order")
    orders = [FulfillmentOrder(
        id=node["id"], status=node["status"],
        location_id=((node.get("assignedLocation") or {}).get("location") or {}).get("id") or "",
        location_name=(node.get("assignedLocation") or {}).get("name") or "",
        lines=[FulfillmentOrderLine(id=line["id"], line_item_id=line["lineItem"]["id"],
                                    remaining=int(line["remainingQuantity"]), total=int(line["totalQuantity"]))
               for line in node["lineItems"]["nodes"]])
        for node in order["fulfillmentOrders"]["nodes"]]
    made = [ExistingFulfilment(
        id=node["id"], status=node.get("status") or "", display_status=node.get("displayStatus") or "",
        tracking_numbers=tuple(t.get("number") or "" for t in node.get("trackingInfo") or []),
        quantities=_quantities(node))
        for node in order.get("fulfillments") or [] if (node.get("status") or "") != "CANCELLED"]
    return FulfilmentState(order_id=order["id"], fulfillment_orders=orders, fulfilments=made)


def _quantities(node: dict) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in node["fulfillmentLineItems"]["nodes"]:
        found[line["lineItem"]["id"]] = found.get(line["lineItem"]["id"], 0) + int(line.get("quantity") or 0)
    return found


def fulfilment_plan(state: FulfilmentState, wanted: dict[str, int], tracking_number: str) -> FulfilmentPlan:
    """What is left to fulfil of `wanted` ({LineItem gid: quantity}), one fulfilment per fulfillment
    order that holds the lines (filled in Shopify's order). Fulfilments already carrying the
    dispatch's tracking number are taken as made for it: their quantities are not sent again.
    Raises FulfilmentRefused naming the line when the open fulfillment orders cannot take it."""
    left = dict(wanted)
    already = []
    if tracking_number:
        for made in state.fulfilments:
            if tracking_number in made.tracking_numbers and any(line in left for line in made.quantities):
                already.append(made)
                for line, quantity in made.quantities.items():
                    if line in left:
                        left[line] = max(0, left[line] - quantity)
    plans: dict[str, PlannedFulfilment] = {}
    for line_item, quantity in left.items():
        for fo in state.fulfillment_orders:
            if quantity <= 0:
                break
            if fo.status not in FULFILLABLE:
                continue
            for line in fo.lines:
                if line.line_item_id == line_item and line.remaining > 0 and quantity > 0:
                    take = min(line.remaining, quantity)
                    plans.setdefault(fo.id, PlannedFulfilment(fo.id, fo.location_name, [])).lines.append((line.id, take))
                    quantity -= take
        if quantity > 0:
            open_units = sum(line.remaining for fo in state.fulfillment_orders if fo.status in FULFILLABLE
                             for line in fo.lines if line.line_item_id == line_item)
            known = any(line.line_item_id == line_item for fo in state.fulfillment_orders for line in fo.lines)
            why = (f"only {open_units} still to fulfil" if known else "the order has no such line")
            raise FulfilmentRefused(f"cannot fulfil {wanted[line_item]} of line {line_item.rsplit('/', 1)[-1]}: {why}",
                                    code="not_fulfillable")
    return FulfilmentPlan(to_create=list(plans.values()), already=already)


def idempotency_key(basis: str, fulfillment_order_id: str) -> str:
    """The same dispatch and fulfillment order give the same key, on every resend."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{basis}\n{fulfillment_order_id}"))


def fulfilment_create(client, planned: PlannedFulfilment, *, tracking: Tracking, notify_customer: bool,
                      key_basis: str) -> dict:
    """One fulfilment for one fulfillment order: {"id", "status", "display_status", "tracking"}.
    User errors raise FulfilmentRefused with Shopify's messages."""
    variables = {
        "fulfillment": {"lineItemsByFulfillmentOrder": [planned.as_input()],
                        "notifyCustomer": bool(notify_customer), "trackingInfo": tracking.as_input()},
        "idempotencyKey": idempotency_key(key_basis, planned.fulfillment_order_id),
    }
    result = client.graphql(FULFILLMENT_CREATE, variables)["fulfillmentCreate"] or {}
    errors = result.get("userErrors") or []
    if errors or not result.get("fulfillment"):
        message = "; ".join(e.get("message", "") for e in errors) or "Shopify created no fulfilment"
        raise FulfilmentRefused(f"Shopify refused the fulfilment: {message}", code="user_errors", body=errors)
    made = result["fulfillment"]
    return {"id": made["id"], "status": made.get("status") or "", "display_status": made.get("displayStatus") or "",
            "fulfillment_order_id": planned.fulfillment_order_id, "notified": bool(notify_customer)}
