"""In real Chromium: an order's page shows its ERP dispatch in the timeline, with the dispatched lines,
the carrier Shopify was told, a working tracking link and when the customer was notified."""
import json

import pytest
from django.test import Client
from playwright.sync_api import expect

from integrations.flows.fulfilment import dispatches_poll
from integrations.flows.orders import erp_caches_clear
from integrations.models import OrderLink
from mappings.models import CarrierMapping
from tests.factories import DepotMappingFactory, TaxCodeMappingFactory
from tests.payloads import post_shopify_webhook


@pytest.fixture
def dispatched_order(transactional_db, sandbox, shopify_connection, monkeypatch, settings):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    settings.INVENTORY_PUSH_ON_ORDER = False
    erp_caches_clear()
    for code in ("TEE-BLK-M", "MUG-001", "SHIPPING"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    DepotMappingFactory(connection=shopify_connection, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0.2", country="GB", erp_tax_code="T1")
    CarrierMapping.objects.create(connection=shopify_connection, erp_carrier="RM48", tracking_company="Royal Mail")
    payload = sandbox.shopify.create_order(deliver="none", financial_status="paid", email="ada@example.com",
                                           line_items=[{"sku": "TEE-BLK-M", "quantity": 2}, {"sku": "MUG-001", "quantity": 1}])
    assert post_shopify_webhook(Client(), json.loads(json.dumps(payload))).status_code == 200
    order = OrderLink.objects.get()
    assert order.state == OrderLink.State.POSTED, order.last_error
    sandbox.erp.dispatch_order(order.erp_order_id, lines=[{"item_code": "TEE-BLK-M", "quantity": 2}], carrier="RM48",
                               tracking_number="RM123456789GB",
                               tracking_url="https://www.royalmail.com/track-your-item#/tracking-results/RM123456789GB")
    dispatches_poll()
    yield order
    erp_caches_clear()


def test_the_order_page_shows_the_dispatch_with_its_tracking_link(page, sign_in, ops_user, dispatched_order):
    sign_in(ops_user)
    page.goto(f"/orders/{dispatched_order.pk}/")
    expect(page.locator("#order-state")).to_contain_text("Partly dispatched")
    timeline = page.locator("ul.timeline")
    entry = timeline.locator("li", has_text="Dispatched in the ERP")
    expect(entry).to_contain_text("2 × TEE-BLK-M")
    expect(entry).to_contain_text("Royal Mail")
    expect(entry).to_contain_text("notified")
    link = entry.get_by_role("link", name="RM123456789GB")
    expect(link).to_have_attribute("href", "https://www.royalmail.com/track-your-item#/tracking-results/RM123456789GB")
    expect(timeline.locator("li", has_text="Storefront told of the dispatch")).to_contain_text("customer notified")
    # The page filters: the order is listed among the partly dispatched ones.
    page.goto("/orders/")
    page.select_option("select[name=after_posting]", "partly_dispatched")
    expect(page.locator("#order-table")).to_contain_text(dispatched_order.order_number)


def test_one_timeline_holds_the_sale_the_dispatch_and_the_refund_in_order(page, sign_in, finance_user, sandbox,
                                                                           dispatched_order):
    from integrations.models import Refund

    # The mug that was not dispatched is refunded in the shop: refunds/create reaches Ledgerline.
    refund = sandbox.shopify.refund_order(dispatched_order.storefront_order_id, lines=[(1, 1)], deliver="none")
    assert post_shopify_webhook(Client(), json.loads(json.dumps(refund)), topic="refunds/create").status_code == 200
    memo = Refund.objects.get().credit_memo_id
    assert memo
    sign_in(finance_user)
    page.goto(f"/orders/{dispatched_order.pk}/")
    timeline = page.locator("ul.timeline")
    expect(timeline.locator("li", has_text="Credit memo posted")).to_contain_text(memo)
    expect(timeline.locator("li", has_text="Credit memo posted")).to_contain_text(f"{refund['transactions'][0]['amount']} GBP")
    entries = timeline.locator("li").all_inner_texts()
    order_of = [next(i for i, text in enumerate(entries) if marker in text)
                for marker in ("Posted ·", "Dispatched in the ERP", "Credit memo posted")]
    assert order_of == sorted(order_of)
