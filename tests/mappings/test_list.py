"""The list of a table: search, filters, pagination, the identity-by-default note, the fragment."""
from django.urls import reverse

from tests.factories import ConnectionFactory, SkuMappingFactory, TaxCodeMappingFactory

from .conftest import HTMX


def test_sku_list_says_unmapped_skus_pass_through(ops_client, db):
    html = ops_client.get(reverse("mapping-list", args=["skus"])).content.decode()
    assert "passes through unchanged, as the same ERP item code" in html


def test_search_finds_by_storefront_sku_or_erp_item(ops_client, shopify_connection):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    SkuMappingFactory(connection=shopify_connection, storefront_sku="MUG-WHITE", erp_item_code="20001")
    html = ops_client.get(reverse("mapping-list", args=["skus"]), {"q": "tee-red"}).content.decode()
    assert "TEE-RED-M" in html and "MUG-WHITE" not in html
    html = ops_client.get(reverse("mapping-list", args=["skus"]), {"q": "20001"}).content.decode()
    assert "MUG-WHITE" in html and "TEE-RED-M" not in html


def test_filters_by_storefront_and_active(ops_client, shopify_connection, ct_connection):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="SHOP-ONE")
    SkuMappingFactory(connection=ct_connection, storefront_sku="CT-ONE")
    SkuMappingFactory(connection=ct_connection, storefront_sku="CT-OFF", active=False)
    html = ops_client.get(reverse("mapping-list", args=["skus"]), {"connection": "commercetools"}).content.decode()
    assert "CT-ONE" in html and "CT-OFF" in html and "SHOP-ONE" not in html
    html = ops_client.get(reverse("mapping-list", args=["skus"]), {"connection": "commercetools", "active": "false"}).content.decode()
    assert "CT-OFF" in html and "CT-ONE" not in html


def test_pages_of_fifty(ops_client, shopify_connection):
    for i in range(55):
        SkuMappingFactory(connection=shopify_connection, storefront_sku=f"SKU-{i:03d}")
    first = ops_client.get(reverse("mapping-list", args=["skus"])).content.decode()
    second = ops_client.get(reverse("mapping-list", args=["skus"]), {"page": 2}).content.decode()
    assert "SKU-000" in first and "SKU-054" not in first and "Page 1 of 2" in first
    assert "SKU-054" in second and "SKU-000" not in second


def test_htmx_filtering_answers_with_the_table_fragment(ops_client, db):
    TaxCodeMappingFactory(connection=ConnectionFactory(code="shopify"), country="GB", rate="0.2", erp_tax_code="S20")
    response = ops_client.get(reverse("mapping-list", args=["taxcodes"]), {"country": "gb"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="table-section">')
    assert "S20" in html and "<html" not in html


def test_every_table_lists(ops_client, db):
    for table in ("skus", "locations", "depots", "taxcodes"):
        assert ops_client.get(reverse("mapping-list", args=[table])).status_code == 200
    assert ops_client.get(reverse("mapping-list", args=["nope"])).status_code == 404
    assert ops_client.get(reverse("mappings")).status_code == 200
