import pytest

from integrations.flows.orders import erp_caches_clear
from tests.factories import DepotMappingFactory, TaxCodeMappingFactory

ERP_ITEMS = ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-001", "HOODIE-GRY-L", "CUSTOM", "SHIPPING", "DISCOUNT",
             "DUTIES", "TIPS", "GIFT-CARD-LIABILITY"]


@pytest.fixture
def q_sync(monkeypatch):
    """Run queued tasks inline: these tests are about the flow, not the queue (django-q2 reads
    its configuration once, into Conf, so the setting itself cannot be overridden per test)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def erp_ready(sandbox):
    """The sandbox ERP (REST and Prima) with the demo catalogue and depots."""
    erp_caches_clear()
    for erp in (sandbox.erp, sandbox.prima):
        for code in ERP_ITEMS:
            erp.add_item(code)
        erp.add_depot("MAIN")
        erp.add_depot("NORTH")
    yield sandbox
    erp_caches_clear()


@pytest.fixture
def order_setup(erp_ready, shopify_connection, ct_connection, q_sync, django_capture_on_commit_callbacks, settings):
    """Both storefronts mapped to depot MAIN, 20 % / 0 % VAT mapped for GB and 10 % for JP.
    The stock push a sale triggers is the inventory tests' business: off here, on in its own test."""
    settings.INVENTORY_PUSH_ON_ORDER = False
    # One sales order per request, within the task that posts it (test_order_batches.py batches).
    settings.ORDERS = {**settings.ORDERS, "batch_max": 0}
    for conn in (shopify_connection, ct_connection):
        DepotMappingFactory(connection=conn, country="", depot_code="MAIN")
        TaxCodeMappingFactory(connection=conn, rate="0.2", country="GB", erp_tax_code="T1")
        TaxCodeMappingFactory(connection=conn, rate="0", country="GB", erp_tax_code="T0")
        TaxCodeMappingFactory(connection=conn, rate="0.1", country="JP", erp_tax_code="JP10")
        TaxCodeMappingFactory(connection=conn, rate="0.19", country="DE", erp_tax_code="DE19")
    return erp_ready
