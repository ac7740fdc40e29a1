"""Opening one stock level from the inventory screen: its figures, its location by name, what is open."""
import pytest
from django.urls import reverse

from integrations.models import InventoryLevel
from integrations.models.inventory import StorefrontLocation
from tests.factories import ExceptionRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def level(shopify_connection):
    StorefrontLocation.objects.create(connection=shopify_connection, location="gid://shopify/Location/1",
                                      name="Leeds warehouse")
    return InventoryLevel.objects.create(connection=shopify_connection, storefront_sku="TEE-RED-M",
                                         storefront_location="gid://shopify/Location/1", erp_warehouse="MAIN",
                                         erp_item_code="", erp_ats=12, pushed_ats=12, storefront_value=9)


def test_it_shows_the_level_with_its_location_name_and_open_exceptions(client, outsider, level):
    ExceptionRecordFactory(sku="TEE-RED-M", title="SKU TEE-RED-M has no ERP item")
    ExceptionRecordFactory(sku="TEE-RED-M", title="An old, resolved one", status="resolved", key="old")
    client.force_login(outsider)
    response = client.get(reverse("inventory-level", args=[level.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<h1") == 1 and "TEE-RED-M" in html and "at Leeds warehouse" in html
    assert "Kit (several ERP items)" in html and "<strong class=\"error\">+3</strong>" in html
    assert "SKU TEE-RED-M has no ERP item" in html and "An old, resolved one" not in html


def test_the_inventory_list_links_each_row_to_its_level(client, outsider, level):
    client.force_login(outsider)
    html = client.get(reverse("inventory")).content.decode()
    assert f'href="{reverse("inventory-level", args=[level.pk])}"' in html
    assert "Leeds warehouse" in html and ">Kit ·" in html


def test_an_unknown_level_is_a_404(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("inventory-level", args=[999999])).status_code == 404


def test_it_rejects_post(client, ops_user, level):
    client.force_login(ops_user)
    assert client.post(reverse("inventory-level", args=[level.pk])).status_code == 405


def test_it_redirects_to_login_when_signed_out(client, level):
    response = client.get(reverse("inventory-level", args=[level.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_id_beyond_64_bits_is_a_404(client, outsider):
    client.force_login(outsider)
    assert client.get(f"/inventory/levels/{2 ** 70}/").status_code == 404
