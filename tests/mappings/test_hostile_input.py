"""Hostile or malformed input to the mapping forms (add, inline edit, CSV rows): a form error that
names the problem, never a 500, and nothing written (issue 13). Ranges and lengths are checked by the
forms, so this holds on SQLite (no limits) and on PostgreSQL (DataError) alike."""
import pytest
from django.urls import reverse

from mappings.models import KitComponent, LocationMapping, SkuMapping

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


def add_kit(admin_client, components: str):
    return admin_client.post(reverse("mapping-add", args=["skus"]), {
        "connection": "shopify", "storefront_sku": "GIFT-BOX", "erp_item_code": "", "components": components,
        "active": "on",
    })


@pytest.mark.parametrize("components, says", [
    (f"BOX-1 x{HUGE}", "quantity of at most 2147483647"),
    (f"BOX-1 x{2**31}", "quantity of at most 2147483647"),
    ("BOX-1 x" + "9" * 5000, "quantity of at most 2147483647"),
    ("B" * 101 + " x2", "at most 100 characters"),
], ids=["30-digits", "2**31", "5000-digits", "long-code"])
def test_a_kit_component_beyond_what_its_columns_hold_is_a_form_error(admin_client, shopify_connection, erp,
                                                                    components, says):
    response = add_kit(admin_client, components)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not SkuMapping.objects.exists() and not KitComponent.objects.exists()


def test_a_kit_component_within_range_is_saved(admin_client, shopify_connection, erp):
    add_kit(admin_client, "BOX-1 x2; LID-1")
    assert sorted(KitComponent.objects.values_list("erp_item_code", "quantity")) == [("BOX-1", 2), ("LID-1", 1)]


@pytest.mark.parametrize("field, says", [("buffer_units", "less than or equal to"), ("buffer_percent", "digits")])
def test_a_location_buffer_beyond_its_column_is_a_form_error(admin_client, shopify_connection, erp, field, says):
    data = {"connection": "shopify", "storefront_location": "gid://shopify/Location/1", "erp_warehouse": "MAIN",
            "sellable_states": "available", "buffer_units": "0", "buffer_percent": "0", "active": "on", field: HUGE}
    response = admin_client.post(reverse("mapping-add", args=["locations"]), data)
    assert response.status_code == 200 and says in response.content.decode()
    assert not LocationMapping.objects.exists()


def test_a_connection_filter_beyond_64_bits_still_lists(admin_client, shopify_connection):
    assert admin_client.get(reverse("mapping-list", args=["skus"]), {"connection": HUGE, "page": HUGE}).status_code == 200

