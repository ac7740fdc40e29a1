"""Shopify's REST order JSON -> StorefrontOrder: the sale in Shopify's own figures.

Payloads are modelled on Shopify's documented REST order example (order 450789469, "IPod Nano - Pink");
every total in them is written out as Shopify states it, never computed by the test.
"""
from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from integrations.connectors.shopify import ShopifyClient
from integrations.domain import OrderLine, StorefrontOrder, TaxLine

translate = ShopifyClient.order_from_payload


# --- payload parts, shaped like Shopify's REST JSON ------------------------------------------------


def bag(shop: str, presentment: str | None = None, *, shop_currency: str = "USD",
        presentment_currency: str | None = None) -> dict:
    return {"shop_money": {"amount": shop, "currency_code": shop_currency},
            "presentment_money": {"amount": presentment if presentment is not None else shop,
                                  "currency_code": presentment_currency or shop_currency}}


def tax(title: str, rate: float, amount: str, presentment: str | None = None, **currencies) -> dict:
    return {"title": title, "rate": rate, "price": amount, "price_set": bag(amount, presentment, **currencies),
            "channel_liable": False}


def line(line_id: int, sku: str | None, name: str, price: str, quantity: int, *, taxes=(), discount: str | None = None,
         product_id: int | None = 7513594, variant_id: int | None = 4264112, presentment: str | None = None,
         discount_presentment: str | None = None, currencies: dict | None = None, **extra) -> dict:
    currencies = currencies or {}
    return {
        "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}", "sku": sku, "name": name,
        "title": name.split(" - ")[0], "vendor": "Apple", "quantity": quantity, "current_quantity": quantity,
        "fulfillable_quantity": quantity, "price": price, "price_set": bag(price, presentment, **currencies),
        "product_id": product_id, "variant_id": variant_id, "product_exists": product_id is not None,
        "gift_card": False, "taxable": bool(taxes), "requires_shipping": True, "tax_lines": list(taxes),
        "discount_allocations": [] if discount is None else [
            {"amount": discount, "amount_set": bag(discount, discount_presentment, **currencies),
             "discount_application_index": 0}],
        "duties": [], "properties": [], "fulfillment_service": "manual", "fulfillment_status": None,
        **extra,
    }


def shipping(title: str, price: str, *, taxes=(), presentment: str | None = None, currencies: dict | None = None) -> dict:
    currencies = currencies or {}
    return {"id": 369256396, "title": title, "code": "INT.TP", "source": "canada_post", "price": price,
            "price_set": bag(price, presentment, **currencies), "discounted_price": price,
            "discounted_price_set": bag(price, presentment, **currencies), "discount_allocations": [],
            "tax_lines": list(taxes)}


def order(line_items: list, *, total: str, total_tax: str, tax_lines: list, shipping_lines=(), total_discounts: str = "0.00",
          currency: str = "USD", presentment_currency: str | None = None, presentment: dict | None = None, **extra) -> dict:
    """A REST order; `presentment` gives the presentment amounts of the totals when the currencies differ."""
    presentment = presentment or {}
    currencies = {"shop_currency": currency, "presentment_currency": presentment_currency or currency}

    def money(key, amount):
        return bag(amount, presentment.get(key), **currencies)

    payload = {
        "id": 450789469, "admin_graphql_api_id": "gid://shopify/Order/450789469", "name": "#1001",
        "order_number": 1001, "number": 1, "email": "bob.norman@mail.example.com",
        "contact_email": "bob.norman@mail.example.com", "phone": "+557734881234",
        "created_at": "2026-11-20T09:55:00-05:00", "updated_at": "2026-11-20T10:00:00-05:00",
        "processed_at": "2026-11-20T09:55:00-05:00", "cancelled_at": None, "cancel_reason": None,
        "currency": currency, "presentment_currency": presentment_currency or currency,
        "financial_status": "paid", "fulfillment_status": None, "test": False, "taxes_included": False,
        "source_name": "web", "location_id": 49202758,
        "customer": {"id": 207119551, "email": "bob.norman@mail.example.com", "first_name": "Bob", "last_name": "Norman",
                     "phone": "+13125551212", "default_address": {"country_code": "CA"}},
        "shipping_address": {"first_name": "Bob", "last_name": "Norman", "name": "Bob Norman", "city": "Ottawa",
                             "country": "Canada", "country_code": "CA", "phone": "555-625-1199"},
        "billing_address": {"name": "Bob Norman", "country_code": "CA", "phone": "555-625-1199"},
        "line_items": line_items, "shipping_lines": list(shipping_lines), "tax_lines": tax_lines,
        "total_price": total, "total_price_set": money("total_price", total),
        "current_total_price": total, "current_total_price_set": money("total_price", total),
        "total_tax": total_tax, "total_tax_set": money("total_tax", total_tax),
        "current_total_tax": total_tax, "current_total_tax_set": money("total_tax", total_tax),
        "total_discounts": total_discounts, "total_discounts_set": money("total_discounts", total_discounts),
        "total_tip_received": "0.00", "current_total_duties_set": None, "original_total_duties_set": None,
        "refunds": [], "discount_applications": [],
    }
    payload.update(extra)
    return payload


