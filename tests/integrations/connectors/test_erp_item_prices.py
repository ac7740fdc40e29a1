"""RestErpClient.item_prices over HTTP: each active item's selling prices as Decimals with their scope;
an inactive item and a price the ERP cannot state are left out."""
from decimal import Decimal

import pytest

from integrations.connectors.erp import RestErpClient

pytestmark = pytest.mark.django_db


def test_item_prices_reads_every_active_items_prices(sandbox):
    sandbox.erp.add_item("TEE-1", prices=[{"currency": "eur", "amount": "22.99", "type": "list"},
                                          {"currency": "EUR", "amount": "19.00", "min_quantity": 10, "customer_group": "vip"},
                                          {"currency": "EUR", "amount": "n/a"}])
    sandbox.erp.add_item("OLD-1", active=False, prices=[{"currency": "EUR", "amount": "5.00"}])
    sandbox.erp.add_item("BARE-1")
    prices = dict(RestErpClient.from_settings().item_prices())
    assert set(prices) == {"TEE-1", "BARE-1"}
    assert prices["BARE-1"] == []
    assert prices["TEE-1"] == [
        {"currency": "EUR", "amount": Decimal("22.99"), "type": "list", "country": "", "customer_group": "",
         "channel": "", "min_quantity": 1, "valid_from": None, "valid_until": None},
        {"currency": "EUR", "amount": Decimal("19.00"), "type": "list", "country": "", "customer_group": "vip",
         "channel": "", "min_quantity": 10, "valid_from": None, "valid_until": None},
    ]


def test_the_demo_catalogue_has_prices(sandbox):
    sandbox.erp.seed_demo()
    prices = dict(RestErpClient.from_settings().item_prices())
    assert {"currency": "GBP", "amount": Decimal("19.99"), "type": "list", "country": "", "customer_group": "",
            "channel": "", "min_quantity": 1, "valid_from": None, "valid_until": None} in prices["TEE-BLK-M"]
