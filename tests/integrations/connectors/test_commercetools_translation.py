"""commercetools Order JSON -> StorefrontOrder: the storefront's own figures, exact, and every order
reconciling to its total the way the ERP document builder checks it.

Payloads follow the shape of commercetools' published example Order (api-specs/api/examples/order.example.json
in commercetools-api-reference): typed Money, TaxRate on each line, TaxedItemPrice per line, TaxedPrice with
taxPortions on the order. The amounts are worked out as the platform does (line-level tax, half-even).
"""
import copy
import json
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from integrations.connectors.commercetools import CommercetoolsClient
from integrations.domain import StorefrontOrder, TaxLine, currency_exponent
from integrations.sandbox.commercetools import CommercetoolsSandbox

translate = CommercetoolsClient.order_from_payload
D = Decimal


from tests.ct_payloads import address, line_item, money, order, order_taxed, precise, shipping_info, tax_rate, taxed  # noqa: F401


# --- the invariant the ERP document builder checks ------------------------------------------


def assert_reconciles(result: StorefrontOrder) -> None:
    """Σ line totals (+ their tax when prices are net) − order discount (and its tax) == the order total,
    exactly; and, when the storefront states tax per rate, the lines' tax less the discount's tax per rate
    is that summary."""
    lines = result.all_lines
    assert all(line.total is not None for line in lines)
    line_tax = sum((t.amount for line in lines for t in line.tax_lines), D(0))
    discount_tax = sum((t.amount for t in result.order_discount_tax), D(0))
    total = sum((line.total for line in lines), D(0)) - result.order_discount
    if not result.taxes_included:
        total += line_tax - discount_tax
    assert total == result.total
    if result.tax_summary is not None:
        per_rate: dict[Decimal, Decimal] = {}
        for tax in (t for line in lines for t in line.tax_lines):
            per_rate[tax.rate] = per_rate.get(tax.rate, D(0)) + tax.amount
        for tax in result.order_discount_tax:
            per_rate[tax.rate] = per_rate.get(tax.rate, D(0)) - tax.amount
        summary: dict[Decimal, Decimal] = {}
        for tax in result.tax_summary:
            summary[tax.rate] = summary.get(tax.rate, D(0)) + tax.amount
        assert {r: a for r, a in per_rate.items() if a} == {r: a for r, a in summary.items() if a}
        assert sum(summary.values(), D(0)) == result.total_tax


# --- a simple taxed order ---------------------------------------------------------------------


def simple_order() -> dict:
    vat = tax_rate(0.19, "Standard DE")
    payload = order(
        [line_item("M0E20000000DLYV", "Shirt Michael Kors red", 2, money("30.00"), "60.00", rate=vat,
                   taxed_price=taxed("60.00", "71.40", 0.19, "Standard DE"), variant_id=4)],
        "67.40",
        taxed_price=order_taxed("67.40", "80.21", [(0.19, "12.81", "Standard DE")]),
        customLineItems=[{
            "id": "cli-wrap", "name": {"en": "Gift wrap"}, "money": money("2.50"), "slug": "gift-wrap",
            "quantity": 1, "totalPrice": money("2.50"), "discountedPricePerQuantity": [], "state": [],
            "taxCategory": {"typeId": "tax-category", "id": "tc-standard"}, "taxRate": vat,
            "taxedPrice": taxed("2.50", "2.98", 0.19, "Standard DE"), "priceMode": "Standard",
            "perMethodTaxRate": [], "taxedPricePortions": [],
        }],
        shippingInfo=shipping_info("DHL", "4.90", rate=vat, taxed_price=taxed("4.90", "5.83", 0.19, "Standard DE")),
    )
    payload["shippingAddress"]["phone"] = "+49 30 1234567"
    payload["lineItems"][0]["supplyChannel"] = {"typeId": "channel", "id": "ch-1",
                                                "obj": {"id": "ch-1", "key": "main-warehouse"}}
    return payload


