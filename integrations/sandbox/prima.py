"""A Prima (Prima Solutions ERP) Web Services stand-in: a SOAP 1.1 service described by a WSDL, whose two
generic operations carry Prima XML request documents as strings.

What is public about Prima Web Services: the instance URL is the WSDL's address without its final
`/wsdl` (public clients read `…/wsdl?targetURI=urn:omlink`, an OpenEdge Web Services Adapter's shape);
two generic operations, `wsomhandler(request)` and `comwsomhandler` (which also takes the Company ID);
the request is an XML string per the Prima Web Services schema, declared ISO-8859-1 and rooted at
`<Request RequestType="NewOrder">…`, passed entity-escaped in the SOAP body, and the answer is an XML
string too; no credentials (Prima is secured at the network). The rest is modelled here:

    GET  /prima/wsdl                 the WSDL (document/literal, namespace urn:omlink)
    POST /prima                      SOAP 1.1, SOAPAction ""
    <soap:Body><comwsomhandler xmlns="urn:omlink"><companyId>LEDG01</companyId>
      <request>&lt;?xml version="1.0" encoding="ISO-8859-1"?&gt;&lt;Request RequestType="NewOrder"&gt;…</request>
    </comwsomhandler></soap:Body>  ->  <comwsomhandlerResponse><result>&lt;Response …&gt;</result>…

`wsomhandler` works on the instance's own company. Answers are `<Response RequestType="…"
Status="OK">…</Response>`, or `Status="Error"` with one `<Error Code="…">message</Error>` per problem:
Prima's own errors travel inside a normal (HTTP 200) SOAP answer. A broken envelope or an unknown
operation is a SOAP Fault (HTTP 500, soap:Client); BUSY (overloaded, rate limited or down) is HTTP 503
with a soap:Server Fault, and Retry-After when a wait is known. Orders are booked at Prima's own
figures from the lines (OrderTotal, TaxTotal, GrossTotal), go Entered -> (Part) Despatched, and
CancelOrder is refused with ORDER_DESPATCHED once anything was despatched. A NewOrder allocates its
Stock lines in its Depot (CancelOrder gives it back, a despatch uses it up).

The later request types are NOT from Prima's published documentation: nothing public names Prima's
request types for despatches, credit notes, journals or purchase orders (only `NewOrder` and the
`<Request RequestType=…>` / `<Response RequestType=… Status=…>` shape are public). They are modelled
in the style of the existing ones and should be checked against the Prima Web Services XML Schema
Definition of a real instance:

    DespatchEnquiry       <ModifiedSince>ISO</ModifiedSince><Page Number= Size=/>  ->  <Despatches …>
                          confirmed despatch notes changed at or after ModifiedSince (inclusive),
                          oldest first, ties by DespatchNumber
    NewCreditNote         <CreditNote><CreditReference/><OrderNumber/><AccountCode/>…<Lines/></CreditNote>
                          booked at Prima's own figures; DUPLICATE_REFERENCE (CreditNumber=…),
                          OVER_CREDIT per line when more of a stock code is credited than was sold
    FindCreditNote        <CreditReference/> or <CreditNumber/>  ->  <CreditNotes>
    NewJournal            <Journal><JournalReference/><JournalDate/><Currency/><Lines><Line><NominalCode/>
                          <Debit/><Credit/>…; JOURNAL_UNBALANCED when debits and credits differ
    FindJournal           <JournalReference/> or <JournalNumber/>  ->  <Journals>
    NewPurchaseOrder      <PurchaseOrder><PurchaseReference/><SupplierCode/><Depot/><Currency/><DueDate/>
                          <Lines><Line><StockCode/><Quantity/><UnitCost/>…; DUPLICATE_REFERENCE
                          (PurchaseOrderNumber=…)
    FindPurchaseOrder     <PurchaseReference/> or <PurchaseOrderNumber/>  ->  <PurchaseOrders>
    PurchaseOrderEnquiry  <ModifiedSince/><Page/>  ->  <PurchaseOrders …> changed by receipts
    StockItemChanges      <ChangedSince>cursor</ChangedSince><MaxRecords>200</MaxRecords>  ->
                          <StockItems NextCursor="…" MoreRecords="Y|N"><StockItem><ItemId/><StockCode/>
                          <ProductCode/><Description/><LongDescription/><Status>Active|Retired</Status>
                          <ProductType/><TaxCode/><UnitCost/><LeadTimeDays/><Supplier/><Depot/>
                          <Attributes><Attribute Name=…/></Attributes><Barcodes><Barcode/></Barcodes>
                          <Images><Image/></Images><Components><Component StockCode= Quantity=/></Components>
                          <PriceLists><Price PriceList= Currency= Type= Country= CustomerGroup= Channel=
                          MinQuantity= ValidFrom= ValidUntil=>amount</Price></PriceLists><LastModified/>
                          the item master changed after the opaque cursor, ordered by (LastModified, ItemId);
                          INVALID_CURSOR for a cursor this instance did not hand out

The New… writes meet record locks like NewOrder. Admin endpoints for a sandbox in another process:
/prima/_sandbox/… (despatch an order in parcels, confirm a draft despatch, receive a purchase order).
"""
from __future__ import annotations

import copy
import json
import math
import random
import time
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation

from .currencies import currency_exponent, on_grid
from .erp_books import (
    CANCELLED,
    CONFIRMED,
    CUSTOMER,
    DISPATCHED,
    DRAFT,
    GUEST,
    NON_STOCK_DEMO_ITEMS,
    OPEN,
    PARTLY_DISPATCHED,
    PO_OPEN,
    PO_PARTLY_RECEIVED,
    PO_RECEIVED,
    DispatchRefused,
    OrderBook,
    ReceiptRefused,
    StatusRefused,
    is_iso_date,
    missing_for_account,
    parse_timestamp,
    same_phone,
)
from .erp_items import DemoCatalogue, ItemMasterBook, decode_cursor
from .server import DepotStock, FaultInjection, RateLimiter, Request, Response, VendorApp
from .soap import CONTENT_TYPE, DocumentLiteralService, Operation, SoapFault

XML_DECLARATION = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
TARGET_URI = "urn:omlink"
SERVICE = DocumentLiteralService(
    namespace=TARGET_URI, name="omlink",
    operations=[Operation("wsomhandler", ("request",)), Operation("comwsomhandler", ("companyId", "request"))],
    documentation="Prima Web Services (sandbox): a Prima XML request document in, a Prima XML answer out.",
)
# Prima's names for the stock states it keeps besides on hand / allocated / reserved.
STOCK_STATES = {
    "in_transit": "IN_TRANSIT",
    "quality_inspection": "QUALITY_INSPECTION",
    "damaged": "DAMAGED",
    "returned_awaiting_inspection": "RETURNED_AWAITING_INSPECTION",
}
LINE_TYPES = {"Stock": "item", "Carriage": "shipping", "Discount": "discount", "Duty": "duty", "Tip": "tip",
              "GiftCard": "gift_card", "Rounding": "rounding"}
ORDER_STATUSES = {OPEN: "Entered", PARTLY_DISPATCHED: "Part Despatched", DISPATCHED: "Despatched",
                  CANCELLED: "Cancelled"}
ACCOUNT_TYPES = {"Customer": CUSTOMER, "Guest": GUEST}  # Guest: the cash-sale account guest orders share
ACCOUNT_TYPE_WORDS = {ours: word for word, ours in ACCOUNT_TYPES.items()}
DESPATCH_STATUSES = {DRAFT: "Draft", CONFIRMED: "Confirmed"}
PURCHASE_STATUSES = {PO_OPEN: "Open", PO_PARTLY_RECEIVED: "Part Received", PO_RECEIVED: "Received"}
WRITES = {"NewOrder", "NewAccount", "CancelOrder", "NewCreditNote", "NewJournal", "NewPurchaseOrder"}
DEFAULT_PAGE_SIZE = 500

