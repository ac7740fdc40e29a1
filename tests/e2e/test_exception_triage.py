"""Triage in real Chromium: orders fail on an unknown SKU, the mapping is added, the group retry
posts them all and clears the group and the badge, without a page reload."""
import pytest
from django.test import Client
from playwright.sync_api import expect

from exceptions_queue.models import ExceptionRecord
from integrations.flows.orders import erp_caches_clear
from integrations.models import OrderLink
from tests.factories import DepotMappingFactory, ExceptionRecordFactory, TaxCodeMappingFactory, UserFactory
from tests.payloads import post_shopify_webhook, shopify_order


@pytest.fixture
def q_sync(settings, monkeypatch):
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 reads the setting once, at import


@pytest.fixture
def failed_orders(transactional_db, sandbox, shopify_connection, q_sync):
    """Three paid Shopify orders whose SKU TEE-RED-M is not an ERP item, delivered by webhook."""
    erp_caches_clear()
    for code in ("TEE-BLK-M", "SHIPPING", "CUSTOM", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    DepotMappingFactory(connection=shopify_connection, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0.2", country="GB", erp_tax_code="T1")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0", country="GB", erp_tax_code="T0")
    client = Client()
    for n in range(3):
        payload = shopify_order(order_id=5_550_000 + n, number=2001 + n,
                                lines=[{"sku": "TEE-RED-M", "price": "20.00", "quantity": 1}])
        assert post_shopify_webhook(client, payload).status_code == 200
    assert OrderLink.objects.filter(state=OrderLink.State.FAILED).count() == 3
    yield sandbox
    erp_caches_clear()


def test_ops_user_clears_an_unknown_sku_group_with_one_retry(browser, live_server, page, sign_in, failed_orders,
                                                             admin_user, shopify_connection):
    group = ExceptionRecord.objects.filter(type_code="unknown_sku", status="open")
    assert group.count() == 3
    fingerprint = group.first().fingerprint
    ExceptionRecordFactory(fingerprint="unknown_sku:MUG-RED", sku="MUG-RED", title="SKU MUG-RED has no ERP item",
                           team="ops")
    olivia = UserFactory(username="olivia-ops", roles=["ops"])  # unknown_sku is an ops exception

    sign_in(olivia)
    page.goto("/exceptions/")
    badge = page.locator("#nav-badge")
    expect(badge).to_have_text("4")

    page.select_option("select[name=type]", "unknown_sku")
    page.wait_for_url("**type=unknown_sku**")
    page.select_option("select[name=view]", "groups")
    page.wait_for_url("**view=groups**")
    page.get_by_role("link", name="SKU TEE-RED-M has no ERP item").click()
    page.wait_for_url("**/exceptions/group/**")
    expect(page.locator("#group-summary")).to_contain_text("3 open exceptions with this cause, affecting 3 orders")

    # the SKU mapping is added on the mappings screen (which only admins may change)
    admin_context = browser.new_context(base_url=live_server.url)
    admin_page = admin_context.new_page()
    admin_page.goto("/accounts/login/")
    admin_page.fill("input[name=username]", admin_user.username)
    admin_page.fill("input[name=password]", "pw-for-tests-1")
    admin_page.click("button[type=submit]")
    admin_page.wait_for_url(lambda url: "/accounts/login" not in url)
    admin_page.goto("/mappings/skus/add/")
    admin_page.select_option("select[name=connection]", shopify_connection.code)
    admin_page.fill("input[name=storefront_sku]", "TEE-RED-M")
    admin_page.fill("input[name=erp_item_code]", "TEE-BLK-M")
    admin_page.get_by_role("button", name="Add").click()
    expect(admin_page.locator(".messages")).to_be_visible()
    admin_context.close()

    page.evaluate("window.__marker = 'same page'")
    page.get_by_role("button", name="Retry group").click()

    expect(page.locator("#bulk-status")).to_contain_text("3 resolved")
    expect(page.locator("#group-summary")).to_contain_text("Group resolved.")
    expect(badge).to_have_text("1")
    assert page.evaluate("window.__marker") == "same page"  # no full page load during the retry
    assert "/exceptions/group/" in page.url

    assert set(ExceptionRecord.objects.filter(fingerprint=fingerprint).values_list("status", flat=True)) == {"resolved"}
    assert len(failed_orders.erp.sales_orders) == 3
    assert OrderLink.objects.filter(state=OrderLink.State.POSTED).count() == 3