def documented_order(**changes) -> dict:
    """Shopify's documented example, made consistent: one iPod at 199.99 less 5.00, 13 % HST, 4.00 shipping."""
    payload = order(
        [line(669751112, "IPOD-342-N", "IPod Nano - Pink", "199.99", 1, discount="5.00",
              taxes=[tax("HST", 0.13, "25.35")])],
        shipping_lines=[shipping("Small Packet International Air", "4.00")],
        total="224.34", total_tax="25.35", total_discounts="5.00", tax_lines=[tax("HST", 0.13, "25.35")])
    payload.update(changes)
    return payload


def assert_adds_up(order: StorefrontOrder) -> None:
    """What the ERP builder checks: the parts give Shopify's total to the minor unit, and the tax per
    rate is Shopify's order-level tax."""
    parts = order.all_lines
    net = sum((p.unit_price * p.quantity - p.discount for p in parts), Decimal(0)) - order.order_discount
    if order.extra["order_level_tax_only"]:
        taxes = list(order.tax_summary)
    else:
        taxes = [t for p in parts for t in p.tax_lines]
    tax_total = sum((t.amount for t in taxes), Decimal(0))
    assert net + (Decimal(0) if order.taxes_included else tax_total) == order.total
    if order.tax_summary is not None:
        per_rate: dict[tuple, Decimal] = {}
        for t in taxes:
            per_rate[(t.title, t.rate)] = per_rate.get((t.title, t.rate), Decimal(0)) + t.amount
        assert per_rate == {(t.title, t.rate): t.amount for t in order.tax_summary}
    if order.total_tax is not None:
        assert tax_total == order.total_tax


# --- the documented order ---------------------------------------------------------------------------


def test_the_documented_order_translates_to_its_sale():
    order = translate(documented_order())

    assert (order.storefront_order_id, order.order_number, order.currency, order.payment_state) == (
        "450789469", "#1001", "USD", "paid")
    (ipod,) = order.lines
    assert ipod == OrderLine(sku="IPOD-342-N", name="IPod Nano - Pink", quantity=1, unit_price=Decimal("199.99"),
                             discount=Decimal("5.00"), tax_lines=(TaxLine(Decimal("0.13"), Decimal("25.35"), "HST"),),
                             line_id="669751112", kind="item", product_id="7513594", variant_id="4264112")
    assert [(s.kind, s.name, s.unit_price) for s in order.shipping] == [
        ("shipping", "Small Packet International Air", Decimal("4.00"))]
    assert order.total == Decimal("224.34") and order.total_tax == Decimal("25.35")
    assert order.tax_summary == (TaxLine(Decimal("0.13"), Decimal("25.35"), "HST"),)
    assert (order.customer_name, order.customer_email, order.customer_phone, order.country) == (
        "Bob Norman", "bob.norman@mail.example.com", "+13125551212", "CA")
    assert (order.is_test, order.taxes_included, order.charges, order.order_discount) == (False, False, (), Decimal(0))
    assert (order.presentment_currency, order.presentment_total) == ("USD", Decimal("224.34"))
    assert order.location == "gid://shopify/Location/49202758"
    assert order.extra["order_level_tax_only"] is False and order.extra["total_refunded"] == ""
    assert_adds_up(order)


