"""In real Chromium: a refunded order's page shows the refund and its credit memo (number and
amount) in the order's timeline, after the sale it credits."""
import pytest
from django.test import Client
from playwright.sync_api import expect

from integrations.flows.orders import erp_caches_clear
from integrations.models import OrderLink, Refund
from tests.factories import DepotMappingFactory, TaxCodeMappingFactory
from tests.payloads import post_shopify_webhook, shopify_order, shopify_refund


@pytest.fixture
def refunded_order(transactional_db, sandbox, shopify_connection, monkeypatch, settings):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.INVENTORY_PUSH_ON_ORDER = False
    erp_caches_clear()
    for code in ("TEE-BLK-M", "SHIPPING", "CUSTOM", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    DepotMappingFactory(connection=shopify_connection, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0.2", country="GB", erp_tax_code="T1")
    paid = shopify_order(number=3101, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00"}])
    assert post_shopify_webhook(Client(), paid).status_code == 200
    refund = shopify_refund(paid, lines=[{"index": 0, "quantity": 1}])
    assert post_shopify_webhook(Client(), refund, topic="refunds/create").status_code == 200
    yield OrderLink.objects.get(), Refund.objects.get()
    erp_caches_clear()


def test_the_order_page_shows_the_refund_and_its_credit_memo_in_the_timeline(page, sign_in, finance_user,
                                                                              refunded_order):
    order, refund = refunded_order
    assert refund.credit_memo_id
    sign_in(finance_user)
    page.goto(f"/orders/{order.pk}/")
    timeline = page.locator("ul.timeline")
    expect(timeline).to_contain_text("Refund received")
    memo = timeline.locator("li", has_text="Credit memo posted")
    expect(memo).to_contain_text(refund.credit_memo_id)
    expect(memo).to_contain_text("24.00 GBP")
    entries = timeline.locator("li").all_inner_texts()
    posted = next(i for i, text in enumerate(entries) if "Posted ·" in text)
    credited = next(i for i, text in enumerate(entries) if "Credit memo posted" in text)
    assert posted < credited