def test_a_simple_taxed_order_keeps_commercetools_figures():
    result = translate(simple_order())

    shirt, wrap = result.lines
    assert (shirt.kind, shirt.sku, shirt.name, shirt.quantity) == ("item", "M0E20000000DLYV", "Shirt Michael Kors red", 2)
    assert (shirt.unit_price, shirt.total, shirt.discount) == (D("30.00"), D("60.00"), D(0))
    assert (shirt.line_id, shirt.product_id, shirt.variant_id) == ("li-M0E20000000DLYV", "prod-M0E20000000DLYV", "4")
    assert shirt.tax_lines == (TaxLine(rate=D("0.19"), amount=D("11.40"), title="Standard DE", country="DE"),)
    assert (wrap.kind, wrap.sku, wrap.name, wrap.total, wrap.tax_category) == ("custom", "", "Gift wrap", D("2.50"),
                                                                               "tc-standard")
    assert wrap.tax_lines[0].amount == D("0.48")  # 0.475 rounded half-even by the platform, taken as stated
    (ship,) = result.shipping
    assert (ship.kind, ship.name, ship.unit_price, ship.total, ship.line_id) == ("shipping", "DHL", D("4.90"),
                                                                                 D("4.90"), "sm-standard")
    assert ship.tax_lines[0].amount == D("0.93")
    assert (result.total, result.total_tax) == (D("80.21"), D("12.81"))
    assert result.tax_summary == (TaxLine(rate=D("0.19"), amount=D("12.81"), title="Standard DE"),)
    assert (result.order_discount, result.order_discount_tax, result.taxes_included) == (D(0), (), False)
    assert (result.price_rounding, result.tax_rounding) == ("ROUND_HALF_EVEN", "ROUND_HALF_EVEN")
    assert (result.customer_email, result.customer_name, result.customer_phone) == ("ada@example.com", "Ada Buyer",
                                                                                    "+49 30 1234567")
    assert (result.version, result.payment_state, result.location, result.country) == (3, "Paid", "main-warehouse", "DE")
    assert result.extra["taxes_included"] is False and result.extra["version"] == 3
    assert_reconciles(result)


# --- high precision ---------------------------------------------------------------------------


def test_high_precision_prices_keep_every_digit_and_line_totals_come_from_total_price():
    vat = tax_rate(0.19, "Standard DE")
    payload = order(
        [line_item("BOLT", "Bolt", 7, precise("12.3456", 4), "86.42", rate=vat,
                   taxed_price=taxed("86.42", "102.84", 0.19, "Standard DE")),
         line_item("NUT", "Nut", 3, precise("0.99999", 5), "3.00", rate=vat,
                   taxed_price=taxed("3.00", "3.57", 0.19, "Standard DE"))],
        "89.42",
        taxed_price=order_taxed("89.42", "106.41", [(0.19, "16.99", "Standard DE")]),
    )

    bolt, nut = translate(payload).lines

    assert bolt.unit_price == D("12.3456") and nut.unit_price == D("0.99999")
    assert bolt.unit_price * 7 == D("86.4192") and bolt.total == D("86.42")
    assert nut.unit_price * 3 == D("2.99997") and nut.total == D("3.00")
    assert_reconciles(translate(payload))


# --- discounts --------------------------------------------------------------------------------


def discounted_order() -> dict:
    """10 % off the cart total on top of a discounted shirt and a discounted shipping, 19 % and 7 %."""
    vat, reduced = tax_rate(0.19, "Standard DE"), tax_rate(0.07, "Reduced DE")
    return order(
        [line_item("SHIRT", "Shirt", 2, money("100.00"), "180.00", rate=vat, discounted=money("90.00"),
                   taxed_price=taxed("180.00", "214.20", 0.19, "Standard DE")),
         line_item("BOOK", "Book", 1, money("20.00"), "20.00", rate=reduced,
                   taxed_price=taxed("20.00", "21.40", 0.07, "Reduced DE"))],
        "182.70",
        # The order's portions are on the discounted base: 164.70 at 19 %, 18.00 at 7 %.
        taxed_price=order_taxed("182.70", "215.25", [(0.19, "31.29", "Standard DE"), (0.07, "1.26", "Reduced DE")]),
        shippingInfo=shipping_info("DHL", "5.00", discounted="3.00", rate=vat,
                                   taxed_price=taxed("3.00", "3.57", 0.19, "Standard DE")),
        discountOnTotalPrice={
            "discountedAmount": money("20.30"),
            "includedDiscounts": [{"discount": {"typeId": "cart-discount", "id": "cd-total"},
                                   "discountedAmount": money("20.30")}],
            "discountedNetAmount": money("20.30"),
            "discountedGrossAmount": money("23.92"),
        },
    )