# --- charges: duties and tips -------------------------------------------------------------------------


def test_duties_on_lines_become_duty_charges_with_their_own_tax():
    nano = line(669751112, "IPOD-342-N", "IPod Nano - Pink", "199.99", 1, taxes=[tax("HST", 0.13, "26.00")])
    nano["duties"] = [{  # the webhook shape: the amount in price_set
        "id": "2", "harmonized_system_code": "6109.10", "country_code_of_origin": "CN",
        "price_set": bag("12.50"), "tax_lines": [tax("VAT", 0.1, "1.25")], "admin_graphql_api_id": "gid://shopify/Duty/2"}]
    touch = line(669751113, "IPOD-TOUCH", "IPod Touch - Blue", "50.00", 2, variant_id=4264113,
                 taxes=[tax("HST", 0.13, "13.00")])
    touch["duties"] = [{  # the shape of Shopify's REST reference: the money bags on the duty itself
        "id": "3", "harmonized_system_code": "520300", "country_code_of_origin": "CA",
        "shop_money": {"amount": "6.00", "currency_code": "USD"},
        "presentment_money": {"amount": "6.00", "currency_code": "USD"}, "tax_lines": []}]
    payload = order([nano, touch], shipping_lines=[shipping("Standard", "4.00")],
                    total="362.74", total_tax="40.25",
                    tax_lines=[tax("HST", 0.13, "39.00"), tax("VAT", 0.1, "1.25")],
                    current_total_duties_set=bag("18.50"), original_total_duties_set=bag("18.50"))

    order_ = translate(payload)

    assert [(c.kind, c.name, c.quantity, c.unit_price, c.line_id) for c in order_.charges] == [
        ("duty", "Duties (HS 6109.10, origin CN)", 1, Decimal("12.50"), "2"),
        ("duty", "Duties (HS 520300, origin CA)", 1, Decimal("6.00"), "3"),
    ]
    assert order_.charges[0].tax_lines == (TaxLine(Decimal("0.1"), Decimal("1.25"), "VAT"),)
    assert all(c.sku == "" for c in order_.charges) and len(order_.lines) == 2
    assert_adds_up(order_)


def test_duties_stated_for_the_order_only_become_one_charge():
    payload = documented_order(total_price="244.34", total_price_set=bag("244.34"), original_total_duties_set=bag("20.00"),
                               current_total_duties_set=bag("20.00"))
    order_ = translate(payload)
    assert [(c.kind, c.name, c.unit_price, c.tax_lines) for c in order_.charges] == [("duty", "Duties", Decimal("20.00"), ())]
    assert_adds_up(order_)


def test_a_tip_line_item_is_the_tip_charge_and_is_not_counted_twice():
    tip_line = line(669751199, None, "Tip", "10.00", 1, product_id=None, variant_id=None, requires_shipping=False)
    base = documented_order()
    payload = order([*base["line_items"], tip_line], shipping_lines=base["shipping_lines"], total="234.34",
                    total_tax="25.35", total_discounts="5.00", tax_lines=base["tax_lines"], total_tip_received="10.00")

    order_ = translate(payload)

    assert [line.sku for line in order_.lines] == ["IPOD-342-N"]
    assert [(c.kind, c.name, c.unit_price, c.line_id) for c in order_.charges] == [("tip", "Tip", Decimal("10.00"), "669751199")]
    assert_adds_up(order_)


def test_a_tip_line_with_another_title_is_found_by_its_amount():
    tip_line = line(669751199, None, "Pourboire", "10.00", 1, product_id=None, variant_id=None, requires_shipping=False)
    base = documented_order()
    payload = order([*base["line_items"], tip_line], shipping_lines=base["shipping_lines"], total="234.34",
                    total_tax="25.35", total_discounts="5.00", tax_lines=base["tax_lines"], total_tip_received="10.00")
    order_ = translate(payload)
    assert [(c.kind, c.name) for c in order_.charges] == [("tip", "Pourboire")] and len(order_.lines) == 1
    assert_adds_up(order_)


def test_a_tip_known_only_from_total_tip_received_becomes_a_tip_charge():
    payload = documented_order(total_price="229.34", total_price_set=bag("229.34"), total_tip_received="5.00")
    order_ = translate(payload)
    assert order_.charges == (OrderLine(sku="", name="Tip", quantity=1, unit_price=Decimal("5.00"), kind="tip"),)
    assert_adds_up(order_)


