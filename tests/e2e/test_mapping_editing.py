"""An admin edits a SKU mapping inline and imports a CSV (dry run, then apply) in real Chromium."""
from playwright.sync_api import expect

from mappings.models import SkuMapping
from tests.factories import ExceptionRecordFactory, SkuMappingFactory


def test_admin_edits_a_row_inline_and_imports_a_csv(transactional_db, sandbox, live_server, page, sign_in,
                                                    admin_user, shopify_connection):
    for code in ("10042", "10043", "TEE-BLK-M"):
        sandbox.erp.add_item(code)
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    ExceptionRecordFactory(sku="TEE-RED-M")

    sign_in(admin_user)
    page.goto("/mappings/skus/")
    expect(page.get_by_test_id("identity-note")).to_contain_text("same ERP item code")
    tr = page.locator(f"#row-skus-{row.pk}")
    tr.get_by_role("link", name="Edit").click()

    field = tr.locator("input[name=erp_item_code]")
    field.fill("99999")
    tr.get_by_role("button", name="Save").click()
    expect(tr).to_contain_text("ERP item 99999 does not exist in the ERP")
    assert SkuMapping.objects.get(pk=row.pk).erp_item_code == "10042"

    tr.locator("input[name=erp_item_code]").fill("10043")
    tr.get_by_role("button", name="Save").click()
    expect(tr.locator("form.inline-edit")).to_have_count(0)
    expect(tr).to_contain_text("10043")
    expect(tr).to_contain_text("1 open exception affected by this row.")
    assert page.url.endswith("/mappings/skus/")  # edited in place, no page load
    assert SkuMapping.objects.get(pk=row.pk).erp_item_code == "10043"

    page.goto("/mappings/skus/import/")
    csv_text = (
        "connection,storefront_sku,erp_item_code,active\n"
        "shopify,TEE-RED-M,10042,true\n"
        "shopify,TEE-BLK-M,TEE-BLK-M,true\n"
    )
    page.set_input_files("input[name=file]", {"name": "skus.csv", "mimeType": "text/csv", "buffer": csv_text.encode()})
    page.get_by_role("button", name="Preview (dry run)").click()
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("1 to add · 1 to change · 0 unchanged · 0 rejected")
    expect(preview).to_contain_text("10043 → 10042")
    assert SkuMapping.objects.count() == 1  # a dry run writes nothing

    page.get_by_role("button", name="Apply 2 changes").click()
    expect(page.locator(".messages")).to_contain_text("Imported SKUs: 1 added, 1 changed")
    assert dict(SkuMapping.objects.values_list("storefront_sku", "erp_item_code")) == {
        "TEE-RED-M": "10042", "TEE-BLK-M": "TEE-BLK-M",
    }
    expect(page.locator("table[data-table=skus]")).to_contain_text("TEE-BLK-M")