def test_discounted_lines_and_a_total_price_discount_take_tax_from_the_taxed_portions():
    result = translate(discounted_order())

    shirt, book = result.lines
    (ship,) = result.shipping
    assert (shirt.discount, shirt.total) == (D("20.00"), D("180.00"))
    assert (ship.discount, ship.total, ship.unit_price) == (D("2.00"), D("3.00"), D("5.00"))
    assert result.order_discount == D("20.30")  # net: prices are net
    assert result.order_discount_tax == (TaxLine(rate=D("0.19"), amount=D("3.48"), title="Standard DE"),
                                         TaxLine(rate=D("0.07"), amount=D("0.14"), title="Reduced DE"))
    assert [t.amount for t in result.tax_summary] == [D("31.29"), D("1.26")]
    assert result.total == D("215.25") and result.total_tax == D("32.55")
    lines_total = sum(line.total for line in result.all_lines)
    assert lines_total - result.order_discount + sum(t.amount for t in result.tax_summary) == result.total
    assert_reconciles(result)


def test_the_tax_removed_per_rate_wins_over_a_stated_gross_net_difference_that_is_a_cent_off():
    payload = discounted_order()
    payload["discountOnTotalPrice"]["discountedGrossAmount"] = money("23.91")

    result = translate(payload)

    assert sum(t.amount for t in result.order_discount_tax) == D("3.62")
    assert result.extra["discount_on_total_price_tax"] == "3.61"
    assert_reconciles(result)


def test_a_total_price_discount_on_tax_included_prices_is_gross():
    vat = tax_rate(0.2, "VAT GB", country="GB", included=True)
    payload = order(
        [line_item("TEE", "Tee", 2, money("24.00", "GBP"), "48.00", rate=vat, currency="GBP",
                   taxed_price=taxed("40.00", "48.00", 0.2, "VAT GB", "GBP"))],
        "49.00",
        currency="GBP",
        taxed_price=order_taxed("40.83", "49.00", [(0.2, "8.17", "VAT GB")], "GBP"),
        shippingInfo=shipping_info("Royal Mail", "6.00", rate=vat, currency="GBP",
                                   taxed_price=taxed("5.00", "6.00", 0.2, "VAT GB", "GBP")),
        discountOnTotalPrice={"discountedAmount": money("5.00", "GBP"), "includedDiscounts": [],
                              "discountedNetAmount": money("4.17", "GBP"),
                              "discountedGrossAmount": money("5.00", "GBP")},
        shippingAddress=address("GB"),
    )

    result = translate(payload)

    assert result.taxes_included is True
    assert result.order_discount == D("5.00")
    assert result.order_discount_tax == (TaxLine(rate=D("0.2"), amount=D("0.83"), title="VAT GB"),)
    assert sum(line.total for line in result.all_lines) - result.order_discount == result.total == D("49.00")
    assert result.tax_summary[0].amount == D("8.17")
    assert_reconciles(result)


# --- several shipping methods -------------------------------------------------------------------


