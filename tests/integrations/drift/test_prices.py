"""The prices check over real HTTP: ERP master prices (REST ERP sandbox items' `prices`) against Shopify
variant and compare-at prices and commercetools prices scoped by customer group, channel and tier."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.models import DriftRun

pytestmark = pytest.mark.django_db


def _cents(amount, currency="EUR", **extra):
    return {"value": {"type": "centPrecision", "currencyCode": currency, "centAmount": amount, "fractionDigits": 2},
            **extra}


def _messages():
    return sorted(ExceptionRecord.objects.filter(type_code="drift_price_mismatch", status="open")
                  .values_list("message", flat=True))


def test_shopify_variant_and_compare_at_prices_against_the_erp(sandbox, shopify_connection):
    sandbox.shopify.reset(seed=False)
    sandbox.erp.add_item("TEE-1", prices=[{"currency": "GBP", "amount": "19.99", "type": "list"},
                                          {"currency": "GBP", "amount": "25.00", "type": "compare_at"},
                                          {"currency": "EUR", "amount": "22.99", "type": "list"}])
    sandbox.erp.add_item("MUG-1", prices=[{"currency": "GBP", "amount": "9.50", "type": "list"}])
    sandbox.shopify.add_product("Tee", [{"sku": "TEE-1", "price": "19.99", "compare_at_price": "24.00"}])
    sandbox.shopify.add_product("Mug", [{"sku": "MUG-1", "price": "8.50"}])

    run = check_run("prices")
    assert (run.status, run.found) == (DriftRun.Status.FINDINGS, 2), run.error
    assert _messages() == [
        "MUG-1 on Shopify store (GBP): the storefront sells at 8.50 GBP, the ERP's master price for item MUG-1 is 9.50 GBP.",
        "TEE-1 on Shopify store (GBP, compare_at): the storefront sells at 24.00 GBP, the ERP's master price for item "
        "TEE-1 is 25.00 GBP.",
    ]
    assert ExceptionRecord.objects.filter(type_code="drift_price_mismatch").first().team == "ecommerce"
    assert check_run("prices").raised == 0

    sandbox.shopify.variant_by_sku("MUG-1")["price"] = "9.50"
    sandbox.shopify.variant_by_sku("TEE-1")["compare_at_price"] = "25.00"
    fixed = check_run("prices")
    assert (fixed.status, fixed.resolved) == (DriftRun.Status.OK, 2)


def test_commercetools_prices_by_customer_group_channel_and_tier(sandbox, ct_connection):
    ct = sandbox.commercetools
    web = ct.create_channel(key="web", roles=("ProductDistribution",))
    sandbox.erp.add_item("TEE-1", prices=[
        {"currency": "EUR", "amount": "22.99", "type": "list"},
        {"currency": "EUR", "amount": "20.00", "type": "list", "customer_group": "vip"},
        {"currency": "EUR", "amount": "21.50", "type": "list", "channel": "web"},
        {"currency": "EUR", "amount": "19.00", "type": "list", "min_quantity": 10},
    ])
    product = ct.add_product("Tee", ["TEE-1"])
    stored = ct.products[product["id"]]["masterVariant"]
    stored["prices"] = [
        _cents(2299, tiers=[{"minimumQuantity": 10, "value": _cents(1850)["value"]}]),  # tier differs
        _cents(2000, customerGroup={"typeId": "customer-group", "id": "g-1", "obj": {"key": "vip"}}),
        # no channel price for "web"
    ]

    run = check_run("prices")
    assert run.found == 2, run.error
    assert _messages() == [
        "TEE-1 on commercetools shop (EUR, channel web): the storefront sells at no price, the ERP's master price "
        "for item TEE-1 is 21.50 EUR.",
        "TEE-1 on commercetools shop (EUR, from 10 units): the storefront sells at 18.50 EUR, the ERP's master "
        "price for item TEE-1 is 19.00 EUR.",
    ]

    stored["prices"][0]["tiers"][0]["value"]["centAmount"] = 1900
    stored["prices"].append(_cents(2150, channel={"typeId": "channel", "id": web["id"]}))
    assert check_run("prices").status == DriftRun.Status.OK


def test_the_demo_price_lists_drift_in_exactly_the_one_place_the_demo_means(sandbox, shopify_connection, ct_connection):
    from integrations.demo import demo_connections_seed

    for app in (sandbox.erp, sandbox.shopify, sandbox.commercetools, sandbox.server.apps["/shopify-eu"]):
        app.seed_demo()
    demo_connections_seed(sandbox.server.url)
    run = check_run("prices")
    assert run.found == 1, _messages()
    assert _messages() == ["HOODIE-GRY-L on Shopify EU store (EUR): the storefront sells at 44.00 EUR, the ERP's "
                           "master price for item HOODIE-GRY-L is 49.99 EUR."]


def test_country_scoped_and_not_yet_valid_prices_are_compared_only_where_they_apply(sandbox, shopify_connection,
                                                                                    ct_connection):
    sandbox.shopify.reset(seed=False)
    sandbox.erp.add_item("SOCK-1", prices=[
        {"currency": "GBP", "amount": "7.50", "type": "list"},
        {"currency": "GBP", "amount": "6.99", "type": "list", "country": "GB"},  # a promotion for one country
        {"currency": "GBP", "amount": "5.00", "type": "list", "valid_from": "2099-01-01T00:00:00Z"},  # not yet
        {"currency": "EUR", "amount": "8.50", "type": "list"},
        {"currency": "EUR", "amount": "7.99", "type": "list", "country": "DE",
         "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"},
    ])
    sandbox.shopify.add_product("Socks", [{"sku": "SOCK-1", "price": "7.50"}])
    product = sandbox.commercetools.add_product("Socks", ["SOCK-1"])
    stored = sandbox.commercetools.products[product["id"]]["masterVariant"]
    stored["prices"] = [_cents(750, "GBP"), _cents(699, "GBP", country="GB"), _cents(850), _cents(750, country="DE")]

    run = check_run("prices")
    # Shopify's one base price is the unscoped GBP one (7.50): no gap. commercetools' DE price is 7.50, not 7.99.
    assert _messages() == ["SOCK-1 on commercetools shop (EUR, country DE): the storefront sells at 7.50 EUR, the "
                           "ERP's master price for item SOCK-1 is 7.99 EUR."], run.error

    stored["prices"][3]["value"]["centAmount"] = 799
    assert check_run("prices").status == DriftRun.Status.OK
