"""Which mapping row an order uses when several could apply: the most specific one."""
from decimal import Decimal

import pytest

from mappings.lookup import resolve_depot, resolve_tax_code
from tests.factories import DepotMappingFactory, TaxCodeMappingFactory

pytestmark = pytest.mark.django_db


def test_the_most_specific_tax_code_wins_and_a_missing_rate_has_none(shopify_connection):
    rate = Decimal("0.2")
    for category, country, code in (("", "", "ANY20"), ("Reduced", "", "RED20"), ("", "GB", "GB20"),
                                    ("Reduced", "GB", "GBRED20")):
        TaxCodeMappingFactory(connection=shopify_connection, rate=rate, tax_category=category, country=country,
                              erp_tax_code=code)
    resolve = lambda **kw: resolve_tax_code(shopify_connection, rate=rate, **kw)  # noqa: E731
    assert resolve(country="GB", category="Reduced") == "GBRED20"
    assert resolve(country="GB", category="Standard") == "GB20"
    assert resolve(country="FR", category="Reduced") == "RED20"
    assert resolve(country="FR", category="") == "ANY20"
    assert resolve_tax_code(shopify_connection, rate=Decimal("0.05"), country="GB") is None


def test_the_most_specific_active_depot_wins(shopify_connection):
    DepotMappingFactory(connection=shopify_connection, country="", storefront_location="", depot_code="MAIN")
    DepotMappingFactory(connection=shopify_connection, country="DE", storefront_location="", depot_code="BER")
    DepotMappingFactory(connection=shopify_connection, country="", storefront_location="Popup", depot_code="POP")
    DepotMappingFactory(connection=shopify_connection, country="DE", storefront_location="Popup", depot_code="OFF",
                        active=False)
    assert resolve_depot(shopify_connection, country="DE", location="Popup") == "BER"  # the exact row is inactive
    assert resolve_depot(shopify_connection, country="FR", location="Popup") == "POP"
    assert resolve_depot(shopify_connection, country="FR", location="") == "MAIN"
