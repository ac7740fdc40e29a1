"""The golden table: one storefront order shape per case, the exact ERP Sales Order it must become.

Every case goes the real way: a signed Shopify webhook or a commercetools Subscription message into
the inbox, the flow, and the sandbox ERP over HTTP; the test reads back what the ERP booked, to the
minor unit, and checks that the ERP's own gross total is the storefront's total.
"""
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import OrderLink
from tests.ct_payloads import address, line_item, money, order, order_taxed, precise, shipping_info, tax_rate, taxed
from tests.factories import TaxCodeMappingFactory
from tests.payloads import post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


@dataclass
class Case:
    platform: str  # shopify | commercetools
    payload: dict
    # (kind, item_code, quantity, line_total, tax_code, tax_amount) of every ERP line, in order
    lines: list[tuple]
    total: str  # net (or gross when tax is included) sum of the lines
    tax_total: str
    gross_total: str  # what the customer paid: the storefront's order total
    currency: str = "EUR"
    customer: dict = field(default_factory=dict)  # expected fields of the ERP customer
    settings: dict = field(default_factory=dict)  # connection settings for the case
    rounding: str = "0"
    exceptions: list = field(default_factory=list)  # exception types the case raises besides posting


def _ct(line_items, total_price, **fields):
    payload = order(line_items, total_price, **fields)
    payload["id"] = str(uuid.uuid4())
    return payload


def ct_multiple_shipping() -> Case:
    vat = tax_rate(0.19, "Standard DE")
    payload = _ct(
        [line_item("TEE-BLK-M", "Tee", 2, money("10.00"), "20.00", rate=vat, taxed_price=taxed("20.00", "23.80", 0.19, "Standard DE"))],
        "34.80",
        taxed_price=order_taxed("34.80", "41.41", [(0.19, "6.61", "Standard DE")]),
        shippingMode="Multiple",
        shipping=[
            {"shippingKey": "home", "shippingAddress": address(),
             "shippingInfo": shipping_info("DHL", "4.90", rate=vat, taxed_price=taxed("4.90", "5.83", 0.19, "Standard DE"))},
            {"shippingKey": "office", "shippingAddress": address(),
             "shippingInfo": shipping_info("Express", "9.90", rate=vat, method_id="sm-express",
                                           taxed_price=taxed("9.90", "11.78", 0.19, "Standard DE"))},
        ],
    )
    return Case("commercetools", payload, [
        ("item", "TEE-BLK-M", 2, "20.00", "DE19", "3.80"),
        ("shipping", "SHIPPING", 1, "4.90", "DE19", "0.93"),
        ("shipping", "SHIPPING", 1, "9.90", "DE19", "1.88"),
    ], total="34.80", tax_total="6.61", gross_total="41.41")


def ct_discounts() -> Case:
    vat = tax_rate(0.19, "Standard DE")
    payload = _ct(
        [line_item("TEE-BLK-M", "Tee", 2, money("20.00"), "36.00", rate=vat, discounted=money("18.00"),
                   taxed_price=taxed("36.00", "42.84", 0.19, "Standard DE"))],
        "31.00",
        taxed_price=order_taxed("31.00", "36.89", [(0.19, "5.89", "Standard DE")]),
        discountOnTotalPrice={"discountedAmount": money("5.00"), "includedDiscounts": [],
                              "discountedNetAmount": money("5.00"), "discountedGrossAmount": money("5.95")},
    )
    # Tax comes from the storefront's taxed portions (5.89 after the discount), not from 36.00 × 19 %.
    return Case("commercetools", payload, [
        ("item", "TEE-BLK-M", 2, "40.00", "DE19", "6.84"),
        ("discount", "DISCOUNT", 1, "-4.00", "DE19", "0.00"),
        ("discount", "DISCOUNT", 1, "-5.00", "DE19", "-0.95"),
    ], total="31.00", tax_total="5.89", gross_total="36.89")


