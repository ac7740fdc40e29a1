"""The generic REST ERP client: Bearer API key, JSON, page-numbered lists, typed errors.

Implements the ErpConnector protocol (integrations/connectors/base.py) for the flows, and the later
capabilities: dispatches (read by modification time with an opaque cursor), credit memos, journals
and purchase orders (created once per external reference, read back by it or by modification time).
Stock is paged (`GET /stock?depot=&page=&page_size=`, 200 a page) and, for a whole depot, exported
in one request (`GET /stock/export?depot=`, NDJSON: STOCK_EXPORT; Prima has no export and pages).
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Iterator
from urllib.parse import quote

import requests

from .base import (
    BATCH_SALES_ORDERS,
    CREDIT_MEMOS,
    CUSTOMER_MATCH_OR_CREATE,
    CUSTOMERS_IN_BATCH,
    CUSTOMERS,
    DISPATCHES,
    ITEMS,
    JOURNALS,
    PURCHASE_ORDERS,
    SALES_ORDERS,
    AmbiguousCustomer,
    STOCK,
    STOCK_EXPORT,
    Conflict,
    DispatchPage,
    ErpCreditMemo,
    ErpCreditMemoRequest,
    ErpCustomer,
    ErpDispatch,
    ErpDispatchLine,
    ErpJournal,
    ErpJournalRequest,
    ErpPurchaseOrder,
    ErpPurchaseOrderLine,
    ErpPurchaseOrderRequest,
    ErpSalesOrder,
    ErpSalesOrderLine,
    ErpSalesOrderRequest,
    NotFound,
    PermanentError,
    PurchaseOrderPage,
    RateLimited,
    RecordLocked,
    RetryingClient,
    TransientError,
    claimed_totals,
    parse_retry_after,
    read_since,
)
from .catalogue import ITEM_MASTER, ItemPage
from .item_master import item_price, master_item

PAGE_SIZE = 200


def _body(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _message(body, response: requests.Response) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or response.reason)
    return response.text[:300] or str(response.reason)


class RestErpClient(RetryingClient):
    system = "rest_erp"  # the outbound-write log names the target by it
    capabilities = frozenset({SALES_ORDERS, CUSTOMERS, ITEMS, STOCK, DISPATCHES, CREDIT_MEMOS, JOURNALS,
                              PURCHASE_ORDERS, CUSTOMER_MATCH_OR_CREATE, BATCH_SALES_ORDERS, CUSTOMERS_IN_BATCH,
                              ITEM_MASTER, STOCK_EXPORT})
    max_batch = 100  # sales orders per POST /sales-orders/batch

    def __init__(self, base_url: str, api_key: str, **retry_kwargs):
        super().__init__(**retry_kwargs)
        self.base_url = base_url.rstrip("/")
        self.session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})

    @classmethod
    def from_settings(cls, **overrides) -> "RestErpClient":
        from django.conf import settings

        conf = settings.ERP
        options = {
            "base_url": conf["base_url"],
            "api_key": conf["api_key"],
            "timeout": conf.get("timeout", 10.0),
            "max_attempts": conf.get("max_attempts", 6),
            "backoff_base": conf.get("backoff_base", 0.5),
            "backoff_max": conf.get("backoff_max", 30.0),
        }
        options.update(overrides)
        return cls(**options)

    # --- transport ---------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        body = _body(response)
        message = _message(body, response)
        if status == 429:
            raise RateLimited(f"ERP rate limit: {message}", status=429, body=body,
                              retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status == 423:
            raise RecordLocked(f"ERP record locked: {message}", status=423, code="record_locked", body=body)
        if status >= 500:
            raise TransientError(f"ERP server error {status}: {message}", status=status, body=body)
        if status in (401, 403):
            raise PermanentError(f"ERP refused the API key ({status}): {message}", status=status, code="auth", body=body)
        if status == 404:
            raise NotFound(f"ERP: {message}", status=404, code="not_found", body=body)
        if status == 409:
            code = body.get("error", "conflict") if isinstance(body, dict) else "conflict"
            raise Conflict(f"ERP conflict: {message}", status=409, code=code, body=body)
        if status == 422:
            errors = body.get("errors", []) if isinstance(body, dict) else []
            detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
            # The ERP's own code when it names one (unbalanced, over_credit), else a field validation.
            code = (body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else "")
            raise PermanentError(f"ERP rejected the request: {detail or message}", status=422,
                                 code=code or "validation_failed", body=body)
        raise PermanentError(f"ERP request failed ({status}): {message}", status=status,
                             code=(body or {}).get("error", "") if isinstance(body, dict) else "", body=body)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _get(self, path: str, **params) -> dict:
        return self.request("GET", self._url(path), params={k: v for k, v in params.items() if v is not None}).json()

    def _pages(self, path: str, **params) -> Iterator[dict]:
        page = 1
        while page:
            body = self._get(path, page=page, page_size=PAGE_SIZE, **params)
            yield from body.get("data", [])
            page = body.get("next_page")

    # --- ErpConnector ------------------------------------------------------------------------

    def find_sales_order(self, external_reference: str) -> ErpSalesOrder | None:
        rows = self._get("sales-orders", external_reference=external_reference).get("data", [])
        return self._order(rows[0]) if rows else None

    def get_sales_order(self, order_id: str) -> ErpSalesOrder:
        return self._order(self._get(f"sales-orders/{quote(order_id, safe='')}"))

    def create_sales_order(self, order: ErpSalesOrderRequest) -> ErpSalesOrder:
        """Create a Sales Order; safe to call twice for the same external reference.

        The external reference is sent as the Idempotency-Key, so a retried POST whose first answer
        was lost is replayed by the ERP. If the ERP already holds an order with this external
        reference (409 duplicate_external_reference, e.g. a second worker got there first), the
        existing order is returned instead of raising.
        """
        payload = self._order_payload(order)
        try:
            response = self.request("POST", self._url("sales-orders"), json=payload,
                                    headers={"Idempotency-Key": order.external_reference})
        except Conflict as exc:
            if exc.code != "duplicate_external_reference":
                raise
            existing_id = (exc.body or {}).get("existing_id") if isinstance(exc.body, dict) else None
            existing = self.get_sales_order(existing_id) if existing_id else self.find_sales_order(
                order.external_reference)
            if existing is None:
                raise
            return replace(existing, already_existed=True)
        return self._order(response.json())

    def create_sales_orders(self, orders: list[ErpSalesOrderRequest]) -> list[ErpSalesOrder | PermanentError]:
        """POST /sales-orders/batch: up to max_batch orders, a result per order. Each is unique by its
        external reference, so a retried batch books nothing twice (an order already there comes back
        with already_existed); a refused order is its PermanentError, the others are booked."""
        if not 0 < len(orders) <= self.max_batch:
            raise ValueError(f"a batch holds 1 to {self.max_batch} sales orders ({len(orders)} given)")
        response = self.request("POST", self._url("sales-orders/batch"),
                                json={"sales_orders": [self._order_payload(order) for order in orders]})
        results = (response.json() or {}).get("results", [])
        by_index = {r.get("index"): r for r in results if isinstance(r, dict)}
        answers: list[ErpSalesOrder | PermanentError] = []
        for index, order in enumerate(orders):
            result = by_index.get(index)
            if result is None:
                answers.append(PermanentError(f"ERP gave no result for {order.external_reference}", code="no_result"))
            elif result.get("status") in (200, 201) and isinstance(result.get("sales_order"), dict):
                customer = result.get("customer") if isinstance(result.get("customer"), dict) else {}
                answers.append(replace(self._order(result["sales_order"]), already_existed=bool(result.get("existing")),
                                       customer_matched_on=str(customer.get("matched_on") or ""),
                                       customer_created=bool(customer.get("created"))))
            elif result.get("status") == 409 and result.get("error") == "multiple_matches":
                answers.append(AmbiguousCustomer(
                    f"ERP rejected the request: {result.get('message') or 'several customers match'}", status=409,
                    code="multiple_matches", body=result,
                    candidates=[self._customer(c) for c in result.get("candidates") or [] if isinstance(c, dict)]))
            else:
                errors = result.get("errors") or []
                detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
                answers.append(PermanentError(f"ERP rejected the request: {detail or result.get('error')}",
                                              status=result.get("status"), code=result.get("error") or "rejected",
                                              body=result))
        return answers

    def cancel_sales_order(self, order_id: str, *, reason: str = "") -> ErpSalesOrder:
        """Cancel an order; safe to call twice (the ERP answers a cancelled order as it is).

        Raises Conflict with code "already_dispatched" when the ERP refuses because goods left the
        depot, NotFound for an unknown order.
        """
        response = self.request("POST", self._url(f"sales-orders/{quote(order_id, safe='')}/cancel"),
                                json={"reason": reason})
        return self._order(response.json())

    def find_customers(self, *, email: str = "", external_reference: str = "", phone: str = "") -> list[ErpCustomer]:
        if not email and not external_reference and not phone:
            raise ValueError("find_customers needs an email, a phone or an external_reference")
        body = self._get("customers", email=email or None, external_reference=external_reference or None,
                         phone=phone or None)
        return [self._customer(c) for c in body.get("data", [])]

    def get_customer(self, customer_id: str) -> ErpCustomer | None:
        try:
            return self._customer(self._get(f"customers/{quote(customer_id, safe='')}"))
        except NotFound:
            return None

    def create_customer(self, *, email: str, name: str, external_reference: str, country: str = "",
                        phone: str = "", guest: bool = False) -> ErpCustomer:
        """Create a customer (a guest / cash-sale account when guest=True, which needs no e-mail or phone);
        a duplicate external reference raises Conflict (status 409, body.existing_id)."""
        response = self.request("POST", self._url("customers"), json={
            "email": email, "name": name, "external_reference": external_reference, "country": country,
            "phone": phone, "account_type": "guest" if guest else "customer",
        })
        return self._customer(response.json())

    def match_or_create_customer(self, *, email: str, name: str, external_reference: str, country: str = "",
                                 phone: str = "", guest: bool = False,
                                 match_on: tuple[str, ...] = ("external_reference", "email"),
                                 ) -> tuple[ErpCustomer, str]:
        """POST /customers with match_on: 200 with the account matched (and `matched_on`), 201 with a
        new one; 409 multiple_matches (every candidate listed) raises AmbiguousCustomer."""
        try:
            response = self.request("POST", self._url("customers"), json={
                "email": email, "name": name, "external_reference": external_reference, "country": country,
                "phone": phone, "account_type": "guest" if guest else "customer", "match_on": list(match_on),
            })
        except Conflict as exc:
            if exc.code != "multiple_matches":
                raise
            body = exc.body if isinstance(exc.body, dict) else {}
            raise AmbiguousCustomer(str(exc), status=409, code="multiple_matches", body=body,
                                    candidates=[self._customer(c) for c in body.get("candidates", [])]) from exc
        body = response.json()
        return self._customer(body), (str(body.get("matched_on") or "") if response.status_code == 200 else "")

    def item_exists(self, item_code: str) -> bool:
        """True when the item exists and is active (an inactive item cannot be sold)."""
        try:
            item = self._get(f"items/{quote(item_code, safe='')}")
        except NotFound:
            return False
        return bool(item.get("active", True))

    def list_items(self) -> Iterator[dict]:
        """Every item, page by page: {code, description, active, tax_code?}."""
        yield from self._pages("items")

    def item_prices(self) -> Iterator[tuple[str, list[dict]]]:
        """(item code, its selling prices) of every active item, page by page. A price is
        {currency, amount (Decimal), type ("list" | "compare_at"), country, customer_group, channel,
        min_quantity, valid_from, valid_until (aware datetimes or None)}."""
        for item in self._pages("items"):
            if not item.get("active", True):
                continue
            prices = []
            for row in item.get("prices") or ():
                price = item_price(row)
                if price is None:
                    continue  # a price the ERP cannot state is no price to compare
                prices.append({"currency": price.currency, "amount": price.amount, "type": price.type,
                               "country": price.country, "customer_group": price.customer_group,
                               "channel": price.channel, "min_quantity": price.min_quantity,
                               "valid_from": price.valid_from, "valid_until": price.valid_until})
            yield str(item["code"]), prices

    def items_changed_since(self, cursor: str = "", *, limit: int = 200) -> ItemPage:
        """ITEM_MASTER: items created, changed (figures, prices, code) or retired after `cursor`, oldest
        change first (`GET /items?updated_since=<cursor>&limit=`; the ERP's cursor is opaque and orders
        by (updated_at, id), so items changed in the same instant are neither skipped nor repeated)."""
        body = self._get("items", updated_since=cursor, limit=max(1, min(limit, PAGE_SIZE)))
        items = [master_item(row) for row in body.get("data", [])]
        return ItemPage(items, str(body.get("next_cursor") or cursor), bool(body.get("has_more")))

    def list_depots(self) -> list[str]:
        return [d["code"] for d in self._get("depots").get("data", [])]

    def get_stock(self, *, depot: str | None = None) -> list[dict]:
        """Stock rows {item_code, depot, on_hand, allocated, reserved, states: {...}} for one depot or all."""
        return list(self._pages("stock", depot=depot))

    def export_stock(self, *, depot: str) -> Iterator[dict]:
        """STOCK_EXPORT: every stock row of one depot from `GET /stock/export?depot=X`, one request
        answered as NDJSON (a row a line, the rows of GET /stock), read as it streams. 100,000 items
        are one request instead of 500 pages, so a drift check of five depots stays far inside the
        ERP's 50 requests/s. The rate limit and errors are the API's; a broken stream is transient
        (the export is read again whole: it has no cursor)."""
        response = self.request("GET", self._url("stock/export"), params={"depot": depot}, stream=True,
                                headers={"Accept": "application/x-ndjson"})
        with response:
            try:
                for raw in response.iter_lines(chunk_size=1 << 16):
                    if raw:
                        yield json.loads(raw)
            except requests.RequestException as exc:
                raise TransientError(f"ERP stock export of {depot} broke off: {exc}") from exc

    # --- Dispatches --------------------------------------------------------------------------

    def dispatches_since(self, cursor: str = "", *, limit: int = 100) -> DispatchPage:
        """Confirmed dispatches created or changed after `cursor`, oldest first (base.read_since: a
        dispatch sharing the last second read is never skipped)."""
        rows, cursor, more = read_since(lambda since, page: self._listing("dispatches", since, page), cursor, limit,
                                        stamp=lambda row: row.get("modified_at", ""), key=lambda row: row["id"])
        return DispatchPage([self._dispatch(row) for row in rows], cursor, more)

    def _listing(self, path: str, since: str, page: int) -> tuple[list, bool]:
        body = self._get(path, modified_since=since or None, page=page, page_size=PAGE_SIZE)
        return body.get("data", []), bool(body.get("next_page"))

    # --- Credit memos ------------------------------------------------------------------------

    def find_credit_memo(self, external_reference: str) -> ErpCreditMemo | None:
        rows = self._get("credit-memos", external_reference=external_reference).get("data", [])
        return self._memo(rows[0]) if rows else None

    def create_credit_memo(self, memo: ErpCreditMemoRequest) -> ErpCreditMemo:
        """Book a credit memo against a sales order; safe to call twice for one external reference (a
        lost answer is replayed by the Idempotency-Key, a memo already there is returned). The ERP books
        its own totals from the lines and refuses (PermanentError code "over_credit") crediting more of
        an item than the order sold."""
        payload = {
            "external_reference": memo.external_reference, "sales_order_id": memo.sales_order_id,
            "customer_id": memo.customer_id, "currency": memo.currency, "total": memo.total,
            **claimed_totals(memo.tax_total, memo.gross_total), "prices_include_tax": memo.prices_include_tax,
            "reason": memo.reason, "restock": memo.restock, "lines": [self._line(line) for line in memo.lines],
        }
        return self._create_once("credit-memos", payload, memo.external_reference, self._memo)

    # --- Journals ----------------------------------------------------------------------------

    def find_journal(self, external_reference: str) -> ErpJournal | None:
        rows = self._get("journals", external_reference=external_reference).get("data", [])
        return self._journal(rows[0]) if rows else None

    def create_journal(self, journal: ErpJournalRequest) -> ErpJournal:
        """Book a journal; safe to call twice for one external reference. An unbalanced one is refused
        whole: PermanentError with code "unbalanced"."""
        payload = {
            "external_reference": journal.external_reference, "date": journal.date, "currency": journal.currency,
            "description": journal.description,
            "lines": [{"account": line.account, "debit": line.debit, "credit": line.credit,
                       "description": line.description, "reference": line.reference} for line in journal.lines],
        }
        return self._create_once("journals", payload, journal.external_reference, self._journal)

    # --- Purchase orders ---------------------------------------------------------------------

    def find_purchase_order(self, external_reference: str) -> ErpPurchaseOrder | None:
        rows = self._get("purchase-orders", external_reference=external_reference).get("data", [])
        return self._purchase_order(rows[0]) if rows else None

    def create_purchase_order(self, order: ErpPurchaseOrderRequest) -> ErpPurchaseOrder:
        """Raise a purchase order; safe to call twice for one external reference."""
        payload = {
            "external_reference": order.external_reference, "supplier": order.supplier, "depot": order.depot,
            "currency": order.currency, "expected_date": order.expected_date, "note": order.note,
            "lines": [{"item_code": line.item_code, "quantity": line.quantity, "unit_cost": line.unit_cost}
                      for line in order.lines],
        }
        return self._create_once("purchase-orders", payload, order.external_reference, self._purchase_order)

    def purchase_orders_since(self, cursor: str = "", *, limit: int = 100) -> PurchaseOrderPage:
        """Purchase orders created or changed (received) after `cursor`, oldest first."""
        rows, cursor, more = read_since(lambda since, page: self._listing("purchase-orders", since, page), cursor,
                                        limit, stamp=lambda row: row.get("modified_at", ""), key=lambda row: row["id"])
        return PurchaseOrderPage([self._purchase_order(row) for row in rows], cursor, more)

    def _create_once(self, path: str, payload: dict, external_reference: str, read):
        """POST a document keyed by its external reference (also the Idempotency-Key); when the ERP
        already holds one (409 duplicate_external_reference), read and return that one instead."""
        try:
            response = self.request("POST", self._url(path), json=payload,
                                    headers={"Idempotency-Key": external_reference})
        except Conflict as exc:
            if exc.code != "duplicate_external_reference":
                raise
            existing_id = (exc.body or {}).get("existing_id") if isinstance(exc.body, dict) else None
            if existing_id:
                return read(self._get(f"{path}/{quote(existing_id, safe='')}"))
            rows = self._get(path, external_reference=external_reference).get("data", [])
            if not rows:
                raise
            return read(rows[0])
        return read(response.json())

    # --- translation -------------------------------------------------------------------------

    def _order_payload(self, order: ErpSalesOrderRequest) -> dict:
        customer = {"customer_id": order.customer_id}
        if not order.customer_id and order.new_customer:  # matched or created by the ERP as it books
            customer = {"customer": dict(order.new_customer)}
        return {
            "external_reference": order.external_reference,
            **customer,
            "currency": order.currency,
            "depot": order.depot,
            "order_date": order.order_date,
            "customer_reference": order.customer_reference,
            "prices_include_tax": order.prices_include_tax,
            "total": order.total,
            **order.claimed_totals(),
            "lines": [self._line(line) for line in order.lines],
        }

    @staticmethod
    def _order(data: dict) -> ErpSalesOrder:
        return ErpSalesOrder(id=data["id"], external_reference=data.get("external_reference", ""),
                             status=data.get("status", ""), total=data.get("total", ""),
                             tax_total=data.get("tax_total", ""), gross_total=data.get("gross_total", ""),
                             customer_id=str(data.get("customer_id") or ""))

    @staticmethod
    def _line(line: ErpSalesOrderLine) -> dict:
        data = {"item_code": line.item_code, "description": line.description, "quantity": line.quantity,
                "unit_price": line.unit_price, "line_total": line.line_total, "tax_code": line.tax_code,
                "tax_amount": line.tax_amount, "tax_rate": line.tax_rate, "kind": line.kind}
        if line.line_reference:
            data["line_reference"] = line.line_reference
        return data

    @staticmethod
    def _dispatch(data: dict) -> ErpDispatch:
        return ErpDispatch(
            id=data["id"], sales_order_id=data.get("sales_order_id", ""),
            external_reference=data.get("external_reference", ""), status=data.get("status", ""),
            lines=tuple(ErpDispatchLine(item_code=l.get("item_code", ""), quantity=int(l.get("quantity") or 0),
                                        line_reference=l.get("line_reference") or "") for l in data.get("lines", [])),
            carrier=data.get("carrier", ""), tracking_number=data.get("tracking_number", ""),
            tracking_url=data.get("tracking_url", ""), depot=data.get("depot", ""),
            dispatched_at=data.get("dispatched_at", ""), modified_at=data.get("modified_at", ""))

    @staticmethod
    def _memo(data: dict) -> ErpCreditMemo:
        return ErpCreditMemo(id=data["id"], external_reference=data.get("external_reference", ""),
                             sales_order_id=data.get("sales_order_id", ""), status=data.get("status", ""),
                             total=data.get("total", ""), tax_total=data.get("tax_total", ""),
                             gross_total=data.get("gross_total", ""))

    @staticmethod
    def _journal(data: dict) -> ErpJournal:
        return ErpJournal(id=data["id"], external_reference=data.get("external_reference", ""),
                          status=data.get("status", ""), debit_total=data.get("debit_total", ""),
                          credit_total=data.get("credit_total", ""))

    @staticmethod
    def _purchase_order(data: dict) -> ErpPurchaseOrder:
        return ErpPurchaseOrder(
            id=data["id"], external_reference=data.get("external_reference", ""), status=data.get("status", ""),
            supplier=data.get("supplier", ""), depot=data.get("depot", ""),
            lines=tuple(ErpPurchaseOrderLine(item_code=l.get("item_code", ""), quantity=int(l.get("quantity") or 0),
                                             unit_cost=l.get("unit_cost", ""),
                                             received_quantity=int(l.get("received_quantity") or 0))
                        for l in data.get("lines", [])),
            expected_date=data.get("expected_date", ""), modified_at=data.get("modified_at", ""))

    @staticmethod
    def _customer(data: dict) -> ErpCustomer:
        return ErpCustomer(id=data["id"], email=data.get("email", ""), name=data.get("name", ""),
                           external_reference=data.get("external_reference", ""), phone=data.get("phone", ""))