def test_a_custom_line_called_tip_without_a_tip_received_stays_a_custom_line():
    payload = documented_order()
    payload["line_items"].append(line(669751199, None, "Tip", "0.00", 1, product_id=None, variant_id=None))
    order_ = translate(payload)
    assert [line.kind for line in order_.lines] == ["item", "custom"] and order_.charges == ()


# --- tax ----------------------------------------------------------------------------------------------


def test_a_tax_inclusive_shop_keeps_the_tax_inside_the_prices():
    payload = order(
        [line(1, "TEE-BLK-M", "Classic tee - Black / M", "24.00", 1, taxes=[tax("VAT", 0.2, "4.00", shop_currency="GBP")],
              currencies={"shop_currency": "GBP"})],
        shipping_lines=[shipping("Royal Mail", "4.95", taxes=[tax("VAT", 0.2, "0.83", shop_currency="GBP")],
                                 currencies={"shop_currency": "GBP"})],
        currency="GBP", total="28.95", total_tax="4.83", tax_lines=[tax("VAT", 0.2, "4.83", shop_currency="GBP")],
        taxes_included=True)

    order_ = translate(payload)

    assert order_.taxes_included is True and order_.extra["taxes_included"] is True
    assert order_.total == Decimal("28.95") and order_.total_tax == Decimal("4.83")
    assert_adds_up(order_)


def test_tax_stated_only_for_the_order_is_flagged_for_the_builder():
    payload = order(
        [line(1, "IPOD-342-N", "IPod Nano - Pink", "199.00", 2)],  # an import: no tax lines on the line
        total="421.88", total_tax="23.88", tax_lines=[{"title": "State Tax", "rate": 0.06, "price": "23.88"}])

    order_ = translate(payload)

    assert order_.lines[0].tax_lines == ()
    assert order_.tax_summary == (TaxLine(Decimal("0.06"), Decimal("23.88"), "State Tax"),)
    assert order_.extra["order_level_tax_only"] is True
    assert_adds_up(order_)


def test_several_tax_lines_on_one_line_are_all_kept():
    payload = order(
        [line(1, "MAPLE-SYRUP", "Maple syrup - 1 l", "100.00", 2, taxes=[tax("GST", 0.05, "10.00"), tax("PST", 0.07, "14.00")])],
        shipping_lines=[shipping("Canada Post", "10.00", taxes=[tax("GST", 0.05, "0.50")])],
        currency="CAD", total="234.50", total_tax="24.50",
        tax_lines=[tax("GST", 0.05, "10.50"), tax("PST", 0.07, "14.00")])

    order_ = translate(payload)

    assert order_.lines[0].tax_lines == (TaxLine(Decimal("0.05"), Decimal("10.00"), "GST"),
                                         TaxLine(Decimal("0.07"), Decimal("14.00"), "PST"))
    assert order_.tax_summary == (TaxLine(Decimal("0.05"), Decimal("10.50"), "GST"),
                                  TaxLine(Decimal("0.07"), Decimal("14.00"), "PST"))
    assert_adds_up(order_)


def test_a_rate_like_7_5_percent_stays_exact():
    payload = order(
        [line(1, "IPOD-342-N", "IPod Nano - Pink", "199.99", 1, taxes=[tax("Sales Tax", 0.075, "15.00")])],
        total="214.99", total_tax="15.00", tax_lines=[tax("Sales Tax", 0.075, "15.00")])
    payload = json.loads(json.dumps(payload))  # the rate as a JSON number, the way webhooks carry it
    order_ = translate(payload)
    (rate,) = {t.rate for t in order_.lines[0].tax_lines}
    assert rate == Decimal("0.075") and str(rate) == "0.075" and order_.tax_summary[0].rate == Decimal("0.075")
    assert_adds_up(order_)


# --- currencies ---------------------------------------------------------------------------------------


