"""The Prima Web Services client: Prima XML request documents (declared ISO-8859-1) sent as strings
through the SOAP operation `comwsomhandler` (or `wsomhandler`), read from the instance's WSDL by zeep.

Implements the ErpConnector protocol with Prima's words translated once, here: an Account is an
ErpCustomer whose id is the AccountCode, a Depot code is a depot, a StockCode is an item code, and
Prima's `<Error Code=…>` answers and SOAP Faults become the typed errors of base.py.

The later capabilities use request types modelled in the style of the public ones, because nothing
public documents Prima's own (check them against a real instance's XML Schema Definition):
DespatchEnquiry (despatch notes by LastModified), NewCreditNote / FindCreditNote, NewJournal /
FindJournal (NominalCode lines), NewPurchaseOrder / FindPurchaseOrder / PurchaseOrderEnquiry, and
the item master's StockItemChanges (ITEM_MASTER: stock items with ItemId, ProductCode, attributes,
barcodes, images, components and PriceLists, changed after an opaque cursor). Prima's public API is
thin (NewOrder and the Request/Response shape), so that one is modelled in the same style too.
Despatch and purchase-order statuses are translated to ours ("confirmed"; "open",
"partially_received", "received"); JOURNAL_UNBALANCED and OVER_CREDIT become the codes "unbalanced"
and "over_credit" the REST ERP answers too.
"""
from __future__ import annotations

import threading
from dataclasses import replace
import xml.etree.ElementTree as ET
from typing import Iterator

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsdl import Document

