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


CASES = {
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
    assert not ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES).exists()
    if case.customer:
        [customer] = [c for c in order_setup.erp.customers if c["id"] == booked["customer_id"]]
        for key, value in case.customer.items():
            assert customer[key] == value
