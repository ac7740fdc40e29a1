"""CSV import (dry run, then all-or-nothing apply) and export of every table."""
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mappings.models import DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping
from tests.factories import (
    DepotMappingFactory, LocationMappingFactory, SkuMappingFactory, TaxCodeMappingFactory,
)


def _upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("mappings.csv", text.encode(), content_type="text/csv")


SKU_CSV = (
    "connection,storefront_sku,erp_item_code,components,active,note\n"
    "shopify,TEE-BLK-M,10042,,true,new one\n"
    "shopify,TEE-RED-M,10043,,true,\n"
    "shopify,GIFT-SET,,BOX-1 x2; LID-1,yes,kit\n"
)


def test_dry_run_lists_rows_to_add_and_change_and_changes_nothing(admin_client, shopify_connection, erp):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    response = admin_client.post(reverse("mapping-import", args=["skus"]), {"file": _upload(SKU_CSV), "action": "preview"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>2</strong> to add" in html and "<strong>1</strong> to change" in html
    assert "<code>erp_item_code</code>: 10042 → 10043" in html
    assert "Apply 3 changes" in html
    assert SkuMapping.objects.count() == 1
    assert SkuMapping.objects.get().erp_item_code == "10042"


def test_apply_writes_every_row(admin_client, admin_user, shopify_connection, erp):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    response = admin_client.post(reverse("mapping-import", args=["skus"]), {"csv_text": SKU_CSV, "action": "apply"})
    assert response.status_code == 302
    assert dict(SkuMapping.objects.values_list("storefront_sku", "erp_item_code")) == {
        "TEE-BLK-M": "10042", "TEE-RED-M": "10043", "GIFT-SET": "",
    }
    kit = SkuMapping.objects.get(storefront_sku="GIFT-SET")
    assert sorted(kit.components.values_list("erp_item_code", "quantity")) == [("BOX-1", 2), ("LID-1", 1)]
    changed = SkuMapping.objects.get(storefront_sku="TEE-RED-M").history.first()
    assert changed.history_user == admin_user and changed.history_change_reason == "CSV import, line 3"
    page = admin_client.get(response["Location"]).content.decode()
    assert "2 added, 1 changed" in page


def test_one_bad_row_rejects_the_whole_file_and_changes_nothing(admin_client, shopify_connection, erp):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    bad = SKU_CSV + "shopify,MUG-1,NOPE-1,,true,\nshopify,TEE-RED-M,10042,,maybe,\n"
    preview = admin_client.post(reverse("mapping-import", args=["skus"]), {"file": _upload(bad), "action": "preview"})
    html = preview.content.decode()
    assert "ERP item NOPE-1 does not exist in the ERP" in html
    assert "the same row appears twice in the file (lines 3 and 6)" in html
    assert "Apply" not in html and "Nothing can be applied" in html

    applied = admin_client.post(reverse("mapping-import", args=["skus"]), {"csv_text": bad, "action": "apply"})
    assert applied.status_code == 400
    assert "Nothing was changed" in applied.content.decode()
    assert list(SkuMapping.objects.values_list("storefront_sku", "erp_item_code")) == [("TEE-RED-M", "10042")]
    assert SkuMapping.history.count() == 1


def test_a_row_that_turns_bad_between_dry_run_and_apply_rejects_the_file(admin_client, shopify_connection, erp):
    """Apply validates again: the ERP dropped depot EAST after the dry run."""
    text = "connection,country,storefront_location,depot_code,active\nshopify,GB,,MAIN,true\nshopify,FR,,EAST,true\n"
    preview = admin_client.post(reverse("mapping-import", args=["depots"]), {"csv_text": text, "action": "preview"})
    assert "<strong>2</strong> to add" in preview.content.decode()
    erp.depots.pop("EAST")
    applied = admin_client.post(reverse("mapping-import", args=["depots"]), {"csv_text": text, "action": "apply"})
    assert applied.status_code == 400
    assert "depot EAST is not an ERP depot" in applied.content.decode()
    assert not DepotMapping.objects.exists()


def test_a_file_with_unknown_columns_is_refused(admin_client, db):
    text = "connection,rate,country,erp_tax_code,colour\nshopify,0.2,GB,S20,red\n"
    html = admin_client.post(reverse("mapping-import", args=["taxcodes"]), {"csv_text": text, "action": "preview"}).content.decode()
    assert "unknown columns: colour" in html
    assert "missing key columns: tax_category" in html


def test_tax_codes_import_validates_rates(admin_client, shopify_connection):
    text = "connection,tax_category,rate,country,erp_tax_code\nshopify,,0.2,gb,S20\nshopify,,20,DE,S19\n"
    html = admin_client.post(reverse("mapping-import", args=["taxcodes"]), {"csv_text": text, "action": "preview"}).content.decode()
    assert "rate 20 is not a fraction between 0 and 1" in html
    assert not TaxCodeMapping.objects.exists()


def test_export_then_import_round_trips_every_table(admin_client, shopify_connection, ct_connection, erp):
    kit = SkuMappingFactory(connection=shopify_connection, storefront_sku="GIFT-SET", erp_item_code="", note="a, quoted \"note\"")
    kit.components.create(erp_item_code="BOX-1", quantity=2)
    SkuMappingFactory(connection=ct_connection, storefront_sku="TEE-BLK-M", erp_item_code="10042", active=False)
    LocationMappingFactory(connection=shopify_connection, storefront_location="gid://shopify/Location/1",
                           erp_warehouse="MAIN", sellable_states=["available", "in_transit"], buffer_units=2)
    DepotMappingFactory(connection=ct_connection, country="DE", storefront_location="eu-warehouse", depot_code="EAST")
    TaxCodeMappingFactory(connection=shopify_connection, tax_category="Reduced", rate="0.05", country="GB", erp_tax_code="R5")

    for table, model in (("skus", SkuMapping), ("locations", LocationMapping), ("depots", DepotMapping), ("taxcodes", TaxCodeMapping)):
        exported = admin_client.get(reverse("mapping-export", args=[table]))
        assert exported["Content-Type"].startswith("text/csv")
        text = exported.content.decode()
        before = text
        # unchanged on re-import
        html = admin_client.post(reverse("mapping-import", args=[table]), {"file": _upload(text), "action": "preview"}).content.decode()
        assert "<strong>0</strong> to add · <strong>0</strong> to change" in html, (table, html)
        # restored exactly after a wipe
        model.objects.all().delete()
        applied = admin_client.post(reverse("mapping-import", args=[table]), {"csv_text": text, "action": "apply"})
        assert applied.status_code == 302, (table, applied.content.decode()[-2000:])
        assert admin_client.get(reverse("mapping-export", args=[table])).content.decode() == before
