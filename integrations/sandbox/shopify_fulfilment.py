"""The sandbox shop's fulfillment orders and fulfilments, as Shopify keeps them.

Each order's shippable lines are assigned to locations as fulfillment orders (one per location its
lines ship from). `fulfillmentCreate` fulfils lines of fulfillment orders of one order and one
location: it refuses (userErrors) a quantity beyond what remains, a closed or cancelled fulfillment
order, a line that is not on it; a fulfillment order fully fulfilled closes. A fulfilment's
`displayStatus` is CONFIRMED with tracking, FULFILLED without. `notifyCustomer` (false unless sent)
sends the shipping confirmation, recorded in `notifications` so tests count what a customer got.
Mixed into ShopifySandbox; imports nothing of the product.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

FULFILLABLE = ("OPEN", "IN_PROGRESS")
# Tracking companies Shopify builds a tracking URL for (a few of its supported carriers).
TRACKING_URLS = {
    "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    "DHL Express": "https://www.dhl.com/en/express/tracking.html?AWB={number}",
    "UPS": "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums={number}",
    "DPD UK": "https://track.dpd.co.uk/parcels/{number}",
    "Evri": "https://www.evri.com/track/parcel/{number}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={number}",
}


def _gid(kind: str, number) -> str:
    return f"gid://shopify/{kind}/{number}"


def _number(value) -> int | None:
    text = str(value).split("?", 1)[0].rsplit("/", 1)[-1]
    return int(text) if text.isdigit() else None


def _iso_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class ShopifyFulfilments:
    """Needs the sandbox's `lock`, `orders`, `locations`, `_location_number` and `_location_node`."""

    def _reset_fulfilments(self) -> None:
        self.fulfillment_orders: dict[int, dict] = {}
        self.fulfillments: dict[int, dict] = {}
        self.notifications: list[dict] = []  # every shipping confirmation sent to a customer
        self.fulfillment_creates = 0  # fulfillmentCreate calls that made a fulfilment
        self._fulfilment_ids = {"FulfillmentOrder": itertools.count(6_101_000_001),
                                "FulfillmentOrderLineItem": itertools.count(1_601_000_001),
                                "Fulfillment": itertools.count(4_701_000_001),
                                "FulfillmentLineItem": itertools.count(9_901_000_001)}

    def _open_fulfillment_orders(self, order: dict, line_locations: dict[int, int] | None = None) -> None:
        """One fulfillment order per location the order's shippable lines are assigned to (the order's
        location unless a line names its own). Call under the lock."""
        by_location: dict[int, list[dict]] = {}
        for line in order["line_items"]:
            if not line.get("requires_shipping", True) or not line.get("quantity"):
                continue
            location = (line_locations or {}).get(line["id"], order.get("location_id"))
            by_location.setdefault(location, []).append(line)
        for location, lines in by_location.items():
            number = next(self._fulfilment_ids["FulfillmentOrder"])
            self.fulfillment_orders[number] = {
                "number": number, "order": order["id"], "location": location, "status": "OPEN",
                "created_at": _iso_now(),
                "lines": [{"number": next(self._fulfilment_ids["FulfillmentOrderLineItem"]), "line_item": line["id"],
                           "total": int(line["quantity"]), "remaining": int(line["quantity"])} for line in lines],
            }

    def fulfillment_orders_of(self, order_id) -> list[dict]:
        """The order's fulfillment orders (tests): location, status and each line's remaining quantity."""
        number = _number(order_id)
        with self.lock:
            return [{"id": _gid("FulfillmentOrder", fo["number"]), "location": fo["location"], "status": fo["status"],
                     "lines": [dict(line) for line in fo["lines"]]}
                    for fo in self.fulfillment_orders.values() if fo["order"] == number]

    def fulfillments_of(self, order_id) -> list[dict]:
        number = _number(order_id)
        with self.lock:
            return [dict(f) for f in self.fulfillments.values() if f["order"] == number]

    def set_fulfillment_order_status(self, fulfillment_order_id, status: str) -> None:
        """Tests: close or cancel a fulfillment order, as a merchant or another app would."""
        with self.lock:
            self.fulfillment_orders[_number(fulfillment_order_id)]["status"] = status

    # --- GraphQL nodes ------------------------------------------------------------------------

    def _fulfilment_order_fields(self, order: dict) -> dict:
        """What Order carries of fulfilment: fulfillmentOrders (connection) and fulfillments (list)."""
        from . import shopify_graphql as gql

        def fulfillment_orders(info, first=None, after=None, displayable=False, query=None, **_):
            numbers = sorted(n for n, fo in self.fulfillment_orders.items() if fo["order"] == order["id"])
            return gql.connection(numbers, first=first, after=after, key=lambda n: n, node=self._fulfillment_order_node)

        def fulfillments(info, first=None, query=None):
            numbers = sorted(n for n, f in self.fulfillments.items() if f["order"] == order["id"])
            return [self._fulfillment_node(n) for n in numbers[:first or 50]]

        return {"fulfillmentOrders": fulfillment_orders, "fulfillments": fulfillments}

    def _fulfillment_order_node(self, number: int) -> dict:
        from . import shopify_graphql as gql

        fo = self.fulfillment_orders[number]
        location = self.locations.get(fo["location"]) or {"name": ""}

        def line_items(info, first=None, after=None, **_):
            return gql.connection(fo["lines"], first=first, after=after, key=lambda line: line["number"], node=lambda line: {
                "id": _gid("FulfillmentOrderLineItem", line["number"]), "remainingQuantity": line["remaining"],
                "totalQuantity": line["total"],
                "lineItem": {"id": _gid("LineItem", line["line_item"])}})

        def fulfillments(info, first=None, after=None, **_):
            numbers = sorted(n for n, f in self.fulfillments.items() if number in f["fulfillment_orders"])
            return gql.connection(numbers, first=first, after=after, key=lambda n: n, node=self._fulfillment_node)

        return {
            "id": _gid("FulfillmentOrder", number), "status": fo["status"], "orderId": _gid("Order", fo["order"]),
            "assignedLocation": {"name": location["name"],
                                 "location": (lambda info: self._location_node(fo["location"]))
                                 if fo["location"] in self.locations else None},
            "lineItems": line_items, "fulfillments": fulfillments,
        }

    def _fulfillment_node(self, number: int) -> dict:
        from . import shopify_graphql as gql

        made = self.fulfillments[number]

        def line_items(info, first=None, after=None, **_):
            return gql.connection(made["lines"], first=first, after=after, key=lambda line: line["number"],
                                  node=lambda line: {"id": _gid("FulfillmentLineItem", line["number"]),
                                                     "quantity": line["quantity"],
                                                     "lineItem": {"id": _gid("LineItem", line["line_item"])}})

        return {
            "id": _gid("Fulfillment", number), "name": made["name"], "status": made["status"],
            "displayStatus": made["display_status"], "createdAt": made["created_at"],
            "totalQuantity": sum(line["quantity"] for line in made["lines"]),
            "trackingInfo": lambda info, first=None: [dict(made["tracking"])] if any(made["tracking"].values()) else [],
            "fulfillmentLineItems": line_items,
            "location": (lambda info: self._location_node(made["location"])) if made["location"] in self.locations else None,
        }

    # --- fulfillmentCreate --------------------------------------------------------------------

    def fulfillment_create(self, data: dict, rules=None) -> dict:
        """Shopify's fulfillmentCreate: all or nothing; user errors name the field they are about."""
        errors: list[dict] = []
        groups = data.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            return self._fulfilment_refused(["fulfillment", "lineItemsByFulfillmentOrder"],
                                            "Line items by fulfillment order must contain at least one item.")
        planned: list[tuple[dict, list[tuple[dict, int]]]] = []
        for index, group in enumerate(groups):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index)]
            fo = self.fulfillment_orders.get(_number(group.get("fulfillmentOrderId")))
            if fo is None:
                errors.append({"field": [*path, "fulfillmentOrderId"], "message": "Fulfillment order does not exist."})
                continue
            if fo["status"] not in FULFILLABLE:
                errors.append({"field": [*path, "fulfillmentOrderId"],
                               "message": f"Fulfillment order {group['fulfillmentOrderId']} has an unfulfillable "
                                          f"status= {fo['status'].lower()}."})
                continue
            wanted = group.get("fulfillmentOrderLineItems")
            lines: list[tuple[dict, int]] = []
            if wanted is None:  # every line, all that remains
                lines = [(line, line["remaining"]) for line in fo["lines"] if line["remaining"] > 0]
            for n, item in enumerate(wanted or []):
                line = next((line for line in fo["lines"] if line["number"] == _number(item.get("id"))), None)
                where = [*path, "fulfillmentOrderLineItems", str(n)]
                if line is None:
                    errors.append({"field": [*where, "id"],
                                   "message": "Fulfillment order line item does not belong to the fulfillment order."})
                elif item["quantity"] <= 0 or item["quantity"] > line["remaining"]:
                    errors.append({"field": [*where, "quantity"],
                                   "message": f"Invalid fulfillment order line item quantity requested: "
                                              f"{item['quantity']} (remaining {line['remaining']})."})
                else:
                    lines.append((line, int(item["quantity"])))
            planned.append((fo, lines))
        if not errors:
            if len({fo["order"] for fo, _ in planned}) > 1:
                errors.append({"field": ["fulfillment"], "message": "All fulfillment orders must belong to the same order."})
            elif len({fo["location"] for fo, _ in planned}) > 1:
                errors.append({"field": ["fulfillment"],
                               "message": "All fulfillment orders must be assigned to the same location."})
            elif not any(lines for _, lines in planned):
                errors.append({"field": ["fulfillment"], "message": "There is nothing left to fulfil."})
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        return {"fulfillment": self._fulfil(planned, data), "userErrors": []}

    @staticmethod
    def _fulfilment_refused(field: list[str], message: str) -> dict:
        return {"fulfillment": None, "userErrors": [{"field": field, "message": message}]}

    def _fulfil(self, planned: list[tuple[dict, list[tuple[dict, int]]]], data: dict) -> dict:
        tracking_in = data.get("trackingInfo") or {}
        company = tracking_in.get("company") or ""
        tracking_number = tracking_in.get("number") or (tracking_in.get("numbers") or [""])[0]
        url = tracking_in.get("url") or (tracking_in.get("urls") or [""])[0]
        if not url and tracking_number and company in TRACKING_URLS:
            url = TRACKING_URLS[company].format(number=tracking_number)
        order = self.orders[planned[0][0]["order"]]
        number = next(self._fulfilment_ids["Fulfillment"])
        count = sum(1 for f in self.fulfillments.values() if f["order"] == order["id"]) + 1
        made = {
            "number": number, "order": order["id"], "location": planned[0][0]["location"],
            "name": f"{order['name']}-F{count}", "status": "SUCCESS",
            "display_status": "CONFIRMED" if tracking_number else "FULFILLED", "created_at": _iso_now(),
            "tracking": {"company": company or None, "number": tracking_number or None, "url": url or None},
            "fulfillment_orders": [fo["number"] for fo, _ in planned], "lines": [],
            "notify_customer": bool(data.get("notifyCustomer")),
        }
        units_by_line: dict[int, int] = {}
        for fo, lines in planned:
            for line, quantity in lines:
                line["remaining"] -= quantity
                units_by_line[line["line_item"]] = units_by_line.get(line["line_item"], 0) + quantity
                made["lines"].append({"number": next(self._fulfilment_ids["FulfillmentLineItem"]),
                                      "line_item": line["line_item"], "quantity": quantity})
            fo["status"] = "CLOSED" if all(line["remaining"] == 0 for line in fo["lines"]) else "IN_PROGRESS"
        self.fulfillments[number] = made
        self.fulfillment_creates += 1
        self._record_fulfilment_on_order(order, made, units_by_line)
        if made["notify_customer"]:
            self.notifications.append({"order": order["id"], "fulfillment": _gid("Fulfillment", number),
                                       "email": order.get("email"), "tracking_number": tracking_number,
                                       "tracking_url": url, "at": made["created_at"]})
        return self._fulfillment_node(number)

    def _record_fulfilment_on_order(self, order: dict, made: dict, units_by_line: dict[int, int]) -> None:
        """The REST order shows it too: fulfillable quantities, each line's and the order's status."""
        for line in order["line_items"]:
            if line["id"] in units_by_line:
                line["fulfillable_quantity"] = max(0, int(line.get("fulfillable_quantity") or 0) - units_by_line[line["id"]])
                line["fulfillment_status"] = "fulfilled" if line["fulfillable_quantity"] == 0 else "partial"
        shippable = [line for line in order["line_items"] if line.get("requires_shipping", True)]
        order["fulfillment_status"] = ("fulfilled" if all(line.get("fulfillment_status") == "fulfilled" for line in shippable)
                                       else "partial")
        order.setdefault("fulfillments", []).append({
            "id": made["number"], "admin_graphql_api_id": _gid("Fulfillment", made["number"]), "name": made["name"],
            "status": "success", "created_at": made["created_at"], "location_id": made["location"],
            "tracking_company": made["tracking"]["company"], "tracking_number": made["tracking"]["number"],
            "tracking_url": made["tracking"]["url"],
            "line_items": [{"id": line["line_item"], "quantity": line["quantity"]} for line in made["lines"]],
        })