def _order_in_two_currencies() -> dict:
    """A USD shop selling to a buyer paying in EUR."""
    eur = {"shop_currency": "USD", "presentment_currency": "EUR"}
    return order(
        [line(1, "IPOD-342-N", "IPod Nano - Pink", "100.00", 1, presentment="92.00", discount="10.00",
              discount_presentment="9.20", currencies=eur, taxes=[tax("VAT", 0.1, "9.00", "8.28", **eur)])],
        shipping_lines=[shipping("DHL", "5.00", presentment="4.60", currencies=eur,
                                 taxes=[tax("VAT", 0.1, "0.50", "0.46", **eur)])],
        currency="USD", presentment_currency="EUR", total="104.50", total_tax="9.50", total_discounts="10.00",
        tax_lines=[tax("VAT", 0.1, "9.50", "8.74", **eur)],
        presentment={"total_price": "96.14", "total_tax": "8.74", "total_discounts": "9.20"})


def test_amounts_are_in_shop_money_by_default_and_the_presentment_total_is_kept():
    order_ = translate(_order_in_two_currencies())
    assert (order_.currency, order_.total, order_.lines[0].unit_price) == ("USD", Decimal("104.50"), Decimal("100.00"))
    assert (order_.presentment_currency, order_.presentment_total) == ("EUR", Decimal("96.14"))
    assert order_.extra["shop_currency"] == "USD"
    assert_adds_up(order_)


def test_presentment_basis_takes_every_amount_in_the_buyers_currency():
    order_ = translate(_order_in_two_currencies(), currency_basis="presentment")
    (nano,) = order_.lines
    assert (order_.currency, order_.total, nano.unit_price, nano.discount) == (
        "EUR", Decimal("96.14"), Decimal("92.00"), Decimal("9.20"))
    assert order_.shipping[0].unit_price == Decimal("4.60") and order_.total_tax == Decimal("8.74")
    assert (order_.presentment_currency, order_.presentment_total) == ("EUR", Decimal("96.14"))
    assert_adds_up(order_)


def test_presentment_basis_refuses_an_amount_stated_in_shop_money_only():
    payload = _order_in_two_currencies()
    del payload["line_items"][0]["price_set"]
    with pytest.raises(ValueError, match=r"^line_items\[0\]\.price_set\.presentment_money is missing$"):
        translate(payload, currency_basis="presentment")
    assert translate(payload).lines[0].unit_price == Decimal("100.00")  # the plain price is shop money


def test_an_unknown_currency_basis_is_refused():
    with pytest.raises(ValueError, match="currency_basis"):
        translate(documented_order(), currency_basis="euro")


# --- kinds of line ------------------------------------------------------------------------------------


def test_a_gift_card_sold_is_a_gift_card_line():
    card = line(2, "", "Gift card - $50", "50.00", 1, product_id=7513600, variant_id=4264200, gift_card=True,
                requires_shipping=False)
    payload = order([card], total="50.00", total_tax="0.00", tax_lines=[])
    order_ = translate(payload)
    assert [(x.kind, x.sku, x.unit_price, x.product_id, x.variant_id) for x in order_.lines] == [
        ("gift_card", "", Decimal("50.00"), "7513600", "4264200")]
    assert order_.tax_summary == ()
    assert_adds_up(order_)


@pytest.mark.parametrize("sku", ["", None, "  "])
def test_a_variant_with_an_empty_sku_is_an_item_naming_its_product_and_variant(sku):
    payload = documented_order()
    payload["line_items"][0]["sku"] = sku
    (nano,) = translate(payload).lines
    assert (nano.kind, nano.sku, nano.product_id, nano.variant_id) == ("item", "", "7513594", "4264112")


def test_a_line_with_neither_variant_nor_product_is_a_custom_line():
    payload = documented_order()
    payload["line_items"][0].update(sku=None, product_id=None, variant_id=None, name="Engraving")
    (engraving,) = translate(payload).lines
    assert (engraving.kind, engraving.sku, engraving.product_id, engraving.variant_id) == ("custom", "", "", "")


def test_a_zero_priced_line_is_kept():
    free = line(3, "STICKER", "Sticker - free", "0.00", 1, variant_id=4264300, taxes=[tax("HST", 0.13, "0.00")])
    base = documented_order()
    payload = order([*base["line_items"], free], shipping_lines=base["shipping_lines"], total="224.34",
                    total_tax="25.35", total_discounts="5.00",
                    tax_lines=[tax("HST", 0.13, "25.35")])
    order_ = translate(payload)
    assert [(x.sku, x.quantity, x.unit_price) for x in order_.lines][1] == ("STICKER", 1, Decimal("0.00"))
    assert_adds_up(order_)