def test_shipping_mode_multiple_gives_one_shipping_line_per_method_each_with_its_own_tax():
    de, at = tax_rate(0.19, "Standard DE"), tax_rate(0.2, "Standard AT", country="AT")
    payload = order(
        [line_item("LAMP", "Lamp", 2, money("50.00"), "100.00", rate=de,
                   taxed_price=taxed("100.00", "119.00", 0.19, "Standard DE"))],
        "114.80",
        taxed_price=order_taxed("114.80", "136.71", [(0.19, "19.93", "Standard DE"), (0.2, "1.98", "Standard AT")]),
        shippingMode="Multiple",
        shipping=[
            {"shippingKey": "home", "shippingAddress": address("DE"),
             "shippingInfo": shipping_info("Standard", "4.90", rate=de, method_id="sm-standard",
                                           taxed_price=taxed("4.90", "5.83", 0.19, "Standard DE"))},
            {"shippingKey": "office", "shippingAddress": address("AT"),
             "shippingInfo": shipping_info("Express", "9.90", rate=at, method_id="sm-express",
                                           taxed_price=taxed("9.90", "11.88", 0.2, "Standard AT"))},
        ],
    )

    result = translate(payload)

    home, office = result.shipping
    assert (home.line_id, home.name, home.total) == ("home", "Standard", D("4.90"))
    assert home.tax_lines == (TaxLine(rate=D("0.19"), amount=D("0.93"), title="Standard DE", country="DE"),)
    assert (office.line_id, office.name, office.total) == ("office", "Express", D("9.90"))
    assert office.tax_lines == (TaxLine(rate=D("0.2"), amount=D("1.98"), title="Standard AT", country="AT"),)
    assert result.extra["shipping_mode"] == "Multiple"
    assert_reconciles(result)


# --- external tax amounts -------------------------------------------------------------------------


def test_external_amount_tax_mode_takes_the_line_total_and_tax_as_set_not_unit_times_quantity():
    ca = {"name": "CA sales tax", "amount": 0.0725, "includedInPrice": False, "country": "US", "state": "CA",
          "subRates": []}
    payload = order(
        [line_item("CHAIR", "Chair", 3, money("10.00", "USD"), "27.50", rate=ca, currency="USD",
                   price_mode="ExternalTotal", taxed_price=taxed("27.50", "29.50", 0.0725, "CA sales tax", "USD"))],
        "27.50",
        currency="USD",
        taxed_price=order_taxed("27.50", "29.50", [(0.0725, "2.00", "CA sales tax")], "USD"),
        taxMode="ExternalAmount",
        shippingAddress=address("US", state="CA"),
    )

    result = translate(payload)

    (chair,) = result.lines
    assert chair.unit_price * chair.quantity == D("30.00")
    assert chair.total == D("27.50")
    assert chair.tax_lines[0].amount == D("2.00")  # as set externally, not 27.50 × 7.25 %
    assert str(chair.tax_lines[0].rate) == "0.0725"
    assert result.extra["tax_mode"] == "ExternalAmount"
    assert_reconciles(result)


def test_a_tax_rate_is_read_from_its_text_without_float_noise():
    payload = simple_order()
    payload["lineItems"][0]["taxRate"]["amount"] = 0.075

    assert str(translate(payload).lines[0].tax_lines[0].rate) == "0.075"


# --- rounding modes ------------------------------------------------------------------------------


def test_rounding_modes_are_mapped_to_python_decimal_modes():
    payload = simple_order()
    payload.update(priceRoundingMode="HalfUp", taxRoundingMode="HalfDown")

    result = translate(payload)

    assert (result.price_rounding, result.tax_rounding) == ("ROUND_HALF_UP", "ROUND_HALF_DOWN")


def test_absent_rounding_modes_are_blank():
    payload = simple_order()
    del payload["priceRoundingMode"], payload["taxRoundingMode"]

    result = translate(payload)

    assert (result.price_rounding, result.tax_rounding) == ("", "")


# --- tax countries, missing figures ----------------------------------------------------------------


def test_a_tax_rate_keeps_its_own_country_when_it_differs_from_the_shipping_country():
    payload = simple_order()
    payload["shippingAddress"] = address("AT")  # shipped to Austria, taxed at the German rate (below threshold)

    result = translate(payload)

    assert result.country == "AT"
    assert {t.country for line in result.all_lines for t in line.tax_lines} == {"DE"}


def test_an_order_without_taxed_price_translates_with_no_tax_summary():
    # As commercetools' own example Order: External tax mode, the line taxed, no order-level taxedPrice.
    payload = order(
        [line_item("some-sku-123", "MyProduct", 1, money("10.00"), "10.00", rate=tax_rate(0.1, "Bla"),
                   taxed_price=taxed("10.00", "11.00", 0.1, "Bla", total_tax=False))],
        "10.00",
        taxMode="External",
    )

    result = translate(payload)

    assert (result.total, result.total_tax, result.tax_summary) == (D("10.00"), None, None)
    assert result.lines[0].tax_lines[0].amount == D("1.00")  # totalGross − totalNet: no totalTax given