DEMO_ITEMS = {
    "TEE-BLK-S": "T-shirt black S",
    "TEE-BLK-M": "T-shirt black M",
    "TEE-BLK-L": "T-shirt black L",
    "TEE-WHT-M": "T-shirt white M",
    "MUG-001": "Enamel mug",
    "HOODIE-GRY-L": "Hoodie grey L",
    "CUSTOM": "Custom line (no SKU)",
    "SHIPPING": "Carriage",
    "DISCOUNT": "Discount",
    "DUTIES": "Duties and import taxes",
    "TIPS": "Tips",
    "GIFT-CARD-LIABILITY": "Gift cards sold (liability)",
    "GOODWILL": "Goodwill credit (refund on no line)",
}
DEMO_DEPOTS = {"MAIN": "Main warehouse", "NORTH": "North depot"}


def xml_document(root: ET.Element) -> str:
    """The answer string, declared ISO-8859-1: characters outside Latin-1 become character references."""
    text = XML_DECLARATION + ET.tostring(root, encoding="unicode")
    return text.encode("iso-8859-1", "xmlcharrefreplace").decode("iso-8859-1")


def _sub(parent: ET.Element, tag: str, text=None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isalpha() and code.isupper()


def _is_fraction(text: str) -> bool:
    try:
        rate = Decimal(text)
    except InvalidOperation:
        return False
    return rate.is_finite() and 0 <= rate <= 1


class PrimaProblem(Exception):
    """One or more `<Error Code=…>` answers."""

    def __init__(self, *errors: tuple[str, str, dict]):
        super().__init__("; ".join(e[1] for e in errors))
        self.errors = errors


def _problem(code: str, message: str, **attrs) -> PrimaProblem:
    return PrimaProblem((code, message, attrs))


class PrimaSandbox(DemoCatalogue, ItemMasterBook, OrderBook, DepotStock, FaultInjection, VendorApp):
    ITEM_TABLE = "stock_items"  # the item master's table (ItemMasterBook)
    prefix = "/prima"
    STATUS_WORDS = ORDER_STATUSES
    ID_FORMATS = {"dispatch": "DN{:06d}", "credit_memo": "CN{:06d}", "journal": "JN{:06d}",
                  "purchase_order": "PO{:06d}"}

    def __init__(
        self,
        prima_company: str = "LEDG01",
        prima_rate_limit: float | None = None,
        prima_lock_probability: float | None = None,
        prima_latency: float = 0.0,
        erp_rate_limit: float = 50,
        erp_lock_probability: float = 0.0,
        **_ignored,
    ):
        self.company = prima_company  # the instance's own, which wsomhandler works on
        self.companies = {prima_company}
        # Without Prima-specific settings the sandbox follows the ERP ones (`manage.py sandbox --erp-…`).
        self._defaults = {
            "rate_limit": erp_rate_limit if prima_rate_limit is None else prima_rate_limit,
            "lock_probability": erp_lock_probability if prima_lock_probability is None else prima_lock_probability,
            "latency": prima_latency,
        }
        self.random = random.Random()
        super().__init__()
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.stock_items: dict[str, dict] = {}
            self._reset_item_master()
            self.depots: dict[str, dict] = {}
            self.stock: dict[tuple[str, str], dict] = {}
            self._accounts: dict[str, dict] = {}
            self._orders: dict[str, dict] = {}
            self._orders_by_reference: dict[str, str] = {}
            self._next_account = 1
            self._next_order = 100001
            self._reset_books()
            self.rate_limiter = RateLimiter(self._defaults["rate_limit"])
            self.lock_probability = self._defaults["lock_probability"]
            self.latency = self._defaults["latency"]
            self.outage = False
            self.rate_limited_count = 0
            self.locked_count = 0
            self.requests_count = 0
            self.soap_faults = 0
            self.wsdl_served = 0
            self.requests_seen = []
            self.envelopes_seen: list[bytes] = []  # raw SOAP request bodies, as they came over HTTP
            self.documents_seen: list[bytes] = []  # the Prima XML in them, as Prima reads it (ISO-8859-1)

    def seed_demo(self) -> None:
        with self.lock:
            for code, name in DEMO_DEPOTS.items():
                self.add_depot(code, name)
            for code, description in DEMO_ITEMS.items():
                self.add_item(code, description)
            for n, code in enumerate(c for c in DEMO_ITEMS if c not in NON_STOCK_DEMO_ITEMS):
                self.set_stock(code, "MAIN", on_hand=40 + 10 * n, allocated=n, reserved=1, in_transit=5)
                self.set_stock(code, "NORTH", on_hand=12 + n, damaged=n % 2)
            from .erp import DEMO_ITEM_PRICES, DEMO_ITEM_SUPPLY

            for code, (cost, lead_time, supplier) in DEMO_ITEM_SUPPLY.items():
                self.item_master_put(code, unit_cost=cost, lead_time_days=lead_time, supplier=supplier,
                                     prices=DEMO_ITEM_PRICES.get(code) or [])
            self._enrich_demo_items(NON_STOCK_DEMO_ITEMS)

    def add_item(self, code: str, description: str = "", active: bool = True) -> dict:
        with self.lock:
            item = {"code": code, "description": description or code, "active": bool(active)}
            self.stock_items[code] = self._touch_item(item, self.stock_items.get(code))
            return dict(self.stock_items[code])

    def customers_add(self, *, email: str = "", name: str = "", external_reference: str = "", country: str = "",
                      phone: str = "", account_type: str = CUSTOMER) -> dict:
        """An account opened in Prima by someone else (account_type "customer" or "guest")."""
        with self.lock:
            code = f"A{self._next_account:05d}"
            self._next_account += 1
            account = {"id": code, "account_code": code, "email": email, "name": name or email or phone,
                       "external_reference": external_reference, "country": country, "phone": phone,
                       "account_type": account_type}
            self._accounts[code] = account
            return dict(account)

    add_customer = add_account = customers_add

    @property
    def customers(self) -> list[dict]:
        """Accounts as {id (= AccountCode), account_code, email, name, external_reference, country, phone,
        account_type (customer | guest)}."""
        with self.lock:
            return [dict(a) for a in self._accounts.values()]

    accounts = customers

    @property
    def sales_orders(self) -> list[dict]:
        """Orders, oldest first, in the same neutral keys as the REST ERP's (id = Prima order number)."""
        with self.lock:
            return [copy.deepcopy(o) for o in self._orders.values()]

    # --- routes ------------------------------------------------------------------------------

    def register_routes(self) -> None:
        self.route("POST", "/_sandbox/reset", self.admin_reset)
        self.route("POST", "/_sandbox/seed-demo", self.admin_seed_demo)
        self.route("GET", "/_sandbox/stats", self.admin_stats)
        self.route("POST", "/_sandbox/config", self.admin_config)
        self.route("POST", "/_sandbox/orders/(?P<number>[^/]+)/dispatch", self.admin_dispatch_order)
        self.route("POST", "/_sandbox/despatches/(?P<number>[^/]+)/confirm", self.admin_confirm_despatch)
        self.route("POST", "/_sandbox/purchase-orders/(?P<number>[^/]+)/receive", self.admin_receive_purchase_order)
        self.route("POST", "/_sandbox/credit-notes/(?P<number>[^/]+)/inspect", self.admin_inspect_return)
        self.route("POST", "/_sandbox/items/(?P<code>[^/]+)", self.admin_change_item)
        self.route("POST", "/_sandbox/seed-catalogue", self.admin_seed_catalogue)
        self.route("GET", "/wsdl", self.serve_wsdl)
        self.route("POST", "/", self.handle_soap)

    def serve_wsdl(self, request: Request) -> Response:
        target = request.arg("targetURI")
        if target not in (None, TARGET_URI):
            return Response(404, f"No web service is deployed at targetURI {target}".encode(),
                            {"Content-Type": "text/plain; charset=utf-8"})
        with self.lock:
            self.wsdl_served += 1
        location = f"http://{request.headers.get('host', '127.0.0.1')}{self.prefix}"
        return Response(200, SERVICE.wsdl(location), {"Content-Type": CONTENT_TYPE})

    def handle_soap(self, request: Request) -> Response:
        with self.lock:
            self.requests_count += 1
            self.envelopes_seen.append(request.body)
            request_id = f"prima-sandbox#{self.requests_count}"
            latency, outage = self.latency, self.outage
        if latency:
            time.sleep(latency)  # outside the lock, so concurrent callers overlap
        try:
            if outage:  # the adapter is up, Prima behind it is not
                raise SoapFault("Server", f"The {TARGET_URI} service is unavailable, try again later (BUSY)",
                                http_status=503)
            call = SERVICE.read(request.body, request.headers)
            document = call.arguments["request"]
            with self.lock:
                self.documents_seen.append(document.encode("iso-8859-1", "xmlcharrefreplace"))
            company = call.arguments.get("companyId", self.company)
            wait = self.rate_limiter.check(company)
            if wait is not None:
                with self.lock:
                    self.rate_limited_count += 1
                raise SoapFault("Server", "Too many requests, try again later (BUSY)", http_status=503,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        except SoapFault as fault:
            with self.lock:
                self.soap_faults += 1
            return Response(fault.http_status, SERVICE.fault(fault, request_id),
                            {"Content-Type": CONTENT_TYPE, **fault.headers})
        return Response(200, SERVICE.answer(call, self.handle_document(company, document)),
                        {"Content-Type": CONTENT_TYPE})

    def handle_document(self, company: str, document: str) -> str:
        """One Prima XML request document in, its Prima XML answer out (both strings)."""
        request_type = ""
        try:
            if company not in self.companies:
                raise _problem("UNKNOWN_COMPANY", f"Company {company} is not set up for web services")
            try:
                root = ET.fromstring(document)
            except ET.ParseError as exc:
                raise _problem("INVALID_XML", f"Request is not well-formed XML: {exc}")
            if root.tag != "Request":
                raise _problem("INVALID_XML", f"Root element must be Request, not {root.tag}")
            request_type = root.get("RequestType", "")
            handler = self.HANDLERS.get(request_type)
            if handler is None:
                raise _problem("UNKNOWN_REQUEST_TYPE", f"RequestType {request_type!r} is not supported")
            if request_type in WRITES and self.lock_probability and self.random.random() < self.lock_probability:
                with self.lock:
                    self.locked_count += 1
                raise _problem("RECORD_LOCKED", "Record is locked by another user")
            response = ET.Element("Response", RequestType=request_type, Status="OK")
            handler(self, root, response)
        except PrimaProblem as problem:
            response = ET.Element("Response", RequestType=request_type, Status="Error")
            for code, message, attrs in problem.errors:
                _sub(response, "Error", message, Code=code, **attrs)
        return xml_document(response)

    # --- request types -----------------------------------------------------------------------

    @staticmethod
    def _text(element: ET.Element | None, tag: str) -> str:
        found = element.find(tag) if element is not None else None
        return (found.text or "").strip() if found is not None else ""

    def _order_element(self, parent: ET.Element, order: dict) -> None:
        node = _sub(parent, "Order")
        _sub(node, "OrderNumber", order["id"])
        _sub(node, "OrderReference", order["external_reference"])
        _sub(node, "CustomerReference", order["customer_reference"])
        _sub(node, "AccountCode", order["customer_id"])
        _sub(node, "Depot", order["depot"])
        _sub(node, "Currency", order["currency"])
        _sub(node, "OrderDate", order["order_date"])
        _sub(node, "OrderStatus", order["status"])
        _sub(node, "OrderTotal", order["total"])
        _sub(node, "TaxTotal", order["tax_total"])
        _sub(node, "NetTotal", order["net_total"])
        _sub(node, "GrossTotal", order["gross_total"])
        _sub(node, "PricesIncludeTax", "Y" if order.get("prices_include_tax") else "N")
        if order.get("cancel_reason"):
            _sub(node, "CancelReason", order["cancel_reason"])
        lines = _sub(node, "Lines")
        for line in order["lines"]:
            el = _sub(lines, "Line", Number=line["line_number"])
            _sub(el, "StockCode", line["item_code"])
            _sub(el, "Description", line["description"])
            _sub(el, "Quantity", line["quantity"])
            _sub(el, "UnitPrice", line["unit_price"])
            _sub(el, "LineValue", line["line_total"])
            _sub(el, "TaxCode", line["tax_code"])
            _sub(el, "TaxValue", line["tax_amount"])
            _sub(el, "TaxRate", line["tax_rate"])
            _sub(el, "LineType", line["line_type"])
            if line.get("line_reference"):
                _sub(el, "LineReference", line["line_reference"])
            _sub(el, "DespatchedQuantity", line.get("dispatched_quantity", 0))

    def _account_element(self, parent: ET.Element, account: dict) -> None:
        node = _sub(parent, "Account")
        _sub(node, "AccountCode", account["account_code"])
        _sub(node, "Name", account["name"])
        _sub(node, "Email", account["email"])
        _sub(node, "Reference", account["external_reference"])
        _sub(node, "Country", account["country"])
        _sub(node, "Phone", account["phone"])
        _sub(node, "AccountType", ACCOUNT_TYPE_WORDS[account["account_type"]])

    def new_order(self, root: ET.Element, response: ET.Element) -> None:
        order = root.find("Order")
        if order is None:
            raise _problem("MISSING_FIELD", "NewOrder needs an Order element")
        reference = self._text(order, "OrderReference")
        with self.lock:
            if reference and reference in self._orders_by_reference:
                existing = self._orders_by_reference[reference]
                raise _problem("DUPLICATE_REFERENCE", f"Order reference {reference} already exists as order {existing}",
                               OrderNumber=existing)
            lines, errors = self._validate_order(order)
            if errors:
                raise PrimaProblem(*errors)
            number = f"S{self._next_order}"
            self._next_order += 1
            inclusive = self._text(order, "PricesIncludeTax").upper() == "Y"
            currency = self._text(order, "Currency")
            figures = self.booked_figures((Decimal(line["line_total"]) for line in lines),
                                          (Decimal(line["tax_amount"]) for line in lines),
                                          prices_include_tax=inclusive, currency=currency)
            stored = {
                "id": number, "order_number": number, "external_reference": reference,
                "customer_id": self._text(order, "AccountCode"), "currency": currency,
                "depot": self._text(order, "Depot"), "order_date": self._text(order, "OrderDate") or time.strftime("%Y-%m-%d"),
                "customer_reference": self._text(order, "CustomerReference"), **figures,
                "prices_include_tax": inclusive, "status": self.STATUS_WORDS[OPEN], "lines": lines,
            }
            self.post_order(stored)
            self._orders_by_reference[reference] = number
            self._order_element(response, stored)

    def _validate_order(self, order: ET.Element) -> tuple[list[dict], list[tuple[str, str, dict]]]:
        """(lines in neutral keys, errors). Called under the lock."""
        errors: list[tuple[str, str, dict]] = []
        for tag in ("OrderReference", "AccountCode", "Depot", "Currency", "OrderTotal"):
            if not self._text(order, tag):
                errors.append(("MISSING_FIELD", f"{tag} is required", {"Field": tag}))
        if not order.findall("Lines/Line"):
            errors.append(("MISSING_FIELD", "An order needs at least one Line", {"Field": "Lines"}))
        if errors:
            return [], errors
        currency = self._text(order, "Currency")
        if not _is_currency(currency):
            return [], [("INVALID_CURRENCY", f"Currency {currency} is not an ISO 4217 code", {})]
        account = self._text(order, "AccountCode")
        if account not in self._accounts:
            errors.append(("UNKNOWN_ACCOUNT", f"Account {account} does not exist", {"AccountCode": account}))
        depot = self._text(order, "Depot")
        if depot not in self.depots:
            errors.append(("UNKNOWN_DEPOT", f"Depot {depot} does not exist", {"Depot": depot}))
        lines = self._validate_lines(order, "OrderTotal", errors, selling=True)
        return lines, errors

    @staticmethod
    def _amount(text: str, what: str, currency: str, errors: list) -> Decimal | None:
        exponent = currency_exponent(currency)
        try:
            value = Decimal(text)
        except InvalidOperation:
            errors.append(("INVALID_AMOUNT", f"{what} {text!r} is not a number", {}))
            return None
        if not value.is_finite() or -value.as_tuple().exponent > exponent:
            errors.append(("INVALID_AMOUNT", f"{what} {text} has more than {exponent} decimals allowed for "
                                             f"{currency}", {}))
            return None
        return value

    def _validate_lines(self, document: ET.Element, total_tag: str, errors: list, *, selling: bool) -> list[dict]:
        """The lines of an order (selling) or a credit note in neutral keys, adding to `errors` what is
        wrong with them and with the document's figures (its `total_tag`, TaxTotal, GrossTotal)."""
        currency = self._text(document, "Currency")
        total = self._amount(self._text(document, total_tag), total_tag, currency, errors)
        lines, line_sum, tax_sum, sum_ok, tax_ok = [], Decimal(0), Decimal(0), True, True
        for n, node in enumerate(document.findall("Lines/Line"), start=1):
            code = self._text(node, "StockCode")
            if code not in self.stock_items:
                errors.append(("UNKNOWN_STOCK_CODE", f"Stock code {code} does not exist (line {n})",
                               {"StockCode": code, "Line": n}))
            elif selling and not self.stock_items[code]["active"]:  # what was sold may be credited later
                errors.append(("STOCK_CODE_INACTIVE", f"Stock code {code} is inactive (line {n})",
                               {"StockCode": code, "Line": n}))
            line_type = self._text(node, "LineType") or "Stock"
            if line_type not in LINE_TYPES:
                errors.append(("INVALID_LINE_TYPE", f"LineType {line_type} on line {n} is not one of "
                                                    f"{', '.join(LINE_TYPES)}", {"Line": n}))
            quantity_text = self._text(node, "Quantity")
            quantity = int(quantity_text) if quantity_text.isdigit() else 0
            if quantity <= 0:
                errors.append(("INVALID_QUANTITY", f"Quantity {quantity_text!r} on line {n} must be a positive "
                                                   "whole number", {"Line": n}))
            unit = self._amount(self._text(node, "UnitPrice") or "0", f"UnitPrice on line {n}", currency, errors)
            tax = self._amount(self._text(node, "TaxValue") or "0", f"TaxValue on line {n}", currency, errors)
            if tax is None:
                tax_ok = False
            else:
                tax_sum += tax
            rate = self._text(node, "TaxRate")
            if rate and not _is_fraction(rate):
                errors.append(("INVALID_TAX_RATE", f"TaxRate {rate!r} on line {n} must be a fraction between 0 and "
                                                   "1 (0.2 for 20 %)", {"Field": "TaxRate", "Line": n}))
            value = self._amount(self._text(node, "LineValue"), f"LineValue on line {n}", currency, errors)
            if value is None:
                sum_ok = False
            else:
                line_sum += value
            lines.append({
                "line_number": n, "item_code": code, "stock_code": code,
                "description": self._text(node, "Description") or self.stock_items.get(code, {}).get("description", ""),
                "quantity": quantity, "unit_price": str(unit) if unit is not None else "",
                "line_total": str(value) if value is not None else "", "tax_code": self._text(node, "TaxCode"),
                "tax_amount": str(tax) if tax is not None else "", "tax_rate": rate, "line_type": line_type,
                "kind": LINE_TYPES.get(line_type, ""), "line_reference": self._text(node, "LineReference"),
            })
        if total is not None and sum_ok and total != line_sum:
            errors.append(("TOTAL_MISMATCH", f"{total_tag} {total} does not equal the sum of the line values "
                                             f"{line_sum}", {}))
        # Older clients send neither TaxTotal nor GrossTotal: then there is nothing more to check.
        tax_text, gross_text = self._text(document, "TaxTotal"), self._text(document, "GrossTotal")
        tax_total = self._amount(tax_text, "TaxTotal", currency, errors) if tax_text else None
        gross_total = self._amount(gross_text, "GrossTotal", currency, errors) if gross_text else None
        if tax_total is not None and tax_ok and tax_total != tax_sum:
            errors.append(("TAX_TOTAL_MISMATCH", f"TaxTotal {tax_text} does not equal the sum of the line tax "
                                                 f"values {tax_sum}", {"Field": "TaxTotal"}))
        if gross_total is not None and total is not None and tax_ok:
            inclusive = self._text(document, "PricesIncludeTax").upper() == "Y"
            expected = total if inclusive else total + tax_sum
            if gross_total != expected:
                how = f"{total_tag} (prices include tax)" if inclusive else f"{total_tag} + TaxTotal"
                errors.append(("GROSS_TOTAL_MISMATCH", f"GrossTotal {gross_text} does not equal {how} {expected}",
                               {"Field": "GrossTotal"}))
        return lines

    def find_order(self, root: ET.Element, response: ET.Element) -> None:
        reference = self._text(root, "OrderReference")
        number = self._text(root, "OrderNumber")
        if not reference and not number:
            raise _problem("MISSING_FIELD", "FindOrder needs an OrderReference or an OrderNumber")
        with self.lock:
            order_id = number or self._orders_by_reference.get(reference)
            order = self._orders.get(order_id or "")
            if order and reference and order["external_reference"] != reference:
                order = None
            orders = _sub(response, "Orders")
            if order:
                self._order_element(orders, order)

    def order_status(self, root: ET.Element, response: ET.Element) -> None:
        reference = self._text(root, "OrderReference")
        number = self._text(root, "OrderNumber")
        with self.lock:
            order = self._orders.get(number or self._orders_by_reference.get(reference, ""))
            if order is None:
                raise _problem("ORDER_NOT_FOUND", f"No order {number or reference}")
            self._order_element(response, order)

    def cancel_order_request(self, root: ET.Element, response: ET.Element) -> None:
        number = self._text(root, "OrderNumber")
        if not number:
            raise _problem("MISSING_FIELD", "CancelOrder needs an OrderNumber", Field="OrderNumber")
        try:
            order = self.cancel_order(number, reason=self._text(root, "Reason"))
        except KeyError:
            raise _problem("ORDER_NOT_FOUND", f"No order {number}", OrderNumber=number) from None
        except StatusRefused as refused:
            raise _problem("ORDER_DESPATCHED", f"Order {number} is {refused.current} and can no longer be cancelled",
                           OrderNumber=number, OrderStatus=refused.current) from None
        self._order_element(response, order)

    def find_account(self, root: ET.Element, response: ET.Element) -> None:
        email = self._text(root, "Email").lower()
        reference = self._text(root, "Reference")
        phone = self._text(root, "Phone")
        if not email and not reference and not phone:
            raise _problem("MISSING_FIELD", "FindAccount needs an Email, a Phone or a Reference")
        with self.lock:
            accounts = _sub(response, "Accounts")
            for account in self._accounts.values():
                if ((not email or account["email"].strip().lower() == email)
                        and (not reference or account["external_reference"] == reference)
                        and (not phone or same_phone(phone, account["phone"]))):
                    self._account_element(accounts, account)

    def account_enquiry(self, root: ET.Element, response: ET.Element) -> None:
        code = self._text(root, "AccountCode")
        with self.lock:
            account = self._accounts.get(code)
            if account is None:
                raise _problem("ACCOUNT_NOT_FOUND", f"Account {code} does not exist", AccountCode=code)
            self._account_element(response, account)

    def new_account(self, root: ET.Element, response: ET.Element) -> None:
        node = root.find("Account")
        if node is None:
            raise _problem("MISSING_FIELD", "NewAccount needs an Account element", Field="Account")
        name, email, phone = self._text(node, "Name"), self._text(node, "Email"), self._text(node, "Phone")
        reference, country = self._text(node, "Reference"), self._text(node, "Country")
        account_word = self._text(node, "AccountType") or "Customer"
        if account_word not in ACCOUNT_TYPES:
            raise _problem("INVALID_ACCOUNT_TYPE", f"AccountType {account_word} is not one of "
                                                   f"{', '.join(ACCOUNT_TYPES)}", Field="AccountType")
        account_type = ACCOUNT_TYPES[account_word]
        problems = []
        for missing in missing_for_account(name=name, email=email, phone=phone, guest=account_type == GUEST):
            if missing == "name":
                problems.append(("MISSING_FIELD", "Name is required", {"Field": "Name"}))
            else:
                problems.append(("MISSING_FIELD", "Email or Phone is required (a Guest account needs neither)",
                                 {"Field": "Email"}))
        if problems:
            raise PrimaProblem(*problems)
        with self.lock:
            for account in self._accounts.values():
                if reference and account["external_reference"] == reference:
                    raise _problem("DUPLICATE_REFERENCE", f"Account reference {reference} already exists as "
                                                          f"{account['account_code']}", AccountCode=account["account_code"])
            account = self.customers_add(email=email, name=name, external_reference=reference, country=country,
                                         phone=phone, account_type=account_type)
            self._account_element(response, account)

    def stock_enquiry(self, root: ET.Element, response: ET.Element) -> None:
        depot = self._text(root, "Depot")
        code = self._text(root, "StockCode")
        page_node = root.find("Page")
        try:
            page = int(page_node.get("Number", "1")) if page_node is not None else 1
            size = int(page_node.get("Size", str(DEFAULT_PAGE_SIZE))) if page_node is not None else DEFAULT_PAGE_SIZE
        except ValueError:
            raise _problem("INVALID_PAGE", "Page Number and Size must be whole numbers")
        if page < 1 or not 1 <= size <= DEFAULT_PAGE_SIZE:
            raise _problem("INVALID_PAGE", f"Page Number must be >= 1 and Size between 1 and {DEFAULT_PAGE_SIZE}")
        with self.lock:
            if depot and depot not in self.depots:
                raise _problem("UNKNOWN_DEPOT", f"Depot {depot} does not exist", Depot=depot)
            rows = [r for (c, d), r in sorted(self.stock.items()) if (not depot or d == depot) and (not code or c == code)]
            pages = max(1, math.ceil(len(rows) / size))
            levels = _sub(response, "StockLevels", Page=page, PageSize=size, TotalPages=pages, TotalRecords=len(rows))
            for row in rows[(page - 1) * size: page * size]:
                level = _sub(levels, "StockLevel")
                _sub(level, "StockCode", row["item_code"])
                _sub(level, "Depot", row["depot"])
                _sub(level, "OnHand", row["on_hand"])
                _sub(level, "Allocated", row["allocated"])
                _sub(level, "Reserved", row["reserved"])
                for state, prima_code in STOCK_STATES.items():
                    _sub(level, "StockState", row["states"][state], Code=prima_code)

    def depot_list(self, root: ET.Element, response: ET.Element) -> None:
        with self.lock:
            depots = _sub(response, "Depots")
            for depot in self.depots.values():
                node = _sub(depots, "Depot")
                _sub(node, "Code", depot["code"])
                _sub(node, "Name", depot["name"])

    def stock_item(self, root: ET.Element, response: ET.Element) -> None:
        code = self._text(root, "StockCode")
        with self.lock:
            item = self.stock_items.get(code)
            if item is None:
                raise _problem("UNKNOWN_STOCK_CODE", f"Stock code {code} does not exist", StockCode=code)
            node = _sub(response, "StockItem")
            _sub(node, "StockCode", item["code"])
            _sub(node, "Description", item["description"])
            _sub(node, "Status", "Active" if item["active"] else "Inactive")

    # --- despatches, credit notes, journals, purchase orders (modelled: see the module docstring) ---

    def _enquiry_page(self, root: ET.Element) -> tuple[object, int, int]:
        """(ModifiedSince as a datetime or None, page, size) of an enquiry by modification time."""
        since_text = self._text(root, "ModifiedSince")
        try:
            since = parse_timestamp(since_text) if since_text else None
        except ValueError:
            raise _problem("INVALID_DATE", f"ModifiedSince {since_text!r} is not an ISO 8601 date-time",
                           Field="ModifiedSince") from None
        page_node = root.find("Page")
        try:
            page = int(page_node.get("Number", "1")) if page_node is not None else 1
            size = int(page_node.get("Size", str(DEFAULT_PAGE_SIZE))) if page_node is not None else DEFAULT_PAGE_SIZE
        except ValueError:
            raise _problem("INVALID_PAGE", "Page Number and Size must be whole numbers") from None
        if page < 1 or not 1 <= size <= DEFAULT_PAGE_SIZE:
            raise _problem("INVALID_PAGE", f"Page Number must be >= 1 and Size between 1 and {DEFAULT_PAGE_SIZE}")
        return since, page, size

    @staticmethod
    def _paged(response: ET.Element, tag: str, rows: list, page: int, size: int) -> tuple[ET.Element, list]:
        pages = max(1, math.ceil(len(rows) / size))
        container = _sub(response, tag, Page=page, PageSize=size, TotalPages=pages, TotalRecords=len(rows))
        return container, rows[(page - 1) * size: page * size]

    def _despatch_element(self, parent: ET.Element, despatch: dict) -> None:
        node = _sub(parent, "Despatch")
        _sub(node, "DespatchNumber", despatch["id"])
        _sub(node, "OrderNumber", despatch["sales_order_id"])
        _sub(node, "OrderReference", despatch["external_reference"])
        _sub(node, "DespatchStatus", DESPATCH_STATUSES[despatch["status"]])
        _sub(node, "Depot", despatch["depot"])
        _sub(node, "Carrier", despatch["carrier"])
        _sub(node, "TrackingNumber", despatch["tracking_number"])
        _sub(node, "TrackingURL", despatch["tracking_url"])
        _sub(node, "DespatchDate", despatch["dispatched_at"])
        _sub(node, "LastModified", despatch["modified_at"])
        lines = _sub(node, "Lines")
        for line in despatch["lines"]:
            el = _sub(lines, "Line", Number=line["line_number"])
            _sub(el, "StockCode", line["item_code"])
            _sub(el, "Quantity", line["quantity"])
            if line.get("line_reference"):
                _sub(el, "LineReference", line["line_reference"])

    def despatch_enquiry(self, root: ET.Element, response: ET.Element) -> None:
        since, page, size = self._enquiry_page(root)
        container, rows = self._paged(response, "Despatches", self.confirmed_dispatches_since(since), page, size)
        for despatch in rows:
            self._despatch_element(container, despatch)

    def _credit_note_element(self, parent: ET.Element, memo: dict) -> None:
        node = _sub(parent, "CreditNote")
        _sub(node, "CreditNumber", memo["id"])
        _sub(node, "CreditReference", memo["external_reference"])
        _sub(node, "OrderNumber", memo["sales_order_id"])
        _sub(node, "AccountCode", memo["customer_id"])
        _sub(node, "Currency", memo["currency"])
        _sub(node, "CreditStatus", "Posted")
        _sub(node, "CreditTotal", memo["total"])
        _sub(node, "TaxTotal", memo["tax_total"])
        _sub(node, "NetTotal", memo["net_total"])
        _sub(node, "GrossTotal", memo["gross_total"])
        _sub(node, "PricesIncludeTax", "Y" if memo["prices_include_tax"] else "N")
        _sub(node, "Restock", "Y" if memo["restock"] else "N")
        _sub(node, "Reason", memo["reason"])
        lines = _sub(node, "Lines")
        for line in memo["lines"]:
            el = _sub(lines, "Line", Number=line["line_number"])
            _sub(el, "StockCode", line["item_code"])
            _sub(el, "Quantity", line["quantity"])
            _sub(el, "LineValue", line["line_total"])
            _sub(el, "TaxValue", line["tax_amount"])
            _sub(el, "LineType", line["line_type"])
            _sub(el, "RestockedQuantity", line["restocked_quantity"])

    def new_credit_note(self, root: ET.Element, response: ET.Element) -> None:
        node = root.find("CreditNote")
        if node is None:
            raise _problem("MISSING_FIELD", "NewCreditNote needs a CreditNote element", Field="CreditNote")
        reference = self._text(node, "CreditReference")
        with self.lock:
            if reference and reference in self._credit_memos_by_reference:
                existing = self._credit_memos_by_reference[reference]
                raise _problem("DUPLICATE_REFERENCE", f"Credit reference {reference} already exists as credit note "
                                                      f"{existing}", CreditNumber=existing)
            errors = [("MISSING_FIELD", f"{tag} is required", {"Field": tag})
                      for tag in ("CreditReference", "OrderNumber", "AccountCode", "Currency", "CreditTotal")
                      if not self._text(node, tag)]
            if not node.findall("Lines/Line"):
                errors.append(("MISSING_FIELD", "A credit note needs at least one Line", {"Field": "Lines"}))
            if errors:
                raise PrimaProblem(*errors)
            currency, number = self._text(node, "Currency"), self._text(node, "OrderNumber")
            if not _is_currency(currency):
                raise _problem("INVALID_CURRENCY", f"Currency {currency} is not an ISO 4217 code")
            order = self._orders.get(number)
            if order is None:
                raise _problem("ORDER_NOT_FOUND", f"No order {number}", OrderNumber=number)
            account = self._text(node, "AccountCode")
            if account != order["customer_id"]:
                errors.append(("ACCOUNT_MISMATCH", f"Account {account} is not the account of order {number}",
                               {"Field": "AccountCode"}))
            if currency != order["currency"]:
                errors.append(("CURRENCY_MISMATCH", f"Currency {currency} is not order {number}'s "
                                                    f"{order['currency']}", {"Field": "Currency"}))
            lines = self._validate_lines(node, "CreditTotal", errors, selling=False)
            if errors:
                raise PrimaProblem(*errors)
            over = self.over_credits(order, lines)
            if over:
                raise PrimaProblem(*(("OVER_CREDIT", f"Line {i + 1}: {message}",
                                      {"Line": i + 1, "StockCode": lines[i]["item_code"], "Field": "Quantity"})
                                     for i, message in over))
            inclusive = self._text(node, "PricesIncludeTax").upper() == "Y"
            figures = self.booked_figures((Decimal(l["line_total"]) for l in lines),
                                          (Decimal(l["tax_amount"]) for l in lines),
                                          prices_include_tax=inclusive, currency=currency)
            memo = self.book_credit_memo(order, {
                "external_reference": reference, "customer_id": account, "currency": currency, **figures,
                "prices_include_tax": inclusive, "reason": self._text(node, "Reason"),
                "restock": self._text(node, "Restock").upper() == "Y", "lines": lines,
            })
            self._credit_note_element(response, memo)

    def find_credit_note(self, root: ET.Element, response: ET.Element) -> None:
        self._find(root, response, "CreditNotes", ("CreditReference", "CreditNumber"), self._credit_memos,
                   self._credit_memos_by_reference, self._credit_note_element)

    def _find(self, root, response, container_tag, tags, documents, by_reference, render) -> None:
        reference, number = (self._text(root, tag) for tag in tags)
        if not reference and not number:
            raise _problem("MISSING_FIELD", f"{root.get('RequestType')} needs a {tags[0]} or a {tags[1]}")
        with self.lock:
            found = documents.get(number or by_reference.get(reference, ""))
            if found and reference and found["external_reference"] != reference:
                found = None
            container = _sub(response, container_tag)
            if found:
                render(container, found)

    def _journal_element(self, parent: ET.Element, journal: dict) -> None:
        node = _sub(parent, "Journal")
        _sub(node, "JournalNumber", journal["id"])
        _sub(node, "JournalReference", journal["external_reference"])
        _sub(node, "JournalDate", journal["date"])
        _sub(node, "Currency", journal["currency"])
        _sub(node, "Description", journal["description"])
        _sub(node, "JournalStatus", "Posted")
        _sub(node, "DebitTotal", journal["debit_total"])
        _sub(node, "CreditTotal", journal["credit_total"])
        lines = _sub(node, "Lines")
        for line in journal["lines"]:
            el = _sub(lines, "Line", Number=line["line_number"])
            _sub(el, "NominalCode", line["account"])
            _sub(el, "Debit", line["debit"])
            _sub(el, "Credit", line["credit"])
            _sub(el, "Narrative", line["description"])
            _sub(el, "Reference", line["reference"])

    def new_journal(self, root: ET.Element, response: ET.Element) -> None:
        node = root.find("Journal")
        if node is None:
            raise _problem("MISSING_FIELD", "NewJournal needs a Journal element", Field="Journal")
        reference = self._text(node, "JournalReference")
        with self.lock:
            if reference and reference in self._journals_by_reference:
                existing = self._journals_by_reference[reference]
                raise _problem("DUPLICATE_REFERENCE", f"Journal reference {reference} already exists as journal "
                                                      f"{existing}", JournalNumber=existing)
            errors = [("MISSING_FIELD", f"{tag} is required", {"Field": tag})
                      for tag in ("JournalReference", "JournalDate", "Currency") if not self._text(node, tag)]
            line_nodes = node.findall("Lines/Line")
            if not line_nodes:
                errors.append(("MISSING_FIELD", "A journal needs at least one Line", {"Field": "Lines"}))
            if errors:
                raise PrimaProblem(*errors)
            currency, date = self._text(node, "Currency"), self._text(node, "JournalDate")
            if not _is_currency(currency):
                raise _problem("INVALID_CURRENCY", f"Currency {currency} is not an ISO 4217 code")
            if not is_iso_date(date):
                errors.append(("INVALID_DATE", f"JournalDate {date!r} is not a date (YYYY-MM-DD)",
                               {"Field": "JournalDate"}))
            debits = credits = Decimal(0)
            lines = []
            for n, line in enumerate(line_nodes, start=1):
                nominal = self._text(line, "NominalCode")
                if not nominal:
                    errors.append(("MISSING_FIELD", f"NominalCode is required (line {n})",
                                   {"Field": "NominalCode", "Line": n}))
                debit = self._amount(self._text(line, "Debit") or "0", f"Debit on line {n}", currency, errors)
                credit = self._amount(self._text(line, "Credit") or "0", f"Credit on line {n}", currency, errors)
                if debit is None or credit is None:
                    continue
                if debit < 0 or credit < 0 or bool(debit) == bool(credit):
                    errors.append(("INVALID_LINE", f"Line {n} needs a Debit or a Credit above zero, not both",
                                   {"Line": n}))
                debits += debit
                credits += credit
                lines.append({"line_number": n, "account": nominal, "debit": str(on_grid(debit, currency)),
                              "credit": str(on_grid(credit, currency)), "description": self._text(line, "Narrative"),
                              "reference": self._text(line, "Reference")})
            if errors:
                raise PrimaProblem(*errors)
            if debits != credits:
                raise _problem("JOURNAL_UNBALANCED", f"Journal {reference} does not balance: debits "
                                                     f"{on_grid(debits, currency)}, credits {on_grid(credits, currency)}",
                               DebitTotal=on_grid(debits, currency), CreditTotal=on_grid(credits, currency))
            journal = self.book_journal({
                "external_reference": reference, "date": date, "currency": currency,
                "description": self._text(node, "Description"), "lines": lines,
                "debit_total": str(on_grid(debits, currency)), "credit_total": str(on_grid(credits, currency)),
            })
            self._journal_element(response, journal)

    def find_journal(self, root: ET.Element, response: ET.Element) -> None:
        self._find(root, response, "Journals", ("JournalReference", "JournalNumber"), self._journals,
                   self._journals_by_reference, self._journal_element)

    def _purchase_order_element(self, parent: ET.Element, purchase_order: dict) -> None:
        node = _sub(parent, "PurchaseOrder")
        _sub(node, "PurchaseOrderNumber", purchase_order["id"])
        _sub(node, "PurchaseReference", purchase_order["external_reference"])
        _sub(node, "SupplierCode", purchase_order["supplier"])
        _sub(node, "Depot", purchase_order["depot"])
        _sub(node, "Currency", purchase_order["currency"])
        _sub(node, "DueDate", purchase_order["expected_date"])
        _sub(node, "Note", purchase_order["note"])
        _sub(node, "PurchaseStatus", PURCHASE_STATUSES[purchase_order["status"]])
        _sub(node, "OrderValue", purchase_order["total"])
        _sub(node, "LastModified", purchase_order["modified_at"])
        lines = _sub(node, "Lines")
        for line in purchase_order["lines"]:
            el = _sub(lines, "Line", Number=line["line_number"])
            _sub(el, "StockCode", line["item_code"])
            _sub(el, "Quantity", line["quantity"])
            _sub(el, "UnitCost", line["unit_cost"])
            _sub(el, "ReceivedQuantity", line["received_quantity"])

    def new_purchase_order(self, root: ET.Element, response: ET.Element) -> None:
        node = root.find("PurchaseOrder")
        if node is None:
            raise _problem("MISSING_FIELD", "NewPurchaseOrder needs a PurchaseOrder element", Field="PurchaseOrder")
        reference = self._text(node, "PurchaseReference")
        with self.lock:
            if reference and reference in self._purchase_orders_by_reference:
                existing = self._purchase_orders_by_reference[reference]
                raise _problem("DUPLICATE_REFERENCE", f"Purchase reference {reference} already exists as purchase "
                                                      f"order {existing}", PurchaseOrderNumber=existing)
            errors = [("MISSING_FIELD", f"{tag} is required", {"Field": tag})
                      for tag in ("PurchaseReference", "SupplierCode", "Depot", "Currency") if not self._text(node, tag)]
            line_nodes = node.findall("Lines/Line")
            if not line_nodes:
                errors.append(("MISSING_FIELD", "A purchase order needs at least one Line", {"Field": "Lines"}))
            if errors:
                raise PrimaProblem(*errors)
            currency, depot, due = self._text(node, "Currency"), self._text(node, "Depot"), self._text(node, "DueDate")
            if not _is_currency(currency):
                raise _problem("INVALID_CURRENCY", f"Currency {currency} is not an ISO 4217 code")
            if depot not in self.depots:
                errors.append(("UNKNOWN_DEPOT", f"Depot {depot} does not exist", {"Depot": depot}))
            if due and not is_iso_date(due):
                errors.append(("INVALID_DATE", f"DueDate {due!r} is not a date (YYYY-MM-DD)", {"Field": "DueDate"}))
            total, lines = Decimal(0), []
            for n, line in enumerate(line_nodes, start=1):
                code = self._text(line, "StockCode")
                if code not in self.stock_items:
                    errors.append(("UNKNOWN_STOCK_CODE", f"Stock code {code} does not exist (line {n})",
                                   {"StockCode": code, "Line": n}))
                quantity_text = self._text(line, "Quantity")
                quantity = int(quantity_text) if quantity_text.isdigit() else 0
                if quantity <= 0:
                    errors.append(("INVALID_QUANTITY", f"Quantity {quantity_text!r} on line {n} must be a positive "
                                                       "whole number", {"Line": n}))
                cost = self._amount(self._text(line, "UnitCost") or "0", f"UnitCost on line {n}", currency, errors)
                if cost is not None and cost < 0:
                    errors.append(("INVALID_AMOUNT", f"UnitCost on line {n} must not be negative", {"Line": n}))
                cost = cost if cost is not None else Decimal(0)
                total += cost * quantity
                lines.append({"item_code": code, "quantity": quantity, "unit_cost": str(on_grid(cost, currency))})
            if errors:
                raise PrimaProblem(*errors)
            purchase_order = self.book_purchase_order({
                "external_reference": reference, "supplier": self._text(node, "SupplierCode"), "depot": depot,
                "currency": currency, "expected_date": due, "note": self._text(node, "Note"),
                "total": str(on_grid(total, currency)), "lines": lines,
            })
            self._purchase_order_element(response, purchase_order)

    def find_purchase_order(self, root: ET.Element, response: ET.Element) -> None:
        self._find(root, response, "PurchaseOrders", ("PurchaseReference", "PurchaseOrderNumber"),
                   self._purchase_orders, self._purchase_orders_by_reference, self._purchase_order_element)

    def purchase_order_enquiry(self, root: ET.Element, response: ET.Element) -> None:
        since, page, size = self._enquiry_page(root)
        container, rows = self._paged(response, "PurchaseOrders", self.purchase_orders_since(since), page, size)
        for purchase_order in rows:
            self._purchase_order_element(container, purchase_order)

    def stock_item_changes(self, root: ET.Element, response: ET.Element) -> None:
        """The item master changed after a cursor (modelled; see the module docstring)."""
        cursor = self._text(root, "ChangedSince")
        try:
            limit = int(self._text(root, "MaxRecords") or "200")
        except ValueError:
            raise _problem("INVALID_PAGE", "MaxRecords must be a whole number") from None
        if not 1 <= limit <= DEFAULT_PAGE_SIZE:
            raise _problem("INVALID_PAGE", f"MaxRecords must be between 1 and {DEFAULT_PAGE_SIZE}")
        try:
            decode_cursor(cursor)
        except ValueError as bad:
            raise _problem("INVALID_CURSOR", str(bad), Field="ChangedSince") from None
        rows, next_cursor, more = self.items_changed_since(cursor, limit)
        items = _sub(response, "StockItems", NextCursor=next_cursor, MoreRecords="Y" if more else "N")
        for row in rows:
            node = _sub(items, "StockItem")
            for tag, key in (("ItemId", "id"), ("StockCode", "code"), ("ProductCode", "product_key"),
                             ("Description", "name"), ("LongDescription", "description"),
                             ("ProductType", "product_type"), ("TaxCode", "tax_code"), ("UnitCost", "unit_cost"),
                             ("LeadTimeDays", "lead_time_days"), ("Supplier", "supplier"), ("Depot", "depot"),
                             ("LastModified", "updated_at")):
                if row.get(key) not in (None, ""):
                    _sub(node, tag, row[key])
            _sub(node, "Status", "Active" if row["status"] == "active" else "Retired")
            attributes = _sub(node, "Attributes")
            for name, value in row["attributes"].items():
                for one in (value if isinstance(value, list) else [value]):
                    _sub(attributes, "Attribute", one, Name=name)
            barcodes = _sub(node, "Barcodes")
            for code in row["barcodes"]:
                _sub(barcodes, "Barcode", code)
            images = _sub(node, "Images")
            for url in row["images"]:
                _sub(images, "Image", url)
            components = _sub(node, "Components")
            for component in row["components"]:
                _sub(components, "Component", StockCode=component["item_code"], Quantity=component["quantity"])
            prices = _sub(node, "PriceLists")
            for price in row["prices"]:
                attrs = {"Currency": price["currency"], "Type": price["type"], "MinQuantity": price["min_quantity"]}
                for attr, key in (("PriceList", "price_list"), ("Country", "country"),
                                  ("CustomerGroup", "customer_group"), ("Channel", "channel"),
                                  ("ValidFrom", "valid_from"), ("ValidUntil", "valid_until")):
                    if price.get(key):
                        attrs[attr] = price[key]
                _sub(prices, "Price", price["amount"], **attrs)

    HANDLERS = {
        "NewOrder": new_order,
        "FindOrder": find_order,
        "OrderStatus": order_status,
        "FindAccount": find_account,
        "NewAccount": new_account,
        "AccountEnquiry": account_enquiry,
        "CancelOrder": cancel_order_request,
        "StockEnquiry": stock_enquiry,
        "DepotList": depot_list,
        "StockItem": stock_item,
        "DespatchEnquiry": despatch_enquiry,
        "NewCreditNote": new_credit_note,
        "FindCreditNote": find_credit_note,
        "NewJournal": new_journal,
        "FindJournal": find_journal,
        "NewPurchaseOrder": new_purchase_order,
        "FindPurchaseOrder": find_purchase_order,
        "PurchaseOrderEnquiry": purchase_order_enquiry,
        "StockItemChanges": stock_item_changes,
    }

    # --- admin endpoints (a sandbox in another process) --------------------------------------

    def admin_change_item(self, request: Request) -> Response:
        """Create or change a stock item's item master (any field, prices, "status": "retired",
        "new_code" to rename it, keeping its ItemId)."""
        code = request.params["code"]
        body = request.json() or {}
        try:
            if code not in self.stock_items:
                return Response.json(self.item_master_put(code, **body), 201)
            return Response.json(self.item_master_change(code, **body))
        except (TypeError, ValueError) as bad:
            return Response.json({"error": "invalid_item", "message": str(bad)}, 422)

    def admin_seed_catalogue(self, request: Request) -> Response:
        self.seed_catalogue()
        with self.lock:
            return Response.json({"stock_items": sorted(self.stock_items)})

    def admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response.json({"ok": True})

    def admin_seed_demo(self, request: Request) -> Response:
        self.seed_demo()
        with self.lock:
            return Response.json({"stock_items": sorted(self.stock_items), "depots": sorted(self.depots)})

    def admin_stats(self, request: Request) -> Response:
        with self.lock:
            return Response.json({
                "orders": len(self._orders),
                "customers": len(self._accounts),
                "dispatches": len(self._dispatches),
                "credit_memos": len(self._credit_memos),
                "journals": len(self._journals),
                "purchase_orders": len(self._purchase_orders),
                "stock_items": len(self.stock_items),
                "depots": len(self.depots),
                "rate_limited": self.rate_limited_count,
                "record_locks": self.locked_count,
                "soap_faults": self.soap_faults,
                "wsdl_served": self.wsdl_served,
                "requests": self.requests_count,
                "config": self._config(),
            })

    def admin_config(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return Response.json({"error": "invalid_json"}, 400)
        allowed = {"rate_limit", "lock_probability", "latency", "outage", "gross_skew"}
        unknown = set(body) - allowed
        if unknown:
            return Response.json({"error": "invalid_config", "message": f"unknown settings {sorted(unknown)}"}, 400)
        try:
            return Response.json(self.configure(**body))
        except ValueError as exc:
            return Response.json({"error": "invalid_config", "message": str(exc)}, 400)

    def admin_dispatch_order(self, request: Request) -> Response:
        """The warehouse despatches the order: {} for everything still open, {"partly": true} for one
        unit, {"lines": [{"item_code" | "line_number", "quantity"}], "carrier", "tracking_number",
        "tracking_url"} for one parcel, {"parcels": [{lines, carrier, …}, …]} for several, and
        "draft": true to book them unconfirmed. Answers the order with "dispatches": those booked."""
        try:
            body = json.loads(request.body or b"{}") or {}
        except ValueError:
            return Response.json({"error": "invalid_json"}, 400)
        if not isinstance(body, dict):
            return Response.json({"error": "invalid_json"}, 400)
        number = request.params["number"]
        try:
            return Response.json(self.dispatch_order(
                number, partly=bool(body.get("partly")), lines=body.get("lines"), parcels=body.get("parcels"),
                carrier=str(body.get("carrier") or ""), tracking_number=str(body.get("tracking_number") or ""),
                tracking_url=str(body.get("tracking_url") or ""), draft=bool(body.get("draft"))))
        except KeyError:
            return Response.json({"error": "not_found", "message": f"No order {number}"}, 404)
        except StatusRefused as refused:
            return Response.json({"error": "invalid_status", "message": str(refused)}, 409)
        except DispatchRefused as refused:
            return Response.json({"error": "invalid_despatch", "message": str(refused)}, 422)

    def admin_confirm_despatch(self, request: Request) -> Response:
        number = request.params["number"]
        try:
            return Response.json(self.confirm_dispatch(number))
        except KeyError:
            return Response.json({"error": "not_found", "message": f"No despatch {number}"}, 404)
        except StatusRefused as refused:
            return Response.json({"error": "invalid_status", "message": str(refused)}, 409)

    def admin_inspect_return(self, request: Request) -> Response:
        """Returned goods of a restocking credit note are inspected: {"result": "passed" | "failed",
        "lines"?: [{"item_code", "quantity"}]}; passed, they become free stock; failed, damaged."""
        try:
            body = json.loads(request.body or b"{}") or {}
        except ValueError:
            return Response.json({"error": "invalid_json"}, 400)
        if not isinstance(body, dict) or body.get("result") not in ("passed", "failed"):
            return Response.json({"error": "invalid_inspection", "message": 'result must be "passed" or "failed"'}, 400)
        number = request.params["number"]
        try:
            return Response.json(self.inspect_return(number, passed=body["result"] == "passed", lines=body.get("lines")))
        except KeyError:
            return Response.json({"error": "not_found", "message": f"No credit note {number}"}, 404)
        except ValueError as refused:
            return Response.json({"error": "invalid_inspection", "message": str(refused)}, 422)

    def admin_receive_purchase_order(self, request: Request) -> Response:
        """Goods arrive: {} for everything outstanding, {"lines": [{"item_code" | "line_number", "quantity"}]}."""
        try:
            body = json.loads(request.body or b"{}") or {}
        except ValueError:
            return Response.json({"error": "invalid_json"}, 400)
        number = request.params["number"]
        try:
            return Response.json(self.receive_purchase_order(number, body.get("lines") if isinstance(body, dict) else body))
        except KeyError:
            return Response.json({"error": "not_found", "message": f"No purchase order {number}"}, 404)
        except ReceiptRefused as refused:
            return Response.json({"error": "invalid_receipt", "message": str(refused)}, 422)
