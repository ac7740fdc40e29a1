"""The Back button after filtering a list and opening a row, in real Chromium: the styled page comes
back with the filter still applied (form and rows), never a bare fragment."""
from playwright.sync_api import expect

from integrations.models import InventoryLevel
from tests.factories import OrderLinkFactory


def test_back_after_filtering_orders_and_opening_one_shows_the_filtered_page(transactional_db, live_server, page,
                                                                            sign_in, ops_user, shopify_connection):
    failed = OrderLinkFactory(connection=shopify_connection, order_number="#2001", state="failed")
    OrderLinkFactory(connection=shopify_connection, order_number="#2002", state="posted")

    sign_in(ops_user)
    page.goto("/orders/")
    table = page.locator("#order-table")
    expect(table).to_contain_text("#2002")
    page.select_option("select[name=state]", "failed")
    page.wait_for_url("**state=failed**")
    expect(table).not_to_contain_text("#2002")
    page.get_by_role("link", name="#2001").click()
    page.wait_for_url(f"**/orders/{failed.pk}/")

    page.go_back()
    page.wait_for_url("**/orders/?*state=failed*")
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    expect(table).to_contain_text("#2001")
    expect(table).not_to_contain_text("#2002")
    expect(page.locator("select[name=state]")).to_have_value("failed")


def test_back_through_two_filters_shows_each_filter_with_its_own_form(transactional_db, live_server, page, sign_in,
                                                                     ops_user, shopify_connection):
    failed = OrderLinkFactory(connection=shopify_connection, order_number="#2001", state="failed")
    posted = OrderLinkFactory(connection=shopify_connection, order_number="#2002", state="posted")

    sign_in(ops_user)
    page.goto("/orders/")
    table = page.locator("#order-table")
    page.select_option("select[name=state]", "failed")
    page.wait_for_url("**state=failed**")
    expect(table).not_to_contain_text("#2002")
    page.select_option("select[name=state]", "posted")
    page.wait_for_url("**state=posted**")
    expect(table).not_to_contain_text("#2001")
    page.get_by_role("link", name="#2002").click()
    page.wait_for_url(f"**/orders/{posted.pk}/")

    page.go_back()
    page.wait_for_url("**state=posted**")
    expect(page.locator("select[name=state]")).to_have_value("posted")
    expect(table).to_contain_text("#2002")
    page.go_back()
    page.wait_for_url("**state=failed**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    expect(page.locator("select[name=state]")).to_have_value("failed")
    expect(table).to_contain_text("#2001")
    expect(table).not_to_contain_text("#2002")
    assert failed.pk


def test_back_after_filtering_inventory_and_opening_a_level_shows_the_filtered_page(transactional_db, live_server, page,
                                                                                   sign_in, ops_user, shopify_connection):
    def level(sku, ats, shows):
        return InventoryLevel.objects.create(connection=shopify_connection, storefront_sku=sku, storefront_location="1",
                                             erp_warehouse="MAIN", erp_item_code=sku, erp_ats=ats, pushed_ats=ats,
                                             storefront_value=shows)

    tee = level("TEE-1", 12, 9)
    level("TEE-2", 5, 5)
    level("MUG-1", 4, 1)

    sign_in(ops_user)
    page.goto("/inventory/")
    table = page.locator("#level-table")
    expect(table).to_contain_text("TEE-2")
    page.get_by_label("Only differences").check()
    page.wait_for_url("**show=drift**")
    expect(table).not_to_contain_text("TEE-2")
    page.get_by_label("Search").press_sequentially("TEE")
    page.wait_for_url("**q=TEE**")
    expect(table).not_to_contain_text("MUG-1")
    page.get_by_role("link", name="TEE-1").click()
    page.wait_for_url(f"**/inventory/levels/{tee.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("TEE-1")

    page.go_back()
    page.wait_for_url("**q=TEE**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inventory health")
    expect(page.get_by_label("Search")).to_have_value("TEE")
    expect(page.get_by_label("Only differences")).to_be_checked()
    expect(table).to_contain_text("TEE-1")
    expect(table).not_to_contain_text("MUG-1")
    expect(table).not_to_contain_text("TEE-2")

    page.go_back()
    page.wait_for_url(lambda url: "show=drift" in url and "q=TEE" not in url)
    expect(page.get_by_label("Search")).to_have_value("")
    expect(page.get_by_label("Only differences")).to_be_checked()
    expect(table).to_contain_text("MUG-1")
    expect(table).not_to_contain_text("TEE-2")