def ct_external_amount() -> Case:
    vat = tax_rate(0.19, "Standard DE")
    # An external tax service set the line's amounts: 27.00 net (not 3 × 10.00) and 5.13 tax.
    payload = _ct(
        [line_item("TEE-BLK-M", "Tee", 3, money("10.00"), "27.00", rate=vat, price_mode="ExternalTotal",
                   taxed_price=taxed("27.00", "32.13", 0.19, "Standard DE"))],
        "27.00", taxed_price=order_taxed("27.00", "32.13", [(0.19, "5.13", "Standard DE")]), taxMode="ExternalAmount",
    )
    return Case("commercetools", payload, [("item", "TEE-BLK-M", 3, "27.00", "DE19", "5.13")],
                total="27.00", tax_total="5.13", gross_total="32.13")


def ct_high_precision_half_up() -> Case:
    vat = tax_rate(0.19, "Standard DE")
    payload = _ct(
        [line_item("TEE-BLK-S", "Tee S", 1, precise("12.3450", 4), "12.35", rate=vat,
                   taxed_price=taxed("12.35", "14.70", 0.19, "Standard DE")),
         line_item("TEE-BLK-L", "Tee L", 3, precise("12.3456", 4), "37.04", rate=vat,
                   taxed_price=taxed("37.04", "44.08", 0.19, "Standard DE"))],
        "49.39", taxed_price=order_taxed("49.39", "58.78", [(0.19, "9.39", "Standard DE")]),
        priceRoundingMode="HalfUp", taxRoundingMode="HalfUp",
    )
    # Line totals are commercetools' own (12.3450 rounds half-up to 12.35; half-even would say 12.34);
    # the unit price is the line total ÷ quantity in the order's rounding mode; 37.04 / 3 -> 12.35.
    return Case("commercetools", payload, [
        ("item", "TEE-BLK-S", 1, "12.35", "DE19", "2.35"),
        ("item", "TEE-BLK-L", 3, "37.04", "DE19", "7.04"),
    ], total="49.39", tax_total="9.39", gross_total="58.78", rounding="-0.0082")


def ct_tax_country() -> Case:
    # Shipped to Germany, taxed by Austria's rate (e.g. a cross-border OSS set-up): the tax code
    # is looked up by the rate AND the rate's own country.
    at = tax_rate(0.2, "AT standard", country="AT")
    payload = _ct(
        [line_item("MUG-001", "Tasse", 1, money("50.00"), "50.00", rate=at, taxed_price=taxed("50.00", "60.00", 0.2, "AT standard"))],
        "50.00", taxed_price=order_taxed("50.00", "60.00", [(0.2, "10.00", "AT standard")]),
    )
    return Case("commercetools", payload, [("item", "MUG-001", 1, "50.00", "AT20", "10.00")],
                total="50.00", tax_total="10.00", gross_total="60.00")


def ct_guest_without_email_or_tax() -> Case:
    # No order-level taxedPrice, no e-mail, a zero-priced line, a non-ASCII name, an order number
    # beyond 2^53: posts under the connection's guest account for EUR.
    payload = _ct(
        [line_item("TEE-WHT-M", {"de": "T-Shirt weiß – Größe M"}, 1, money("19.99"), "19.99"),
         line_item("MUG-001", "Gratis-Tasse", 1, money("0.00"), "0.00")],
        "19.99", orderNumber="9007199254740993",
    )
    payload.pop("customerEmail")
    payload.pop("customerId")
    return Case("commercetools", payload, [
        ("item", "TEE-WHT-M", 1, "19.99", "", "0.00"),
        ("item", "MUG-001", 1, "0.00", "", "0.00"),
    ], total="19.99", tax_total="0.00", gross_total="19.99",
        customer={"email": "", "external_reference": "commercetools:guest:EUR"})


# --- Shopify (REST order JSON as the orders/* webhooks carry it) ---------------------------------


def _set_money(obj: dict, key: str, amount: str, currency: str = "GBP") -> None:
    obj[key] = amount
    obj[f"{key}_set"] = {"shop_money": {"amount": amount, "currency_code": currency},
                         "presentment_money": {"amount": amount, "currency_code": currency}}


