"""commercetools deliveries: a dispatch becomes a Parcel (with its tracking data and items) in a
Delivery of the order's shipping info, and the order's shipment state follows (`Partial` until every
line item was delivered in full, then `Shipped`).

Parcels of one shipment (dispatches of one order booked together: same depot and dispatch time)
share one Delivery: the first creates it (`addDelivery` with the items and the parcel), the others
are added to it (`addParcelToDelivery`, `setDeliveryItems` for the delivery's items). Deliveries and
parcels carry keys derived from the ERP's ids, so a resend finds what an earlier attempt wrote and
adds nothing twice. Every update is sent against the order's version; a 409 ConcurrentModification
(the order moved meanwhile) re-reads the order and re-applies.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..base import PermanentError
from . import ConcurrentModification

MAX_CONFLICTS = 5
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ParcelSpec:
    delivery_key: str
    parcel_key: str
    items: tuple[tuple[str, int], ...]  # (line item id, quantity)
    tracking_id: str = ""
    carrier: str = ""
    provider_transaction: str = ""


@dataclass(frozen=True)
class DeliveryResult:
    order_version: int
    delivery_id: str
    parcel_id: str
    shipment_state: str
    created: bool  # False: the parcel was there already (a resend)
    conflicts: int = 0


def resource_key(prefix: str, *parts: str) -> str:
    """A Delivery / Parcel key (2–256 of A–Z, a–z, 0–9, _ and -) derived from our ids."""
    raw = "-".join(_KEY_CHARS.sub("_", p) for p in parts if p)
    key = f"{prefix}-{raw}"
    if len(key) > 256:
        key = f"{prefix}-{hashlib.sha256(raw.encode()).hexdigest()}"
    return key


def shipment_key(sales_order_id: str, depot: str, dispatched_at: str) -> str:
    """Dispatches of one order from one depot at one moment are parcels of one shipment."""
    digest = hashlib.sha256(f"{sales_order_id}|{depot}|{dispatched_at}".encode()).hexdigest()[:32]
    return f"ll-{digest}"


class DeliveryRefused(PermanentError):
    """commercetools refuses the delivery (an unknown line item, a malformed action)."""


def _deliveries(order: dict) -> list[dict]:
    return list(((order.get("shippingInfo") or {}).get("deliveries")) or [])


def _delivered(deliveries: list[dict]) -> dict[str, int]:
    done: dict[str, int] = {}
    for delivery in deliveries:
        for item in delivery.get("items") or []:
            done[item["id"]] = done.get(item["id"], 0) + int(item.get("quantity") or 0)
    return done


def _shipment_state(order: dict, delivered: dict[str, int]) -> str:
    items = order.get("lineItems") or []
    complete = all(delivered.get(item["id"], 0) >= int(item.get("quantity") or 0) for item in items)
    return "Shipped" if complete else "Partial"


def parcel_actions(order: dict, spec: ParcelSpec) -> tuple[list[dict], bool]:
    """The update actions that add `spec` to `order` as it is now, and whether there is anything to do."""
    known = {item["id"] for item in order.get("lineItems") or []}
    unknown = [line for line, _ in spec.items if line not in known]
    if unknown:
        raise DeliveryRefused(f"order {order.get('orderNumber') or order['id']} has no line item {unknown[0]}",
                              code="unknown_line_item")
    items = [{"id": line, "quantity": qty} for line, qty in spec.items]
    tracking = {k: v for k, v in (("trackingId", spec.tracking_id), ("carrier", spec.carrier),
                                  ("providerTransaction", spec.provider_transaction)) if v}
    parcel = {"key": spec.parcel_key, "items": items}
    if tracking:
        parcel["trackingData"] = {**tracking, "isReturn": False}
    deliveries = _deliveries(order)
    delivery = next((d for d in deliveries if d.get("key") == spec.delivery_key), None)
    if delivery is not None and any(p.get("key") == spec.parcel_key for p in delivery.get("parcels") or []):
        return [], False
    actions: list[dict] = []
    if delivery is None:
        actions.append({"action": "addDelivery", "deliveryKey": spec.delivery_key, "items": items, "parcels": [parcel]})
        after = [*deliveries, {"items": items}]
    else:
        merged: dict[str, int] = {}
        for item in [*(delivery.get("items") or []), *items]:
            merged[item["id"]] = merged.get(item["id"], 0) + int(item["quantity"])
        actions.append({"action": "addParcelToDelivery", "deliveryKey": spec.delivery_key, "parcelKey": spec.parcel_key,
                        "items": items, **({"trackingData": parcel["trackingData"]} if tracking else {})})
        actions.append({"action": "setDeliveryItems", "deliveryKey": spec.delivery_key,
                        "items": [{"id": k, "quantity": v} for k, v in merged.items()]})
        after = [d for d in deliveries if d is not delivery] + [{"items": [{"id": k, "quantity": v}
                                                                         for k, v in merged.items()]}]
    state = _shipment_state(order, _delivered(after))
    if order.get("shipmentState") != state:
        actions.append({"action": "changeShipmentState", "shipmentState": state})
    return actions, True


def add_parcel(client, order_id: str, spec: ParcelSpec, *, max_conflicts: int = MAX_CONFLICTS) -> DeliveryResult:
    """Add the parcel (and its delivery, when it is the shipment's first) to the order, setting the
    shipment state, against the order's current version; on 409 re-read and re-apply."""
    conflicts = 0
    while True:
        order = client.api("GET", f"orders/{order_id}")
        actions, needed = parcel_actions(order, spec)
        if not needed:
            return _result(order, spec, created=False, conflicts=conflicts)
        try:
            updated = client.api("POST", f"orders/{order_id}", json={"version": order["version"], "actions": actions})
        except ConcurrentModification:
            conflicts += 1
            if conflicts > max_conflicts:
                raise
            continue
        return _result(updated, spec, created=True, conflicts=conflicts)


def _result(order: dict, spec: ParcelSpec, *, created: bool, conflicts: int) -> DeliveryResult:
    delivery = next((d for d in _deliveries(order) if d.get("key") == spec.delivery_key), {})
    parcel = next((p for p in delivery.get("parcels") or [] if p.get("key") == spec.parcel_key), {})
    return DeliveryResult(order_version=int(order.get("version") or 0), delivery_id=delivery.get("id", ""),
                          parcel_id=parcel.get("id", ""), shipment_state=order.get("shipmentState") or "",
                          created=created, conflicts=conflicts)
