"""History per row (who, when, from -> to) and the one-click revert, which is itself recorded."""
from django.urls import reverse

from mappings.models import SkuMapping
from tests.factories import SkuMappingFactory


def test_history_shows_who_changed_what_from_and_to(admin_client, admin_user, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    admin_client.post(
        reverse("mapping-edit", args=["skus", row.pk]),
        {"connection": "shopify", "storefront_sku": "TEE-RED-M", "erp_item_code": "10042", "active": "on", "note": "checked"},
    )
    html = admin_client.get(reverse("mapping-detail", args=["skus", row.pk])).content.decode()
    assert admin_user.username in html
    assert "<code>note</code>:  → checked" in html
    assert "Created" in html and "Changed" in html


def test_revert_puts_the_old_value_back_and_is_recorded(admin_client, admin_user, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    first = row.history.get()
    row.erp_item_code = "10099"
    row.save()
    response = admin_client.post(reverse("mapping-revert", args=["skus", row.pk, first.history_id]))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.erp_item_code == "10042"
    latest = row.history.first()
    assert latest.history_user == admin_user
    assert latest.history_change_reason.startswith(f"Reverted to version {first.history_id}")
    assert row.history.count() == 3
    html = admin_client.get(response["Location"]).content.decode()
    assert "10099 → 10042" in html


def test_revert_refuses_a_version_of_another_row(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="A", erp_item_code="1")
    other = SkuMappingFactory(connection=shopify_connection, storefront_sku="B", erp_item_code="2")
    response = admin_client.post(reverse("mapping-revert", args=["skus", row.pk, other.history.get().history_id]))
    assert response.status_code == 403
    assert SkuMapping.objects.get(pk=row.pk).storefront_sku == "A"