def _totals(payload: dict, total: str, tax: str) -> dict:
    _set_money(payload, "total_price", total, payload["currency"])
    _set_money(payload, "current_total_price", total, payload["currency"])
    _set_money(payload, "total_tax", tax, payload["currency"])
    return payload


def shopify_duties() -> Case:
    # Shipped from the UK to the US, duties paid at checkout (DDP): their own line on the duties item.
    payload = shopify_order(number=1601, country="US", lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1,
                                                               "tax_rate": None}])
    duty = {"id": "9001", "harmonized_system_code": "610910", "country_code_of_origin": "PT",
            "shop_money": {"amount": "3.20", "currency_code": "GBP"},
            "presentment_money": {"amount": "3.20", "currency_code": "GBP"},
            "price_set": {"shop_money": {"amount": "3.20", "currency_code": "GBP"},
                          "presentment_money": {"amount": "3.20", "currency_code": "GBP"}},
            "tax_lines": [], "admin_graphql_api_id": "gid://shopify/Duty/9001"}
    payload["line_items"][0]["duties"] = [duty]
    _set_money(payload, "original_total_duties", "3.20")
    _set_money(payload, "current_total_duties", "3.20")
    _totals(payload, "23.20", "0.00")
    return Case("shopify", payload, [
        ("item", "TEE-BLK-M", 1, "20.00", "", "0.00"),
        ("duty", "DUTIES", 1, "3.20", "", "0.00"),
    ], total="23.20", tax_total="0.00", gross_total="23.20", currency="GBP")


def shopify_tip_big_ids() -> Case:
    payload = shopify_order(order_id=2**53 + 1, number=1602,
                            lines=[{"sku": "TEE-BLK-M", "title": "Zoë's T-Shirt – Größe M", "price": "20.00",
                                    "quantity": 1, "tax_price": "4.00"}])
    payload["line_items"][0]["id"] = 2**53 + 7
    payload["total_tip_received"] = "2.00"
    _totals(payload, "26.00", "4.00")
    return Case("shopify", payload, [
        ("item", "TEE-BLK-M", 1, "20.00", "T1", "4.00"),
        ("tip", "TIPS", 1, "2.00", "", "0.00"),
    ], total="22.00", tax_total="4.00", gross_total="26.00", currency="GBP")


def shopify_taxes_included() -> Case:
    # A UK shop: prices include VAT; a free sample rides along at 0.00.
    payload = shopify_order(number=1603, taxes_included=True,
                            lines=[{"sku": "TEE-BLK-M", "price": "24.00", "quantity": 1, "tax_price": "4.00"},
                                   {"sku": "MUG-001", "title": "Free sample mug", "price": "0.00", "quantity": 1,
                                    "tax_price": "0.00"}],
                            shipping=[{"price": "6.00", "tax_price": "1.00"}])
    return Case("shopify", payload, [
        ("item", "TEE-BLK-M", 1, "24.00", "T1", "4.00"),
        ("item", "MUG-001", 1, "0.00", "T1", "0.00"),
        ("shipping", "SHIPPING", 1, "6.00", "T1", "1.00"),
    ], total="30.00", tax_total="5.00", gross_total="30.00", currency="GBP")


def shopify_order_level_tax_only() -> Case:
    # Some apps and imports state tax only on the order: the ERP still books it, on the first line.
    payload = shopify_order(number=1604, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1, "tax_rate": None}])
    payload["tax_lines"] = [{"title": "VAT", "rate": 0.2, "price": "4.00",
                             "price_set": {"shop_money": {"amount": "4.00", "currency_code": "GBP"}}}]
    _totals(payload, "24.00", "4.00")
    return Case("shopify", payload, [("item", "TEE-BLK-M", 1, "20.00", "T1", "4.00")],
                total="20.00", tax_total="4.00", gross_total="24.00", currency="GBP")