def test_non_ascii_names_come_through_unchanged():
    payload = documented_order()
    payload["line_items"][0]["name"] = "Tシャツ – 黒 / M · Crème brûlée 🍮"
    payload["customer"].update(first_name="Zoë", last_name="Müller-Łukasiewicz")
    payload["shipping_lines"][0]["title"] = "Livraison Express à domicile"
    order_ = translate(json.loads(json.dumps(payload, ensure_ascii=False)))
    assert order_.lines[0].name == "Tシャツ – 黒 / M · Crème brûlée 🍮"
    assert order_.customer_name == "Zoë Müller-Łukasiewicz" and order_.shipping[0].name == "Livraison Express à domicile"


# --- the order as Shopify sends it later --------------------------------------------------------------


def test_an_order_first_seen_partially_refunded_posts_its_sale():
    nano = line(10, "IPOD-342-N", "IPod Nano - Pink", "100.00", 3, taxes=[tax("HST", 0.13, "39.00")])
    nano["current_quantity"] = 1  # two refunded
    case = line(11, "CASE-1", "Case - Black", "15.00", 1, variant_id=4264111, taxes=[tax("HST", 0.13, "1.95")])
    case["current_quantity"] = 0  # removed by an order edit before payment: no refund, not in the sale
    payload = order([nano, case], shipping_lines=[shipping("Standard", "5.00")], total="344.00", total_tax="39.00",
                    tax_lines=[tax("HST", 0.13, "39.00")], financial_status="partially_refunded",
                    current_total_price="118.00", current_total_price_set=bag("118.00"))
    payload["refunds"] = [{
        "id": 18423447608, "order_id": 450789469, "created_at": "2026-11-21T09:35:37-05:00",
        "refund_line_items": [{"id": 1, "line_item_id": 10, "quantity": 2, "restock_type": "return",
                               "subtotal": 200.0, "total_tax": 26.0}],
        "transactions": [{"id": 5, "kind": "refund", "status": "success", "amount": "226.00", "currency": "USD"}],
    }]

    order_ = translate(payload)

    assert order_.payment_state == "partially_refunded"
    assert [(x.sku, x.quantity) for x in order_.lines] == [("IPOD-342-N", 3)]
    assert order_.total == Decimal("344.00") and order_.extra["current_total_price"] == "118.00"
    assert order_.extra["total_refunded"] == "226.00"
    assert_adds_up(order_)


def test_a_line_without_current_quantity_uses_its_quantity():
    payload = documented_order()
    del payload["line_items"][0]["current_quantity"]
    assert translate(payload).lines[0].quantity == 1


def test_the_test_flag_is_read():
    assert translate(documented_order(test=True)).is_test is True
    assert translate(documented_order()).is_test is False


def test_a_guest_order_has_no_customer_but_keeps_the_addresses_name_and_phone():
    payload = documented_order(customer=None, email="", contact_email=None, phone=None)
    order_ = translate(payload)
    assert (order_.customer_storefront_id, order_.customer_email, order_.customer_name, order_.customer_phone) == (
        "", "", "Bob Norman", "555-625-1199")


def test_ids_beyond_2_to_the_53_come_through_exactly():
    payload = documented_order()
    big = 2 ** 53 + 1
    payload["id"], payload["line_items"][0]["id"], payload["customer"]["id"] = big, big + 2, big + 4
    payload["line_items"][0]["product_id"], payload["line_items"][0]["variant_id"] = big + 6, big + 8
    order_ = translate(json.loads(json.dumps(payload)))
    nano = order_.lines[0]
    assert order_.storefront_order_id == "9007199254740993" and order_.customer_storefront_id == "9007199254740997"
    assert (nano.line_id, nano.product_id, nano.variant_id) == ("9007199254740995", "9007199254740999", "9007199254741001")


def test_a_float_id_that_lost_digits_is_refused():
    with pytest.raises(ValueError, match=r"^order\.id 9007199254740994\.0 is not an exact id$"):
        translate(documented_order(id=float(2 ** 53 + 2)))