def test_an_untaxed_order_reconciles_to_its_total_price():
    payload = order([line_item("GIFT", "Gift", 2, money("15.00"), "30.00")], "34.90", taxMode="Disabled",
                    shippingInfo=shipping_info("Post", "4.90"))

    result = translate(payload)

    assert result.total == D("34.90") and result.tax_summary is None
    assert all(line.tax_lines == () for line in result.all_lines)
    assert_reconciles(result)


def test_a_line_without_taxed_price_falls_back_to_its_rate_rounded_with_the_tax_rounding_mode():
    payload = simple_order()
    payload["taxRoundingMode"] = "HalfUp"
    del payload["customLineItems"][0]["taxedPrice"]  # 2.50 × 19 % = 0.475

    assert translate(payload).lines[1].tax_lines[0].amount == D("0.48")
    payload["taxRoundingMode"] = "HalfDown"
    assert translate(payload).lines[1].tax_lines[0].amount == D("0.47")


def test_an_order_without_customer_email_has_a_blank_email():
    payload = simple_order()
    del payload["customerEmail"], payload["customerId"]
    payload["anonymousId"] = "anon-1"

    result = translate(payload)

    assert (result.customer_email, result.customer_storefront_id) == ("", "")
    assert_reconciles(result)


def test_the_phone_falls_back_to_the_billing_mobile():
    payload = simple_order()
    del payload["shippingAddress"]["phone"]
    payload["billingAddress"]["mobile"] = "+49 170 0000000"

    assert translate(payload).customer_phone == "+49 170 0000000"


# --- text and big numbers ----------------------------------------------------------------------


def test_non_ascii_names_and_numbers_beyond_two_to_the_53_survive_a_json_round_trip():
    payload = simple_order()
    payload["lineItems"][0]["name"] = {"de": "Bluse Größe M – rot", "ja": "ブラウス"}
    payload["shippingAddress"].update(firstName="Zoë", lastName="Ångström-Łukasz")
    payload["orderNumber"] = "Bestellung-Nº-9007199254740993"
    payload["version"] = 2**53 + 1
    big = {"lineItems": [line_item("YEN", "高級茶", 1, money(str(2**53 + 1), "JPY"), str(2**53 + 1), currency="JPY")],
           "totalPrice": money(str(2**53 + 1), "JPY")}

    result = translate(json.loads(json.dumps(payload, ensure_ascii=True)))
    yen = translate(json.loads(json.dumps(order(currency="JPY", taxMode="Disabled", total_price="0", line_items=[],
                                                **big))))

    assert result.lines[0].name == "Bluse Größe M – rot"
    assert result.customer_name == "Zoë Ångström-Łukasz"
    assert result.order_number == "Bestellung-Nº-9007199254740993"
    assert result.version == 9007199254740993
    assert yen.lines[0].name == "高級茶"
    assert yen.lines[0].unit_price == yen.total == D(9007199254740993)