def shopify_several_tax_lines() -> Case:
    # Canada (British Columbia): GST 5 % and PST 7 % on the same line.
    payload = shopify_order(number=1605, currency="CAD", country="CA",
                            lines=[{"sku": "HOODIE-GRY-L", "price": "100.00", "quantity": 1, "tax_rate": None}])
    def tax(title, rate, amount):
        return {"title": title, "rate": rate, "price": amount,
                "price_set": {"shop_money": {"amount": amount, "currency_code": "CAD"},
                              "presentment_money": {"amount": amount, "currency_code": "CAD"}}}
    payload["line_items"][0]["tax_lines"] = [tax("GST", 0.05, "5.00"), tax("BC PST", 0.07, "7.00")]
    payload["tax_lines"] = [tax("GST", 0.05, "5.00"), tax("BC PST", 0.07, "7.00")]
    _totals(payload, "112.00", "12.00")
    return Case("shopify", payload, [("item", "HOODIE-GRY-L", 1, "100.00", "CA-GST+CA-PST", "12.00")],
                total="100.00", tax_total="12.00", gross_total="112.00", currency="CAD")


def shopify_presentment_currency() -> Case:
    # The buyer paid in EUR; the shop's books are in GBP: posted in shop money by default.
    payload = shopify_order(number=1606, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1, "tax_price": "4.00"}])
    payload["presentment_currency"] = "EUR"

    def to_eur(node):
        if isinstance(node, dict):
            if isinstance(node.get("presentment_money"), dict):
                shop = Decimal(node["shop_money"]["amount"])
                node["presentment_money"] = {"amount": str((shop * Decimal("1.17")).quantize(Decimal("0.01"))),
                                             "currency_code": "EUR"}
            for value in node.values():
                to_eur(value)
        elif isinstance(node, list):
            for value in node:
                to_eur(value)
    to_eur(payload)
    return Case("shopify", payload, [("item", "TEE-BLK-M", 1, "20.00", "T1", "4.00")],
                total="20.00", tax_total="4.00", gross_total="24.00", currency="GBP")