# --- malformed input ----------------------------------------------------------------------------------


def _set(path: str, value):
    """A breakage: set `a.b[0].c` in the payload."""
    def apply(payload):
        *parents, last = path.replace("]", "").replace("[", ".").split(".")
        target = payload
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is _DELETE:
            del target[int(last) if isinstance(target, list) else last]
        else:
            target[int(last) if isinstance(target, list) else last] = value
    return apply


_DELETE = object()


@pytest.mark.parametrize("breakage, message", [
    (_set("line_items", None), "order.line_items is missing or not a list"),
    (_set("line_items", "none"), "order.line_items is missing or not a list"),
    (_set("line_items.0", "IPOD"), "line_items[0] is not an object"),
    (_set("shipping_lines", {"title": "x"}), "order.shipping_lines is not a list"),
    (_set("line_items.0.tax_lines", {"rate": 0.13}), "line_items[0].tax_lines is not a list"),
    (_set("line_items.0.tax_lines.0", "HST"), "line_items[0].tax_lines[0] is not an object"),
    (_set("line_items.0.price_set", []), "line_items[0].price_set is not an object"),
    (_set("line_items.0.price_set.shop_money", "199.99"), "line_items[0].price_set.shop_money is not an object"),
    (_set("total_price_set.shop_money.amount", {"value": 1}),
     "order.total_price_set.shop_money.amount {'value': 1} is not a decimal amount"),
    (_set("line_items.0.quantity", "1"), "line_items[0].quantity '1' is not a whole number"),
    (_set("line_items.0.quantity", 1.0), "line_items[0].quantity 1.0 is not a whole number"),
    (_set("line_items.0.quantity", _DELETE), "line_items[0].quantity is missing"),
    (_set("line_items.0.current_quantity", -1), "line_items[0].current_quantity -1 is not a whole number"),
    (_set("updated_at", "2026-11-20T10:00:00"), "order.updated_at '2026-11-20T10:00:00' has no time zone"),
    (_set("created_at", 1763650800), "order.created_at 1763650800 is not an ISO 8601 timestamp"),
    (_set("updated_at", "yesterday"), "order.updated_at 'yesterday' is not an ISO 8601 timestamp"),
    (_set("line_items.0.price_set.shop_money.amount", "1e400"),
     "line_items[0].price_set.shop_money.amount '1e400' is not a decimal amount"),
    (_set("line_items.0.price_set.shop_money.amount", "NaN"),
     "line_items[0].price_set.shop_money.amount 'NaN' is not a decimal amount"),
    (_set("total_tax_set.shop_money.amount", float("inf")), "order.total_tax_set.shop_money.amount inf is not a decimal amount"),
    (_set("line_items.0.discount_allocations.0.amount_set.shop_money.amount", "12,00"),
     "line_items[0].discount_allocations[0].amount_set.shop_money.amount '12,00' is not a decimal amount"),
    (_set("line_items.0.tax_lines.0.rate", _DELETE), "line_items[0].tax_lines[0].rate is missing"),
    (_set("line_items.0.tax_lines.0.rate", "13%"), "line_items[0].tax_lines[0].rate '13%' is not a decimal amount"),
    (_set("line_items.0.duties", "none"), "line_items[0].duties is not a list"),
    (_set("line_items.0.duties", [{"id": "2", "tax_lines": []}]), "line_items[0].duties[0].price_set is missing"),
    (_set("line_items.0.sku", {"code": "IPOD"}), "line_items[0].sku {'code': 'IPOD'} is not a string"),
    (_set("line_items.0.gift_card", "no"), "line_items[0].gift_card 'no' is not true or false"),
    (_set("customer", ["Bob"]), "order.customer is not an object"),
    (_set("shipping_address", "Ottawa"), "order.shipping_address is not an object"),
    (_set("refunds", {"id": 1}), "order.refunds is not a list"),
    (_set("refunds", [{"refund_line_items": [{"line_item_id": 669751112, "quantity": "1"}]}]),
     "order.refunds[0].refund_line_items[0].quantity '1' is not a whole number"),
    (_set("refunds", [{"refund_line_items": [{"quantity": 1}]}]),
     "order.refunds[0].refund_line_items[0].line_item.id is missing"),
    (_set("test", "yes"), "order.test 'yes' is not true or false"),
    (_set("taxes_included", "false"), "order.taxes_included 'false' is not true or false"),
    (_set("tax_lines", "HST"), "order.tax_lines is not a list"),
    (_set("id", _DELETE), "order.id is missing"),
    (_set("id", {"id": 1}), "order.id {'id': 1} is not an exact id"),
    (_set("currency", _DELETE), "order.currency is missing"),
    (_set("currency", "US Dollar"), "order.currency 'US Dollar' is not a currency code"),
    (_set("total_tip_received", [5]), "order.total_tip_received [5] is not a decimal amount"),
])
def test_malformed_input_names_the_field(breakage, message):
    payload = documented_order()
    breakage(payload)
    with pytest.raises(ValueError) as caught:
        translate(payload)
    assert str(caught.value) == message


