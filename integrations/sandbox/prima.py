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
CancelOrder is refused with ORDER_DESPATCHED once anything was despatched. Admin endpoints for a
sandbox in another process: /prima/_sandbox/….
"""
from __future__ import annotations

import copy
import json
import math
import random
import time
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation

from .currencies import currency_exponent
from .erp_books import (
    CANCELLED,
    CUSTOMER,
    DISPATCHED,
    GUEST,
    NON_STOCK_DEMO_ITEMS,
    OPEN,
    PARTLY_DISPATCHED,
    OrderBook,
    StatusRefused,
    missing_for_account,
    same_phone,
)
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
WRITES = {"NewOrder", "NewAccount", "CancelOrder"}
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


class PrimaSandbox(OrderBook, DepotStock, FaultInjection, VendorApp):
    prefix = "/prima"
    STATUS_WORDS = ORDER_STATUSES

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

    def add_item(self, code: str, description: str = "", active: bool = True) -> dict:
        with self.lock:
            self.stock_items[code] = {"code": code, "description": description or code, "active": bool(active)}
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
            self._orders[number] = stored
            self._orders_by_reference[reference] = number
            self._order_element(response, stored)

    def _validate_order(self, order: ET.Element) -> tuple[list[dict], list[tuple[str, str, dict]]]:
        """(lines in neutral keys, errors). Called under the lock."""
        errors: list[tuple[str, str, dict]] = []
        for tag in ("OrderReference", "AccountCode", "Depot", "Currency", "OrderTotal"):
            if not self._text(order, tag):
                errors.append(("MISSING_FIELD", f"{tag} is required", {"Field": tag}))
        line_nodes = order.findall("Lines/Line")
        if not line_nodes:
            errors.append(("MISSING_FIELD", "An order needs at least one Line", {"Field": "Lines"}))
        if errors:
            return [], errors
        currency = self._text(order, "Currency")
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            return [], [("INVALID_CURRENCY", f"Currency {currency} is not an ISO 4217 code", {})]
        exponent = currency_exponent(currency)
        account = self._text(order, "AccountCode")
        if account not in self._accounts:
            errors.append(("UNKNOWN_ACCOUNT", f"Account {account} does not exist", {"AccountCode": account}))
        depot = self._text(order, "Depot")
        if depot not in self.depots:
            errors.append(("UNKNOWN_DEPOT", f"Depot {depot} does not exist", {"Depot": depot}))

        def amount(text: str, what: str) -> Decimal | None:
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

        total = amount(self._text(order, "OrderTotal"), "OrderTotal")
        lines, line_sum, tax_sum, sum_ok, tax_ok = [], Decimal(0), Decimal(0), True, True
        for n, node in enumerate(line_nodes, start=1):
            code = self._text(node, "StockCode")
            if code not in self.stock_items:
                errors.append(("UNKNOWN_STOCK_CODE", f"Stock code {code} does not exist (line {n})",
                               {"StockCode": code, "Line": n}))
            elif not self.stock_items[code]["active"]:
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
            unit = amount(self._text(node, "UnitPrice") or "0", f"UnitPrice on line {n}")
            tax = amount(self._text(node, "TaxValue") or "0", f"TaxValue on line {n}")
            if tax is None:
                tax_ok = False
            else:
                tax_sum += tax
            rate = self._text(node, "TaxRate")
            if rate and not _is_fraction(rate):
                errors.append(("INVALID_TAX_RATE", f"TaxRate {rate!r} on line {n} must be a fraction between 0 and "
                                                   "1 (0.2 for 20 %)", {"Field": "TaxRate", "Line": n}))
            value = amount(self._text(node, "LineValue"), f"LineValue on line {n}")
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
                "kind": LINE_TYPES.get(line_type, ""),
            })
        if total is not None and sum_ok and total != line_sum:
            errors.append(("TOTAL_MISMATCH", f"OrderTotal {total} does not equal the sum of the line values "
                                             f"{line_sum}", {}))
        # Older clients send neither TaxTotal nor GrossTotal: then there is nothing more to check.
        tax_text, gross_text = self._text(order, "TaxTotal"), self._text(order, "GrossTotal")
        tax_total = amount(tax_text, "TaxTotal") if tax_text else None
        gross_total = amount(gross_text, "GrossTotal") if gross_text else None
        if tax_total is not None and tax_ok and tax_total != tax_sum:
            errors.append(("TAX_TOTAL_MISMATCH", f"TaxTotal {tax_text} does not equal the sum of the line tax "
                                                 f"values {tax_sum}", {"Field": "TaxTotal"}))
        if gross_total is not None and total is not None and tax_ok:
            inclusive = self._text(order, "PricesIncludeTax").upper() == "Y"
            expected = total if inclusive else total + tax_sum
            if gross_total != expected:
                how = "OrderTotal (prices include tax)" if inclusive else "OrderTotal + TaxTotal"
                errors.append(("GROSS_TOTAL_MISMATCH", f"GrossTotal {gross_text} does not equal {how} {expected}",
                               {"Field": "GrossTotal"}))
        return lines, errors

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
    }

    # --- admin endpoints (a sandbox in another process) --------------------------------------

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
        """The warehouse despatches the order: {"partly": true} for part of it."""
        try:
            body = json.loads(request.body or b"{}") or {}
        except ValueError:
            return Response.json({"error": "invalid_json"}, 400)
        number = request.params["number"]
        try:
            return Response.json(self.dispatch_order(number, partly=bool(body.get("partly"))))
        except KeyError:
            return Response.json({"error": "not_found", "message": f"No order {number}"}, 404)
        except StatusRefused as refused:
            return Response.json({"error": "invalid_status", "message": str(refused)}, 409)
