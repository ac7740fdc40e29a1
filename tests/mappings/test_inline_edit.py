"""Inline edit of one row: the form fragment, validation that names the problem, the saved row."""
from django.urls import reverse

from mappings.models import DepotMapping, SkuMapping
from tests.factories import DepotMappingFactory, ExceptionRecordFactory, SkuMappingFactory

from .conftest import HTMX


def _sku_post(row, **changes):
    data = {
        "connection": row.connection.code,
        "storefront_sku": row.storefront_sku,
        "erp_item_code": row.erp_item_code,
        "components": "",
        "active": "on" if row.active else "",
        "note": row.note,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_edit_button_turns_the_row_into_a_form_fragment(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    response = admin_client.get(reverse("mapping-edit", args=["skus", row.pk]), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="row-skus-{row.pk}"')
    assert "<html" not in html
    assert 'name="erp_item_code"' in html and 'value="10042"' in html


def test_saving_a_valid_row_answers_with_the_row_fragment(admin_client, shopify_connection, erp):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-BLK-M", erp_item_code="10042")
    response = admin_client.post(
        reverse("mapping-edit", args=["skus", row.pk]), _sku_post(row, erp_item_code="10043"), **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<form" not in html.split("saved-notice")[0]  # the row, not the form
    assert "10043" in html and "Saved." in html
    assert response["HX-Trigger"] == "mappingsChanged"
    row.refresh_from_db()
    assert row.erp_item_code == "10043"


def test_unknown_erp_item_is_rejected_with_its_code(admin_client, shopify_connection, erp):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-BLK-M", erp_item_code="10042")
    response = admin_client.post(
        reverse("mapping-edit", args=["skus", row.pk]), _sku_post(row, erp_item_code="99999"), **HTMX
    )
    assert response.status_code == 200
    assert "ERP item 99999 does not exist in the ERP" in response.content.decode()
    row.refresh_from_db()
    assert row.erp_item_code == "10042"


def test_a_sku_mapped_twice_names_the_existing_mapping(admin_client, shopify_connection):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    other = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-L", erp_item_code="10043")
    response = admin_client.post(
        reverse("mapping-edit", args=["skus", other.pk]), _sku_post(other, storefront_sku="TEE-RED-M"), **HTMX
    )
    html = response.content.decode()
    assert "SKU TEE-RED-M is already mapped to 10042" in html
    assert "already exists" not in html  # only our message, not Django's generic one
    other.refresh_from_db()
    assert other.storefront_sku == "TEE-RED-L"


def test_unknown_depot_is_named(admin_client, shopify_connection, erp):
    row = DepotMappingFactory(connection=shopify_connection, country="GB", depot_code="MAIN")
    data = {"connection": "shopify", "country": "GB", "storefront_location": "", "depot_code": "chd", "active": "on"}
    response = admin_client.post(reverse("mapping-edit", args=["depots", row.pk]), data, **HTMX)
    assert "depot CHD is not an ERP depot" in response.content.decode()
    assert DepotMapping.objects.get(pk=row.pk).depot_code == "MAIN"


def test_known_depot_saves(admin_client, shopify_connection, erp):
    row = DepotMappingFactory(connection=shopify_connection, country="GB", depot_code="MAIN")
    data = {"connection": "shopify", "country": "gb", "storefront_location": "", "depot_code": "EAST", "active": "on"}
    response = admin_client.post(reverse("mapping-edit", args=["depots", row.pk]), data, **HTMX)
    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.country, row.depot_code) == ("GB", "EAST")


def test_kit_components_must_be_erp_items(admin_client, shopify_connection, erp):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="GIFT-SET", erp_item_code="10042")
    response = admin_client.post(
        reverse("mapping-edit", args=["skus", row.pk]),
        _sku_post(row, erp_item_code="", components="BOX-1 x2; NOPE-9"),
        **HTMX,
    )
    assert "component NOPE-9 is not an ERP item" in response.content.decode()
    assert not row.components.exists()

    response = admin_client.post(
        reverse("mapping-edit", args=["skus", row.pk]), _sku_post(row, erp_item_code="", components="BOX-1 x2; LID-1"), **HTMX
    )
    assert response.status_code == 200
    assert sorted(row.components.values_list("erp_item_code", "quantity")) == [("BOX-1", 2), ("LID-1", 1)]


def test_an_erp_outage_is_a_form_error_not_a_500(admin_client, shopify_connection, erp_down):
    row = DepotMappingFactory(connection=shopify_connection, country="GB", depot_code="MAIN")
    data = {"connection": "shopify", "country": "GB", "storefront_location": "", "depot_code": "EAST", "active": "on"}
    response = admin_client.post(reverse("mapping-edit", args=["depots", row.pk]), data, **HTMX)
    assert response.status_code == 200
    assert "Could not reach the ERP to check depots" in response.content.decode()
    assert DepotMapping.objects.get(pk=row.pk).depot_code == "MAIN"


def test_a_note_only_change_does_not_need_the_erp(admin_client, shopify_connection, erp_down):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    response = admin_client.post(reverse("mapping-edit", args=["skus", row.pk]), _sku_post(row, note="summer range"), **HTMX)
    assert response.status_code == 200
    assert SkuMapping.objects.get(pk=row.pk).note == "summer range"


def test_the_saved_row_says_how_many_open_exceptions_it_affects(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    ExceptionRecordFactory(sku="TEE-RED-M")
    ExceptionRecordFactory(sku="TEE-RED-M", status="in_progress")
    ExceptionRecordFactory(sku="TEE-RED-M", status="resolved")
    ExceptionRecordFactory(sku="TEE-BLU-S")
    response = admin_client.post(reverse("mapping-edit", args=["skus", row.pk]), _sku_post(row, note="checked"), **HTMX)
    html = response.content.decode()
    assert "2 open exceptions affected by this row." in html
    assert reverse("mapping-retry", args=["skus", row.pk]) in html


def test_without_htmx_the_edit_page_posts_and_redirects(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    page = admin_client.get(reverse("mapping-edit", args=["skus", row.pk]))
    assert "<html" in page.content.decode()
    response = admin_client.post(reverse("mapping-edit", args=["skus", row.pk]), _sku_post(row, note="x"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mapping-detail", args=["skus", row.pk])