from .catalogue import ITEM_MASTER, ItemPage
from .item_master import master_item
from .base import (
    CREDIT_MEMOS,
    CUSTOMERS,
    DISPATCHES,
    ITEMS,
    JOURNALS,
    PURCHASE_ORDERS,
    SALES_ORDERS,
    STOCK,
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

XML_DECLARATION = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
# The Prima service deployed on a Progress OpenEdge Web Services Adapter: it picks its WSDL by targetURI.
TARGET_URI = "urn:omlink"
LINE_TYPES = {"item": "Stock", "shipping": "Carriage", "discount": "Discount", "duty": "Duty", "tip": "Tip",
              "gift_card": "GiftCard", "rounding": "Rounding"}
ACCOUNT_TYPES = {False: "Customer", True: "Guest"}  # Guest: the cash-sale account guest orders share
STOCK_STATES = {
    "IN_TRANSIT": "in_transit",
    "QUALITY_INSPECTION": "quality_inspection",
    "DAMAGED": "damaged",
    "RETURNED_AWAITING_INSPECTION": "returned_awaiting_inspection",
}
PAGE_SIZE = 500
TRANSIENT_CODES = {"BUSY"}
NOT_FOUND_CODES = {"ORDER_NOT_FOUND", "ACCOUNT_NOT_FOUND"}
# Prima's conflict codes -> ours (base.Conflict.code); DUPLICATE_REFERENCE keeps its Prima name.
CONFLICT_CODES = {"DUPLICATE_REFERENCE": "DUPLICATE_REFERENCE", "ORDER_DESPATCHED": "already_dispatched"}
# Prima's refusals the flows act on -> the codes the REST ERP answers for the same thing.
PERMANENT_CODES = {"JOURNAL_UNBALANCED": "unbalanced", "OVER_CREDIT": "over_credit"}
DESPATCH_STATUSES = {"Confirmed": "confirmed", "Draft": "draft"}
PURCHASE_STATUSES = {"Open": "open", "Part Received": "partially_received", "Received": "received",
                     "Cancelled": "cancelled"}
# SOAP 1.1 fault codes that say our envelope is wrong (retrying will not help); Server faults are Prima's.
CLIENT_FAULTS = {"Client", "VersionMismatch", "MustUnderstand"}

# The parsed WSDL per WSDL URL, for the life of the process: read once, not on every call.
_wsdls: dict[str, Document] = {}
_wsdls_lock = threading.Lock()


def wsdl_cache_clear() -> None:
    with _wsdls_lock:
        _wsdls.clear()


def _sub(parent: ET.Element, tag: str, text=None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _text(element: ET.Element | None, tag: str) -> str:
    found = element.find(tag) if element is not None else None
    return (found.text or "").strip() if found is not None else ""


def _errors(root: ET.Element) -> list[dict]:
    return [{"code": e.get("Code", ""), "message": (e.text or "").strip(), **{k: v for k, v in e.attrib.items()
                                                                                if k != "Code"}}
            for e in root.findall("Error")]


def _fault_message(fault: zeep.exceptions.Fault) -> str:
    """The faultstring, and the adapter's errorMessage from <detail> when it says more."""
    message = (fault.message or "").strip()
    detail = fault.detail.find(".//{*}errorMessage") if fault.detail is not None else None
    extra = (detail.text or "").strip() if detail is not None else ""
    return f"{message}: {extra}" if extra and extra != message else message or extra


PRIMA_TOTAL_TAGS = {"tax_total": "TaxTotal", "gross_total": "GrossTotal"}


class PrimaClient(RetryingClient):
    """No credentials: Prima Web Services are secured at the network, not per request."""

    system = "prima"  # the outbound-write log names the target by it
    capabilities = frozenset({SALES_ORDERS, CUSTOMERS, ITEMS, STOCK, DISPATCHES, CREDIT_MEMOS, JOURNALS,
                              PURCHASE_ORDERS, ITEM_MASTER})

    def __init__(self, url: str, company: str = "", **retry_kwargs):
        super().__init__(**retry_kwargs)
        self.url = url.rstrip("/")  # the instance URL: where the operations are POSTed
        if self._environments is not None:  # zeep fetches the WSDL through the session itself
            environment = self._environment(self.url)
            self.session.proxies.update(environment["proxies"])
            self.session.verify = environment["verify"]
        self.wsdl_url = f"{self.url}/wsdl?targetURI={TARGET_URI}"
        self.company = company
        # comwsomhandler names the company; wsomhandler works on the instance's own.
        self.operation = "comwsomhandler" if company else "wsomhandler"
        # A holder, not an attribute: copies of this client (get_erp hands out shallow copies) share
        # the zeep client built over the one session.
        self._soap_holder: dict[str, zeep.Client] = {}

    @classmethod
    def from_settings(cls, **overrides) -> "PrimaClient":
        from django.conf import settings

        conf = settings.ERP
        options = {
            "url": conf["prima_url"],
            "company": conf["prima_company"],
            "timeout": conf.get("timeout", 10.0),
            "max_attempts": conf.get("max_attempts", 6),
            "backoff_base": conf.get("backoff_base", 0.5),
            "backoff_max": conf.get("backoff_max", 30.0),
        }
        options.update(overrides)
        return cls(**options)

    # --- transport ---------------------------------------------------------------------------

    @property
    def soap(self) -> zeep.Client:
        """zeep over the instance's WSDL: it writes the request envelopes and reads the answers; the
        requests themselves go through RetryingClient.request (pacing, retries, timeouts). The WSDL's
        own soap:address is not used: the configured instance URL says where Prima is."""
        if "client" not in self._soap_holder:
            transport = zeep.Transport(session=self.session, timeout=self.timeout, operation_timeout=self.timeout)
            self._soap_holder["client"] = zeep.Client(self._wsdl(transport), transport=transport)
        return self._soap_holder["client"]

    @property
    def _binding(self):
        return self.soap.service._binding  # the WSDL's (one) SOAP binding, as zeep's create_message uses it

    def _wsdl(self, transport: zeep.Transport) -> Document:
        with _wsdls_lock:  # one fetch per process, even when several workers start at once
            document = _wsdls.get(self.wsdl_url)
            attempt = 0
            while document is None:
                attempt += 1
                try:
                    document = _wsdls[self.wsdl_url] = Document(self.wsdl_url, transport)
                except requests.HTTPError as exc:
                    status = exc.response.status_code if exc.response is not None else 0
                    if status < 500 and status != 429:
                        raise PermanentError(f"Prima has no WSDL at {self.wsdl_url}: {exc}", status=status,
                                             code="wsdl") from None
                    error = TransientError(f"Prima's WSDL is unavailable ({status})", status=status, code="wsdl")
                except (requests.Timeout, requests.ConnectionError) as exc:
                    error = TransientError(f"cannot read Prima's WSDL at {self.wsdl_url}: {exc}", code="wsdl")
                except (etree.XMLSyntaxError, zeep.exceptions.Error) as exc:
                    raise PermanentError(f"{self.wsdl_url} is not a WSDL zeep can read: {exc}", code="wsdl") from None
                if document is None:
                    if attempt >= self.max_attempts:
                        raise error
                    self.sleep(self.backoff(attempt))
            return document

    @staticmethod
    def document(request_type: str) -> ET.Element:
        """An empty request document; add the request's elements to it."""
        return ET.Element("Request", RequestType=request_type)

    @staticmethod
    def encode(root: ET.Element) -> str:
        """The request string. Prima reads ISO-8859-1: characters outside Latin-1 travel as character
        references, which Prima reads back as themselves."""
        text = XML_DECLARATION + ET.tostring(root, encoding="unicode")
        return text.encode("iso-8859-1", "xmlcharrefreplace").decode("iso-8859-1")

    def envelope(self, root: ET.Element) -> bytes:
        arguments = {"companyId": self.company} if self.operation == "comwsomhandler" else {}
        message = self.soap.create_message(self.soap.service, self.operation, request=self.encode(root), **arguments)
        return etree.tostring(message, xml_declaration=True, encoding="utf-8")

    def classify(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (429, 503):  # Prima, or the adapter or a proxy in front of it, turns requests away
            message = self._fault_text(response) or response.reason or str(status)
            if response.headers.get("Retry-After"):
                raise RateLimited(f"Prima is busy: {message}", status=status, code="BUSY",
                                  retry_after=parse_retry_after(response.headers.get("Retry-After")))
            raise TransientError(f"Prima is busy: {message}", status=status, code="BUSY")
        try:
            answer = self._binding.process_reply(self.soap, self._binding.get(self.operation), response)
        except zeep.exceptions.Fault as fault:
            kind = (fault.code or "").rpartition(":")[2].split(".")[0]
            message = _fault_message(fault)
            if kind in CLIENT_FAULTS:
                raise PermanentError(f"Prima refused the SOAP request ({fault.code}): {message}", status=status,
                                     code=f"soap:{kind}") from None
            if status >= 500 or kind == "Server":
                raise TransientError(f"Prima server fault {status}: {message}", status=status,
                                     code=f"soap:{kind or 'Server'}") from None
            raise PermanentError(f"Prima answered {status} with a fault: {message}", status=status) from None
        except (zeep.exceptions.Error, etree.XMLSyntaxError) as exc:  # no SOAP envelope: a proxy page, a wrong URL
            error = TransientError if status >= 500 else PermanentError
            raise error(f"Prima answered {status} without a SOAP answer: {exc}"[:500], status=status) from None
        if not answer:
            raise PermanentError(f"Prima's {self.operation} answered without a result string", status=status)
        try:
            root = ET.fromstring(answer)
        except ET.ParseError:
            raise PermanentError(f"Prima answered a result that is not XML: {answer[:300]}", status=status) from None
        errors = _errors(root) if root.get("Status") == "Error" else []
        if not errors:
            if root.get("Status") != "OK":
                raise PermanentError(f"Prima answered Status={root.get('Status')!r}", status=status)
            response.prima_root = root  # parsed once; the caller reads it
            return
        message = "; ".join(e["message"] for e in errors)
        codes = [e["code"] for e in errors]
        code = codes[0]
        if "RECORD_LOCKED" in codes:
            raise RecordLocked(f"Prima record locked: {message}", status=423, code="RECORD_LOCKED", body=errors)
        if code in TRANSIENT_CODES:
            raise TransientError(f"Prima is busy: {message}", status=503, code=code, body=errors)
        if code in CONFLICT_CODES:
            raise Conflict(f"Prima: {message}", status=409, code=CONFLICT_CODES[code], body=errors)
        if code in NOT_FOUND_CODES:
            raise NotFound(f"Prima: {message}", status=404, code=code, body=errors)
        raise PermanentError(f"Prima rejected {root.get('RequestType') or 'the request'}: {message}", status=422,
                             code=PERMANENT_CODES.get(code, code), body=errors)

    @staticmethod
    def _fault_text(response: requests.Response) -> str:
        try:
            fault = etree.fromstring(response.content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return ""
        found = fault.find(".//{*}errorMessage")
        if found is None:
            found = fault.find(".//faultstring")
        return (found.text or "").strip() if found is not None else ""

    def call(self, root: ET.Element) -> ET.Element:
        """Send one request document through the SOAP operation; the OK `<Response>` element, or a typed error."""
        operation = self._binding.get(self.operation)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation.soapaction or ""}"'}
        response = self.request("POST", self.url, data=self.envelope(root), headers=headers)
        return response.prima_root

    # --- ErpConnector ------------------------------------------------------------------------

    def find_sales_order(self, external_reference: str) -> ErpSalesOrder | None:
        root = self.document("FindOrder")
        _sub(root, "OrderReference", external_reference)
        orders = self.call(root).findall("Orders/Order")
        return self._order(orders[0]) if orders else None

    def get_sales_order(self, order_id: str) -> ErpSalesOrder:
        root = self.document("OrderStatus")
        _sub(root, "OrderNumber", order_id)
        return self._order(self.call(root).find("Order"))

    def create_sales_order(self, order: ErpSalesOrderRequest) -> ErpSalesOrder:
        """Create a Prima order; safe to call twice for the same external reference.

        Prima keeps OrderReference unique: when it answers DUPLICATE_REFERENCE (a retry whose first
        answer was lost, or a second worker that got there first), the existing order is returned
        instead of raising.
        """
        root = self.document("NewOrder")
        node = _sub(root, "Order")
        _sub(node, "OrderReference", order.external_reference)
        _sub(node, "CustomerReference", order.customer_reference)
        _sub(node, "AccountCode", order.customer_id)
        _sub(node, "Depot", order.depot)
        _sub(node, "Currency", order.currency)
        _sub(node, "OrderDate", order.order_date)
        _sub(node, "OrderTotal", order.total)
        for key, value in order.claimed_totals().items():
            _sub(node, PRIMA_TOTAL_TAGS[key], value)
        _sub(node, "PricesIncludeTax", "Y" if order.prices_include_tax else "N")
        self._lines(node, order.lines)
        try:
            return self._order(self.call(root).find("Order"))
        except Conflict as exc:
            if exc.code != "DUPLICATE_REFERENCE":
                raise
            existing_number = next((e.get("OrderNumber") for e in exc.body or [] if e.get("OrderNumber")), "")
            existing = self.get_sales_order(existing_number) if existing_number else self.find_sales_order(
                order.external_reference)
            if existing is None:
                raise
            return replace(existing, already_existed=True)

    def cancel_sales_order(self, order_id: str, *, reason: str = "") -> ErpSalesOrder:
        """CancelOrder; safe to call twice (Prima answers a cancelled order as it is).

        Prima's ORDER_DESPATCHED becomes Conflict with code "already_dispatched"; ORDER_NOT_FOUND NotFound.
        """
        root = self.document("CancelOrder")
        _sub(root, "OrderNumber", order_id)
        _sub(root, "Reason", reason)
        return self._order(self.call(root).find("Order"))

    def find_customers(self, *, email: str = "", external_reference: str = "", phone: str = "") -> list[ErpCustomer]:
        if not email and not external_reference and not phone:
            raise ValueError("find_customers needs an email, a phone or an external_reference")
        root = self.document("FindAccount")
        if email:
            _sub(root, "Email", email)
        if phone:
            _sub(root, "Phone", phone)
        if external_reference:
            _sub(root, "Reference", external_reference)
        return [self._customer(a) for a in self.call(root).findall("Accounts/Account")]

    def get_customer(self, customer_id: str) -> ErpCustomer | None:
        root = self.document("AccountEnquiry")
        _sub(root, "AccountCode", customer_id)
        try:
            return self._customer(self.call(root).find("Account"))
        except NotFound:
            return None

    def create_customer(self, *, email: str, name: str, external_reference: str, country: str = "",
                        phone: str = "", guest: bool = False) -> ErpCustomer:
        """Open an account (AccountType Guest, the cash-sale account that needs no e-mail or phone, when
        guest=True); a duplicate Reference raises Conflict (status 409, body[0]["AccountCode"])."""
        root = self.document("NewAccount")
        node = _sub(root, "Account")
        _sub(node, "Name", name)
        _sub(node, "Email", email)
        _sub(node, "Phone", phone)
        _sub(node, "Reference", external_reference)
        _sub(node, "Country", country)
        _sub(node, "AccountType", ACCOUNT_TYPES[bool(guest)])
        return self._customer(self.call(root).find("Account"))

    def item_exists(self, item_code: str) -> bool:
        """True when the StockCode exists and is active."""
        root = self.document("StockItem")
        _sub(root, "StockCode", item_code)
        try:
            item = self.call(root).find("StockItem")
        except PermanentError as exc:
            if exc.code == "UNKNOWN_STOCK_CODE":
                return False
            raise
        return _text(item, "Status") != "Inactive"

    def items_changed_since(self, cursor: str = "", *, limit: int = 200) -> ItemPage:
        """ITEM_MASTER: StockItemChanges (modelled, see the module docstring): the stock items changed
        after `cursor`, oldest change first, each with its attributes and PriceLists, as MasterItems."""
        root = self.document("StockItemChanges")
        if cursor:
            _sub(root, "ChangedSince", cursor)
        _sub(root, "MaxRecords", str(max(1, min(limit, PAGE_SIZE))))
        found = self.call(root).find("StockItems")
        if found is None:
            return ItemPage([], cursor, False)
        items = [master_item(self._stock_item_record(node)) for node in found.findall("StockItem")]
        return ItemPage(items, found.get("NextCursor") or cursor, found.get("MoreRecords") == "Y")

    @staticmethod
    def _stock_item_record(node: ET.Element) -> dict:
        """One <StockItem> as the neutral item record item_master.master_item reads."""
        attributes: dict = {}
        for attribute in node.findall("Attributes/Attribute"):
            name, value = attribute.get("Name", ""), attribute.text or ""
            if name in attributes:  # a repeated Attribute is a list of values
                attributes[name] = (attributes[name] if isinstance(attributes[name], list) else [attributes[name]]) + [value]
            else:
                attributes[name] = value
        return {
            "id": _text(node, "ItemId"), "code": _text(node, "StockCode"), "product_key": _text(node, "ProductCode"),
            "name": _text(node, "Description"), "description": _text(node, "LongDescription"),
            "status": "retired" if _text(node, "Status") == "Retired" else "active",
            "product_type": _text(node, "ProductType"), "tax_code": _text(node, "TaxCode"),
            "unit_cost": _text(node, "UnitCost") or None, "lead_time_days": _text(node, "LeadTimeDays") or None,
            "supplier": _text(node, "Supplier"), "depot": _text(node, "Depot"), "attributes": attributes,
            "barcodes": [b.text or "" for b in node.findall("Barcodes/Barcode")],
            "images": [i.text or "" for i in node.findall("Images/Image")],
            "components": [{"item_code": c.get("StockCode", ""), "quantity": c.get("Quantity") or 1}
                           for c in node.findall("Components/Component")],
            "prices": [{"amount": p.text, "currency": p.get("Currency"), "type": p.get("Type") or "list",
                        "country": p.get("Country") or "", "customer_group": p.get("CustomerGroup") or "",
                        "channel": p.get("Channel") or "", "min_quantity": p.get("MinQuantity") or 1,
                        "valid_from": p.get("ValidFrom"), "valid_until": p.get("ValidUntil"),
                        "price_list": p.get("PriceList") or ""} for p in node.findall("PriceLists/Price")],
            "updated_at": _text(node, "LastModified"),
        }

    def list_depots(self) -> list[str]:
        return [_text(d, "Code") for d in self.call(self.document("DepotList")).findall("Depots/Depot")]

    def get_stock(self, *, depot: str | None = None) -> list[dict]:
        """Stock per Depot as {item_code, depot, on_hand, allocated, reserved, states: {...}}."""
        return list(self._stock_pages(depot))

    def _stock_pages(self, depot: str | None) -> Iterator[dict]:
        page = 1
        while True:
            root = self.document("StockEnquiry")
            if depot:
                _sub(root, "Depot", depot)
            ET.SubElement(root, "Page", Number=str(page), Size=str(PAGE_SIZE))
            levels = self.call(root).find("StockLevels")
            if levels is None:
                return
            for level in levels.findall("StockLevel"):
                states = {name: 0 for name in STOCK_STATES.values()}
                for state in level.findall("StockState"):
                    name = STOCK_STATES.get(state.get("Code", ""), state.get("Code", "").lower())
                    states[name] = int(state.text or 0)
                yield {
                    "item_code": _text(level, "StockCode"), "depot": _text(level, "Depot"),
                    "on_hand": int(_text(level, "OnHand") or 0), "allocated": int(_text(level, "Allocated") or 0),
                    "reserved": int(_text(level, "Reserved") or 0), "states": states,
                }
            if page >= int(levels.get("TotalPages", "1")):
                return
            page += 1

    # --- Dispatches (DespatchEnquiry) ---------------------------------------------------------

    def dispatches_since(self, cursor: str = "", *, limit: int = 100) -> DispatchPage:
        """Confirmed despatch notes created or changed after `cursor`, oldest first (base.read_since:
        a despatch sharing the last second read is never skipped)."""
        rows, cursor, more = read_since(
            lambda since, page: self._enquiry("DespatchEnquiry", "Despatches/Despatch", "Despatches", since, page),
            cursor, limit, stamp=lambda node: _text(node, "LastModified"), key=lambda node: _text(node, "DespatchNumber"))
        return DispatchPage([self._dispatch(node) for node in rows], cursor, more)

    def _enquiry(self, request_type: str, path: str, container: str, since: str, page: int) -> tuple[list, bool]:
        root = self.document(request_type)
        if since:
            _sub(root, "ModifiedSince", since)
        ET.SubElement(root, "Page", Number=str(page), Size=str(PAGE_SIZE))
        answer = self.call(root)
        found = answer.find(container)
        return answer.findall(path), found is not None and page < int(found.get("TotalPages", "1"))

    # --- Credit memos (NewCreditNote, FindCreditNote) ---------------------------------------

    def find_credit_memo(self, external_reference: str) -> ErpCreditMemo | None:
        return self._find("FindCreditNote", "CreditReference", external_reference, "CreditNotes/CreditNote",
                          self._memo)

    def create_credit_memo(self, memo: ErpCreditMemoRequest) -> ErpCreditMemo:
        """NewCreditNote against an order; safe to call twice (a DUPLICATE_REFERENCE answer returns the
        note already there). Prima books its own totals from the lines and refuses (PermanentError
        code "over_credit") crediting more of a stock code than the order sold."""
        root = self.document("NewCreditNote")
        node = _sub(root, "CreditNote")
        _sub(node, "CreditReference", memo.external_reference)
        _sub(node, "OrderNumber", memo.sales_order_id)
        _sub(node, "AccountCode", memo.customer_id)
        _sub(node, "Currency", memo.currency)
        _sub(node, "CreditTotal", memo.total)
        for key, value in claimed_totals(memo.tax_total, memo.gross_total).items():
            _sub(node, PRIMA_TOTAL_TAGS[key], value)
        _sub(node, "PricesIncludeTax", "Y" if memo.prices_include_tax else "N")
        _sub(node, "Reason", memo.reason)
        _sub(node, "Restock", "Y" if memo.restock else "N")
        self._lines(node, memo.lines)
        return self._create_once(root, "CreditNote", "CreditNumber", "FindCreditNote", "CreditReference",
                                 memo.external_reference, "CreditNotes/CreditNote", self._memo)

    # --- Journals (NewJournal, FindJournal) ---------------------------------------------------

    def find_journal(self, external_reference: str) -> ErpJournal | None:
        return self._find("FindJournal", "JournalReference", external_reference, "Journals/Journal", self._journal)

    def create_journal(self, journal: ErpJournalRequest) -> ErpJournal:
        """NewJournal; safe to call twice. Prima refuses an unbalanced one whole (JOURNAL_UNBALANCED):
        PermanentError with code "unbalanced"."""
        root = self.document("NewJournal")
        node = _sub(root, "Journal")
        _sub(node, "JournalReference", journal.external_reference)
        _sub(node, "JournalDate", journal.date)
        _sub(node, "Currency", journal.currency)
        _sub(node, "Description", journal.description)
        lines = _sub(node, "Lines")
        for line in journal.lines:
            el = _sub(lines, "Line")
            _sub(el, "NominalCode", line.account)
            _sub(el, "Debit", line.debit)
            _sub(el, "Credit", line.credit)
            _sub(el, "Narrative", line.description)
            _sub(el, "Reference", line.reference)
        return self._create_once(root, "Journal", "JournalNumber", "FindJournal", "JournalReference",
                                 journal.external_reference, "Journals/Journal", self._journal)

    # --- Purchase orders (NewPurchaseOrder, FindPurchaseOrder, PurchaseOrderEnquiry) ----------

    def find_purchase_order(self, external_reference: str) -> ErpPurchaseOrder | None:
        return self._find("FindPurchaseOrder", "PurchaseReference", external_reference,
                          "PurchaseOrders/PurchaseOrder", self._purchase_order)

    def create_purchase_order(self, order: ErpPurchaseOrderRequest) -> ErpPurchaseOrder:
        """NewPurchaseOrder; safe to call twice for one external reference."""
        root = self.document("NewPurchaseOrder")
        node = _sub(root, "PurchaseOrder")
        _sub(node, "PurchaseReference", order.external_reference)
        _sub(node, "SupplierCode", order.supplier)
        _sub(node, "Depot", order.depot)
        _sub(node, "Currency", order.currency)
        _sub(node, "DueDate", order.expected_date)
        _sub(node, "Note", order.note)
        lines = _sub(node, "Lines")
        for line in order.lines:
            el = _sub(lines, "Line")
            _sub(el, "StockCode", line.item_code)
            _sub(el, "Quantity", line.quantity)
            _sub(el, "UnitCost", line.unit_cost)
        return self._create_once(root, "PurchaseOrder", "PurchaseOrderNumber", "FindPurchaseOrder",
                                 "PurchaseReference", order.external_reference, "PurchaseOrders/PurchaseOrder",
                                 self._purchase_order)

    def purchase_orders_since(self, cursor: str = "", *, limit: int = 100) -> PurchaseOrderPage:
        """Purchase orders created or changed (received) after `cursor`, oldest first."""
        rows, cursor, more = read_since(
            lambda since, page: self._enquiry("PurchaseOrderEnquiry", "PurchaseOrders/PurchaseOrder",
                                              "PurchaseOrders", since, page),
            cursor, limit, stamp=lambda node: _text(node, "LastModified"),
            key=lambda node: _text(node, "PurchaseOrderNumber"))
        return PurchaseOrderPage([self._purchase_order(node) for node in rows], cursor, more)

    def _find(self, request_type: str, tag: str, value: str, path: str, read):
        root = self.document(request_type)
        _sub(root, tag, value)
        found = self.call(root).findall(path)
        return read(found[0]) if found else None

    def _create_once(self, root: ET.Element, answer_tag: str, number_tag: str, find_type: str, reference_tag: str,
                     reference: str, path: str, read):
        """Send a New… request; when Prima answers DUPLICATE_REFERENCE (a retry whose answer was lost,
        a second worker first), read and return the document already there."""
        try:
            return read(self.call(root).find(answer_tag))
        except Conflict as exc:
            if exc.code != "DUPLICATE_REFERENCE":
                raise
            number = next((e.get(number_tag) for e in exc.body or [] if e.get(number_tag)), "")
            existing = (self._find(find_type, number_tag, number, path, read) if number
                        else self._find(find_type, reference_tag, reference, path, read))
            if existing is None:
                raise
            return existing

    @staticmethod
    def _lines(parent: ET.Element, lines: tuple[ErpSalesOrderLine, ...]) -> None:
        """Sales order or credit note lines, in Prima's words."""
        container = _sub(parent, "Lines")
        for line in lines:
            el = _sub(container, "Line")
            _sub(el, "StockCode", line.item_code)
            _sub(el, "Description", line.description)
            _sub(el, "Quantity", line.quantity)
            _sub(el, "UnitPrice", line.unit_price)
            _sub(el, "LineValue", line.line_total)
            _sub(el, "TaxCode", line.tax_code)
            _sub(el, "TaxValue", line.tax_amount)
            if line.tax_rate:
                _sub(el, "TaxRate", line.tax_rate)
            _sub(el, "LineType", LINE_TYPES.get(line.kind, "Stock"))
            if line.line_reference:
                _sub(el, "LineReference", line.line_reference)

    # --- translation -------------------------------------------------------------------------

    @staticmethod
    def _order(node: ET.Element | None) -> ErpSalesOrder:
        if node is None:
            raise PermanentError("Prima answered without an Order element")
        return ErpSalesOrder(id=_text(node, "OrderNumber"), external_reference=_text(node, "OrderReference"),
                             status=_text(node, "OrderStatus"), total=_text(node, "OrderTotal"),
                             tax_total=_text(node, "TaxTotal"), gross_total=_text(node, "GrossTotal"))

    @staticmethod
    def _dispatch(node: ET.Element) -> ErpDispatch:
        status = _text(node, "DespatchStatus")
        return ErpDispatch(
            id=_text(node, "DespatchNumber"), sales_order_id=_text(node, "OrderNumber"),
            external_reference=_text(node, "OrderReference"), status=DESPATCH_STATUSES.get(status, status.lower()),
            lines=tuple(ErpDispatchLine(item_code=_text(l, "StockCode"), quantity=int(_text(l, "Quantity") or 0),
                                        line_reference=_text(l, "LineReference")) for l in node.findall("Lines/Line")),
            carrier=_text(node, "Carrier"), tracking_number=_text(node, "TrackingNumber"),
            tracking_url=_text(node, "TrackingURL"), depot=_text(node, "Depot"),
            dispatched_at=_text(node, "DespatchDate"), modified_at=_text(node, "LastModified"))

    @staticmethod
    def _memo(node: ET.Element | None) -> ErpCreditMemo:
        if node is None:
            raise PermanentError("Prima answered without a CreditNote element")
        return ErpCreditMemo(id=_text(node, "CreditNumber"), external_reference=_text(node, "CreditReference"),
                             sales_order_id=_text(node, "OrderNumber"), status=_text(node, "CreditStatus"),
                             total=_text(node, "CreditTotal"), tax_total=_text(node, "TaxTotal"),
                             gross_total=_text(node, "GrossTotal"))

    @staticmethod
    def _journal(node: ET.Element | None) -> ErpJournal:
        if node is None:
            raise PermanentError("Prima answered without a Journal element")
        return ErpJournal(id=_text(node, "JournalNumber"), external_reference=_text(node, "JournalReference"),
                          status=_text(node, "JournalStatus"), debit_total=_text(node, "DebitTotal"),
                          credit_total=_text(node, "CreditTotal"))

    @staticmethod
    def _purchase_order(node: ET.Element | None) -> ErpPurchaseOrder:
        if node is None:
            raise PermanentError("Prima answered without a PurchaseOrder element")
        status = _text(node, "PurchaseStatus")
        return ErpPurchaseOrder(
            id=_text(node, "PurchaseOrderNumber"), external_reference=_text(node, "PurchaseReference"),
            status=PURCHASE_STATUSES.get(status, status.lower()), supplier=_text(node, "SupplierCode"),
            depot=_text(node, "Depot"),
            lines=tuple(ErpPurchaseOrderLine(item_code=_text(l, "StockCode"), quantity=int(_text(l, "Quantity") or 0),
                                             unit_cost=_text(l, "UnitCost"),
                                             received_quantity=int(_text(l, "ReceivedQuantity") or 0))
                        for l in node.findall("Lines/Line")),
            expected_date=_text(node, "DueDate"), modified_at=_text(node, "LastModified"))

    @staticmethod
    def _customer(node: ET.Element | None) -> ErpCustomer:
        if node is None:
            raise PermanentError("Prima answered without an Account element")
        return ErpCustomer(id=_text(node, "AccountCode"), email=_text(node, "Email"), name=_text(node, "Name"),
                           external_reference=_text(node, "Reference"), phone=_text(node, "Phone"))