def test_a_payload_that_is_not_an_object_is_refused():
    with pytest.raises(ValueError, match="JSON object"):
        translate([documented_order()])


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _rich_order() -> dict:
    """Every part the translation reads: duties, a tip line, a refund, two currencies."""
    payload = _order_in_two_currencies()
    payload["line_items"][0]["duties"] = [{"id": "2", "harmonized_system_code": "6109.10", "country_code_of_origin": "CN",
                                           "price_set": bag("1.00"), "tax_lines": [tax("VAT", 0.1, "0.10")]}]
    payload["line_items"].append(line(9, None, "Tip", "1.00", 1, product_id=None, variant_id=None))
    payload["total_tip_received"] = "1.00"
    payload["refunds"] = [{"refund_line_items": [{"line_item_id": 1, "quantity": 0}],
                           "transactions": [{"kind": "refund", "status": "success", "amount": "1.00", "currency": "USD"}]}]
    return payload


@pytest.mark.parametrize("wrong", [None, "x", 1.5, True, [], {}, -1, "1e400"], ids=repr)
@pytest.mark.parametrize("basis", ["shop", "presentment"])
def test_any_wrong_type_anywhere_is_a_value_error_or_harmless(wrong, basis):
    """Whatever one field is replaced by, the translation answers or raises ValueError: never
    KeyError, TypeError or AttributeError."""
    original = _rich_order()
    for path in list(_paths(original))[1:]:
        payload = copy.deepcopy(original)
        target = payload
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = wrong
        try:
            translate(payload, currency_basis=basis)
        except ValueError:
            pass
        except Exception as exc:  # pragma: no cover - the failure message names the path
            pytest.fail(f"{'.'.join(map(str, path))} = {wrong!r}: {type(exc).__name__}: {exc}")


# --- the sandbox's orders add up like Shopify's ------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"line_items": [{"sku": "TEE-BLK-S", "quantity": 2, "discount": "2.00"},
                    {"sku": "MUG-001", "quantity": 3, "tax_rate": "0.05"},
                    {"title": "Gift wrap", "price": "3.00", "quantity": 1}],
     "shipping_lines": [{"title": "Express", "price": "7.95", "discount": "1.00"}]},
    {"line_items": [{"sku": "HOODIE-GRY-L", "quantity": 1, "duty": {"amount": "4.10", "hs_code": "6110.20", "origin": "PT"}}],
     "tip": "3.00"},
    {"line_items": [{"sku": "TEE-BLK-M", "quantity": 3, "price": "24.00"}], "taxes_included": True},
], ids=["discounts-and-custom-line", "duty-and-tip", "taxes-included"])
def test_sandbox_orders_carry_shopifys_consistent_totals(sandbox, fields):
    payload = sandbox.shopify.create_order(financial_status="paid", **fields)

    order_ = translate(payload)

    assert payload["total_price_set"]["shop_money"]["amount"] == payload["current_total_price_set"]["shop_money"]["amount"]
    assert payload["test"] is False and all("current_quantity" in li for li in payload["line_items"])
    assert order_.total == Decimal(payload["total_price"]) and order_.total_tax == Decimal(payload["total_tax"])
    assert_adds_up(order_)
    if "tip" in fields:
        assert [(c.kind, c.unit_price) for c in order_.charges] == [("duty", Decimal("4.10")), ("tip", Decimal("3.00"))]
