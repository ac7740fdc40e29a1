"""The Prima Web Services client against the sandbox Prima over real HTTP: SOAP operations read from the
WSDL, Prima XML documents (ISO-8859-1) escaped inside them, typed errors."""
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from decimal import Decimal
from xml.sax.saxutils import escape

import pytest
import requests
import zeep

from integrations.connectors.base import (
    Conflict,
    ErpSalesOrderLine,
    ErpSalesOrderRequest,
    NotFound,
    PermanentError,
    TransientError,
)
from integrations.connectors.prima import PrimaClient, wsdl_cache_clear
from integrations.sandbox.server import RateLimiter

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PRIMA_NS = "urn:omlink"


@pytest.fixture
def prima(sandbox):
    for code in ("TEE-BLK-M", "MUG-001", "SHIPPING", "DISCOUNT"):
        sandbox.prima.add_item(code)
    sandbox.prima.add_depot("MAIN", "Main warehouse")
    sandbox.prima.add_depot("NORTH")
    return sandbox.prima


@pytest.fixture
def client(prima):
    return PrimaClient.from_settings()


def _order(account_code, reference="shopify:1001", currency="GBP", lines=None, total=None):
    lines = lines or (
        ErpSalesOrderLine("TEE-BLK-M", "T-shirt", 2, "20.00", "40.00", "T1", "8.00"),
        ErpSalesOrderLine("DISCOUNT", "Discount", 1, "-5.00", "-5.00", "T1", "0.00", kind="discount"),
        ErpSalesOrderLine("SHIPPING", "Shipping", 1, "4.99", "4.99", "T1", "1.00", kind="shipping"),
    )
    return ErpSalesOrderRequest(external_reference=reference, customer_id=account_code, currency=currency,
                                depot="MAIN", order_date="2024-05-01", lines=tuple(lines),
                                total=total or "39.99", customer_reference="#1001")


def _account(client, name="Zoë Müller"):
    return client.create_customer(email="zoe@example.com", name=name, external_reference="shopify:customer:7",
                                  country="DE")


