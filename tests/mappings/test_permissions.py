"""Everyone signed in may read the mappings; only admin may change them."""
import pytest
from django.urls import reverse

from mappings.models import SkuMapping
from tests.factories import SkuMappingFactory

from .conftest import HTMX


@pytest.fixture
def row(shopify_connection):
    return SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")


def _writes(row):
    return [
        ("get", reverse("mapping-edit", args=["skus", row.pk]), {}),
        ("post", reverse("mapping-edit", args=["skus", row.pk]), {"connection": "shopify", "storefront_sku": "X", "erp_item_code": "10042"}),
        ("get", reverse("mapping-add", args=["skus"]), {}),
        ("post", reverse("mapping-add", args=["skus"]), {"connection": "shopify", "storefront_sku": "NEW", "erp_item_code": "1"}),
        ("post", reverse("mapping-delete", args=["skus", row.pk]), {}),
        ("get", reverse("mapping-import", args=["skus"]), {}),
        ("post", reverse("mapping-import", args=["skus"]), {"csv_text": "connection,storefront_sku\nshopify,Y\n", "action": "apply"}),
        ("post", reverse("mapping-retry", args=["skus", row.pk]), {}),
        ("post", reverse("mapping-revert", args=["skus", row.pk, row.history.first().history_id]), {}),
    ]


def test_ops_user_may_read_but_not_change(client, ops_user, row):
    client.force_login(ops_user)
    for url in (reverse("mappings"), reverse("mapping-list", args=["skus"]), reverse("mapping-detail", args=["skus", row.pk]),
                reverse("mapping-export", args=["skus"])):
        assert client.get(url).status_code == 200, url
    for method, url, data in _writes(row):
        assert getattr(client, method)(url, data).status_code == 403, (method, url)
    assert SkuMapping.objects.get().storefront_sku == "TEE-RED-M"


def test_no_edit_buttons_for_readers(client, outsider, row):
    client.force_login(outsider)
    html = client.get(reverse("mapping-list", args=["skus"])).content.decode()
    assert "TEE-RED-M" in html
    assert reverse("mapping-edit", args=["skus", row.pk]) not in html
    assert reverse("mapping-import", args=["skus"]) not in html
    assert "Revert" not in client.get(reverse("mapping-detail", args=["skus", row.pk])).content.decode()


def test_admin_sees_edit_buttons(client, admin_user, row):
    client.force_login(admin_user)
    html = client.get(reverse("mapping-list", args=["skus"])).content.decode()
    assert reverse("mapping-edit", args=["skus", row.pk]) in html
    assert reverse("mapping-delete", args=["skus", row.pk]) in html


def test_signed_out_is_sent_to_login(client, row):
    for url in (reverse("mappings"), reverse("mapping-list", args=["skus"]), reverse("mapping-export", args=["skus"]),
                reverse("mapping-health")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("mapping-delete", args=["skus", row.pk]))
    assert response.status_code == 302
    assert SkuMapping.objects.filter(pk=row.pk).exists()


def test_wrong_method_is_405(admin_client, row):
    assert admin_client.get(reverse("mapping-delete", args=["skus", row.pk])).status_code == 405
    assert admin_client.get(reverse("mapping-retry", args=["skus", row.pk])).status_code == 405
    assert admin_client.post(reverse("mapping-list", args=["skus"])).status_code == 405
    assert admin_client.post(reverse("mapping-export", args=["skus"])).status_code == 405
    assert admin_client.delete(reverse("mapping-edit", args=["skus", row.pk])).status_code == 405


def test_admin_deletes_a_row_and_history_names_them(admin_client, admin_user, row):
    response = admin_client.post(reverse("mapping-delete", args=["skus", row.pk]), **HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not SkuMapping.objects.exists()
    deleted = SkuMapping.history.filter(history_type="-").get()
    assert deleted.history_user == admin_user


def test_admin_adds_a_row(admin_client, admin_user, shopify_connection, erp):
    response = admin_client.post(
        reverse("mapping-add", args=["skus"]),
        {"connection": "shopify", "storefront_sku": "TEE-BLK-M", "erp_item_code": "10042", "active": "on"},
    )
    row = SkuMapping.objects.get(storefront_sku="TEE-BLK-M")
    assert response.status_code == 302
    assert row.history.get().history_user == admin_user
    page = admin_client.get(response["Location"]).content.decode()
    assert "Saved SKU mapping shopify · TEE-BLK-M." in page