def shopify_gift_card_sold_and_paid_partly_by_gift_card() -> Case:
    payload = shopify_order(number=1607, lines=[
        {"sku": "GIFT-25", "title": "Gift card £25", "price": "25.00", "quantity": 1, "tax_rate": None},
        {"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1, "tax_price": "4.00"}])
    payload["line_items"][0]["gift_card"] = True
    payload["line_items"][0]["requires_shipping"] = False
    payload["payment_gateway_names"] = ["gift_card", "shopify_payments"]  # £10 of it paid by an older gift card
    return Case("shopify", payload, [
        ("gift_card", "GIFT-CARD-LIABILITY", 1, "25.00", "", "0.00"),
        ("item", "TEE-BLK-M", 1, "20.00", "T1", "4.00"),
    ], total="45.00", tax_total="4.00", gross_total="49.00", currency="GBP")


def shopify_first_seen_partially_refunded() -> Case:
    # Paid, then one of two tees refunded before Ledgerline ever saw it: the sale posts whole; the
    # refund the payload carries is credited by its own credit memo (the refunds flow), so nothing is held.
    payload = shopify_order(number=1608, financial_status="partially_refunded",
                            lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00"}])
    line = payload["line_items"][0]
    line["current_quantity"] = 1
    payload["refunds"] = [{
        "id": 77001, "order_id": payload["id"], "created_at": "2026-11-20T09:30:00+00:00", "restock": True,
        "refund_line_items": [{"id": 88001, "line_item_id": line["id"], "quantity": 1, "restock_type": "return",
                               "subtotal": 20.00, "total_tax": 4.00,
                               "subtotal_set": {"shop_money": {"amount": "20.00", "currency_code": "GBP"}},
                               "total_tax_set": {"shop_money": {"amount": "4.00", "currency_code": "GBP"}}}],
        "transactions": [{"id": 99001, "kind": "refund", "status": "success", "amount": "24.00", "currency": "GBP"}],
    }]
    _set_money(payload, "current_total_price", "24.00")
    return Case("shopify", payload, [("item", "TEE-BLK-M", 2, "40.00", "T1", "8.00")],
                total="40.00", tax_total="8.00", gross_total="48.00", currency="GBP", exceptions=[])


CASES = {
    "shopify_duties": shopify_duties,
    "shopify_tip_and_ids_beyond_2_53": shopify_tip_big_ids,
    "shopify_taxes_included_zero_priced_line": shopify_taxes_included,
    "shopify_order_level_tax_lines_only": shopify_order_level_tax_only,
    "shopify_several_tax_lines_per_line": shopify_several_tax_lines,
    "shopify_presentment_currency_posts_shop_money": shopify_presentment_currency,
    "shopify_gift_card_sold_paid_partly_by_gift_card": shopify_gift_card_sold_and_paid_partly_by_gift_card,
    "shopify_first_seen_partially_refunded": shopify_first_seen_partially_refunded,
    "ct_multiple_shipping": ct_multiple_shipping,
    "ct_discount_on_total_price_and_discounted_lines": ct_discounts,
    "ct_external_amount_tax_mode": ct_external_amount,
    "ct_high_precision_half_up": ct_high_precision_half_up,
    "ct_tax_rate_country": ct_tax_country,
    "ct_guest_no_email_no_taxed_price": ct_guest_without_email_or_tax,
}


def _deliver(client, case: Case, capture):
    with capture(execute=True):
        if case.platform == "shopify":
            response = post_shopify_webhook(client, case.payload)
        else:
            message = {"id": str(uuid.uuid4()), "type": "OrderCreated", "notificationType": "Message",
                       "resource": {"typeId": "order", "id": case.payload["id"]},
                       "resourceVersion": case.payload["version"], "sequenceNumber": 1, "order": case.payload}
            response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps(message),
                                   content_type="application/json",
                                   headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("name", list(CASES))
def test_each_order_shape_posts_the_exact_erp_document(name, client, order_setup, shopify_connection, ct_connection,
                                                        django_capture_on_commit_callbacks):
    for conn in (shopify_connection, ct_connection):
        TaxCodeMappingFactory(connection=conn, rate="0.2", country="AT", erp_tax_code="AT20")
        TaxCodeMappingFactory(connection=conn, rate="0.05", country="CA", erp_tax_code="CA-GST")
        TaxCodeMappingFactory(connection=conn, rate="0.07", country="CA", erp_tax_code="CA-PST")
        TaxCodeMappingFactory(connection=conn, rate="0.2", country="DE", erp_tax_code="DE20")
    order_setup.erp.add_item("GIFT-25")
    case = CASES[name]()
    connection = shopify_connection if case.platform == "shopify" else ct_connection
    if case.settings:
        connection.settings = case.settings
        connection.save()
    _deliver(client, case, django_capture_on_commit_callbacks)

    link = OrderLink.objects.get(connection=connection)
    assert link.state == OrderLink.State.POSTED, (link.last_error, list(
        ExceptionRecord.objects.values_list("type_code", "message")))
    [booked] = order_setup.erp.sales_orders
    got = [(l["kind"], l["item_code"], l["quantity"], l["line_total"], l["tax_code"], l["tax_amount"])
           for l in booked["lines"]]
    assert got == case.lines
    assert (booked["currency"], booked["total"], booked["tax_total"], booked["gross_total"]) == (
        case.currency, case.total, case.tax_total, case.gross_total)
    # The invariant, kept on the order: what we sent, what the ERP booked and what the customer paid agree.
    assert link.posted_total_minor == link.erp_total_minor == link.total_minor
    assert link.rounding_difference == Decimal(case.rounding)
    assert sorted(ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
                  .values_list("type_code", flat=True)) == sorted(case.exceptions)
    if case.customer:
        [customer] = [c for c in order_setup.erp.customers if c["id"] == booked["customer_id"]]
        for key, value in case.customer.items():
            assert customer[key] == value
