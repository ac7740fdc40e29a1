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
    assert "<li>Note: — → checked</li>" in html
    assert "Created" in html and "Changed" in html
    # the first version lists every field by its human name, booleans as Yes / No
    assert "<li>ERP item: 10042</li>" in html and "<li>Active: Yes</li>" in html
    assert "<li>Storefront: shopify</li>" in html
    assert "erp_item_code" not in html and "True" not in html


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


def test_reverting_a_kit_puts_its_components_back(admin_client, shopify_connection, erp):
    def save(components):
        response = admin_client.post(reverse("mapping-edit", args=["skus", row.pk]), {
            "connection": "shopify", "storefront_sku": "GIFT-BOX", "erp_item_code": "", "components": components,
            "active": "on", "note": ""})
        assert response.status_code in (200, 302)

    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="GIFT-BOX", erp_item_code="10042")
    save("BOX-1 x2; LID-1")
    kit_version = row.history.order_by("-history_date").first()
    save("BOX-1 x5")  # the admin drops the lid and changes the box count by mistake
    assert sorted(row.components.values_list("erp_item_code", "quantity")) == [("BOX-1", 5)]
    admin_client.post(reverse("mapping-revert", args=["skus", row.pk, kit_version.history_id]))
    row.refresh_from_db()
    assert row.erp_item_code == ""
    assert sorted(row.components.values_list("erp_item_code", "quantity")) == [("BOX-1", 2), ("LID-1", 1)]
    # Reverting to the very first version (a plain item) removes the components again.
    admin_client.post(reverse("mapping-revert", args=["skus", row.pk, row.history.order_by("history_date").first().history_id]))
    row.refresh_from_db()
    assert row.erp_item_code == "10042" and not row.components.exists()
