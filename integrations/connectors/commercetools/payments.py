"""commercetools payments found by what a PSP's settlement report names: the payment's `interfaceId`
(the PSP's payment reference, e.g. Adyen's PSP reference or Stripe's PaymentIntent) or one of its
transactions' `interactionId` (the PSP's capture or refund reference), and the order paying with each.

`GET /{projectKey}/payments?where=interfaceId in (…)` (scope view_payments), then `GET orders` with
`paymentInfo(payments(id in (…)))` (view_orders): query predicates, batched so a URL stays short.
"""
from __future__ import annotations

from collections.abc import Iterable

from . import CommercetoolsClient

BATCH = 50  # references per predicate
_LIMIT = 500  # commercetools' maximum page size


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _batches(values: Iterable[str]):
    values = sorted({v for v in values if v})
    for i in range(0, len(values), BATCH):
        yield values[i:i + BATCH]


def payments_by_references(client: CommercetoolsClient, *, interface_ids: Iterable[str] = (),
                           interaction_ids: Iterable[str] = ()) -> list[dict]:
    found: dict[str, dict] = {}
    predicates = [f"interfaceId in ({', '.join(_quote(v) for v in batch)})" for batch in _batches(interface_ids)]
    predicates += [f"transactions(interactionId in ({', '.join(_quote(v) for v in batch)}))"
                   for batch in _batches(interaction_ids)]
    for where in predicates:
        offset = 0
        while True:
            page = client.api("GET", "payments", params=[("where", where), ("limit", str(_LIMIT)),
                                                         ("offset", str(offset)), ("withTotal", "false")])
            results = page.get("results") or []
            found.update({p["id"]: p for p in results if isinstance(p, dict) and p.get("id")})
            if len(results) < _LIMIT:
                break
            offset += _LIMIT
    return list(found.values())


def orders_for_psp_references(client: CommercetoolsClient, *, interface_ids: Iterable[str] = (),
                              interaction_ids: Iterable[str] = ()) -> dict[str, str]:
    """{PSP reference (interfaceId or interactionId): the id of the order that pays with that payment}."""
    payments = payments_by_references(client, interface_ids=interface_ids, interaction_ids=interaction_ids)
    order_of_payment: dict[str, str] = {}
    for batch in _batches(p["id"] for p in payments):
        where = f"paymentInfo(payments(id in ({', '.join(_quote(v) for v in batch)})))"
        page = client.query_orders(where=where, limit=_LIMIT, expand=(), with_total=False)
        for order in page.get("results") or []:
            for ref in (order.get("paymentInfo") or {}).get("payments") or []:
                if isinstance(ref, dict) and ref.get("id"):
                    order_of_payment[ref["id"]] = order["id"]
    references: dict[str, str] = {}
    for payment in payments:
        order_id = order_of_payment.get(payment["id"])
        if not order_id:
            continue
        if payment.get("interfaceId"):
            references[payment["interfaceId"]] = order_id
        for transaction in payment.get("transactions") or []:
            if isinstance(transaction, dict) and transaction.get("interactionId"):
                references[transaction["interactionId"]] = order_id
    return references
