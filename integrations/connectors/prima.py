"""The Prima Web Services client: Prima XML request documents (declared ISO-8859-1) sent as strings
through the SOAP operation `comwsomhandler` (or `wsomhandler`), read from the instance's WSDL by zeep.

Implements the ErpConnector protocol with Prima's words translated once, here: an Account is an
ErpCustomer whose id is the AccountCode, a Depot code is a depot, a StockCode is an item code, and
Prima's `<Error Code=…>` answers and SOAP Faults become the typed errors of base.py.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Iterator

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsdl import Document

from .base import (
    CUSTOMERS,
    ITEMS,
    SALES_ORDERS,
    STOCK,
    Conflict,
    ErpCustomer,
    ErpSalesOrder,
    ErpSalesOrderRequest,
    NotFound,
    PermanentError,
    RateLimited,
    RecordLocked,
    RetryingClient,
    TransientError,
    parse_retry_after,
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
    capabilities = frozenset({SALES_ORDERS, CUSTOMERS, ITEMS, STOCK})

    def __init__(self, url: str, company: str = "", **retry_kwargs):
        super().__init__(**retry_kwargs)
        self.url = url.rstrip("/")  # the instance URL: where the operations are POSTed
        self.wsdl_url = f"{self.url}/wsdl?targetURI={TARGET_URI}"
        self.company = company
        # comwsomhandler names the company; wsomhandler works on the instance's own.
        self.operation = "comwsomhandler" if company else "wsomhandler"
        self._soap: zeep.Client | None = None

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
        if self._soap is None:
            transport = zeep.Transport(session=self.session, timeout=self.timeout, operation_timeout=self.timeout)
            self._soap = zeep.Client(self._wsdl(transport), transport=transport)
        return self._soap

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
                             code=code, body=errors)

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
        lines = _sub(node, "Lines")
        for line in order.lines:
            el = _sub(lines, "Line")
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
        try:
            return self._order(self.call(root).find("Order"))
        except Conflict as exc:
            if exc.code != "DUPLICATE_REFERENCE":
                raise
            existing_number = next((e.get("OrderNumber") for e in exc.body or [] if e.get("OrderNumber")), "")
            if existing_number:
                return self.get_sales_order(existing_number)
            existing = self.find_sales_order(order.external_reference)
            if existing is None:
                raise
            return existing

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

    # --- translation -------------------------------------------------------------------------

    @staticmethod
    def _order(node: ET.Element | None) -> ErpSalesOrder:
        if node is None:
            raise PermanentError("Prima answered without an Order element")
        return ErpSalesOrder(id=_text(node, "OrderNumber"), external_reference=_text(node, "OrderReference"),
                             status=_text(node, "OrderStatus"), total=_text(node, "OrderTotal"),
                             tax_total=_text(node, "TaxTotal"), gross_total=_text(node, "GrossTotal"))

    @staticmethod
    def _customer(node: ET.Element | None) -> ErpCustomer:
        if node is None:
            raise PermanentError("Prima answered without an Account element")
        return ErpCustomer(id=_text(node, "AccountCode"), email=_text(node, "Email"), name=_text(node, "Name"),
                           external_reference=_text(node, "Reference"), phone=_text(node, "Phone"))