def _soap_post(sandbox, operation_xml: str, envelope_ns: str = SOAP_ENV, **headers):
    """A hand-written SOAP 1.1 request to the sandbox's instance URL."""
    body = f'<soap:Envelope xmlns:soap="{envelope_ns}"><soap:Body>{operation_xml}</soap:Body></soap:Envelope>'
    return requests.post(f"{sandbox.url}/prima", data=body.encode("utf-8"), timeout=5,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""', **headers})


def _operation(envelope: bytes) -> ET.Element:
    """The one element in a SOAP Body."""
    [element] = ET.fromstring(envelope).find(f"{{{SOAP_ENV}}}Body")
    return element


def _fault(response) -> tuple[str, str]:
    fault = ET.fromstring(response.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    return fault.findtext("faultcode"), fault.findtext("faultstring")


def test_an_opened_account_is_found_by_email_and_by_reference(client, prima):
    created = _account(client)
    assert created.id.startswith("A")
    assert [c.id for c in client.find_customers(email="Zoe@Example.com")] == [created.id]
    [found] = client.find_customers(external_reference="shopify:customer:7")
    assert (found.id, found.email, found.external_reference) == (created.id, "zoe@example.com", "shopify:customer:7")
    assert client.find_customers(email="nobody@example.com") == []
    assert [a["account_code"] for a in prima.customers] == [created.id]


def test_non_ascii_names_travel_as_iso_8859_1_and_come_back_unchanged(client, prima):
    created = _account(client, name="Zoë Müller-Łukasiewicz")  # Ł is outside Latin-1
    [found] = client.find_customers(email="zoe@example.com")
    assert created.name == found.name == "Zoë Müller-Łukasiewicz"
    assert prima.customers[0]["name"] == "Zoë Müller-Łukasiewicz"
    wire = prima.documents_seen[0]
    assert wire.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert "Zoë Müller".encode("iso-8859-1") in wire and b"&#321;" in wire  # one byte per ë/ü; Ł as a reference
    assert b"&amp;#321;" in prima.envelopes_seen[0]  # the reference, escaped once more inside the SOAP body


def test_the_sandbox_answers_in_iso_8859_1_with_the_declaration(sandbox, client, prima):
    _account(client)
    document = ('<?xml version="1.0" encoding="ISO-8859-1"?><Request RequestType="FindAccount">'
                '<Email>zoe@example.com</Email></Request>')
    response = _soap_post(sandbox, f'<comwsomhandler xmlns="{PRIMA_NS}"><companyId>LEDG01</companyId>'
                                   f'<request>{escape(document)}</request></comwsomhandler>')
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert b'&lt;Response RequestType="FindAccount" Status="OK"&gt;' in response.content  # escaped, not nested XML
    answer = _operation(response.content)
    assert answer.tag == f"{{{PRIMA_NS}}}comwsomhandlerResponse"
    result = answer.findtext(f"{{{PRIMA_NS}}}result")
    assert result.startswith('<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert "<Name>Zoë Müller</Name>" in result and ET.fromstring(result).get("Status") == "OK"


def test_a_new_order_is_created_and_found_by_its_order_reference(client, prima):
    account = _account(client)
    created = client.create_sales_order(_order(account.id))
    assert created.id.startswith("S") and created.status == "Entered" and created.total == "39.99"
    assert client.find_sales_order("shopify:1001") == created
    assert client.find_sales_order("shopify:nope") is None
    [stored] = prima.sales_orders
    assert stored["customer_id"] == account.id and stored["depot"] == "MAIN"
    assert [(l["line_type"], l["item_code"], l["quantity"], l["line_total"]) for l in stored["lines"]] == [
        ("Stock", "TEE-BLK-M", 2, "40.00"), ("Discount", "DISCOUNT", 1, "-5.00"), ("Carriage", "SHIPPING", 1, "4.99"),
    ]


def test_a_duplicate_order_reference_returns_the_one_existing_order(client, prima):
    account = _account(client)
    first = client.create_sales_order(_order(account.id))
    again = client.create_sales_order(_order(account.id, lines=(
        ErpSalesOrderLine("MUG-001", "Mug", 1, "9.00", "9.00", "T1"),), total="9.00"))
    assert again.id == first.id
    assert len(prima.sales_orders) == 1
    assert b"DUPLICATE_REFERENCE" not in prima.documents_seen[-1]  # the follow-up was an OrderStatus enquiry
    assert b'RequestType="OrderStatus"' in prima.documents_seen[-1]


def test_a_second_account_with_the_same_reference_is_a_conflict(client, prima):
    first = _account(client)
    with pytest.raises(PermanentError) as raised:
        _account(client)
    assert raised.value.status == 409 and raised.value.body[0]["AccountCode"] == first.id
    assert len(prima.customers) == 1


def test_busy_with_retry_after_is_waited_out_and_the_call_succeeds(client, prima):
    prima.rate_limiter = RateLimiter(2)
    slept = []
    client.sleep = lambda seconds: (slept.append(seconds), time.sleep(seconds))
    # Five quick calls span at most two one-second windows (room for four): one must be refused.
    assert [client.list_depots() for _ in range(5)] == [["MAIN", "NORTH"]] * 5
    assert client.stats.rate_limited >= 1 and prima.rate_limited_count >= 1
    assert slept and all(s >= 1 for s in slept)


def test_record_locks_are_retried_until_the_order_goes_through(client, prima):
    account = _account(client)
    prima.lock_probability = 0.5
    prima.random.seed(3)
    for n in range(4):
        client.create_sales_order(_order(account.id, reference=f"shopify:{2000 + n}"))
    assert len(prima.sales_orders) == 4
    assert prima.locked_count >= 1 and client.stats.transient_retries == prima.locked_count


def test_an_outage_raises_a_transient_error_after_max_attempts(client, prima):
    prima.outage = True
    client.max_attempts = 3
    with pytest.raises(TransientError) as raised:
        client.find_sales_order("shopify:1001")
    assert raised.value.code == "BUSY" and raised.value.status == 503
    assert client.stats.requests == 3


def test_an_unknown_stock_code_is_a_permanent_error_naming_it(client, prima):
    account = _account(client)
    before = client.stats.requests
    order = _order(account.id, lines=(ErpSalesOrderLine("TEE-RED-M", "Red tee", 1, "20.00", "20.00", "T1"),),
                   total="20.00")
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(order)
    assert raised.value.code == "UNKNOWN_STOCK_CODE"
    assert "Stock code TEE-RED-M does not exist (line 1)" in str(raised.value)
    assert client.stats.requests == before + 1
    assert prima.sales_orders == []


def test_unknown_account_and_depot_are_both_reported(client, prima):
    order = ErpSalesOrderRequest(external_reference="x:1", customer_id="A99999", currency="GBP", depot="CHD",
                                 order_date="2024-05-01", total="9.00",
                                 lines=(ErpSalesOrderLine("MUG-001", "Mug", 1, "9.00", "9.00"),))
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(order)
    assert "Account A99999 does not exist" in str(raised.value) and "Depot CHD does not exist" in str(raised.value)


def test_amounts_with_more_decimals_than_the_currency_are_rejected(client, prima):
    account = _account(client)
    with pytest.raises(PermanentError, match="more than 2 decimals allowed for GBP") as raised:
        client.create_sales_order(_order(account.id, lines=(
            ErpSalesOrderLine("MUG-001", "Mug", 1, "9.005", "9.005"),), total="9.005"))
    assert raised.value.code == "INVALID_AMOUNT"
    with pytest.raises(PermanentError, match="more than 0 decimals allowed for JPY"):
        client.create_sales_order(_order(account.id, currency="JPY", lines=(
            ErpSalesOrderLine("MUG-001", "Mug", 1, "900.5", "900.5"),), total="900.5"))
    assert prima.sales_orders == []


def test_no_credentials_travel_and_an_unknown_company_is_a_permanent_error(prima):
    client = PrimaClient.from_settings(company="NOPE")
    with pytest.raises(PermanentError) as raised:
        client.list_depots()
    assert raised.value.code == "UNKNOWN_COMPANY" and client.stats.requests == 1
    assert "Company NOPE is not set up" in str(raised.value)
    assert b"Username" not in prima.envelopes_seen[-1] and b"Password" not in prima.envelopes_seen[-1]


def test_stock_items_and_stock_per_depot(client, prima, monkeypatch):
    monkeypatch.setattr("integrations.connectors.prima.PAGE_SIZE", 2)
    prima.add_item("OLD-1", active=False)
    prima.set_stock("TEE-BLK-M", "MAIN", on_hand=10, allocated=2, reserved=1, in_transit=4,
                    returned_awaiting_inspection=2)
    prima.set_stock("MUG-001", "MAIN", on_hand=3)
    prima.set_stock("MUG-001", "NORTH", on_hand=7)
    assert client.item_exists("MUG-001") and not client.item_exists("OLD-1") and not client.item_exists("NOPE")
    main = {r["item_code"]: r for r in client.get_stock(depot="MAIN")}
    assert (main["TEE-BLK-M"]["on_hand"], main["TEE-BLK-M"]["allocated"], main["TEE-BLK-M"]["reserved"]) == (10, 2, 1)
    assert main["TEE-BLK-M"]["states"] == {"in_transit": 4, "quality_inspection": 0, "damaged": 0,
                                           "returned_awaiting_inspection": 2}
    assert sorted((r["item_code"], r["depot"]) for r in client.get_stock()) == [
        ("MUG-001", "MAIN"), ("MUG-001", "NORTH"), ("TEE-BLK-M", "MAIN")]
    with pytest.raises(PermanentError, match="Depot CHD does not exist"):
        client.get_stock(depot="CHD")


def test_admin_endpoints_seed_configure_and_count(sandbox, prima):
    base = f"{sandbox.url}/prima/_sandbox"
    seeded = requests.post(f"{base}/seed-demo", timeout=5).json()
    assert "HOODIE-GRY-L" in seeded["stock_items"] and seeded["depots"] == ["MAIN", "NORTH"]
    assert requests.post(f"{base}/config", json={"outage": True}, timeout=5).json()["outage"] is True
    busy = _soap_post(sandbox, f'<wsomhandler xmlns="{PRIMA_NS}"><request>&lt;Request/&gt;</request></wsomhandler>')
    assert busy.status_code == 503 and _fault(busy)[0] == "soap:Server"
    requests.post(f"{base}/config", json={"outage": False}, timeout=5)
    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["orders"] == 0 and stats["requests"] == 1 and stats["stock_items"] == 13
    assert {"DUTIES", "TIPS", "GIFT-CARD-LIABILITY", "CUSTOM", "SHIPPING", "DISCOUNT"} <= set(seeded["stock_items"])
    assert not any(code == "TIPS" for code, _ in prima.stock)  # charges, not goods: no stock kept
    requests.post(f"{base}/reset", timeout=5)
    assert prima.stock_items == {}


# --- totals: Prima books its own figures ---------------------------------------------------------


def _taxed(order, **overrides):
    """The order with the totals a current client sends: 9.00 tax on 39.99 net."""
    return replace(order, **{"tax_total": "9.00", "gross_total": "48.99", **overrides})


def test_prima_books_order_tax_and_gross_totals_and_reports_them_back(client, prima):
    account = _account(client)
    lines = tuple(replace(line, tax_rate="0.2") for line in _order(account.id).lines)
    created = client.create_sales_order(_taxed(_order(account.id, lines=lines)))
    assert (created.total, created.tax_total, created.gross_total, created.status) == (
        "39.99", "9.00", "48.99", "Entered")
    assert client.find_sales_order("shopify:1001") == created == client.get_sales_order(created.id)
    wire = prima.documents_seen[1]
    assert b"<TaxTotal>9.00</TaxTotal><GrossTotal>48.99</GrossTotal>" in wire and b"<TaxRate>0.2</TaxRate>" in wire
    [stored] = prima.sales_orders
    assert (stored["net_total"], stored["tax_total"], stored["gross_total"]) == ("39.99", "9.00", "48.99")
    assert [line["tax_rate"] for line in stored["lines"]] == ["0.2", "0.2", "0.2"]


def test_an_order_built_without_the_new_totals_is_sent_and_booked_as_before(client, prima):
    account = _account(client)
    created = client.create_sales_order(_order(account.id))
    assert b"TaxTotal" not in prima.documents_seen[1] and b"GrossTotal" not in prima.documents_seen[1]
    assert (created.tax_total, created.gross_total) == ("9.00", "48.99")  # Prima's own figures


def test_an_order_with_tax_included_prices_is_booked_at_its_total(client, prima):
    account = _account(client)
    order = _order(account.id, lines=(ErpSalesOrderLine("MUG-001", "Mug", 1, "12.00", "12.00", "T1", "2.00"),),
                   total="12.00")
    created = client.create_sales_order(replace(order, prices_include_tax=True, tax_total="2.00", gross_total="12.00"))
    assert (created.total, created.tax_total, created.gross_total) == ("12.00", "2.00", "12.00")
    assert prima.sales_orders[0]["net_total"] == "10.00"


def test_a_tax_total_that_is_not_the_sum_of_the_line_taxes_is_rejected_naming_the_field(client, prima):
    account = _account(client)
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(_taxed(_order(account.id), tax_total="8.00", gross_total="47.99"))
    assert raised.value.code == "TAX_TOTAL_MISMATCH" and raised.value.body[0]["Field"] == "TaxTotal"
    assert "TaxTotal 8.00 does not equal the sum of the line tax values 9.00" in str(raised.value)
    assert prima.sales_orders == []


def test_a_gross_total_that_is_not_order_total_plus_tax_is_rejected_naming_the_field(client, prima):
    account = _account(client)
    with pytest.raises(PermanentError) as raised:
        client.create_sales_order(_taxed(_order(account.id), gross_total="39.99"))
    assert raised.value.code == "GROSS_TOTAL_MISMATCH" and raised.value.body[0]["Field"] == "GrossTotal"
    assert "GrossTotal 39.99 does not equal OrderTotal + TaxTotal 48.99" in str(raised.value)
    with pytest.raises(PermanentError, match=r"GrossTotal 48.99 does not equal OrderTotal \(prices include tax\)"):
        client.create_sales_order(_taxed(_order(account.id), prices_include_tax=True))
    assert prima.sales_orders == []


def test_the_gross_skew_knob_makes_prima_report_a_different_gross_total(sandbox, client, prima):
    account = _account(client)
    prima.gross_skew = Decimal("0.01")
    created = client.create_sales_order(_taxed(_order(account.id)))
    assert (created.total, created.gross_total) == ("39.99", "49.00")  # the client said 48.99
    config = requests.post(f"{sandbox.url}/prima/_sandbox/config", json={"gross_skew": "-0.02"}, timeout=5).json()
    assert config["gross_skew"] == "-0.02"
    assert client.create_sales_order(_taxed(_order(account.id, reference="shopify:1002"))).gross_total == "48.97"


def test_duty_tip_gift_card_and_rounding_lines_travel_as_prima_line_types(client, prima):
    account = _account(client)
    for code in ("DUTIES", "TIPS", "GIFT-CARD-LIABILITY", "CUSTOM"):
        prima.add_item(code)
    lines = (
        ErpSalesOrderLine("TEE-BLK-M", "T-shirt", 1, "20.00", "20.00", "T1", "4.00", tax_rate="0.2"),
        ErpSalesOrderLine("DUTIES", "Import duties", 1, "3.10", "3.10", kind="duty"),
        ErpSalesOrderLine("TIPS", "Tip", 1, "2.00", "2.00", kind="tip"),
        ErpSalesOrderLine("GIFT-CARD-LIABILITY", "Gift card", 1, "25.00", "25.00", kind="gift_card"),
        ErpSalesOrderLine("CUSTOM", "Cash rounding", 1, "-0.02", "-0.02", kind="rounding"),
    )
    created = client.create_sales_order(replace(_order(account.id, lines=lines, total="50.08"), tax_total="4.00",
                                                gross_total="54.08"))
    assert created.gross_total == "54.08"
    assert [(l["line_type"], l["kind"]) for l in prima.sales_orders[0]["lines"]] == [
        ("Stock", "item"), ("Duty", "duty"), ("Tip", "tip"), ("GiftCard", "gift_card"), ("Rounding", "rounding")]


# --- CancelOrder ---------------------------------------------------------------------------------


def test_an_entered_order_is_cancelled_and_stays_listed_as_cancelled(client, prima):
    account = _account(client)
    created = client.create_sales_order(_order(account.id))
    cancelled = client.cancel_sales_order(created.id, reason="customer changed their mind")
    assert (cancelled.id, cancelled.status) == (created.id, "Cancelled")
    assert client.find_sales_order("shopify:1001").status == "Cancelled"
    assert b'RequestType="CancelOrder"' in prima.documents_seen[-2]
    [stored] = prima.sales_orders
    assert stored["status"] == "Cancelled" and stored["cancel_reason"] == "customer changed their mind"


def test_cancelling_a_cancelled_order_again_changes_nothing(client, prima):
    account = _account(client)
    created = client.create_sales_order(_order(account.id))
    client.cancel_sales_order(created.id, reason="first")
    before = prima.sales_orders
    assert client.cancel_sales_order(created.id, reason="second").status == "Cancelled"
    assert prima.sales_orders == before


def test_a_despatched_order_cannot_be_cancelled(sandbox, client, prima):
    account = _account(client)
    shipped = client.create_sales_order(_order(account.id))
    prima.dispatch_order(shipped.id)
    with pytest.raises(Conflict) as raised:
        client.cancel_sales_order(shipped.id)
    assert raised.value.code == "already_dispatched" and raised.value.body[0]["code"] == "ORDER_DESPATCHED"
    assert client.get_sales_order(shipped.id).status == "Despatched"
    part = client.create_sales_order(_order(account.id, reference="shopify:1002"))
    response = requests.post(f"{sandbox.url}/prima/_sandbox/orders/{part.id}/dispatch", json={"partly": True},
                             timeout=5)
    assert response.json()["status"] == "Part Despatched"
    with pytest.raises(Conflict, match="Part Despatched and can no longer be cancelled"):
        client.cancel_sales_order(part.id)


def test_cancelling_an_unknown_order_is_not_found(client, prima):
    with pytest.raises(NotFound):
        client.cancel_sales_order("S999999")


def test_a_cancelled_orders_reference_stays_taken(client, prima):
    account = _account(client)
    first = client.create_sales_order(_order(account.id))
    client.cancel_sales_order(first.id)
    again = client.create_sales_order(_order(account.id, lines=(
        ErpSalesOrderLine("MUG-001", "Mug", 1, "9.00", "9.00", "T1"),), total="9.00"))
    assert (again.id, again.status) == (first.id, "Cancelled")
    assert len(prima.sales_orders) == 1


def test_a_cancel_is_retried_through_record_locks(client, prima):
    account = _account(client)
    created = client.create_sales_order(_order(account.id))
    prima.lock_probability = 0.5
    prima.random.seed(1)
    assert client.cancel_sales_order(created.id).status == "Cancelled"
    assert prima.locked_count >= 1 and client.stats.transient_retries == prima.locked_count


# --- accounts ------------------------------------------------------------------------------------


def test_an_account_without_email_or_phone_is_rejected(client, prima):
    with pytest.raises(PermanentError) as raised:
        client.create_customer(email="", name="Zoë Müller", external_reference="shopify:customer:8")
    assert raised.value.code == "MISSING_FIELD" and raised.value.body[0]["Field"] == "Email"
    assert "Email or Phone is required" in str(raised.value)
    assert prima.customers == []


def test_an_account_with_only_a_phone_is_opened_and_found_by_phone(client, prima):
    created = client.create_customer(email="", name="Zoë Müller", external_reference="shopify:customer:8",
                                     phone="+44 20 7946 0958")
    assert created.phone == "+44 20 7946 0958" and created.email == ""
    assert [c.id for c in client.find_customers(phone="+44-20-7946-0958")] == [created.id]
    assert client.find_customers(phone="+44 20 7946 0000") == [] == client.find_customers(phone="none given")
    assert prima.customers[0]["account_type"] == "customer"


def test_a_guest_account_needs_neither_email_nor_phone(client, prima):
    guest = client.create_customer(email="", name="Web guest orders", external_reference="shopify:guest", guest=True)
    assert b"<AccountType>Guest</AccountType>" in prima.documents_seen[-1]
    [stored] = prima.customers
    assert (stored["id"], stored["account_type"], stored["email"], stored["phone"]) == (guest.id, "guest", "", "")


def test_get_customer_returns_the_account_or_none_when_unknown(client, prima):
    created = _account(client)
    assert client.get_customer(created.id) == created
    assert client.get_customer("A99999") is None


# --- SOAP: the WSDL, the two operations, faults --------------------------------------------------


def test_the_wsdl_is_served_under_the_instance_url_and_zeep_reads_both_operations(sandbox, prima):
    response = requests.get(f"{sandbox.url}/prima/wsdl", params={"targetURI": PRIMA_NS}, timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
    soap = zeep.Client(f"{sandbox.url}/prima/wsdl")
    port = soap.wsdl.services["omlinkService"].ports["omlinkObj"]
    binding = port.binding
    operations = {name: ([n for n, _ in op.input.body.type.elements], [n for n, _ in op.output.body.type.elements])
                  for name, op in binding.all().items()}
    assert operations == {"wsomhandler": (["request"], ["result"]),
                          "comwsomhandler": (["companyId", "request"], ["result"])}
    assert binding.get("comwsomhandler").style == "document"
    assert port.binding_options["address"] == f"{sandbox.url}/prima"  # the instance URL
    assert requests.get(f"{sandbox.url}/prima/wsdl", params={"targetURI": "urn:other"}, timeout=5).status_code == 404


def test_a_prima_order_goes_through_comwsomhandler_escaped_and_comes_back_as_one_sales_order(client, prima):
    account = _account(client)
    created = client.create_sales_order(_order(account.id))
    raw = prima.envelopes_seen[-1]
    operation = _operation(raw)
    assert operation.tag == f"{{{PRIMA_NS}}}comwsomhandler"
    assert operation.findtext(f"{{{PRIMA_NS}}}companyId") == "LEDG01"
    # The Prima document is a string in the SOAP body: its markup travels as entities, not as elements.
    assert b'&lt;?xml version="1.0" encoding="ISO-8859-1"?&gt;' in raw
    assert b'&lt;Request RequestType="NewOrder"&gt;&lt;Order&gt;&lt;OrderReference&gt;shopify:1001&lt;' in raw
    assert b"<Request" not in raw and b"Password" not in raw
    request = ET.fromstring(operation.findtext(f"{{{PRIMA_NS}}}request"))
    assert request.get("RequestType") == "NewOrder" and request.findtext("Order/AccountCode") == account.id
    [stored] = prima.sales_orders
    assert (created.id, created.external_reference, created.total) == (stored["id"], "shopify:1001", "39.99")


def test_without_a_company_the_client_calls_wsomhandler_on_the_instances_own_company(prima):
    client = PrimaClient.from_settings(company="")
    assert client.list_depots() == ["MAIN", "NORTH"]
    operation = _operation(prima.envelopes_seen[-1])
    assert operation.tag == f"{{{PRIMA_NS}}}wsomhandler"
    assert [child.tag for child in operation] == [f"{{{PRIMA_NS}}}request"]


def test_a_malformed_envelope_or_an_unknown_operation_gets_a_soap_fault(sandbox, prima):
    broken = requests.post(f"{sandbox.url}/prima", data=b"<soap:Envelope xmlns:soap=", timeout=5,
                           headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    assert broken.status_code == 500 and broken.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert _fault(broken)[0] == "soap:Client" and "not well-formed" in _fault(broken)[1]
    unknown = _soap_post(sandbox, f'<placeOrder xmlns="{PRIMA_NS}"><request>x</request></placeOrder>')
    assert unknown.status_code == 500 and _fault(unknown)[0] == "soap:Client"
    assert "Unknown operation {urn:omlink}placeOrder" in _fault(unknown)[1]
    assert ET.fromstring(unknown.content).find(f".//{{{PRIMA_NS}}}FaultDetail/{{{PRIMA_NS}}}errorMessage") is not None
    missing = _soap_post(sandbox, f'<comwsomhandler xmlns="{PRIMA_NS}"><request>x</request></comwsomhandler>')
    assert (missing.status_code, _fault(missing)) == (500, ("soap:Client", "comwsomhandler needs companyId"))
    soap12 = _soap_post(sandbox, f'<wsomhandler xmlns="{PRIMA_NS}"><request>x</request></wsomhandler>',
                        envelope_ns="http://www.w3.org/2003/05/soap-envelope")
    assert soap12.status_code == 500 and _fault(soap12)[0] == "soap:VersionMismatch"
    assert prima.soap_faults == 4 and prima.documents_seen == []


def test_a_soap_client_fault_is_a_permanent_error_and_not_retried(client, prima, monkeypatch):
    monkeypatch.setattr(client, "envelope", lambda root: b"<Request RequestType='DepotList'/>")  # bare XML, as before
    with pytest.raises(PermanentError) as raised:
        client.list_depots()
    assert raised.value.code == "soap:Client" and raised.value.status == 500
    assert client.stats.requests == 1 and prima.soap_faults == 1


def test_the_wsdl_is_fetched_once_per_process_not_per_call(prima):
    wsdl_cache_clear()
    first, second = PrimaClient.from_settings(), PrimaClient.from_settings()
    assert first.list_depots() == second.list_depots() == ["MAIN", "NORTH"]
    assert first.item_exists("MUG-001") and second.find_sales_order("shopify:nope") is None
    assert prima.wsdl_served == 1 and prima.requests_count == 4
