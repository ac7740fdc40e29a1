"""E-commerce restores a hand-edited storefront price in real Chromium: the price comparison shows the
commercetools variant selling below the ERP's price, the Back button from its exception brings the
filtered comparison back whole, and "Restore ERP price" sets the variant back (over HTTP to the
sandbox project) so the row agrees and the exception is resolved. And the catalogue status on a phone,
filtered with the keyboard alone."""
from playwright.sync_api import expect

from exceptions_queue.models import ExceptionRecord
from integrations.drift import price_comparison
from integrations.drift.registry import check_run


def test_ecommerce_restores_an_erp_price_and_sees_the_row_agree(transactional_db, sandbox, live_server, page, sign_in,
                                                                ecommerce_user, ct_connection):
    price_comparison._erp_read.clear()
    ct = sandbox.commercetools
    sandbox.erp.add_item("TEE-1", prices=[{"currency": "EUR", "amount": "22.99", "type": "list"}])
    sandbox.erp.add_item("MUG-1", prices=[{"currency": "EUR", "amount": "9.50", "type": "list"}])
    tee = ct.add_product("Tee", ["TEE-1"])
    ct.add_product("Mug", ["MUG-1"])
    ct.products[tee["id"]]["masterVariant"]["prices"] = [
        {"value": {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 1999, "fractionDigits": 2}}]
    for product in ct.products.values():
        if product["masterVariant"].get("sku") == "MUG-1":
            product["masterVariant"]["prices"] = [
                {"value": {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 950, "fractionDigits": 2}}]
    assert check_run("prices").found == 1
    exception = ExceptionRecord.objects.get(type_code="drift_price_mismatch")

    sign_in(ecommerce_user)
    page.goto("/catalogue/prices/")
    table = page.locator("#price-table")
    expect(table).to_contain_text("MUG-1")
    page.get_by_label("Only differences").check()
    page.wait_for_url("**only=1**")
    expect(table).not_to_contain_text("MUG-1")
    row = table.locator("tr.diff")
    expect(row).to_contain_text("22.99")
    expect(row).to_contain_text("19.99")
    expect(row).to_contain_text("Differs")

    row.get_by_role("link", name="the exception").click()
    page.wait_for_url(f"**/exceptions/{exception.pk}/")
    expect(page.get_by_role("button", name="Restore ERP price")).to_be_visible()
    page.go_back()
    page.wait_for_url("**/catalogue/prices/?*only=1*")
    expect(page.get_by_role("heading", level=1)).to_have_text("Price comparison")
    expect(page.get_by_label("Only differences")).to_be_checked()
    expect(table).not_to_contain_text("MUG-1")

    table.get_by_role("button", name="Restore ERP price of TEE-1 on commercetools shop (EUR)").click()
    expect(table).to_contain_text("Restored the ERP price of TEE-1 on commercetools shop: 22.99 EUR.")
    expect(table.locator("tr.diff")).to_have_count(0)
    expect(table).to_contain_text("No gap at the last check")
    [stored] = [p for p in ct.products.values() if p["masterVariant"].get("sku") == "TEE-1"]
    assert [p["value"]["centAmount"] for p in stored["masterVariant"]["prices"]] == [2299]
    exception.refresh_from_db()
    assert exception.status == "resolved"

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Price comparison")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls, not the page


def test_catalogue_status_at_phone_width_with_the_keyboard(transactional_db, live_server, page, sign_in,
                                                           ecommerce_user, shopify_connection):
    """Catalogue status on a 390 px phone: filtering by state with the keyboard only, no sideways scroll."""
    from integrations.models.catalogue import CatalogItem, CatalogPublication
    from tests.factories import ConnectionFactory

    erp = ConnectionFactory(code="erp", kind="rest_erp", name="REST ERP")
    tee = CatalogItem.objects.create(erp_connection=erp, item_id="1", code="TEE-BLK-M", name="T-shirt black",
                                     fingerprint="new")
    mug = CatalogItem.objects.create(erp_connection=erp, item_id="2", code="MUG-001", name="Enamel mug")
    CatalogPublication.objects.create(item=tee, connection=shopify_connection, state="live", published_fingerprint="old")
    CatalogPublication.objects.create(item=mug, connection=shopify_connection, state="waiting",
                                      missing=["unit cost", "lead time"])

    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(ecommerce_user)
    page.goto("/catalogue/")
    table = page.locator("#item-table")
    expect(table).to_contain_text("changed in the ERP since")
    expect(table).to_contain_text("waits for unit cost, lead time")
    state = page.get_by_label("State")
    state.focus()
    page.keyboard.press("ArrowDown")  # "Waiting for data", the first state, chosen with the keyboard alone
    page.keyboard.press("Tab")
    page.wait_for_url("**state=waiting**")
    expect(table).not_to_contain_text("TEE-BLK-M")
    expect(table).to_contain_text("MUG-001")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
