"""The site frame in real Chromium: at a phone's 390 px nothing scrolls sideways (tables scroll in
their own box), the menu folds behind a button that works from the keyboard, the skip link is the
first tab stop and moves focus to the page's content, and each page has one h1."""
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.models import InventoryDriftSample, InventoryLevel, InventorySyncRun, OutboundWrite
from integrations.models.inventory import StorefrontLocation
from tests.factories import InboundEventFactory, OrderLinkFactory

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def busy_shop(transactional_db, shopify_connection):
    """A shop mid-sale, with the long values that push a narrow page sideways."""
    now = timezone.now()
    order = None
    for n in range(12):
        order = OrderLinkFactory(
            connection=shopify_connection, order_number=f"#{3000 + n}", state="failed" if n % 3 else "posted",
            storefront_order_id=f"gid://shopify/Order/{987654321000 + n}",
            customer_email=f"a.very.long.customer.address.number.{n}@example-shop-domain.co.uk",
            payment_state="partially_refunded", created_at=now - timedelta(minutes=n % 5),
            posted_at=None if n % 3 else now, erp_order_id=f"SO-2026-{n:08d}",
            last_error="ERP rejected the order: item TEE-RED-M-EXTRA-LONG-CODE-0001 is blocked for sale " * 2)
    InboundEventFactory(connection=shopify_connection, status="pending")
    OutboundWrite.objects.create(system="rest_erp", action="create_sales_order", external_reference="x",
                                 status="succeeded", started_at=now, finished_at=now)
    StorefrontLocation.objects.create(connection=shopify_connection, location="gid://shopify/Location/1",
                                      name="Leeds fulfilment centre (north)")
    for n in range(8):
        InventoryLevel.objects.create(
            connection=shopify_connection, storefront_sku=f"HOODIE-GREY-XXL-ORGANIC-{n:03d}",
            storefront_location="gid://shopify/Location/1", erp_warehouse="MAIN", erp_item_code=f"ITEM-{n:06d}",
            erp_ats=10 + n, pushed_ats=10, storefront_value=10,
            last_error="CHANGE_FROM_QUANTITY_STALE: the quantity changed since it was read" if n % 2 else "")
    run = InventorySyncRun.objects.create(connection=shopify_connection, status="succeeded", levels_total=8)
    InventoryDriftSample.objects.create(connection=shopify_connection, run=run, levels_total=8, levels_drifted=4)
    return order


@pytest.fixture
def phone(browser, live_server, ops_user):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("/accounts/login/")
    page.fill("input[name=username]", ops_user.username)
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    yield page
    context.close()


def _assert_fits(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at {PHONE['width']}px"
    expect(page.locator("h1")).to_have_count(1)


def test_the_main_pages_fit_a_390px_screen(busy_shop, phone):
    phone.goto("/")
    expect(phone.locator("#progress .figures")).to_be_visible()  # the live panel has loaded in
    _assert_fits(phone)
    for url in ("/orders/", f"/orders/{busy_shop.pk}/", "/inventory/"):
        phone.goto(url)
        _assert_fits(phone)
    # A wide table scrolls inside its own box instead of the page.
    phone.goto("/orders/")
    wrap = phone.locator("#order-table .table-wrap")
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")


def test_the_menu_folds_behind_a_button_that_works_from_the_keyboard(busy_shop, phone):
    phone.goto("/orders/")
    nav = phone.get_by_role("navigation", name="Main")
    button = phone.get_by_role("button", name="Menu")
    expect(nav).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    button.focus()
    phone.keyboard.press("Enter")
    expect(nav).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    _assert_fits(phone)
    phone.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(button).to_be_focused()
    button.click()
    nav.get_by_role("link", name="Inventory").click()
    phone.wait_for_url("**/inventory/")
    expect(phone.locator("h1")).to_have_text("Inventory health")


def test_the_skip_link_is_the_first_tab_stop_and_moves_focus_to_the_content(busy_shop, page, sign_in, ops_user):
    sign_in(ops_user)
    page.goto("/orders/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box and box["y"] >= 0 and box["height"] > 0  # visible once focused, not just present
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is inside the page, not back in the menu
    assert page.evaluate("document.getElementById('content').contains(document.activeElement)")
