"""In real Chromium: an order that does not add up is in finance's inbox, its page shows the
storefront and the ERP document side by side, and Back returns to the inbox; on a phone too."""
import pytest
from django.test import Client
from playwright.sync_api import expect

from exceptions_queue.models import ExceptionRecord
from integrations.flows.orders import erp_caches_clear
from tests.factories import DepotMappingFactory, TaxCodeMappingFactory
from tests.payloads import post_shopify_webhook, shopify_order


@pytest.fixture
def mismatched_order(transactional_db, sandbox, shopify_connection, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    erp_caches_clear()
    for code in ("TEE-BLK-M", "SHIPPING", "CUSTOM", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    DepotMappingFactory(connection=shopify_connection, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0.2", country="GB", erp_tax_code="T1")
    payload = shopify_order(number=3001, total_price="50.00",
                            lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00"}])
    assert post_shopify_webhook(Client(), payload).status_code == 200
    yield ExceptionRecord.objects.get(type_code="total_mismatch")
    erp_caches_clear()


@pytest.mark.parametrize("viewport", [{"width": 1400, "height": 900}, {"width": 390, "height": 844}])
def test_finance_sees_both_breakdowns_and_back_returns_to_the_inbox(browser, live_server, mismatched_order,
                                                                     finance_user, viewport):
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("/accounts/login/")
    page.fill("input[name=username]", finance_user.username)
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.goto("/exceptions/?team=finance")
    link = page.get_by_role("link", name="Order #3001 does not add up: ERP 48.00 GBP vs storefront 50.00 GBP")
    expect(link).to_be_visible()
    link.click()
    table = page.get_by_role("table", name="Storefront and ERP document, line by line")
    expect(table).to_be_visible()
    total_row = table.get_by_role("row", name="Order total")
    expect(total_row).to_contain_text("50.00")
    expect(total_row).to_contain_text("48.00")
    expect(total_row).to_contain_text("-2.00")
    expect(page.get_by_role("table", name="Tax per rate")).to_contain_text("20%")
    page.go_back()
    expect(page).to_have_url(f"{live_server.url}/exceptions/?team=finance")
    expect(page.get_by_role("link", name="Order #3001 does not add up: ERP 48.00 GBP vs storefront 50.00 GBP")).to_be_visible()
    context.close()