# --- malformed shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda o: o.update(lineItems=None), r"lineItems is not a list"),
        (lambda o: o.update(lineItems="SHIRT"), r"lineItems is not a list"),
        (lambda o: o.pop("lineItems"), r"lineItems is missing"),
        (lambda o: o["lineItems"].insert(0, None), r"lineItems\[0\] is not an object"),
        (lambda o: o["lineItems"][0]["price"].pop("value"), r"lineItems\[0\]\.price\.value is missing"),
        (lambda o: o["lineItems"][0]["price"].update(value=1999), r"lineItems\[0\]\.price\.value is not a Money object"),
        (lambda o: o["lineItems"][0].update(quantity="2"), r"lineItems\[0\]\.quantity is not a whole number"),
        (lambda o: o["lineItems"][0].update(quantity=None), r"lineItems\[0\]\.quantity is missing"),
        (lambda o: o["lineItems"][0].pop("totalPrice"), r"lineItems\[0\]\.totalPrice is missing"),
        (lambda o: o["lineItems"][0]["taxRate"].update(amount="nineteen"), r"lineItems\[0\]\.taxRate\.amount"),
        (lambda o: o["lineItems"][0].update(discountedPricePerQuantity=None),
         r"lineItems\[0\]\.discountedPricePerQuantity is not a list"),
        (lambda o: o["customLineItems"][0].pop("money"), r"customLineItems\[0\]\.money is missing"),
        (lambda o: o["shippingInfo"].update(price="4.90"), r"shippingInfo\.price is not a Money object"),
        (lambda o: o["taxedPrice"].update(taxPortions=None), r"taxedPrice\.taxPortions is not a list"),
        (lambda o: o["taxedPrice"]["taxPortions"][0]["amount"].pop("centAmount"),
         r"taxedPrice\.taxPortions\[0\]\.amount\.centAmount is missing"),
        (lambda o: o["lineItems"][0]["taxedPrice"]["totalTax"].update(currencyCode="USD"),
         r"lineItems\[0\]\.taxedPrice\.totalTax is in 'USD'"),
        (lambda o: o.update(taxRoundingMode="Ceiling"), r"taxRoundingMode is not a RoundingMode"),
        (lambda o: o.update(version="3"), r"version is not a whole number"),
        (lambda o: o.update(shippingMode="Multiple", shipping=None), r"shipping is not a list"),
        (lambda o: o.update(discountOnTotalPrice={"includedDiscounts": []}),
         r"discountOnTotalPrice\.discountedAmount is missing"),
        (lambda o: o.update(lastModifiedAt="yesterday"), r"lastModifiedAt is a bad timestamp"),
    ],
)
def test_a_malformed_order_is_a_value_error_naming_the_field(breakage, field):
    payload = simple_order()
    payload["lineItems"] = payload["lineItems"] * 3  # so a path like lineItems[2] can be named
    breakage(payload)

    with pytest.raises(ValueError, match=field) as excinfo:
        translate(payload)

    assert payload["id"] in str(excinfo.value)


def test_the_third_line_is_named_by_its_index():
    payload = simple_order()
    payload["lineItems"] = [copy.deepcopy(payload["lineItems"][0]) for _ in range(3)]
    payload["lineItems"][2]["price"]["value"] = "12.00"

    with pytest.raises(ValueError, match=r"lineItems\[2\]\.price\.value is not a Money object"):
        translate(payload)


def _paths(node, path=()):
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


def test_no_bad_shape_anywhere_escapes_as_anything_but_value_error():
    for payload in (simple_order(), discounted_order()):
        for path in list(_paths(payload))[1:]:
            for bad in (None, "x", [], {}, 1.5, True):
                broken = copy.deepcopy(payload)
                parent = broken
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = bad
                try:
                    translate(broken)
                except ValueError:
                    pass


# --- the sandbox's orders are consistent like the platform's -----------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"line_items": [{"sku": "TEE", "quantity": 3, "price": "19.99", "discounted_price": "17.99"},
                        {"sku": "BOOK", "quantity": 1, "price": "12.00", "tax_rate": "0.07"}],
         "custom_line_items": [{"name": "Gift wrap", "price": "2.50"}],
         "shipping": {"name": "Express", "price": "7.90", "discounted_price": "5.90"}},
        {"line_items": [{"sku": "BOLT", "quantity": 7, "price": "12.3456"}], "high_precision": True,
         "fraction_digits": 4},
        {"currency": "JPY", "country": "JP", "line_items": [{"sku": "TEA", "quantity": 2, "price": "1500",
                                                             "tax_rate": "0.1"}], "shipping": {"price": "800"}},
    ],
    ids=["default", "discounts-two-rates", "high-precision", "jpy"],
)
def test_sandbox_orders_reconcile_like_real_ones(fields):
    sandbox = CommercetoolsSandbox()

    result = translate(sandbox.create_order(**fields))

    assert result.tax_summary is not None
    assert_reconciles(result)
